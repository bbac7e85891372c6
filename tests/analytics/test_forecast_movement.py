"""Forecast lines, reconstruction from stage history, and the movement waterfall between two days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.analytics.forecast_lines import forecast_lines, stage_on
from salesflow.analytics.forecast_movement import STEPS, forecast_movement
from salesflow.domain.forecasts import CategoryOverride, OverrideEntry, SnapshotLine
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import ForecastCategory, StagePlan
from salesflow.errors import CurrencyMismatchError, ValidationError

PLAN = StagePlan.default()
KEYS = list(PLAN.keys)
DAY = date(2026, 11, 10)
START = datetime(2026, 10, 1, 9, tzinfo=UTC)


def line(
    id: str,
    owner: str,
    stage: str,
    amount: Decimal,
    close: date | None,
    category: ForecastCategory | None = None,
    team: str | None = "east",
    reason: str | None = None,
) -> SnapshotLine:
    s = PLAN[stage]
    weighted = Decimal(0)
    if s.is_open and s.probability >= PLAN.threshold:
        weighted = (amount * s.probability / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return SnapshotLine(
        id=id,
        owner=owner,
        team=team,
        stage=stage,
        category=category or PLAN.category(stage),
        amount=Money.of(amount, "CNY"),
        probability=s.probability,
        expected_close=close,
        weighted=Money.of(weighted, "CNY"),
        closed_on=None if s.is_open else DAY,
        lost_reason=reason if s.is_lost else None,
    )


lines = st.builds(
    line,
    id=st.just("x"),
    owner=st.sampled_from(["ann", "bob", "wes"]),
    stage=st.sampled_from(KEYS),
    amount=st.integers(0, 10**8).map(lambda cents: Decimal(cents).scaleb(-2)),
    close=st.none() | st.dates(date(2026, 9, 1), date(2027, 3, 1)),
    category=st.none() | st.sampled_from([ForecastCategory.OMITTED, ForecastCategory.BEST_CASE]),
    team=st.sampled_from(["east", "west"]),
    reason=st.sampled_from(["price", "timing"]),
)


def pairs() -> st.SearchStrategy[tuple[list[SnapshotLine], list[SnapshotLine]]]:
    one = st.tuples(st.none() | lines, st.none() | lines)
    return st.lists(one, max_size=25).map(
        lambda rows: (
            [_named(a, i) for i, (a, _b) in enumerate(rows) if a is not None],
            [_named(b, i) for i, (_a, b) in enumerate(rows) if b is not None],
        )
    )


def _named(item: SnapshotLine, i: int) -> SnapshotLine:
    import attrs

    return attrs.evolve(item, id=f"op-{i}")


@given(
    pairs(),
    st.sampled_from(["weighted", "pipeline"]),
    st.sampled_from([None, "2026-11", "2026-Q4"]),
    st.sampled_from([("owner",), ("team",), ("team", "owner"), ()]),
)
def test_the_waterfall_always_reconciles_to_the_cent(
    pair: tuple[list[SnapshotLine], list[SnapshotLine]],
    measure: str,
    period: str | None,
    by: tuple[str, ...],
) -> None:
    first, second = pair
    move = forecast_movement(
        first,
        second,
        PLAN,
        period=period,
        by=by,
        measure=measure,
        currency="CNY",  # type: ignore[arg-type]
    )
    for record in [*move.to_records(), *move.total_records()]:
        total = record["start"] + sum((record[name] for name in STEPS), Decimal(0))
        assert total == record["end"]

    # The overall totals are the measure of the counted lines, computed here independently.
    def counted(items: list[SnapshotLine]) -> Decimal:
        total = Decimal(0)
        for item in items:
            if not PLAN[item.stage].is_open or item.category is ForecastCategory.OMITTED:
                continue
            if period is not None:
                from salesflow.domain.periods import Period

                if item.expected_close is None or not Period.parse(period).contains(
                    item.expected_close
                ):
                    continue
            total += item.weighted.amount if measure == "weighted" else item.amount.amount
        return total

    assert move.total("start") == counted(first)
    assert move.total("end") == counted(second)
    assert move.step("reassigned") == 0  # moves between groups, nothing overall


def test_each_cause_lands_on_its_step() -> None:
    nov, dec = date(2026, 11, 20), date(2026, 12, 20)
    first = [
        line("won", "ann", "quotation", Decimal("1000"), nov),
        line("lost", "ann", "quotation", Decimal("500"), nov),
        line("slip", "ann", "quotation", Decimal("200"), nov),
        line("pull", "bob", "quotation", Decimal("300"), dec),
        line("up", "bob", "quotation", Decimal("100"), nov),
        line("stage", "bob", "intent_confirmed", Decimal("400"), nov),
        line("moved", "ann", "quotation", Decimal("50"), nov),
        line("gone", "bob", "quotation", Decimal("10"), nov),
    ]
    second = [
        line("won", "ann", "won", Decimal("1000"), nov),
        line("lost", "ann", "lost", Decimal("500"), nov, reason="price"),
        line("slip", "ann", "quotation", Decimal("200"), dec),
        line("pull", "bob", "quotation", Decimal("300"), nov),
        line("up", "bob", "quotation", Decimal("150"), nov),
        line("stage", "bob", "quotation", Decimal("400"), nov),
        line("moved", "bob", "quotation", Decimal("50"), nov),
        line("gone", "bob", "quotation", Decimal("10"), nov, category=ForecastCategory.OMITTED),
        line("new", "ann", "quotation", Decimal("20"), nov),
    ]
    move = forecast_movement(first, second, PLAN, period="2026-11", by="owner")
    assert move.step("won") == Decimal("-700.00")
    assert move.step("lost") == Decimal("-350.00")
    assert move.lost_reasons() == {"price": (1, Decimal("-350.00"))}
    assert move.step("slipped") == Decimal("-140.00")
    assert move.step("pulled_in") == Decimal("210.00")
    assert move.step("amount_up") == Decimal("35.00")
    assert move.step("stage_up") == Decimal("280.00")
    assert move.step("reassigned", "ann") == Decimal("-35.00")
    assert move.step("reassigned", "bob") == Decimal("35.00")
    assert move.step("removed") == Decimal("-7.00")
    assert move.step("new") == Decimal("14.00")
    assert "reassigned" in str(move) and "<table" in move._repr_html_()
    assert list(move.to_frame().columns) == move.record_columns()
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    assert move.plot() is not None
    with pytest.raises(ValidationError, match="by"):
        forecast_movement(first, second, PLAN, by="industry")
    usd = [line("x", "ann", "quotation", Decimal("1"), nov)]
    usd = [SnapshotLine(**{**_fields(usd[0]), "amount": Money.of("1", "USD")})]
    with pytest.raises(CurrencyMismatchError):
        forecast_movement(first, usd, PLAN)


def _fields(item: SnapshotLine) -> dict[str, object]:
    import attrs

    return attrs.asdict(item, recurse=False)


# -- reconstruction ---------------------------------------------------------------------------

moves = st.lists(st.tuples(st.integers(0, 40), st.sampled_from(KEYS)), max_size=6)


def _replay(base: Opportunity, steps: list[tuple[int, str]], until: datetime | None) -> Opportunity:
    at = START
    item = base
    for hours, stage in steps:
        at = at + timedelta(hours=hours * 6)
        if until is not None and at > until:
            break
        if stage == item.stage or not PLAN[item.stage].is_open:
            continue
        reason = "price" if PLAN[stage].is_lost else None
        item = item.move_to(stage, at, plan=PLAN, reason=reason)
    return item


@given(
    st.lists(
        st.tuples(
            st.sampled_from(KEYS[:4]),
            st.integers(0, 10**7),
            st.none() | st.dates(date(2026, 9, 1), date(2027, 3, 1)),
            moves,
            st.booleans(),
        ),
        max_size=15,
    ),
    st.integers(0, 6),
)
def test_a_reconstructed_forecast_equals_the_snapshot_of_its_day(
    rows: list[tuple[str, int, date | None, list[tuple[int, str]], bool]], day_offset: int
) -> None:
    day = START.date() + timedelta(days=day_offset)
    end_of_day = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC)
    then, now = [], []
    overrides = {}
    for i, (stage, cents, close, steps, override) in enumerate(rows):
        base = Opportunity(
            id=f"op-{i}",
            owner="ann",
            amount=Money.of(Decimal(cents).scaleb(-2), "CNY"),
            stage=stage,
            expected_close=close,
        )
        then.append(_replay(base, steps, end_of_day))  # what the desk saw that day
        now.append(_replay(base, steps, None))  # what it stores later
        if override:
            overrides[f"op-{i}"] = CategoryOverride(
                opportunity_id=f"op-{i}",
                owner="ann",
                entries=(
                    OverrideEntry(category="best_case", reason="r", actor="ann", at=START),
                    OverrideEntry(
                        category="omitted", reason="r", actor="ann", at=end_of_day + timedelta(1)
                    ),
                ),
            )
    snapshot = list(forecast_lines(then, PLAN, as_of=day, overrides=overrides))
    rebuilt = list(forecast_lines(now, PLAN, as_of=day, overrides=overrides))
    assert rebuilt == snapshot
    assert len(snapshot) == len(rows)


def test_stage_on_reads_the_history() -> None:
    base = Opportunity(
        id="a",
        owner="ann",
        amount=Money.of("1", "CNY"),
        stage="initial_contact",
        created=date(2026, 10, 1),
    )
    moved = base.move_to("quotation", datetime(2026, 10, 5, 23, tzinfo=UTC), plan=PLAN)
    assert stage_on(moved, date(2026, 9, 30)) is None  # not created yet
    assert stage_on(moved, date(2026, 10, 4)) == ("initial_contact", None)
    assert stage_on(moved, date(2026, 10, 5))[0] == "quotation"
    assert stage_on(base, date(2026, 10, 2)) == ("initial_contact", None)
