"""The converters and validators value objects share: one per kind of value.

attrs hands a validator the attribute it checks, and a converter made with
``attrs.Converter(fn, takes_field=True)`` the field it converts, so one function per kind of value
(an id, a name, a percentage, a date...) names the field itself: a bad value raises a
:class:`~salesflow.errors.ValidationError` naming the field and the value
(:class:`~salesflow.errors.InvalidTypeError` when its type is wrong). Validators are called
``check_*`` and only check; converters are called ``as_*`` and normalise (parse a date, turn a blank
optional text into ``None``)::

    @attrs.frozen(kw_only=True)
    class Invoice:
        id: str = attrs.field(validator=check_id)
        issued_on: date = attrs.field(converter=as_date)
        state: State = attrs.field(converter=as_enum, metadata={"enum": State})

:data:`as_enum` (and :data:`as_optional_enum`), :data:`as_tuple`, :func:`check_instance` and
:func:`check_choice` read what they need from the field's ``metadata`` (``{"enum": State}``,
``{"items": Step}``, ``{"type": Quote}``, ``{"choices": ("range", "slab")}``) rather than being
made by a factory:
mypy's attrs plugin reads a named function as a converter, but neither a factory's result nor an
``attrs.Converter`` (python/mypy#15736), so the converters are declared to mypy as the one-argument
functions they behave as. The plain functions (:func:`check_string`, :func:`require_text`,
:func:`optional_text`) serve code that builds values without attrs converters (the fast paths of
:class:`~salesflow.domain.opportunities.Opportunity` and
:class:`~salesflow.domain.calls.CallRecord`).

**Text.** Every text field of every domain value follows the same rules, so that the four storage
backends store exactly what the domain accepts and refuse nothing it accepted:

* NUL characters (``"\\x00"``) and lone surrogates (code points U+D800..U+DFFF, which no UTF-8
  text can hold) are refused: PostgreSQL refuses NUL, PostgreSQL and MariaDB cannot encode a
  surrogate, while SQLite and memory would keep both.
* Each field has a length limit in characters (code points, as ``len`` counts them), the size of
  the SQL column it lands in: :data:`MAX_ID_LENGTH` (128) for ids, keys and references to them
  (owners, teams, roles, stage keys, SKUs, industries, regions), :data:`MAX_CODE_LENGTH` (64) for
  codes (lost reasons, subject kinds), :data:`MAX_NAME_LENGTH` (255) for names and short labels
  (names, accounts, step names, phone numbers, tags), :data:`MAX_TEXT_LENGTH` (8,192) for free text
  (notes, comments, reasons, subjects, recording references) and :data:`MAX_TERMS_LENGTH` (1 MiB of
  characters) for a contract's terms. Free text may travel in an event, whose data
  (:data:`MAX_EVENT_DATA_BYTES`) must fit MariaDB's ``TEXT`` column.
* A value beyond its limit, or with a NUL or a lone surrogate, raises
  :class:`~salesflow.errors.ValidationError` naming the field (the value is shown cut to its first
  40 characters when it is long).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import attrs

from salesflow.domain.dates import to_aware_datetime, to_date
from salesflow.domain.money import Money
from salesflow.domain.numbers import to_amount, to_decimal, to_percent, to_quantity
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = [
    "MAX_CODE_LENGTH",
    "MAX_EVENT_DATA_BYTES",
    "MAX_ID_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_TERMS_LENGTH",
    "MAX_TEXT_LENGTH",
    "as_amount",
    "as_date",
    "as_datetime",
    "as_decimal",
    "as_enum",
    "as_ids",
    "as_optional_date",
    "as_optional_datetime",
    "as_optional_enum",
    "as_optional_id",
    "as_optional_name",
    "as_optional_percent",
    "as_optional_text",
    "as_percent",
    "as_quantity",
    "as_quantity_or_zero",
    "as_tuple",
    "check_bool",
    "check_choice",
    "check_code",
    "check_comment",
    "check_count",
    "check_id",
    "check_instance",
    "check_money",
    "check_name",
    "check_optional_id",
    "check_optional_money",
    "check_optional_name",
    "check_optional_text",
    "check_positive",
    "check_string",
    "check_text",
    "optional_text",
    "require_text",
    "shown",
]

# -- text ------------------------------------------------------------------------------------------

MAX_ID_LENGTH: Final = 128
"""The longest id, key or reference to one, in characters (the ``ID`` columns of the SQL schema)."""
MAX_CODE_LENGTH: Final = 64
"""The longest code, in characters (lost-reason codes and subject kinds)."""
MAX_NAME_LENGTH: Final = 255
"""The longest name or short label, in characters (the ``TEXT`` columns of the SQL schema)."""
MAX_TEXT_LENGTH: Final = 8_192
"""The longest free text (notes, comments, reasons), in characters. Such text may travel in an
event, so even written with four bytes a character and escaped it fits
:data:`MAX_EVENT_DATA_BYTES`."""
MAX_TERMS_LENGTH: Final = 1_048_576
"""The longest contract terms, in characters (1 MiB), kept only in the contract's document."""
MAX_EVENT_DATA_BYTES: Final = 65_535
"""The most an event's data may take as UTF-8 JSON, in bytes (MariaDB's ``TEXT`` column)."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""A NUL character or a lone surrogate."""

