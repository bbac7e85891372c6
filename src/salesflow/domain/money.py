"""Money: an exact ``Decimal`` amount in an ISO 4217 currency.

Rules (pinned by tests):

* The amount is a ``Decimal``; floats are refused with :class:`~salesflow.errors.InvalidTypeError`,
  NaN and infinities with :class:`~salesflow.errors.ValidationError`.
* The amount given to ``Money(...)`` or :meth:`Money.of` is within the bounds of
  :mod:`salesflow.domain.numbers`: at most 15 integer digits (``-10**15 < amount < 10**15``) and at
  most 10 decimal places; beyond them it is refused with a
  :class:`~salesflow.errors.ValidationError` naming the amount.
* The currency is an ISO 4217 code known to the CLDR data shipped with babel. Its minor unit gives the
  precision: CNY and USD 2 places, JPY 0, KWD 3.
* Arithmetic never rounds: sums, differences and products are exact (computed in
  :data:`~salesflow.domain.numbers.EXACT`, never cut to the default context's 28 digits), and may
  exceed the bound of a single amount (a total of many amounts). Only division, which has no exact
  result in general, keeps the current context's precision (28 significant digits by default).
  :meth:`Money.rounded` rounds to the minor unit, ``ROUND_HALF_UP`` unless another ``decimal``
  rounding mode is named.
* Combining two currencies raises :class:`~salesflow.errors.CurrencyMismatchError`; converting
  needs a :class:`RateSource`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any, Protocol, runtime_checkable

import attrs

from salesflow.domain.numbers import EXACT, MAX_AMOUNT, MAX_PLACES, check_bounds, to_decimal
from salesflow.errors import CurrencyMismatchError, InvalidTypeError, ValidationError

__all__ = ["Money", "RateSource", "check_currency", "currency_exponent", "currency_precision"]


@functools.cache
def _known_currencies() -> frozenset[str]:
    # babel is imported on first use only: it costs ~40 ms, and most imports never need it.
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


@functools.cache
def currency_precision(currency: str) -> int:
    """Number of decimal places of ``currency``'s minor unit (USD 2, JPY 0, KWD 3).

    Raises :class:`~salesflow.errors.ValidationError` for a code that is not ISO 4217.
    """
    if currency not in _known_currencies():
        raise ValidationError("currency", currency, "an ISO 4217 currency code such as 'CNY'")
    from babel.numbers import get_currency_precision

    return int(get_currency_precision(currency))


@functools.cache
def currency_exponent(currency: str) -> Decimal:
    """The quantum of ``currency``'s minor unit, for ``Decimal.quantize`` (USD ``0.01``, JPY ``1``)."""
    return Decimal(1).scaleb(-currency_precision(currency))


