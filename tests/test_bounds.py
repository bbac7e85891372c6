"""Numbers within bounds (issue 11): amounts and quantities have at most 15 integer digits and 10
decimal places, are refused beyond them where they enter, and are computed exactly inside them by
every calculator and every storage backend."""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterator
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import salesflow
from salesflow import Actor, Money, Opportunity, StagePlan
from salesflow.adapters.telephony_twilio import TwilioJsonSource
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.numbers import (
    EXACT,
    MAX_AMOUNT,
    MAX_PLACES,
    MAX_QUANTITY,
    check_bounds,
    exact_sum,
    to_amount,
    to_quantity,
)
from salesflow.domain.quotes import Quote, QuoteItem
from salesflow.errors import ValidationError

ROOT = Actor("root", roles={"admin"})
AS_OF = date(2026, 11, 26)
TOP = Decimal("999999999999999.9999999999")
"""The largest amount within the bounds: 15 integer digits, 10 decimal places."""
CENT = Decimal("0.01")


def precise(compute: Callable[[], Decimal]) -> Decimal:
    """``compute()`` run with 200 significant digits (and exact, or it raises): the reference the
    library must match."""
    with localcontext() as context:
        context.prec = 200
        context.traps[decimal.Inexact] = True
        return compute()


# -- the bounds ----------------------------------------------------------------------------------------


def test_the_bounds_are_public_and_what_the_docs_say() -> None:
    assert salesflow.MAX_AMOUNT == MAX_AMOUNT == Decimal(10) ** 15
    assert salesflow.MAX_QUANTITY == MAX_QUANTITY == Decimal(10) ** 15
    assert salesflow.MAX_PLACES == MAX_PLACES == 10


@pytest.mark.parametrize("sign", ["", "-"])
def test_money_at_the_bound_is_accepted(sign: str) -> None:
    money = Money.of(f"{sign}{TOP}", "CNY")
    assert money.amount == Decimal(f"{sign}{TOP}")
    assert Money(Decimal(f"{sign}{TOP}"), "CNY") == money
    assert Money.of(f"{sign}{10**15 - 1}", "JPY").amount == int(f"{sign}{10**15 - 1}")
    assert Money.of(f"{sign}0.0000000001", "CNY").amount == Decimal(f"{sign}1E-10")


@pytest.mark.parametrize("sign", ["", "-"])
@pytest.mark.parametrize(
    "amount", ["1000000000000000", "1000000000000000.0000000001", "1e27", "1e400", 10**30]
)
def test_money_beyond_the_bound_is_refused(sign: str, amount: object) -> None:
    value = f"{sign}{amount}" if isinstance(amount, str) else int(f"{sign}{amount}")
    for build in (Money.of, Money):
        with pytest.raises(ValidationError) as caught:
            build(value, "CNY")
        error = caught.value
        assert error.field == "amount"
        assert error.value == value
        assert "10 decimal places" in error.expected
        assert "1,000,000,000,000,000" in str(error)
    with pytest.raises(ValidationError, match="amount"):
        Money(Decimal(value), "CNY")


def test_too_many_decimal_places_are_refused_but_trailing_zeros_are_not() -> None:
    with pytest.raises(ValidationError, match="at most 10 decimal places") as caught:
        Money.of("0.12345678901", "CNY")
    assert caught.value.field == "amount"
    with pytest.raises(ValidationError):
        Money(Decimal("-1E-11"), "CNY")
    assert Money.of("1.500000000000000", "CNY") == Money.of("1.5", "CNY")
    assert Money.of("1E+14", "CNY").amount == 10**14


def test_the_helpers_name_the_field_and_where() -> None:
    assert to_amount(" 12.30 ", "price") == Decimal("12.30")
    with pytest.raises(ValidationError) as caught:
        to_amount("1e15", "price", where="line 7")
    assert (caught.value.field, caught.value.value, caught.value.where) == (
        "price",
        "1e15",
        "line 7",
    )
    assert to_quantity("999999999999999.9999999999", "quantity") == TOP
    for bad in ("0", "-1", "1e15", "0.00000000001", 10**30):
        with pytest.raises(ValidationError) as caught:
            to_quantity(bad, "quantity")
        assert caught.value.field == "quantity"
    assert check_bounds(-TOP, "amount") == -TOP
    assert exact_sum([TOP] * 1000) == precise(lambda: TOP * 1000)


