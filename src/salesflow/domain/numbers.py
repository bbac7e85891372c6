"""Exact numbers from user input: decimals and percentages, never floats; the bounds of amounts
and quantities; and the exact context that arithmetic on them runs in.

Every public entry point that takes a number runs it through :func:`to_decimal` or
:func:`to_percent`, so that a ``float`` (``0.1 + 0.2``) never reaches an amount, a probability or a
discount, and a bad value is refused with an error that names the field.

**Bounds.** An amount of money or a quantity that salesflow is given has at most 15 integer digits
(its magnitude is below :data:`MAX_AMOUNT` / :data:`MAX_QUANTITY`, ``10**15``) and at most
:data:`MAX_PLACES` (10) decimal places (trailing zeros do not count). That fits every storage column
exactly (MySQL/MariaDB ``DECIMAL(38, 10)``, PostgreSQL ``NUMERIC``, SQLite decimal text) and is more
than a double holds, so a backend that rounds through ``float`` shows. A value beyond the bounds is
refused where it enters (:func:`check_bounds`, :func:`to_amount`, :func:`to_quantity`) with a
:class:`~salesflow.errors.ValidationError` naming the field and the value.

**Exact arithmetic.** Results computed from values within the bounds (a line amount, a weighted
amount, a total over a million rows) may need more than the 28 significant digits of Python's
default decimal context. Calculators add, subtract, multiply and quantize them in :data:`EXACT`, so
nothing is ever rounded by the context, and totals may exceed the bound of a single amount.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import Final

from salesflow.errors import InvalidTypeError, ValidationError

__all__ = [
    "EXACT",
    "HUNDRED",
    "MAX_AMOUNT",
    "MAX_INTEGER_DIGITS",
    "MAX_PLACES",
    "MAX_QUANTITY",
    "ZERO",
    "check_bounds",
    "exact_sum",
    "to_amount",
    "to_decimal",
    "to_percent",
    "to_quantity",
]

ZERO = Decimal(0)
HUNDRED = Decimal(100)

MAX_INTEGER_DIGITS: Final = 15
"""Integer digits an amount or a quantity may have."""
MAX_PLACES: Final = 10
"""Decimal places an amount or a quantity may have (trailing zeros do not count)."""
MAX_AMOUNT: Final = Decimal(10) ** MAX_INTEGER_DIGITS
"""Exclusive bound of an amount's magnitude: ``-10**15 < amount < 10**15``."""
MAX_QUANTITY: Final = Decimal(10) ** MAX_INTEGER_DIGITS
"""Exclusive bound of a quantity: ``0 < quantity < 10**15``."""

EXACT: Final = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)
"""A decimal context in which addition, subtraction, multiplication and ``quantize`` are exact.

Use its methods (``EXACT.add(a, b)``, ``EXACT.multiply(a, b)``, ``a.quantize(q, rounding, EXACT)``)
rather than making it the current context, and never divide in it: a quotient such as ``1 / 3``
would need infinitely many digits (``MemoryError``).
"""

_PLACES_QUANTUM = Decimal(1).scaleb(-MAX_PLACES)


def _bounds(what: str, limit: Decimal) -> str:
    if what == "a quantity":
        shown = f"above 0 and below {limit:,f}"
    else:
        shown = f"between -{limit:,f} and {limit:,f} (exclusive)"
    return f"{what} {shown} with at most {MAX_PLACES} decimal places"


def check_bounds(
    number: Decimal,
    field: str,
    *,
    where: str | None = None,
    limit: Decimal = MAX_AMOUNT,
    what: str = "an amount",
    value: object = None,
) -> Decimal:
    """Return the finite ``number`` when its magnitude is below ``limit`` and it has at most
    :data:`MAX_PLACES` decimal places; raise :class:`~salesflow.errors.ValidationError` naming
    ``field``, ``value`` (the value as given; ``number`` when omitted) and the bounds otherwise."""
    if -limit < number < limit and number == number.quantize(_PLACES_QUANTUM, context=EXACT):
        return number
    shown = number if value is None else value
    raise ValidationError(field, shown, _bounds(what, limit), where=where)


def to_amount(value: object, field: str, *, where: str | None = None) -> Decimal:
    """Return ``value`` as a ``Decimal`` amount within the bounds (see :func:`to_decimal` and
    :func:`check_bounds`)."""
    number = to_decimal(value, field, where=where)
    return check_bounds(number, field, where=where, value=value)


def to_quantity(value: object, field: str, *, where: str | None = None) -> Decimal:
    """Return ``value`` as a ``Decimal`` quantity: above zero, below :data:`MAX_QUANTITY`, with at
    most :data:`MAX_PLACES` decimal places."""
    number = to_decimal(value, field, where=where)
    if number <= 0:
        raise ValidationError(field, value, "a quantity greater than zero", where=where)
    return check_bounds(
        number, field, where=where, limit=MAX_QUANTITY, what="a quantity", value=value
    )


def exact_sum(values: Iterable[Decimal], start: Decimal = ZERO) -> Decimal:
    """The exact sum of ``values`` (``sum`` in the default context keeps only 28 digits)."""
    add = EXACT.add
    total = start
    for value in values:
        total = add(total, value)
    return total


def to_decimal(value: object, field: str, *, where: str | None = None) -> Decimal:
    """Return ``value`` as a finite ``Decimal``.

    Accepts ``Decimal``, ``int`` and numeric strings (surrounding blanks ignored). Refuses ``float``
    and ``bool`` with :class:`~salesflow.errors.InvalidTypeError` (a float has already lost the
    exact value), and NaN, infinities and unparsable strings with
    :class:`~salesflow.errors.ValidationError`; both name ``field``.
    """
    if type(value) is Decimal:
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValidationError(field, value, "a decimal number", where=where) from None
    elif isinstance(value, Decimal):
        number = Decimal(value)
    else:
        expected = "a Decimal, an int or a numeric string"
        if isinstance(value, float):
            expected += " (floats are refused: pass Decimal('...') or a string)"
        raise InvalidTypeError(field, value, expected, where=where)
    if not number.is_finite():
        raise ValidationError(field, value, "a finite number", where=where)
    return number


def to_percent(value: object, field: str, *, where: str | None = None) -> Decimal:
    """Return ``value`` as a ``Decimal`` percentage in 0..100 (inclusive); see :func:`to_decimal`."""
    number = to_decimal(value, field, where=where)
    if not ZERO <= number <= HUNDRED:
        raise ValidationError(field, value, "a percentage from 0 to 100", where=where)
    return number
