"""The weighted forecast (R2, R3): the rules of the design notes, pinned."""

from __future__ import annotations

from collections import namedtuple
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.analytics.forecast import OVERDUE, UNDATED, forecast
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.periods import Period
from salesflow.domain.stages import StagePlan
from salesflow.errors import (
    CurrencyMismatchError,
    InvalidTypeError,
    MissingDependencyError,
    NotFoundError,
    SalesflowError,
    StageError,
    ValidationError,
)
from salesflow.testing.strategies import opportunities, percents

AS_OF = date(2026, 11, 26)
PLAN = StagePlan.default()


def opp(
    i: int,
    stage: str,
    amount: str,
    close: date | None,
    owner: str = "ann",
    currency: str = "CNY",
    team: str | None = "east",
) -> Opportunity:
    return Opportunity(
        id=f"op-{i}",
        owner=owner,
        team=team,
        amount=Money.of(amount, currency),
        stage=stage,
        expected_close=close,
    )


PIPELINE = [
    opp(1, "quotation", "1000.00", date(2026, 11, 30)),  # this month: 700.00
    opp(2, "quotation", "333.33", date(2026, 12, 1), owner="bob"),  # next month: 233.331 -> 233.33
    opp(3, "quotation", "0.05", date(2026, 12, 31), owner="bob"),  # 0.035 -> 0.04 (half up)
    opp(4, "intent_confirmed", "5000", date(2026, 11, 10)),  # 50 % < 70 %: excluded
    opp(5, "won", "9000", date(2026, 11, 2)),  # already signed: excluded
    opp(6, "lost", "9000", date(2026, 11, 2)),  # excluded
    opp(7, "quotation", "200", date(2026, 10, 31)),  # slipped: overdue 140.00
    opp(8, "quotation", "100", None, owner="cai"),  # undated 70.00
    opp(9, "quotation", "10", date(2027, 3, 5)),  # March: 7.00
]


def test_the_rules_on_a_small_pipeline() -> None:
    fc = forecast(PIPELINE, as_of=AS_OF)
    assert fc.this_month == Money.of("700.00", "CNY")
    assert fc.next_month == Money.of("233.37", "CNY")
    assert fc.overdue == Money.of("140.00", "CNY")
    assert fc.undated == Money.of("70.00", "CNY")
    assert fc.total == Money.of("1150.37", "CNY")
    assert fc.count == 6
    assert fc.excluded == {"won": 1, "lost": 1, "below_threshold": 1}
    assert fc.by_month == {
        Period.month(2026, 11): Money.of("700.00", "CNY"),
        Period.month(2026, 12): Money.of("233.37", "CNY"),
        Period.month(2027, 3): Money.of("7.00", "CNY"),
    }
    assert fc.by_owner == {
        "ann": Money.of("847.00", "CNY"),
        "bob": Money.of("233.37", "CNY"),
        "cai": Money.of("70.00", "CNY"),
    }
    assert fc.bucket_count(OVERDUE) == 1
    assert fc.bucket_count(UNDATED) == 1
    assert fc.bucket_count(Period.month(2026, 12)) == 2


def test_rounding_is_per_opportunity_half_up() -> None:
    # Two opportunities of 0.05 at 70 %: each 0.035 -> 0.04; the sum is 0.08, not round(0.07).
    pair = [
        opp(1, "quotation", "0.05", date(2026, 12, 1)),
        opp(2, "quotation", "0.05", date(2026, 12, 1)),
    ]
    assert forecast(pair, as_of=AS_OF).total == Money.of("0.08", "CNY")


def test_threshold_is_inclusive_and_configurable() -> None:
    at_50 = forecast(PIPELINE, as_of=AS_OF, threshold=50)
    # op-4 (intent confirmed, 50 %, Nov 10) now counts: 2500.00 this month.
    assert at_50.this_month == Money.of("3200.00", "CNY")
    assert at_50.threshold == Decimal(50)
    assert forecast(PIPELINE, as_of=AS_OF, threshold=71).count == 0