def test_arithmetic_is_exact_and_totals_may_exceed_the_bound() -> None:
    top = Money(TOP, "CNY")
    total = Money.sum([top] * 1000)
    assert total.amount == Decimal("999999999999999999.9999999000")  # 31 digits, not rounded
    assert (top + top).amount == 2 * TOP
    assert (top * 1000).amount == total.amount
    assert (total - top).amount == Decimal("998999999999999999.9999999001")
    assert (-total).amount == -total.amount
    assert total.rounded().amount == Decimal("1000000000000000000.00")
    big = Money.sum([Money.of(10**15 - 1, "CNY")] * 10**6) * 10**6
    assert big.rounded().amount == Decimal((10**15 - 1) * 10**12)  # no InvalidOperation
    assert big.is_rounded()
    assert big.convert("USD", Decimal("0.1378")).amount == Decimal((10**15 - 1) * 10**12) * Decimal(
        "0.1378"
    )


def test_allocate_is_exact_whatever_the_digits() -> None:
    total = Money.sum([Money.of("999999999999999.99", "CNY")] * 10**6)  # 23 digits of cents
    weights = [Decimal("33.3333333333"), Decimal("33.3333333333"), Decimal("1E-10"), 0]
    parts = total.allocate(weights)
    assert Money.sum(parts) == total
    whole = sum(Fraction(w) for w in weights)
    for part, weight in zip(parts, weights, strict=True):
        share = Fraction(total.amount) * Fraction(weight) / whole
        assert abs(Fraction(part.amount) - share) < Fraction(1, 100)  # within one minor unit
    small = Money.of("0.10", "CNY").allocate([1, 1, 1])
    assert [p.amount for p in small] == [Decimal("0.04"), Decimal("0.03"), Decimal("0.03")]
    negative = Money.of("-0.10", "CNY").allocate([1, 1, 1])
    assert [p.amount for p in negative] == [Decimal("-0.04"), Decimal("-0.03"), Decimal("-0.03")]


# -- calculators -----------------------------------------------------------------------------------------


class Row(NamedTuple):
    """A forecast input row, as an ORM or a DataFrame would give it."""

    id: str
    owner: str
    stage: str
    amount: Money | Decimal
    expected_close: date | None
    currency: str = "CNY"
    industry: str = "retail"


amounts = st.integers(0, 10**25 - 1).map(lambda n: Decimal(n).scaleb(-10))
stages = st.sampled_from(["quotation", "intent_confirmed", "won", "lost", "odd"])
PLAN = StagePlan.from_dict(
    {
        "threshold": 50,
        "stages": [
            {"key": "initial_contact", "probability": 10},
            {"key": "intent_confirmed", "probability": "50.0000000001"},
            {"key": "odd", "probability": "70.13"},
            {"key": "quotation", "probability": "99.9999999999"},
            {"key": "won", "probability": 100, "outcome": "won"},
            {"key": "lost", "probability": 0, "outcome": "lost"},
        ],
    }
)


def reference_forecast(rows: list[Row], plan: StagePlan) -> Decimal:
    """The forecast total computed plainly, with 200 significant digits."""
    counted = {s.key: s.probability for s in plan.forecast_stages(plan.threshold)}
    with localcontext() as context:
        context.prec = 200
        total = Decimal(0)
        for row in rows:
            if row.stage in counted:
                money = row.amount if isinstance(row.amount, Money) else Money(row.amount, "CNY")
                weighted = money.amount * counted[row.stage] / 100
                total += weighted.quantize(money.quantum, ROUND_HALF_UP)
        return total


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(amounts, stages, st.booleans()), max_size=40))
def test_the_forecast_of_amounts_within_the_bounds_is_exact(
    drawn: list[tuple[Decimal, str, bool]],
) -> None:
    rows = [
        Row(
            id=f"o{i}",
            owner=f"rep{i % 3}",
            stage=stage,
            amount=Money(amount, "CNY") if as_money else amount,
            expected_close=date(2026, 12, 1) if i % 2 else None,
        )
        for i, (amount, stage, as_money) in enumerate(drawn)
    ]
    result = salesflow.forecast(rows, PLAN, as_of=AS_OF, currency="CNY")
    assert result.total.amount == reference_forecast(rows, PLAN)
    assert sum(m.amount for m in result.by_group.values()) == result.total.amount
    assert sum(line.expected.amount for line in result.lines) == result.total.amount


