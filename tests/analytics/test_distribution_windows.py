"""Time windows (created=, closed=) of the calculators that read opportunities.

The property: a windowed calculator equals the same calculator without a window over the input
filtered first, by a filter written here from the rules (not with salesflow.analytics.windows).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow.analytics.distribution import distribution
from salesflow.analytics.inputs import stage_names
from salesflow.analytics.lost_reasons import lost_reasons
from salesflow.analytics.strengths import rep_industry_matrix
from salesflow.analytics.velocity import learned_probabilities, stage_velocity
from salesflow.analytics.windows import Window, closed_on, created_on, to_window, within
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.periods import Period
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, StageError, ValidationError

PLAN = StagePlan.default()
KEYS = PLAN.keys
CLOSED = {s.key for s in PLAN if not s.is_open}
ZONES = (UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-7)))
START = datetime(2025, 12, 20, tzinfo=UTC)


@st.composite
def an_opportunity(draw: st.DrawFn, i: int) -> Opportunity:
    stages = draw(st.lists(st.sampled_from(KEYS), max_size=4))
    zone = draw(st.sampled_from(ZONES))
    at = START + timedelta(hours=draw(st.integers(0, 24 * 200)))
    history = []
    previous = None
    for stage in stages:
        at += timedelta(hours=draw(st.integers(0, 24 * 60)))
        reason = draw(st.sampled_from((None, *PLAN.lost_reasons))) if stage in CLOSED else None
        if stage == "won":
            reason = None
        history.append(StageChange(at.astimezone(zone), previous, stage, reason=reason))
        previous = stage
    stage = stages[-1] if stages else draw(st.sampled_from(KEYS))
    return Opportunity(
        id=f"op-{i}",
        owner=draw(st.sampled_from(("ann", "bob", "wes"))),
        team=draw(st.sampled_from(("east", "west"))),
        industry=draw(st.sampled_from(("retail", "energy", None))),
        amount=Money.of(draw(st.integers(0, 10_000)), "CNY"),
        stage=stage,
        expected_close=draw(st.none() | st.dates(date(2025, 10, 1), date(2026, 12, 31))),
        created=draw(st.none() | st.dates(date(2025, 10, 1), date(2026, 12, 31))),
        history=tuple(history),
    )


@st.composite
def pipelines(draw: st.DrawFn) -> list[Opportunity]:
    n = draw(st.integers(0, 25))
    return [draw(an_opportunity(i)) for i in range(n)]


days = st.dates(date(2025, 11, 1), date(2026, 12, 31))
periods = st.sampled_from(
    [Period.month(2026, m) for m in range(1, 13)]
    + [Period.quarter(2026, q) for q in range(1, 5)]
    + [Period.year(2026), Period.year(2026, fiscal_year_start=4)]
)
pairs = st.tuples(st.none() | days, st.none() | days).map(
    lambda p: tuple(sorted(p)) if None not in p else p
)
windows = st.none() | periods | pairs


# -- the rules, written independently ------------------------------------------------------------


def bounds(window: Any) -> tuple[date | None, date | None] | None:
    if window is None:
        return None
    if isinstance(window, Period):
        return window.start, window.end
    return window


def inside(day: date | None, window: Any) -> bool:
    span = bounds(window)
    if span is None:
        return True
    if day is None:
        return False
    start, end = span
    return (start is None or start <= day) and (end is None or day <= end)


def creation_day(o: Opportunity) -> date | None:
    if o.created is not None:
        return o.created
    return o.history[0].at.astimezone(UTC).date() if o.history else None


def close_day(o: Opportunity) -> date | None:
    if o.stage not in CLOSED:
        return None
    into = [c for c in o.history if c.to_stage in CLOSED]
    return into[-1].at.astimezone(UTC).date() if into else o.expected_close


def prefiltered(items: list[Opportunity], created: Any, closed: Any) -> list[Opportunity]:
    return [o for o in items if inside(creation_day(o), created) and inside(close_day(o), closed)]


def records(result: Any) -> Any:
    return result.to_records()


CALCULATORS = {
    "distribution": lambda items, **w: distribution(items, currency="CNY", **w),
    "rep_industry_matrix": lambda items, **w: rep_industry_matrix(items, currency="CNY", **w),
    "stage_velocity": lambda items, **w: stage_velocity(items, by="owner", **w),
    "learned_probabilities": lambda items, **w: learned_probabilities(items, **w),
    "lost_reasons": lambda items, **w: lost_reasons(items, currency="CNY", **w),
}


@pytest.mark.parametrize("name", sorted(CALCULATORS))
@settings(max_examples=60, deadline=None)
@given(items=pipelines(), created=windows, closed=windows)
def test_a_window_equals_the_calculator_over_the_prefiltered_input(name, items, created, closed):
    calculate = CALCULATORS[name]
    windowed = calculate(items, created=created, closed=closed)
    plain = calculate(prefiltered(items, created, closed))
    assert records(windowed) == records(plain)


@settings(max_examples=60, deadline=None)
@given(items=pipelines(), created=windows, closed=windows)
def test_windows_partition_and_nest(items, created, closed):
    names = stage_names(PLAN)[1]
    kept = list(within(items, names, created=created, closed=closed))
    assert kept == prefiltered(items, created, closed)
    # A window never adds anything; no window keeps everything (the input itself).
    assert within(items, names) is items
    assert {id(o) for o in kept} <= {id(o) for o in items}
    # Open deals are in no closed window.
    if closed is not None:
        assert all(o.stage in CLOSED for o in kept)


def test_the_days_of_an_opportunity():
    names = stage_names(PLAN)[1]
    shanghai = timezone(timedelta(hours=8))
    late = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)  # April 1st in Shanghai
    won = Opportunity(
        id="w",
        owner="ann",
        amount=Money.of(1, "CNY"),
        stage="won",
        history=(
            StageChange(datetime(2026, 1, 5, tzinfo=UTC), None, "quotation"),
            StageChange(late, "quotation", "won"),
        ),
    )
    assert created_on(won) == date(2026, 1, 5)
    assert closed_on(won, names) == date(2026, 3, 31)
    assert closed_on(won, names, shanghai) == date(2026, 4, 1)
    assert created_on(won.evolve(created=date(2025, 12, 1))) == date(2025, 12, 1)
    bare = Opportunity(
        id="b",
        owner="ann",
        amount=Money.of(1, "CNY"),
        stage="lost",
        expected_close=date(2026, 2, 2),
    )
    assert created_on(bare) is None
    assert closed_on(bare, names) == date(2026, 2, 2)
    assert closed_on(bare.evolve(expected_close=None), names) is None
    still_open = won.evolve(id="o")
    assert closed_on(attrs_open(still_open), names) is None
    with pytest.raises(StageError):
        closed_on(type("Row", (), {"stage": "nowhere", "history": ()})(), names)


def attrs_open(o: Opportunity) -> Opportunity:
    return Opportunity(id=o.id, owner=o.owner, amount=o.amount, stage="quotation")


def test_window_forms():
    q1 = Period.quarter(2026, 1)
    assert to_window(q1, "created") == Window(date(2026, 1, 1), date(2026, 3, 31))
    assert to_window((date(2026, 1, 1), None)) == Window(date(2026, 1, 1), None)
    assert to_window(None) is None
    assert Window(None, date(2026, 1, 1)).contains(date(1990, 1, 1))
    assert not Window().contains(None)
    assert Window(date(2026, 1, 1), date(2026, 1, 1)).label == "2026-01-01..2026-01-01"


@pytest.mark.parametrize(
    ("window", "error", "field", "match"),
    [
        ((date(2026, 2, 1), date(2026, 1, 1)), ValidationError, "closed", "on or after its start"),
        (
            (datetime(2026, 1, 1), date(2026, 2, 1)),
            InvalidTypeError,
            "closed.start",
            "naive datetime",
        ),
        (
            (date(2026, 1, 1), datetime(2026, 2, 1, tzinfo=UTC)),
            InvalidTypeError,
            "closed.end",
            "whole days",
        ),
        ("2026-Q1", InvalidTypeError, "closed", "a Period"),
        ((date(2026, 1, 1),), InvalidTypeError, "closed", "a Period"),
        (date(2026, 1, 1), InvalidTypeError, "closed", "a Period"),
        (("2026-01-01", None), InvalidTypeError, "closed.start", "a date"),
    ],
)
def test_bad_windows_are_refused_naming_the_window(window, error, field, match):
    for name, calculate in CALCULATORS.items():
        with pytest.raises(error, match=match) as info:
            calculate([], closed=window)
        assert info.value.field == field, name
    with pytest.raises(error, match=match):
        calculate([], created=window)
    with pytest.raises(ValidationError, match="on or after the start"):
        Window(date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(InvalidTypeError, match="whole days"):
        Window(datetime(2026, 2, 1, tzinfo=UTC))


def test_a_bad_tz_is_refused():
    with pytest.raises(InvalidTypeError, match="tzinfo") as info:
        distribution([], currency="CNY", created=Period.year(2026), tz="Asia/Shanghai")
    assert info.value.field == "tz"
