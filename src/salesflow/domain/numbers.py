"""Exact numbers from user input: decimals and percentages, never floats.

Every public entry point that takes a number runs it through :func:`to_decimal` or
:func:`to_percent`, so that a ``float`` (``0.1 + 0.2``) never reaches an amount, a probability or a
discount, and a bad value is refused with an error that names the field.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from salesflow.errors import InvalidTypeError, ValidationError

__all__ = ["HUNDRED", "ZERO", "to_decimal", "to_percent"]

ZERO = Decimal(0)
HUNDRED = Decimal(100)


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