def test_a_weighted_amount_is_rounded_once_not_twice() -> None:
    # 500000000000014.0524739769 x 70.13 % = 350650000000009.85499999999997 (29 digits): cut to
    # the default context's 28 digits first, it would round up to ...9.86.
    amount = Decimal("500000000000014.0524739769")
    rows = [Row("o1", "ann", "odd", Money(amount, "CNY"), None)]
    assert salesflow.forecast(rows, PLAN, as_of=AS_OF).total == Money.of(
        "350650000000009.85", "CNY"
    )
    with localcontext() as context:
        context.prec = 28
        assert (amount * Decimal("0.7013")).quantize(CENT, ROUND_HALF_UP) == Decimal(
            "350650000000009.86"
        )


def test_a_decimal_amount_beyond_the_bounds_is_refused_by_the_calculators() -> None:
    rows = [Row("o1", "ann", "quotation", Decimal("1e400"), None)]
    with pytest.raises(ValidationError, match="opportunity 'o1'") as caught:
        salesflow.forecast(rows, as_of=AS_OF)
    assert caught.value.field == "amount"
    with pytest.raises(ValidationError, match="opportunity 'o1'"):
        salesflow.distribution(rows)


def test_sums_of_many_maximal_amounts_are_exact() -> None:
    # 2001 x 987654321098765.4321098765 has 29 significant digits; the default context keeps 28.
    large = Decimal("987654321098765.4321098765")
    won = Row("o1", "ann", "won", Money(large, "CNY"), None)
    expected = Decimal("1976296296518629629.6518628765")
    assert expected == precise(lambda: large * 2001)
    dist = salesflow.distribution([won] * 2001)
    assert dist.amounts()["retail"].amount == expected
    matrix = salesflow.rep_industry_matrix([won] * 2001)
    assert matrix.to_records()[0]["won_amount"] == expected
    assert Money.sum([Money(large, "CNY")] * 2001).amount == expected
    # A million weighted maximal amounts.
    open_top = Row("o2", "ann", "quotation", Money(TOP, "CNY"), date(2026, 12, 1))
    total = salesflow.forecast([open_top] * 10**6, as_of=AS_OF).total.amount
    assert total == (TOP * Decimal("0.7")).quantize(CENT, ROUND_HALF_UP) * 10**6


# -- CSV imports on every backend ---------------------------------------------------------------------


