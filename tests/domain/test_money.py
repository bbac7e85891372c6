"""Money: exact amounts, per-currency precision, no floats, no silent currency mixing."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.domain.money import Money, currency_exponent, currency_precision
from salesflow.errors import CurrencyMismatchError, InvalidTypeError, ValidationError
from salesflow.testing.strategies import money


def test_of_parses_strings_ints_and_decimals() -> None:
    assert Money.of("12.30", "CNY") == Money(Decimal("12.30"), "CNY")
    assert Money.of(5, "USD").amount == Decimal(5)
    assert Money.of(" 7.5 ", "EUR").amount == Decimal("7.5")


@pytest.mark.parametrize("bad", [0.1, float("nan"), 1.5])
def test_floats_are_refused_with_a_type_error(bad: float) -> None:
    with pytest.raises(InvalidTypeError) as info:
        Money.of(bad, "CNY")
    assert isinstance(info.value, TypeError)
    assert info.value.field == "amount"
    assert "float" in str(info.value)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-inf", "12,30", "abc", ""])
def test_non_finite_and_unparsable_amounts_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        Money.of(bad, "CNY")
    assert info.value.field == "amount"
    assert info.value.value == bad


def test_decimal_nan_is_refused() -> None:
    with pytest.raises(ValidationError):
        Money(Decimal("NaN"), "CNY")


def test_bool_is_not_a_number() -> None:
    with pytest.raises(InvalidTypeError):
        Money.of(True, "CNY")


@pytest.mark.parametrize("code", ["cny", "ZZZ", "US", "", "EURO"])
def test_unknown_currency_codes_are_refused(code: str) -> None:
    with pytest.raises(ValidationError) as info:
        Money.of("1", code)
    assert info.value.field == "currency"


def test_currency_must_be_text() -> None:
    with pytest.raises(InvalidTypeError):
        Money(Decimal(1), 840)  # type: ignore[arg-type]


@pytest.mark.parametrize(("code", "places"), [("CNY", 2), ("USD", 2), ("JPY", 0), ("KWD", 3)])
def test_precision_comes_from_the_minor_unit(code: str, places: int) -> None:
    assert currency_precision(code) == places
    assert currency_exponent(code) == Decimal(1).scaleb(-places)
    assert Money.of("1", code).precision == places


@pytest.mark.parametrize(
    ("amount", "code", "expected"),
    [
        ("2.345", "CNY", "2.35"),  # half up, not banker's rounding
        ("2.355", "CNY", "2.36"),
        ("-2.345", "CNY", "-2.35"),  # half away from zero
        ("1234.5", "JPY", "1235"),
        ("1.0005", "KWD", "1.001"),
    ],
)
def test_rounded_is_half_up_to_the_minor_unit(amount: str, code: str, expected: str) -> None:
    rounded = Money.of(amount, code).rounded()
    assert rounded.amount == Decimal(expected)
    assert str(rounded.amount) == expected


def test_rounded_takes_another_mode_when_named() -> None:
    assert Money.of("2.345", "CNY").rounded(ROUND_HALF_EVEN).amount == Decimal("2.34")


def test_arithmetic_is_exact_and_never_rounds() -> None:
    a = Money.of("0.1", "CNY")
    b = Money.of("0.2", "CNY")
    assert (a + b).amount == Decimal("0.3")
    assert (b - a).amount == Decimal("0.1")
    assert (a * 3).amount == Decimal("0.3")
    assert (3 * a).amount == Decimal("0.3")
    assert (a * Decimal("0.5")).amount == Decimal("0.05")
    assert (Money.of("10", "CNY") / 4).amount == Decimal("2.5")
    assert -a == Money.of("-0.1", "CNY")
    assert abs(-a) == a


def test_multiplying_by_a_float_is_refused() -> None:
    with pytest.raises(InvalidTypeError):
        Money.of("1", "CNY") * 0.5  # type: ignore[operator]


def test_division_by_zero_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        Money.of("1", "CNY") / 0


def test_mixing_currencies_raises() -> None:
    cny, usd = Money.of("1", "CNY"), Money.of("1", "USD")
    with pytest.raises(CurrencyMismatchError) as info:
        cny + usd
    assert info.value.currencies == ("CNY", "USD")
    with pytest.raises(CurrencyMismatchError):
        cny - usd
    with pytest.raises(CurrencyMismatchError):
        _ = cny < usd


def test_equality_is_numeric_within_a_currency_and_false_across() -> None:
    assert Money.of("12.3", "CNY") == Money.of("12.30", "CNY")
    assert hash(Money.of("12.3", "CNY")) == hash(Money.of("12.30", "CNY"))
    assert Money.of("1", "CNY") != Money.of("1", "USD")


def test_comparisons() -> None:
    assert Money.of("1", "CNY") < Money.of("2", "CNY") <= Money.of("2", "CNY")
    assert Money.of("3", "CNY") > Money.of("2", "CNY") >= Money.of("2.00", "CNY")
    assert not Money.zero("CNY")
    assert Money.of("0.01", "CNY")


def test_adding_a_plain_number_is_refused() -> None:
    with pytest.raises(TypeError):
        Money.of("1", "CNY") + 1  # type: ignore[operator]


def test_sum_of_an_empty_sequence_needs_a_currency() -> None:
    with pytest.raises(ValidationError) as info:
        Money.sum([])
    assert info.value.field == "currency"
    assert Money.sum([], "JPY") == Money.zero("JPY")


def test_sum_checks_every_currency() -> None:
    assert Money.sum([Money.of("1.5", "CNY"), Money.of("2", "CNY")]) == Money.of("3.5", "CNY")
    with pytest.raises(CurrencyMismatchError):
        Money.sum([Money.of("1", "CNY")], "USD")
    with pytest.raises(CurrencyMismatchError):
        Money.sum([Money.of("1", "CNY"), Money.of("1", "USD")])


def test_allocate_splits_exactly_with_largest_remainders() -> None:
    parts = Money.of("100.00", "CNY").allocate([1, 1, 1])
    assert [p.amount for p in parts] == [Decimal("33.34"), Decimal("33.33"), Decimal("33.33")]
    parts = Money.of("0.05", "USD").allocate([Decimal("0.3"), Decimal("0.7")])
    # 1.5 and 3.5 units: equal remainders, so the earlier part takes the spare cent.
    assert [p.amount for p in parts] == [Decimal("0.02"), Decimal("0.03")]
    assert Money.of("-10", "JPY").allocate([1, 2]) == (Money.of("-3", "JPY"), Money.of("-7", "JPY"))


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1]])
def test_allocate_refuses_bad_weights(weights: list[int]) -> None:
    with pytest.raises(ValidationError):
        Money.of("1", "CNY").allocate(weights)


def test_allocate_refuses_an_unrounded_amount() -> None:
    with pytest.raises(ValidationError):
        Money.of("1.005", "CNY").allocate([1, 1])


def test_convert_rounds_into_the_target_currency() -> None:
    assert Money.of("100", "USD").convert("JPY", Decimal("151.237")) == Money.of("15124", "JPY")
    with pytest.raises(ValidationError):
        Money.of("1", "USD").convert("CNY", Decimal(0))


def test_ratio() -> None:
    assert Money.of("25", "CNY").ratio(Money.of("100", "CNY")) == Decimal("0.25")
    with pytest.raises(ValidationError):
        Money.of("1", "CNY").ratio(Money.zero("CNY"))


def test_text_forms() -> None:
    m = Money.of("12.30", "CNY")
    assert str(m) == "12.30 CNY"
    assert repr(m) == "Money('12.30', 'CNY')"
    assert m.format("en_US") == "CN¥12.30"
    assert Money.of("1234.5", "USD").format("en_US") == "$1,234.50"


@given(money(), st.lists(st.integers(0, 50), min_size=1, max_size=8).filter(any))
def test_allocation_always_adds_up_and_stays_within_one_unit(m: Money, weights: list[int]) -> None:
    parts = m.allocate(weights)
    assert Money.sum(parts, m.currency) == m
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = m.amount * weight / total
        assert abs(part.amount - exact) < m.quantum


@given(money(rounded=False))
def test_rounding_moves_by_at_most_half_a_unit(m: Money) -> None:
    r = m.rounded()
    assert r.is_rounded()
    assert abs(r.amount - m.amount) <= m.quantum / 2