_SHOWN = 40


def shown(text: str) -> str:
    """``text`` as an error message shows it: cut to its first 40 characters when it is long."""
    return text if len(text) <= 2 * _SHOWN else f"{text[:_SHOWN]}..."


def _check_storable(text: str, field: str, limit: int, where: str | None) -> None:
    """Raise unless ``text`` has at most ``limit`` characters, no NUL and no lone surrogate."""
    if len(text) > limit:
        raise ValidationError(
            field,
            shown(text),
            f"at most {limit:,} characters (not {len(text):,})",
            where=where,
        )
    bad = _UNSTORABLE.search(text)
    if bad is not None:
        char = bad.group()
        found = "a NUL character" if char == "\x00" else f"a lone surrogate U+{ord(char):04X}"
        raise ValidationError(
            field,
            shown(text),
            f"text without NUL characters or lone surrogates ({found} at index {bad.start()})",
            where=where,
        )


def check_string(
    value: object, field: str, limit: int = MAX_TEXT_LENGTH, *, where: str | None = None
) -> str:
    """Return ``value`` when it is a string (empty or blank allowed) of at most ``limit``
    characters without NUL characters or lone surrogates; raise otherwise, naming ``field``."""
    if not isinstance(value, str):
        raise InvalidTypeError(field, value, "a string", where=where)
    # printable text has neither NUL nor surrogates: one C loop for the common case
    if len(value) > limit or not value.isprintable():
        _check_storable(value, field, limit, where)
    return value


def require_text(
    value: object, field: str, limit: int = MAX_ID_LENGTH, *, where: str | None = None
) -> str:
    """Return ``value`` when it is a non-blank string within the text rules (see the module
    documentation); raise :class:`~salesflow.errors.ValidationError` naming ``field`` otherwise."""
    if (
        type(value) is str
        and value
        and len(value) <= limit
        and value.isprintable()
        and not value.isspace()
    ):
        return value
    if not isinstance(value, str):
        raise InvalidTypeError(field, value, "a non-empty string", where=where)
    if not value.strip():
        raise ValidationError(field, value, "a non-empty string", where=where)
    _check_storable(value, field, limit, where)
    return value


def optional_text(
    value: object, field: str, limit: int = MAX_NAME_LENGTH, *, where: str | None = None
) -> str | None:
    """Return ``value`` when it is a string within the text rules, ``None`` when it is ``None`` or
    blank ("missing"); raise naming ``field`` otherwise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidTypeError(field, value, "a string or None", where=where)
    if not value.strip():
        return None
    if len(value) > limit or not value.isprintable():
        _check_storable(value, field, limit, where)
    return value


def _check_text(value: object, field: str, limit: int, optional: bool) -> None:
    if (
        type(value) is str
        and value
        and len(value) <= limit
        and value.isprintable()
        and not value.isspace()
    ) or (optional and value is None):
        return
    expected = "a non-empty string or None" if optional else "a non-empty string"
    if not isinstance(value, str):
        raise InvalidTypeError(field, value, expected)
    if not value.strip():
        raise ValidationError(field, value, expected)
    _check_storable(value, field, limit, None)


def check_id(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An id, a key or a reference to one: a non-blank string of at most :data:`MAX_ID_LENGTH`
    characters."""
    _check_text(value, attribute.name, MAX_ID_LENGTH, False)