def test_quarters_and_fiscal_quarters() -> None:
    fc = forecast(PIPELINE, as_of=AS_OF)
    assert fc.by_quarter == {
        Period.quarter(2026, 4): Money.of("933.37", "CNY"),
        Period.quarter(2027, 1): Money.of("7.00", "CNY"),
    }
    fiscal = forecast(PIPELINE, as_of=AS_OF, fiscal_year_start=4)
    assert {p.label: m for p, m in fiscal.by_quarter.items()} == {
        "FY2027-Q3": Money.of("933.37", "CNY"),
        "FY2027-Q4": Money.of("7.00", "CNY"),
    }


def test_grouping_by_team_and_owner() -> None:
    fc = forecast(PIPELINE, as_of=AS_OF, by=("team", "owner"))
    assert fc.by_group[("east", "bob")] == Money.of("233.37", "CNY")
    assert fc.totals_by("team") == {"east": Money.of("1150.37", "CNY")}
    assert fc.by_owner["ann"] == Money.of("847.00", "CNY")
    table = fc.table()
    assert table[("east", "ann")][OVERDUE] == Money.of("140.00", "CNY")
    assert table[("east", "cai")][UNDATED] == Money.of("70.00", "CNY")
    with pytest.raises(ValidationError):
        fc.totals_by("region")
    team_only = forecast(PIPELINE, as_of=AS_OF, by=())
    assert team_only.by_group == {(): Money.of("1150.37", "CNY")}


def test_drill_down_lines_add_up_to_every_figure() -> None:
    fc = forecast(PIPELINE, as_of=AS_OF)
    lines = list(fc.lines)
    assert [line.opportunity.id for line in lines] == [
        "op-1",
        "op-2",
        "op-3",
        "op-7",
        "op-8",
        "op-9",
    ]
    assert lines[0].opportunity is PIPELINE[0]
    assert lines[1].expected == Money.of("233.33", "CNY")
    assert lines[1].amount == Money.of("333.33", "CNY")
    assert lines[1].probability == Decimal(70)
    assert Money.sum(line.expected for line in lines) == fc.total
    december = fc.lines_for(Period.month(2026, 12))
    assert Money.sum(line.expected for line in december) == fc.next_month
    assert [line.opportunity.id for line in fc.lines_for(OVERDUE)] == ["op-7"]
    assert [line.opportunity.id for line in fc.lines_for(group="cai")] == ["op-8"]


def test_one_shot_iterators_keep_the_drill_down_by_default() -> None:
    fc = forecast(iter(PIPELINE), as_of=AS_OF)
    assert fc.total == Money.of("1150.37", "CNY")
    assert list(fc.lines) == list(forecast(PIPELINE, as_of=AS_OF).lines)
    kept = forecast(iter(PIPELINE), as_of=AS_OF, keep_lines=True)
    assert Money.sum(line.expected for line in kept.lines) == kept.total
    # Told not to keep them, the drill-down of a one-shot input raises: never silently empty.
    dropped = forecast(iter(PIPELINE), as_of=AS_OF, keep_lines=False)
    with pytest.raises(SalesflowError, match="keep_lines"):
        list(dropped.lines)


def test_currencies_are_never_mixed() -> None:
    mixed = [*PIPELINE, opp(20, "quotation", "100", date(2026, 12, 5), currency="USD")]
    fc = forecast(mixed, as_of=AS_OF)
    assert fc.currencies == ("CNY", "USD")
    assert fc.totals == {"CNY": Money.of("1150.37", "CNY"), "USD": Money.of("70.00", "USD")}
    with pytest.raises(CurrencyMismatchError):
        _ = fc.total
    with pytest.raises(CurrencyMismatchError):
        _ = fc.next_month
    assert fc.this_month == Money.of("700.00", "CNY")  # one currency in this bucket
    usd = fc.in_currency("USD")
    assert usd.total == Money.of("70.00", "USD")
    assert [line.opportunity.id for line in usd.lines] == ["op-20"]


class Rates:
    """A fixed-rate source for tests."""

    def __init__(self, table: dict[tuple[str, str], Decimal]) -> None:
        self.table = table
        self.calls: list[tuple[str, str, date]] = []

    def rate(self, source: str, target: str, on: date) -> Decimal:
        self.calls.append((source, target, on))
        try:
            return self.table[(source, target)]
        except KeyError:
            raise NotFoundError("rate", (source, target)) from None


