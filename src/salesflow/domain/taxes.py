"""Taxes as data: tax rates, how they round, and prices that include them.

A :class:`TaxRate` is a named percentage (``VAT13`` 13 %, ``CITY`` 1 %). A product or a category
carries its rates (a product without any pays those of the nearest category on its path that has
some; a code means one rate across the catalog); a plugin may add the rates of a customer's region
through the ``salesflow_get_tax_rates`` hook. A quote line carries
the rates it was priced with, several per line.

Rules (pinned by tests):

* **Rounding.** ``"document"`` (the default, as in Odoo's *round globally* and ERPNext): for each
  rate, the tax is ``rate x the sum of the nets of the lines carrying it``, rounded half up once,
  and allocated over those lines by net (largest remainder), so each tax is rounded on its own (two
  10 % taxes on 0.05 give 0.01 + 0.01). ``"line"``: each line's tax for each rate is rounded half up
  on its own.
* **Tax-included prices.** A product whose prices include its taxes (``tax_included``) is priced as
  usual up to the rounded line amount (what the customer sees, taxes in); the untaxed amount is
  then that amount divided by ``1 + the sum of the line's rates / 100``, rounded half up to the
  minor unit (:func:`untaxed_amount`; the *cent rule*). From there on the line is like any other:
  document discount, then taxes computed on the net. When the untaxed amount is whole minor units
  already, a tax-included price list and the equivalent tax-excluded one give the same total.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, TypeAlias

import attrs

from salesflow.domain.checks import as_percent, check_id, check_optional_name
from salesflow.domain.numbers import EXACT, HUNDRED, ZERO, exact_sum
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = [
    "TAX_ROUNDINGS",
    "TaxRate",
    "TaxRounding",
    "TaxSource",
    "parse_tax_rates",
    "untaxed_amount",
]

TaxRounding: TypeAlias = Literal["document", "line"]
"""Where taxes round: once per rate for the whole quote (``"document"``) or per line and rate."""

TAX_ROUNDINGS: tuple[TaxRounding, ...] = ("document", "line")
"""The accepted :data:`TaxRounding` values."""

TaxSource: TypeAlias = Callable[..., Iterable["TaxRate"]]
"""A function of ``sku=``, ``category_path=``, ``region=`` and ``on=`` returning the extra tax
rates of a region (the desk's comes from the ``salesflow_get_tax_rates`` hook)."""


@attrs.frozen(kw_only=True)
class TaxRate:
    """A tax: a ``code`` (unique within a catalog and on a line), a ``rate`` in percent (0..100)
    and an optional display ``name``."""

    code: str = attrs.field(validator=check_id)
    rate: Decimal = attrs.field(converter=as_percent)
    name: str | None = attrs.field(default=None, validator=check_optional_name)

    @property
    def label(self) -> str:
        """``VAT13 13%`` (the name when there is one)."""
        shown = format(self.rate.normalize(), "f") if self.rate else "0"
        return f"{self.name or self.code} {shown}%"

    def to_dict(self) -> dict[str, Any]:
        """This rate as a plain dict (the rate as a string) that :meth:`from_dict` reads back."""
        data: dict[str, Any] = {"code": self.code, "rate": str(self.rate)}
        if self.name is not None:
            data["name"] = self.name
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str | None = None) -> TaxRate:
        """Build a rate from ``{"code", "rate", "name"}`` (name optional)."""
        if isinstance(data, TaxRate):
            return data
        if not isinstance(data, Mapping) or not {"code", "rate"} <= set(data):
            raise InvalidTypeError("tax", data, "a dict with code and rate", where=where)
        extra = set(data) - {"code", "rate", "name"}
        if extra:
            raise ValidationError("tax", sorted(extra), "only code, rate and name", where=where)
        try:
            return cls(code=data["code"], rate=data["rate"], name=data.get("name") or None)
        except ValidationError as exc:
            raise (exc.located(where) if where else exc) from None


def parse_tax_rates(value: object, field: str = "taxes") -> tuple[TaxRate, ...]:
    """Rates from a list of :class:`TaxRate` or dicts, or the text ``"VAT13:13;CITY:1"``
    (code:rate[:name], ``;`` between rates); codes must be unique."""
    if value is None:
        return ()
    rates: list[TaxRate] = []
    if isinstance(value, str):
        shape = "rates like 'VAT13:13;CITY:1' (code:percent[:name])"
        for i, part in enumerate(p for p in value.split(";") if p.strip()):
            pieces = [piece.strip() for piece in part.split(":", 2)]
            if len(pieces) < 2:
                raise ValidationError(field, value, shape)
            entry = {"code": pieces[0], "rate": pieces[1]}
            if len(pieces) == 3:
                entry["name"] = pieces[2]
            rates.append(TaxRate.from_dict(entry, where=f"{field}[{i}]"))
    elif isinstance(value, list | tuple):
        rates = [TaxRate.from_dict(v, where=f"{field}[{i}]") for i, v in enumerate(value)]
    else:
        raise InvalidTypeError(field, value, "a list of tax rates or 'VAT13:13;CITY:1'")
    check_unique_codes(rates, field)
    return tuple(rates)


def check_unique_codes(rates: Iterable[TaxRate], field: str) -> None:
    """Raise when two rates share a code (a tax applies once per line)."""
    seen: set[str] = set()
    for rate in rates:
        if rate.code in seen:
            raise ValidationError(field, rate.code, "each tax code once")
        seen.add(rate.code)


def untaxed_amount(included: Decimal, rates: Iterable[Decimal], quantum: Decimal) -> Decimal:
    """The cent rule: ``included / (1 + sum(rates) / 100)`` rounded half up to ``quantum``.

    ``included`` is an amount with its taxes in (whole minor units); the quotient is taken with
    enough digits that only the final rounding decides the result.
    """
    total = exact_sum(rates)
    if not total:
        return included
    # included * 100 / (100 + total): one division, 60 significant digits, then one rounding.
    numerator = EXACT.multiply(included, HUNDRED)
    quotient = _WIDE.divide(numerator, EXACT.add(HUNDRED, total))
    return quotient.quantize(quantum, ROUND_HALF_UP, EXACT)


def percent_of(amount: Decimal, rate: Decimal) -> Decimal:
    """``amount x rate / 100``, exact (dividing by 100 only moves the decimal point)."""
    return EXACT.divide(EXACT.multiply(amount, rate), HUNDRED) if rate else ZERO


_WIDE = EXACT.copy()
_WIDE.prec = 60