def check_optional_id(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None`` or an id (see :func:`check_id`)."""
    _check_text(value, attribute.name, MAX_ID_LENGTH, True)


def check_code(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A code: a non-blank string of at most :data:`MAX_CODE_LENGTH` characters."""
    _check_text(value, attribute.name, MAX_CODE_LENGTH, False)


def check_name(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A name or short label: a non-blank string of at most :data:`MAX_NAME_LENGTH` characters."""
    _check_text(value, attribute.name, MAX_NAME_LENGTH, False)


def check_optional_name(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None`` or a name (see :func:`check_name`)."""
    _check_text(value, attribute.name, MAX_NAME_LENGTH, True)


def check_text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Free text: a non-blank string of at most :data:`MAX_TEXT_LENGTH` characters."""
    _check_text(value, attribute.name, MAX_TEXT_LENGTH, False)


def check_optional_text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None`` or free text (see :func:`check_text`)."""
    _check_text(value, attribute.name, MAX_TEXT_LENGTH, True)


def check_comment(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None`` or a string of at most :data:`MAX_TEXT_LENGTH` characters, kept as written (blank
    included)."""
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidTypeError(attribute.name, value, "a string or None")
    check_string(value, attribute.name, MAX_TEXT_LENGTH)


# -- numbers, flags, money -----------------------------------------------------------------------


def check_count(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A whole number, 0 or more (``bool`` is not a number here)."""
    if type(value) is not int or value < 0:
        raise ValidationError(attribute.name, value, "a whole number, 0 or more")


def check_positive(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A whole number, 1 or more."""
    if type(value) is not int or value < 1:
        raise ValidationError(attribute.name, value, "a whole number, 1 or more")


def check_bool(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``True`` or ``False``."""
    if not isinstance(value, bool):
        raise InvalidTypeError(attribute.name, value, "True or False")


def check_choice(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """One of the values in the field's ``metadata["choices"]`` (a ``Literal`` field)."""
    choices: tuple[object, ...] = attribute.metadata["choices"]
    if value not in choices:
        shown = ", ".join(repr(choice) for choice in choices)
        raise ValidationError(attribute.name, value, f"one of {shown}")


def check_instance(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An instance of the class in the field's ``metadata["type"]``."""
    kind: type = attribute.metadata["type"]
    if not isinstance(value, kind):
        raise InvalidTypeError(attribute.name, value, f"a {kind.__name__}")


def check_money(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """:class:`~salesflow.domain.money.Money` of zero or more."""
    if not isinstance(value, Money):
        raise InvalidTypeError(attribute.name, value, "Money (e.g. Money.of('9.90', 'CNY'))")
    if value.amount < 0:
        raise ValidationError(attribute.name, value, "an amount of zero or more")


def check_optional_money(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None`` or :class:`~salesflow.domain.money.Money` of zero or more."""
    if value is not None:
        check_money(instance, attribute, value)


# -- converters ------------------------------------------------------------------------------------


def _as_optional_id(value: object, field: attrs.Attribute[Any]) -> str | None:
    return optional_text(value, field.name, MAX_ID_LENGTH)


def _as_optional_name(value: object, field: attrs.Attribute[Any]) -> str | None:
    return optional_text(value, field.name, MAX_NAME_LENGTH)


def _as_optional_text(value: object, field: attrs.Attribute[Any]) -> str | None:
    return optional_text(value, field.name, MAX_TEXT_LENGTH)


def _as_ids(value: object, field: attrs.Attribute[Any]) -> frozenset[str]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise InvalidTypeError(field.name, value, "an iterable of strings")
    try:
        # A str subclass (an enum member) becomes a plain str: equality, hashing and dumps alike.
        names = frozenset(str(v) if isinstance(v, str) else v for v in items)
    except TypeError:
        raise InvalidTypeError(field.name, value, "an iterable of strings") from None
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(field.name, name, "non-empty strings")
        check_string(name, field.name, MAX_ID_LENGTH)
    return names


def _as_decimal(value: object, field: attrs.Attribute[Any]) -> Decimal:
    return to_decimal(value, field.name)


def _as_percent(value: object, field: attrs.Attribute[Any]) -> Decimal:
    return to_percent(value, field.name)


def _as_optional_percent(value: object, field: attrs.Attribute[Any]) -> Decimal | None:
    return None if value is None else to_percent(value, field.name)


def _as_amount(value: object, field: attrs.Attribute[Any]) -> Decimal:
    return to_amount(value, field.name)


def _as_quantity(value: object, field: attrs.Attribute[Any]) -> Decimal:
    return to_quantity(value, field.name)


def _as_quantity_or_zero(value: object, field: attrs.Attribute[Any]) -> Decimal:
    number = to_decimal(value, field.name)
    if number < 0:
        raise ValidationError(field.name, value, "a quantity of zero or more")
    return number


def _as_date(value: object, field: attrs.Attribute[Any]) -> date:
    return to_date(value, field.name)


def _as_optional_date(value: object, field: attrs.Attribute[Any]) -> date | None:
    return None if value is None else to_date(value, field.name)


def _as_datetime(value: object, field: attrs.Attribute[Any]) -> datetime:
    return to_aware_datetime(value, field.name)


def _as_optional_datetime(value: object, field: attrs.Attribute[Any]) -> datetime | None:
    return None if value is None else to_aware_datetime(value, field.name)


def _as_enum(value: object, field: attrs.Attribute[Any]) -> enum.Enum:
    kind: type[enum.Enum] = field.metadata["enum"]
    if isinstance(value, kind):
        return value
    choices = ", ".join(repr(member.value) for member in kind)
    if not isinstance(value, str):
        raise InvalidTypeError(field.name, value, f"one of {choices}")
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(field.name, value, f"one of {choices}") from None


def _as_optional_enum(value: object, field: attrs.Attribute[Any]) -> enum.Enum | None:
    return None if value is None else _as_enum(value, field)


def _as_tuple(value: object, field: attrs.Attribute[Any]) -> tuple[Any, ...]:
    kind: type = field.metadata["items"]
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidTypeError(field.name, value, f"a sequence of {kind.__name__}")
    items = tuple(value)
    for i, item in enumerate(items):
        if not isinstance(item, kind):
            raise InvalidTypeError(f"{field.name}[{i}]", item, f"a {kind.__name__}")
    return items


if TYPE_CHECKING:
    # What mypy sees: the one-argument functions the converters behave as (its attrs plugin does
    # not read attrs.Converter, python/mypy#15736).
    def as_optional_id(value: object, /) -> str | None: ...
    def as_optional_name(value: object, /) -> str | None: ...
    def as_optional_text(value: object, /) -> str | None: ...
    def as_ids(value: object, /) -> frozenset[str]: ...
    def as_decimal(value: object, /) -> Decimal: ...
    def as_percent(value: object, /) -> Decimal: ...
    def as_optional_percent(value: object, /) -> Decimal | None: ...
    def as_amount(value: object, /) -> Decimal: ...
    def as_quantity(value: object, /) -> Decimal: ...
    def as_quantity_or_zero(value: object, /) -> Decimal: ...
    def as_date(value: object, /) -> date: ...
    def as_optional_date(value: object, /) -> date | None: ...
    def as_datetime(value: object, /) -> datetime: ...
    def as_optional_datetime(value: object, /) -> datetime | None: ...
    def as_enum(value: object, /) -> Any: ...
    def as_optional_enum(value: object, /) -> Any: ...
    def as_tuple(value: object, /) -> Any: ...
else:
    as_optional_id = attrs.Converter(_as_optional_id, takes_field=True)
    """``None``, or an id; blank text means ``None``."""
    as_optional_name = attrs.Converter(_as_optional_name, takes_field=True)
    """``None``, or a name; blank text means ``None``."""
    as_optional_text = attrs.Converter(_as_optional_text, takes_field=True)
    """``None``, or free text; blank text means ``None``."""
    as_ids = attrs.Converter(_as_ids, takes_field=True)
    """A set of ids (roles, teams), from one string or any iterable of them."""
    as_decimal = attrs.Converter(_as_decimal, takes_field=True)
    """A finite ``Decimal`` (see :func:`~salesflow.domain.numbers.to_decimal`)."""
    as_percent = attrs.Converter(_as_percent, takes_field=True)
    """A percentage from 0 to 100 (see :func:`~salesflow.domain.numbers.to_percent`)."""
    as_optional_percent = attrs.Converter(_as_optional_percent, takes_field=True)
    """``None`` or a percentage."""
    as_amount = attrs.Converter(_as_amount, takes_field=True)
    """A ``Decimal`` amount within the bounds (see :func:`~salesflow.domain.numbers.to_amount`)."""
    as_quantity = attrs.Converter(_as_quantity, takes_field=True)
    """A quantity above zero, within the bounds (see
    :func:`~salesflow.domain.numbers.to_quantity`)."""
    as_quantity_or_zero = attrs.Converter(_as_quantity_or_zero, takes_field=True)
    """A ``Decimal`` of zero or more (a delivered quantity)."""
    as_date = attrs.Converter(_as_date, takes_field=True)
    """A ``date`` (see :func:`~salesflow.domain.dates.to_date`)."""
    as_optional_date = attrs.Converter(_as_optional_date, takes_field=True)
    """``None`` or a ``date``."""
    as_datetime = attrs.Converter(_as_datetime, takes_field=True)
    """A timezone-aware ``datetime`` (see :func:`~salesflow.domain.dates.to_aware_datetime`)."""
    as_optional_datetime = attrs.Converter(_as_optional_datetime, takes_field=True)
    """``None`` or a timezone-aware ``datetime``."""
    as_enum = attrs.Converter(_as_enum, takes_field=True)
    """A member of the enum in the field's ``metadata["enum"]``, or its value as a string."""
    as_optional_enum = attrs.Converter(_as_optional_enum, takes_field=True)
    """``None``, or what :data:`as_enum` accepts."""
    as_tuple = attrs.Converter(_as_tuple, takes_field=True)
    """A tuple of the instances of the class in the field's ``metadata["items"]`` (any iterable of
    them but a string or a mapping)."""