def test_rates_convert_each_rounded_contribution() -> None:
    mixed = [
        opp(1, "quotation", "0.05", date(2026, 12, 5), currency="USD"),
        opp(2, "quotation", "10", date(2026, 12, 5)),
    ]
    rates = Rates({("USD", "CNY"): Decimal("7.1234")})
    fc = forecast(mixed, as_of=AS_OF, rates=rates, currency="CNY")
    # USD 0.035 -> 0.04 USD -> 0.284936 CNY -> 0.28; plus CNY 7.00.
    assert fc.total == Money.of("7.28", "CNY")
    assert rates.calls == [("USD", "CNY", AS_OF)]  # looked up once, on as_of
    lines = list(fc.lines)
    assert lines[0].amount == Money.of("0.05", "USD")
    assert lines[0].expected == Money.of("0.28", "CNY")
    with pytest.raises(NotFoundError):
        forecast(mixed, as_of=AS_OF, rates=Rates({}), currency="CNY")
    with pytest.raises(ValidationError, match="target currency"):
        forecast(mixed, as_of=AS_OF, rates=rates)


Row = namedtuple("Row", "id owner stage amount currency expected_close")


def test_protocol_alike_rows_with_decimal_amounts() -> None:
    rows = [
        Row("r1", "ann", "quotation", Decimal("100"), "CNY", date(2026, 12, 1)),
        Row("r2", "ann", "won", Decimal("100"), "CNY", date(2026, 12, 1)),
    ]
    fc = forecast(rows, as_of=AS_OF)
    assert fc.total == Money.of("70.00", "CNY")
    with pytest.raises(InvalidTypeError, match="amount"):
        forecast([Row("r3", "ann", "quotation", 1.5, "CNY", None)], as_of=AS_OF)


def test_bad_input_is_refused_with_a_named_error() -> None:
    with pytest.raises(StageError) as info:
        forecast([opp(1, "signed", "1", None)], as_of=AS_OF)
    assert "op-1" in str(info.value)
    with pytest.raises(InvalidTypeError, match="as_of"):
        forecast(PIPELINE, as_of="2026-11-26")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="threshold"):
        forecast(PIPELINE, as_of=AS_OF, threshold=101)
    with pytest.raises(ValidationError, match="fiscal_year_start"):
        forecast(PIPELINE, as_of=AS_OF, fiscal_year_start=0)
    with pytest.raises(ValidationError, match="by"):
        forecast(PIPELINE, as_of=AS_OF, by="team owner")
    with pytest.raises(InvalidTypeError):
        forecast([object()], as_of=AS_OF)  # type: ignore[list-item]


def test_empty_input() -> None:
    fc = forecast([], as_of=AS_OF, currency="CNY")
    assert fc.total == Money.zero("CNY")
    assert fc.by_month == {}
    with pytest.raises(ValidationError, match="currency"):
        _ = forecast([], as_of=AS_OF).total
    # Only excluded opportunities: the currency is known from them.
    assert forecast([opp(1, "won", "5", None)], as_of=AS_OF).total == Money.zero("CNY")


def test_text_html_records_and_frame() -> None:
    fc = forecast(PIPELINE, as_of=AS_OF)
    text = str(fc)
    assert "threshold 70%" in text
    header = text.splitlines()[1]
    assert header.split() == [
        "owner",
        "currency",
        "overdue",
        "2026-11",
        "2026-12",
        "2027-03",
        "undated",
        "total",
    ]
    assert "(all)" in text and "1,150.37" in text  # the team row, below the rows
    assert text.index("(all)") > text.index("cai")
    html = fc._repr_html_()
    assert html.startswith('<table class="salesflow"') and "<td" in html
    assert "<tfoot>" in html and "(all)" in html.split("<tfoot>")[1]
    records = fc.to_records()
    assert records[0] == {
        "bucket": "overdue",
        "owner": "ann",
        "currency": "CNY",
        "expected": Decimal("140.00"),
        "count": 1,
    }
    assert sum(r["expected"] for r in records) == Decimal("1150.37")
    assert "(all)" not in {r["owner"] for r in records}  # totals are not data rows
    assert sum(r["expected"] for r in fc.total_records()) == Decimal("1150.37")
    frame = fc.to_frame()
    assert list(frame.columns) == ["bucket", "owner", "currency", "expected", "count"]
    assert frame["expected"].dtype == "float64"
    exact = fc.to_frame(exact=True)
    assert exact["expected"].sum() == Decimal("1150.37")  # Decimal objects survive


