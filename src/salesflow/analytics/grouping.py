"""Reading and grouping calculator input: what every analytics calculator shares.

Group keys from attribute names (a value for one name, a tuple for several), missing values under an
explicit key, amounts from ``Money`` or a ``Decimal`` plus a currency, exact percentages, record
columns for groups and the team row, and the generated one-pass loops the hot calculators run.
"""

from __future__ import annotations

import functools
import keyword
import operator
from collections.abc import Callable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from salesflow.domain.money import Money, currency_exponent
from salesflow.domain.numbers import ZERO, check_bounds
from salesflow.domain.stages import StagePlan
from salesflow.errors import CurrencyMismatchError, InvalidTypeError, ValidationError

__all__ = [
    "ALL",
    "MISSING",
    "amount_fields",
    "as_money",
    "check_currency",
    "check_label",
    "check_places",
    "check_plan",
    "compile_loop",
    "getter",
    "group_fields",
    "is_attribute_name",
    "label",
    "money_of",
    "percent_of",
    "sort_key",
    "team_fields",
    "to_by",
    "where",
]


ALL = "(all)"
"""The group label of the team rows in records and printed tables."""


MISSING = "unknown"
"""The default key under which missing values (``None``, blank text) are grouped."""


_MAX_PLACES = 6


def check_places(places: object) -> int:
    """Validate a number of decimal places for percentages (an int from 0 to 6)."""
    if type(places) is not int or not 0 <= places <= _MAX_PLACES:
        raise ValidationError("places", places, f"an int from 0 to {_MAX_PLACES}")
    return places


def to_by(by: Sequence[str] | str, field: str = "by") -> tuple[str, ...]:
    """Attribute name(s) to group by, as a tuple (``()`` means the team only)."""
    names = (by,) if isinstance(by, str) else by
    try:
        group_by = tuple(names)
    except TypeError:
        raise InvalidTypeError(field, by, "an attribute name or a sequence of them") from None
    if not all(is_attribute_name(name) for name in group_by):
        raise ValidationError(field, by, "attribute names such as 'owner' or 'team'")
    return group_by


def getter(names: tuple[str, ...]) -> Callable[[Any], Any]:
    """A fast reader of the attribute(s) ``names``: a value for one name, a tuple for several."""
    if not names:
        return lambda _item: ()
    return operator.attrgetter(*names)