def check_currency(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An attrs validator: ``value`` is an ISO 4217 code (see :func:`currency_precision`)."""
    if type(value) is not str and not isinstance(value, str):
        raise InvalidTypeError(attribute.name, value, "an ISO 4217 code as a string")
    currency_exponent(value)  # validates (and warms the cache used by rounded())


_PLACES_QUANTUM = Decimal(1).scaleb(-MAX_PLACES)


def _to_amount(value: object) -> Decimal:
    # The common case inline (storage reads and imports build millions of amounts); check_bounds
    # is the definition and names the field otherwise.
    if (
        type(value) is Decimal
        and value.is_finite()
        and -MAX_AMOUNT < value < MAX_AMOUNT
        and value == value.quantize(_PLACES_QUANTUM, None, EXACT)
    ):
        return value
    number = value if type(value) is Decimal and value.is_finite() else to_decimal(value, "amount")
    return check_bounds(number, "amount", value=value)


@runtime_checkable
class RateSource(Protocol):
    """Where exchange rates come from (a plugin, a table, a fixed dict).

    ``rate(source, target, on)`` returns how many units of ``target`` one unit of ``source`` buys on
    the date ``on``, as a ``Decimal``; it raises :class:`~salesflow.errors.NotFoundError` when it has
    no rate.
    """

    def rate(self, source: str, target: str, on: date) -> Decimal:
        """Return the rate from ``source`` to ``target`` valid on ``on``."""
        ...


@attrs.frozen(repr=False)
class Money:
    """An exact amount of money: ``Decimal`` amount and ISO 4217 currency code.

    Build with ``Money.of("12.30", "CNY")`` or ``Money(Decimal("12.30"), "CNY")``; the amount may be a
    ``Decimal``, an ``int`` or a numeric string, never a ``float``, with at most 15 integer digits
    and 10 decimal places (:data:`~salesflow.domain.numbers.MAX_AMOUNT`). The results of arithmetic
    are exact and not bounded: a total may be larger than any amount it adds up.
    Equality is numeric within a currency (``12.3 CNY == 12.30 CNY``); ordering and arithmetic across
    currencies raise :class:`~salesflow.errors.CurrencyMismatchError`.
    """

    amount: Decimal = attrs.field(converter=_to_amount)
    currency: str = attrs.field(validator=check_currency)

    @classmethod
    def of(cls, amount: object, currency: str) -> Money:
        """Parse ``amount`` (``Decimal``, ``int`` or numeric string; never a float) in ``currency``."""
        return cls(amount, currency)

    @classmethod
    def _trusted(cls, amount: Decimal, currency: str) -> Money:
        """Money from a finite ``Decimal`` computed from validated Money, skipping the checks.

        Internal to salesflow's calculators: pricing a 10,000-line quote builds tens of thousands
        of amounts, and re-validating values that came from validated Money costs as much as the
        pricing itself. It is also how results of arithmetic (totals, which may exceed the bound of
        a single amount) are made. Never use it on input.
        """
        money = object.__new__(cls)
        object.__setattr__(money, "amount", amount)
        object.__setattr__(money, "currency", currency)
        return money

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in ``currency``, written to its minor unit (``0.00 CNY``, ``0 JPY``)."""
        return cls(currency_exponent(currency) * 0, currency)

    def _result(self, amount: Decimal) -> Money:
        """The result of arithmetic on this Money: same currency, exact, not bounded."""
        return Money._trusted(amount, self.currency)

    @classmethod
    def sum(cls, items: Iterable[Money], currency: str | None = None) -> Money:
        """Exact sum of ``items``; ``currency`` is required when ``items`` may be empty.

        Every item must be in the same currency (and in ``currency`` when it is given).
        """
        total: Decimal | None = None
        seen = currency
        add = EXACT.add
        for item in items:
            if seen is None:
                seen = item.currency
            elif item.currency != seen:
                raise CurrencyMismatchError(seen, item.currency, operation="add")
            total = item.amount if total is None else add(total, item.amount)
        if seen is None:
            raise ValidationError("currency", None, "a currency for the sum of an empty sequence")
        return cls.zero(seen) if total is None else cls._trusted(total, seen)

    # -- properties -------------------------------------------------------------------------

    @property
    def precision(self) -> int:
        """Decimal places of the currency's minor unit."""
        return currency_precision(self.currency)

    @property
    def quantum(self) -> Decimal:
        """The minor unit as a ``Decimal`` (``0.01`` for CNY)."""
        return currency_exponent(self.currency)

    def is_rounded(self) -> bool:
        """Whether the amount is a whole number of minor units."""
        return self.amount == self.amount.quantize(self.quantum, ROUND_DOWN, EXACT)

    # -- arithmetic --------------------------------------------------------------------------

    def _same(self, other: Money, operation: str) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(self.currency, other.currency, operation=operation)

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "add")
        return self._result(EXACT.add(self.amount, other.amount))

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "subtract")
        return self._result(EXACT.subtract(self.amount, other.amount))

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, Decimal | int):
            if isinstance(factor, float):
                raise InvalidTypeError("factor", factor, "a Decimal or an int, never a float")
            return NotImplemented
        return self._result(EXACT.multiply(self.amount, to_decimal(factor, "factor")))

    __rmul__ = __mul__

    def __truediv__(self, divisor: Decimal | int) -> Money:
        """Divide by a number, to the current context's precision (28 significant digits by
        default; call :meth:`rounded` when the result is a price)."""
        if isinstance(divisor, bool) or not isinstance(divisor, Decimal | int):
            if isinstance(divisor, float):
                raise InvalidTypeError("divisor", divisor, "a Decimal or an int, never a float")
            return NotImplemented
        number = to_decimal(divisor, "divisor")
        if not number:
            raise ValidationError("divisor", divisor, "a non-zero number")
        return self._result(self.amount / number)

    def ratio(self, other: Money) -> Decimal:
        """``self / other`` as a ``Decimal`` (same currency; ``other`` must not be zero)."""
        self._same(other, "divide")
        if not other.amount:
            raise ValidationError("other", other, "a non-zero amount")
        return self.amount / other.amount

    def __neg__(self) -> Money:
        return self._result(EXACT.minus(self.amount))

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return self._result(EXACT.abs(self.amount))

    def __bool__(self) -> bool:
        return bool(self.amount)

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.amount >= other.amount

    # -- rounding, allocation, conversion -----------------------------------------------------

    def rounded(self, rounding: str = ROUND_HALF_UP) -> Money:
        """This amount rounded to the currency's minor unit (``ROUND_HALF_UP`` unless named)."""
        return self._result(self.amount.quantize(self.quantum, rounding, EXACT))

    def allocate(self, weights: Sequence[Decimal | int]) -> tuple[Money, ...]:
        """Split this amount over ``weights`` exactly, in whole minor units.

        Each part gets its proportional share rounded down; the minor units left over go one each to
        the parts with the largest remainders (the earliest part wins a tie). The parts always add up
        to this amount exactly. The amount must already be a whole number of minor units.
        """
        parsed = [to_decimal(w, f"weights[{i}]") for i, w in enumerate(weights)]
        if not parsed:
            raise ValidationError("weights", weights, "at least one weight")
        if any(w < 0 for w in parsed):
            raise ValidationError("weights", weights, "weights that are zero or more")
        if not any(parsed):
            raise ValidationError("weights", weights, "weights with a positive sum")
        if not self.is_rounded():
            raise ValidationError(
                "amount", self, f"an amount in whole minor units of {self.currency}; round it first"
            )
        # Integer arithmetic throughout: the weights as integers over one power of ten, so every
        # share and remainder is exact however many digits the amount and the weights have.
        scale = max(0, -min(int(w.as_tuple().exponent) for w in parsed))
        integers = [int(w.scaleb(scale, EXACT)) for w in parsed]
        total_weight = sum(integers)
        places = self.precision
        units = int(abs(self.amount).scaleb(places, EXACT))
        split = [divmod(units * w, total_weight) for w in integers]
        floors = [whole for whole, _rest in split]
        left = units - sum(floors)
        by_remainder = sorted(range(len(split)), key=lambda i: (-split[i][1], i))
        for i in by_remainder[:left]:
            floors[i] += 1
        sign = -1 if self.amount < 0 else 1
        return tuple(self._result(Decimal(sign * n).scaleb(-places, EXACT)) for n in floors)

    def convert(self, currency: str, rate: Decimal, rounding: str = ROUND_HALF_UP) -> Money:
        """This amount in ``currency`` at ``rate`` (units of ``currency`` per unit of this one),
        rounded to ``currency``'s minor unit."""
        factor = to_decimal(rate, "rate")
        if factor <= 0:
            raise ValidationError("rate", rate, "a positive exchange rate")
        quantum = currency_exponent(currency)
        converted = EXACT.multiply(self.amount, factor).quantize(quantum, rounding, EXACT)
        return Money._trusted(converted, currency)

    # -- display ---------------------------------------------------------------------------------

    def format(self, locale: str = "en_US") -> str:
        """Format for people, e.g. ``¥12.30`` or ``CN¥12.30`` depending on ``locale`` (babel/CLDR)."""
        from babel.numbers import format_currency

        return str(format_currency(self.amount, self.currency, locale=locale))

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def __repr__(self) -> str:
        return f"Money('{self.amount}', '{self.currency}')"