def test_to_frame_without_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependencyError, match=r"salesflow\[pandas\]"):
        forecast(PIPELINE, as_of=AS_OF).to_frame()


# -- properties ----------------------------------------------------------------------------------

as_of_dates = st.dates(date(2025, 6, 1), date(2027, 6, 30))


@given(opportunities(currency=st.sampled_from(["CNY", "JPY", "KWD"])), as_of_dates)
def test_totals_are_exact_sums_of_lines_months_and_groups(
    opps: list[Opportunity], as_of: date
) -> None:
    fc = forecast(opps, as_of=as_of)
    for code, total in fc.totals.items():
        lines = [line.expected for line in fc.lines if line.expected.currency == code]
        assert Money.sum(lines, code) == total
        part = fc.in_currency(code)
        months = list(part.by_month.values())
        assert Money.sum([*months, part.overdue, part.undated], code) == total
        assert Money.sum(part.by_group.values(), code) == total
        assert Money.sum(part.by_quarter.values(), code) == Money.sum(months, code)
        assert all(line.expected.is_rounded() for line in part.lines)
    assert fc.count == sum(1 for _ in fc.lines)


@given(opportunities(currency=st.sampled_from(["CNY", "USD"])), as_of_dates)
def test_weighted_never_exceeds_unweighted_and_never_mixes_currencies(
    opps: list[Opportunity], as_of: date
) -> None:
    fc = forecast(opps, as_of=as_of)
    for line in fc.lines:
        assert line.expected.currency == line.amount.currency
        assert line.expected <= line.amount.rounded()
        assert not PLAN.is_won(line.opportunity.stage)
        assert not PLAN.is_lost(line.opportunity.stage)
    for code, total in fc.totals.items():
        unweighted = Money.sum(
            (
                o.amount.rounded()
                for o in opps
                if o.amount.currency == code and PLAN.is_open(o.stage)
            ),
            code,
        )
        assert total <= unweighted


@given(opportunities(), percents(0), percents(0), as_of_dates)
def test_raising_the_threshold_never_raises_the_total(
    opps: list[Opportunity], a: Decimal, b: Decimal, as_of: date
) -> None:
    low, high = min(a, b), max(a, b)
    assert (
        forecast(opps, as_of=as_of, threshold=high, currency="CNY").total
        <= forecast(opps, as_of=as_of, threshold=low, currency="CNY").total
    )


@given(opportunities(), as_of_dates)
def test_won_and_lost_contribute_nothing(opps: list[Opportunity], as_of: date) -> None:
    base = forecast(opps, as_of=as_of, currency="CNY", threshold=0)
    closed = [o for o in opps if not PLAN.is_open(o.stage)]
    assert forecast(closed, as_of=as_of, currency="CNY", threshold=0).total == Money.zero("CNY")
    still_open = [o for o in opps if PLAN.is_open(o.stage)]
    assert forecast(still_open, as_of=as_of, currency="CNY", threshold=0).total == base.total


class _Plain:
    """An object that is not an Opportunity, so the forecast takes its general path."""

    def __init__(self, o: Opportunity) -> None:
        self.id, self.owner, self.stage = o.id, o.owner, o.stage
        self.amount, self.currency = o.amount.amount, o.amount.currency
        self.expected_close = o.expected_close


@given(opportunities(currency=st.sampled_from(["CNY", "JPY"])), as_of_dates)
def test_fast_path_and_general_path_agree(opps: list[Opportunity], as_of: date) -> None:
    fast = forecast(opps, as_of=as_of)
    general = forecast([_Plain(o) for o in opps], as_of=as_of)
    assert fast.to_records() == general.to_records()
    assert fast.excluded == general.excluded