def check_label(value: object, field: str) -> str:
    """Validate the label used for missing values."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, value, "a non-empty string")
    return value


def check_plan(plan: StagePlan | None) -> StagePlan:
    """``plan``, or the default plan when it is ``None`` (anything else is refused)."""
    plan = StagePlan.default() if plan is None else plan
    if not isinstance(plan, StagePlan):
        raise InvalidTypeError("plan", plan, "a StagePlan")
    return plan


def percent_of(rate: Fraction, places: int) -> Decimal:
    """The exact fraction ``rate`` (zero or more) as a percentage rounded half up to ``places``
    decimals; integer arithmetic, so no digit is lost however long the expansion."""
    if rate < 0:
        raise ValidationError("rate", rate, "a rate of zero or more")
    scale = 10**places
    whole, rest = divmod(rate.numerator * 100 * scale, rate.denominator)
    if 2 * rest >= rate.denominator:
        whole += 1
    return Decimal(whole).scaleb(-places)


def check_currency(currency: object) -> str | None:
    """Validate an optional ISO 4217 code."""
    if currency is None:
        return None
    if not isinstance(currency, str):
        raise InvalidTypeError("currency", currency, "an ISO 4217 code as a string")
    currency_exponent(currency)
    return currency


def where(item: Any) -> str:
    """How to name ``item`` in an error message."""
    return f"opportunity {getattr(item, 'id', item)!r}"


def money_of(item: Any, currency: str | None, field: str = "amount") -> tuple[Decimal, str]:
    """The amount and currency of ``item``: a Money, or a Decimal (within the bounds of an amount,
    see :func:`~salesflow.domain.numbers.check_bounds`) plus a currency."""
    amount = getattr(item, field)
    if isinstance(amount, Money):
        return amount.amount, amount.currency
    if type(amount) is Decimal and amount.is_finite():
        code = getattr(item, "currency", None) or currency
        if code is None:
            raise ValidationError(
                "currency", None, "a currency attribute or currency=...", where=where(item)
            )
        if not isinstance(code, str):
            raise InvalidTypeError("currency", code, "an ISO 4217 code", where=where(item))
        currency_exponent(code)
        return check_bounds(amount, field, where=where(item)), code
    raise InvalidTypeError(field, amount, "Money or a finite Decimal", where=where(item))


def label(value: Any, missing: str) -> Any:
    """``value``, or ``missing`` when it is ``None`` or blank text (per part of a tuple)."""
    if value is None:
        return missing
    if isinstance(value, str):
        return value if value.strip() else missing
    if isinstance(value, tuple):
        return tuple(label(part, missing) for part in value)
    return value


def sort_key(value: Any) -> tuple[Any, ...]:
    """A total order over group keys and values of mixed types (text order, ``None`` last)."""
    if isinstance(value, tuple):
        return tuple(sort_key(v) for v in value)
    return (value is None, "" if value is None else str(value))


def amount_fields(
    per_currency: dict[str, Decimal], currencies: Sequence[str], name: str = "amount"
) -> dict[str, Any]:
    """Record columns for an amount kept per currency.

    With one currency (the usual case): ``amount`` and ``currency``. With several: one column
    ``amount_<CODE>`` per currency, zero where the cell holds none.
    """
    if len(currencies) <= 1:
        code = currencies[0] if currencies else None
        return {name: per_currency.get(code, ZERO) if code else ZERO, "currency": code}
    return {f"{name}_{code}": per_currency.get(code, ZERO) for code in currencies}


def as_money(per_currency: dict[str, Decimal], fallback: str | None, what: str) -> Money:
    """One amount kept per currency as :class:`Money` (mixed currencies raise)."""
    if len(per_currency) > 1:
        raise CurrencyMismatchError(*sorted(per_currency), operation=f"total {what} across")
    if per_currency:
        ((code, value),) = per_currency.items()
        return Money._trusted(value, code)  # a total: exact, and may exceed one amount's bound
    if fallback is None:
        raise ValidationError("currency", None, f"a currency to show {what} of nothing")
    return Money(ZERO, fallback)


def group_fields(by: tuple[str, ...], group: Any) -> dict[str, Any]:
    """The record columns of a group key."""
    if not by:
        return {}
    if len(by) == 1:
        return {by[0]: group}
    return dict(zip(by, group, strict=True))


def team_fields(by: tuple[str, ...]) -> dict[str, Any]:
    """The record columns of the team rows: :data:`ALL` in the first grouping column."""
    fields: dict[str, Any] = dict.fromkeys(by)
    if by:
        fields[by[0]] = ALL
    return fields


def is_attribute_name(name: object) -> bool:
    """Whether ``name`` can be read as ``item.<name>`` (an identifier, not a keyword)."""
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


def compile_loop(template: str, group: tuple[str, ...], value: str) -> Callable[..., Any]:
    """The function ``loop`` defined by ``template``, with ``{group}`` replaced by the expression
    that reads the group key from ``item`` and ``{value}`` by the value's attribute name.

    A calculator's hot loop runs once per opportunity over pipelines of millions, where reading
    attributes through ``operator.attrgetter`` costs a third of the time of a hand-written loop.
    So the loop is generated for the attribute names of the call, like attrs and dataclasses
    generate their methods, and cached. The names are checked to be plain identifiers first.
    """
    return _compile_loop(template, group, value)


@functools.lru_cache(maxsize=128)
def _compile_loop(template: str, group: tuple[str, ...], value: str) -> Callable[..., Any]:
    for name in (*group, value):
        if not is_attribute_name(name):
            raise ValidationError("attribute", name, "an attribute name such as 'owner'")
    if not group:
        group_expr = "()"
    elif len(group) == 1:
        group_expr = f"item.{group[0]}"
    else:
        group_expr = "(" + ", ".join(f"item.{name}" for name in group) + ")"
    source = template.format(group=group_expr, value=value)
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<salesflow loop by {group} over {value}>", "exec"), namespace)
    loop: Callable[..., Any] = namespace["loop"]
    return loop