def write_csv(path: Path, bad_amount: str) -> Path:
    lines = ["id,owner,amount,currency,stage,expected_close"]
    lines += [f"o{i},ann,{1000 + i}.50,CNY,quotation,2026-12-15" for i in range(1, 4)]
    lines.append(f"o4,ann,{bad_amount},CNY,quotation,2026-12-15")
    lines += [f"o{i},ann,{1000 + i}.50,CNY,quotation,2026-12-15" for i in range(5, 8)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "bad", ["1e400", "1e27", "1000000000000000", "-1", "1000000000000000.00", "12.12345678901"]
)
def test_read_opportunities_names_the_line_of_an_amount_beyond_the_bounds(
    tmp_path: Path, bad: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        salesflow.read_opportunities(write_csv(tmp_path / "pipeline.csv", bad))
    assert caught.value.field == "amount"
    assert caught.value.where is not None and caught.value.where.startswith("line 5")
    assert str(caught.value).startswith("line 5: ")


def test_an_import_with_an_amount_beyond_the_bounds_stores_nothing(
    open_desk: Any, tmp_path: Path
) -> None:
    desk = open_desk()
    for i, bad in enumerate(["1e400", "1e27", "1000000000000000", "999999999999999.99999999999"]):
        path = write_csv(tmp_path / f"pipeline{i}.csv", bad)
        with pytest.raises(ValidationError, match=r"^line 5: invalid amount") as caught:
            desk.import_opportunities(ROOT, path)
        assert caught.value.field == "amount"
        assert caught.value.value == bad
        assert desk.opportunities() == []
    good = write_csv(tmp_path / "good.csv", str(TOP))
    assert desk.import_opportunities(ROOT, good).value == 7
    assert desk.opportunity("o4").amount == Money(TOP, "CNY")


# -- storage: the bound is held exactly on every backend ---------------------------------------------


def extremes() -> Iterator[Opportunity]:
    for i, (amount, stage) in enumerate(
        [
            (TOP, "quotation"),
            (TOP, "quotation"),
            (Decimal("999999999999999.99"), "quotation"),
            (Decimal("0.0000000001"), "quotation"),
            (Decimal("500000000000014.0524739769"), "quotation"),
            (TOP, "won"),
            (TOP, "intent_confirmed"),
            (Decimal(10**15 - 1), "quotation"),
        ]
    ):
        yield Opportunity(
            id=f"max{i}",
            owner=f"rep{i % 2}",
            amount=Money(amount, "CNY" if i != 7 else "JPY"),
            stage=stage,
            expected_close=date(2026, 12, 1) if i % 3 else None,
        )


def test_the_largest_amounts_are_stored_and_forecast_exactly_on_every_backend(
    open_desk: Any,
) -> None:
    desk = open_desk()
    for opportunity in extremes():
        desk.add_opportunity(ROOT, opportunity)
    stored = {o.id: o for o in desk.opportunities()}
    for opportunity in extremes():
        assert stored[opportunity.id].amount == opportunity.amount
        assert stored[opportunity.id].amount.amount == opportunity.amount.amount
    pushed = desk.forecast(as_of=AS_OF)
    pure = salesflow.forecast(desk.opportunities(), as_of=AS_OF)
    assert pushed.totals == pure.totals
    assert pushed.to_records() == pure.to_records()
    for code, money in pure.totals.items():
        rows = [Row(o.id, o.owner, o.stage, o.amount, None) for o in extremes()]
        assert money.amount == reference_forecast(
            [r for r in rows if r.amount.currency == code],  # type: ignore[union-attr]
            StagePlan.default(),
        )


@pytest.mark.parametrize("stages", [("odd", "odd"), ("odd", "quotation")])
def test_odd_probabilities_are_forecast_exactly_on_every_backend(
    open_desk: Any, stages: tuple[str, str]
) -> None:
    # 70.13 % fits the database's factor column; 99.9999999999 % does not (more than 8 decimals),
    # so that forecast is computed in Python: exact either way.
    desk = open_desk(plan=PLAN)
    amounts = (Decimal("500000000000014.0524739769"), TOP)
    rows = []
    for i, (amount, stage) in enumerate(zip(amounts, stages, strict=True)):
        opportunity = Opportunity(id=f"o{i}", owner="ann", amount=Money(amount, "CNY"), stage=stage)
        desk.add_opportunity(ROOT, opportunity)
        rows.append(Row(opportunity.id, "ann", stage, opportunity.amount, None))
    expected = reference_forecast(rows, PLAN)
    assert desk.forecast(as_of=AS_OF).total.amount == expected
    assert salesflow.forecast(desk.opportunities(), PLAN, as_of=AS_OF).total.amount == expected


def test_an_opportunity_amount_beyond_the_bound_is_refused_even_when_computed() -> None:
    total = Money.sum([Money(TOP, "CNY")] * 2)  # arithmetic may exceed the bound...
    with pytest.raises(ValidationError, match="opportunity 'o1'") as caught:
        Opportunity(id="o1", owner="ann", amount=total, stage="quotation")  # ...storage may not
    assert caught.value.field == "amount"


# -- quotes ------------------------------------------------------------------------------------------------

DAY = date(2026, 11, 26)
CATALOG = Catalog(
    products=[
        Product(sku="BIG", name="Big", list_price=Money.of("999999999999.99", "CNY")),
        Product(sku="TINY", name="Tiny", list_price=Money.of("0.0000000001", "CNY")),
    ]
)


def draft() -> Quote:
    return Quote(id="Q-1", owner="ann", currency="CNY", quoted_on=DAY)


def test_a_quantity_beyond_the_bound_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        draft().add_line(CATALOG, "TINY", 10**30)
    assert caught.value.field == "quantity"
    assert caught.value.value == 10**30
    item = draft().add_line(CATALOG, "TINY", 1).items[0]
    with pytest.raises(ValidationError) as caught:
        QuoteItem(id="L1", quantity=10**30, products=item.products)
    assert caught.value.field == "quantity"
    with pytest.raises(ValidationError, match="quantity"):
        draft().add_line(CATALOG, "TINY", "0.00000000001")


def test_a_line_amount_beyond_the_bound_is_refused_naming_the_line() -> None:
    with pytest.raises(ValidationError, match=r"line 'L1'") as caught:
        draft().add_line(CATALOG, "BIG", 1001)  # x 1000 is 999,999,999,999,990: fine; 1001 is not
    assert caught.value.field == "amount"
    assert "quantity 1001 x list price" in str(caught.value)
    with pytest.raises(ValidationError, match=r"line 'L1'") as caught:
        draft().add_line(CATALOG, "TINY", 10**14, unit_price="10.5")
    assert caught.value.field == "amount"
    with pytest.raises(ValidationError) as caught:
        draft().add_line(CATALOG, "TINY", 1, unit_price="1e400")
    assert caught.value.field == "unit_price"
    quote = draft().add_line(CATALOG, "TINY", 1)
    with pytest.raises(ValidationError, match=r"quote 'Q-1': invalid quantity") as caught:
        quote.set_quantity("L1", 10**30)
    assert caught.value.field == "quantity"
    with pytest.raises(ValidationError, match=r"line 'L2'") as caught:
        quote.add_line(CATALOG, "BIG", 999).set_quantity("L2", 10**4)
    assert caught.value.field == "amount"


def test_a_quote_total_beyond_the_bound_cannot_be_submitted() -> None:
    quote = draft().add_line(CATALOG, "BIG", 999).add_line(CATALOG, "BIG", 999)
    assert quote.total.amount == Decimal("1997999999999980.02")  # exact, beyond one amount
    with pytest.raises(ValidationError, match="quote 'Q-1'") as caught:
        quote.submit_for_approval()
    assert caught.value.field == "total"


def test_pricing_within_the_bounds_is_exact() -> None:
    quote = (
        draft()
        .add_line(CATALOG, "BIG", 999, discount="33.3333333333")
        .add_line(CATALOG, "TINY", "999999999999999.9999999999", unit_price="0.9999999999")
        .set_document_discount("12.3456789")
        .set_tax_rate("13.3333333333")
    )
    big, tiny = quote.lines
    assert big.gross.amount == Decimal("998999999999990.01")
    assert big.discounted.amount == precise(
        lambda: Decimal("998999999999990.01") * Decimal("66.6666666667") / 100
    )
    assert tiny.gross.amount == precise(lambda: TOP * Decimal("0.9999999999"))  # 35 digits
    assert tiny.subtotal.amount == Decimal("999999999900000.00")  # ...899999.9999999999000...1
    assert quote.total == Money.sum(line.net + line.tax for line in quote.lines)
    assert quote.explain().for_line("quote")[-1].amount == quote.total


def test_submit_quote_never_raises_invalid_operation(tmp_path: Path) -> None:
    desk = salesflow.open(f"sqlite:///{tmp_path / 'q.db'}", load_entrypoints=False)
    desk.update_catalog(ROOT, CATALOG)
    quote = (
        Quote(id="Q-1", owner="root", currency="CNY", quoted_on=DAY)
        .add_line(CATALOG, "TINY", "99999999999999.9999999999", unit_price="0.9999999999")
        .add_line(CATALOG, "BIG", 1, discount="0.0000000001")
    )
    desk.create_quote(ROOT, quote)
    submitted = desk.submit_quote(ROOT, "Q-1").value
    assert submitted.total == quote.total


# -- call prices -------------------------------------------------------------------------------------------


def test_a_twilio_price_beyond_the_bound_is_a_malformed_row() -> None:
    def call(sid: str, price: str) -> dict[str, Any]:
        return {
            "sid": sid,
            "status": "completed",
            "direction": "outbound-api",
            "from": "+14155550100",
            "to": "+14155552671",
            "start_time": "Tue, 24 Nov 2026 01:30:00 +0000",
            "end_time": "Tue, 24 Nov 2026 01:35:00 +0000",
            "date_created": "Tue, 24 Nov 2026 01:29:58 +0000",
            "duration": "300",
            "price": price,
            "price_unit": "USD",
        }

    data = {
        "calls": [call("CA1", "-0.013"), call("CA2", "1e400"), call("CA3", "-1e15")],
        "page": 0,
        "page_size": 3,
        "uri": "/2010-04-01/Accounts/AC1/Calls.json?PageSize=3&Page=0",
        "next_page_uri": None,
    }
    source = TwilioJsonSource(data)
    assert [r.external_id for r in source.fetch(None, None, on_error="skip")] == ["CA1"]
    assert [(e.field, e.location) for e in source.errors] == [
        ("price", "page 0 calls[1]"),
        ("price", "page 0 calls[2]"),
    ]
    with pytest.raises(ValidationError, match=r"page 0 calls\[1\]"):
        list(source.fetch(None, None))
    assert EXACT.multiply(TOP, TOP) == precise(lambda: TOP * TOP)
