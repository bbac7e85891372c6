"""stage_velocity() and learned_probabilities(): what the stage history says."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.analytics.velocity import (
    LearnedProbabilities,
    StageVelocity,
    learned_probabilities,
    stage_velocity,
)
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.errors import InvalidTypeError, StageError, ValidationError
from salesflow.samples import generate_pipeline

START = datetime(2026, 1, 1, tzinfo=UTC)


def journey(i: int, *steps: tuple[float, str], owner: str = "ann") -> Opportunity:
    """An opportunity that moved to each stage ``days`` after START."""
    history = []
    previous = None
    for days, stage in steps:
        history.append(StageChange(START + timedelta(days=days), previous, stage))
        previous = stage
    return Opportunity(
        id=f"op-{i}",
        owner=owner,
        amount=Money.of(100, "CNY"),
        stage=steps[-1][1],
        history=tuple(history),
    )


PIPELINE = [
    journey(1, (0, "initial_contact"), (10, "needs_analysis"), (40, "quotation"), (50, "won")),
    journey(2, (0, "initial_contact"), (20, "needs_analysis"), (25, "lost")),
    journey(3, (0, "initial_contact"), (3, "lost"), owner="bob"),
    journey(4, (0, "initial_contact"), (30, "needs_analysis"), (31, "initial_contact")),
    journey(5, (0, "initial_contact"), owner="bob"),
]


def test_visits_their_outcomes_and_the_days_spent():
    v = stage_velocity(PIPELINE)
    assert isinstance(v, StageVelocity)
    initial = v.stage("initial_contact")
    # Five first visits and one return (op-4 moved back).
    assert (
        initial.entered,
        initial.advanced,
        initial.lost,
        initial.moved_back,
        initial.current,
    ) == (
        6,
        3,
        1,
        0,
        2,
    )
    assert initial.ended == 4
    # Ended visits lasted 10, 20, 3 and 30 days.
    assert initial.mean_days == Decimal("15.75")
    assert initial.median_days == Decimal("15.00")
    assert initial.conversion == 75
    needs = v.stage("needs_analysis")
    assert (needs.entered, needs.advanced, needs.lost, needs.moved_back) == (3, 1, 1, 1)
    assert (needs.mean_days, needs.median_days) == (Decimal("12.00"), Decimal("5.00"))
    assert v.stage("won").entered == 1
    assert v.stage("won").mean_days is None
    assert v.stage("intent_confirmed").conversion is None


def test_transitions_and_stage_to_stage_conversion():
    v = stage_velocity(PIPELINE)
    moves = v.transitions()
    assert moves[(None, "initial_contact")] == 5
    assert moves[("needs_analysis", "quotation")] == 1  # op-1 skipped intent_confirmed
    assert moves[("needs_analysis", "initial_contact")] == 1
    assert v.conversion("initial_contact", "needs_analysis") == 75
    assert v.conversion("initial_contact", "lost") == 25
    assert v.conversion("needs_analysis", "lost") == Decimal("33.3")
    assert v.conversion("intent_confirmed", "quotation") is None
    with pytest.raises(StageError):
        v.conversion("initial_contact", "demo")


def test_per_owner_and_half_days():
    items = [journey(1, (0, "initial_contact"), (0.5, "needs_analysis"), owner="cai")]
    v = stage_velocity(PIPELINE + items, by="owner")
    assert v.groups == ("ann", "bob", "cai")
    assert v.stage("initial_contact", "cai").mean_days == Decimal("0.50")
    assert v.stage("initial_contact", "bob").entered == 2
    assert v.transitions("bob") == {("initial_contact", "lost"): 1, (None, "initial_contact"): 2}
    with pytest.raises(ValidationError, match="group"):
        v.stages("zed")


def test_as_of_cuts_the_history():
    v = stage_velocity(PIPELINE, as_of=date(2026, 1, 15))  # the end of Jan 15th
    initial = v.stage("initial_contact")
    assert (initial.advanced, initial.lost, initial.current) == (1, 1, 3)
    assert v.stage("won").entered == 0
    moment = datetime(2026, 1, 11, 8, tzinfo=timezone(timedelta(hours=8)))  # Jan 11th 00:00 UTC
    assert stage_velocity(PIPELINE, as_of=moment).stage("needs_analysis").entered == 1
    with pytest.raises(ValidationError, match="as_of"):
        stage_velocity(PIPELINE, as_of=datetime(2026, 1, 1))
    with pytest.raises(InvalidTypeError, match="as_of"):
        stage_velocity(PIPELINE, as_of="2026-01-01")  # type: ignore[arg-type]


def test_opportunities_without_history_are_counted_apart():
    bare = Opportunity(id="b", owner="ann", amount=Money.of(1, "CNY"), stage="won")
    v = stage_velocity([*PIPELINE, bare])
    assert v.without_history == 1
    assert "1 without history skipped" in str(v)
    assert learned_probabilities([bare]).without_history == 1


def test_malformed_histories_are_refused():
    def item(*changes: object) -> SimpleNamespace:
        return SimpleNamespace(id="x", history=changes)

    at = START
    with pytest.raises(StageError, match="demo"):
        stage_velocity([item(SimpleNamespace(at=at, from_stage=None, to_stage="demo"))])
    with pytest.raises(ValidationError, match=r"history\[0\].at"):
        stage_velocity(
            [item(SimpleNamespace(at=datetime(2026, 1, 1), from_stage=None, to_stage="won"))]
        )
    with pytest.raises(ValidationError, match="time order"):
        stage_velocity(
            [
                item(
                    SimpleNamespace(at=at, from_stage=None, to_stage="initial_contact"),
                    SimpleNamespace(
                        at=at - timedelta(1), from_stage="initial_contact", to_stage="won"
                    ),
                )
            ]
        )
    with pytest.raises(ValidationError, match="from_stage"):
        stage_velocity(
            [
                item(
                    SimpleNamespace(at=at, from_stage=None, to_stage="initial_contact"),
                    SimpleNamespace(at=at, from_stage="quotation", to_stage="won"),
                )
            ]
        )
    with pytest.raises(InvalidTypeError, match="history"):
        stage_velocity([SimpleNamespace(id="x", history="initial_contact")])
    with pytest.raises(InvalidTypeError, match="history"):
        stage_velocity([SimpleNamespace(id="x")])


def test_learned_probabilities_from_closed_deals():
    closed = [
        journey(1, (0, "initial_contact"), (1, "needs_analysis"), (2, "quotation"), (3, "won")),
        journey(2, (0, "initial_contact"), (1, "won")),  # a won deal passed every stage
        journey(3, (0, "initial_contact"), (1, "lost")),
        journey(
            4, (0, "initial_contact"), (1, "needs_analysis"), (2, "intent_confirmed"), (3, "lost")
        ),
        journey(5, (0, "initial_contact"), (2, "quotation"), (3, "needs_analysis"), (4, "lost")),
        journey(6, (0, "quotation")),  # open: its outcome is unknown
    ]
    learned = learned_probabilities(closed)
    assert isinstance(learned, LearnedProbabilities)
    assert learned.closed == 5
    assert learned.probabilities() == {
        "initial_contact": Decimal("40.0"),  # 2 won of 5
        "needs_analysis": Decimal("50.0"),  # 2 of 4 (op-3 died before)
        "intent_confirmed": Decimal("50.0"),  # 2 of 4 (op-4 died there, op-5 got beyond)
        "quotation": Decimal("66.7"),  # 2 of 3 (op-5 died there)
    }
    row = learned["needs_analysis"]
    assert (row.reached, row.won, row.configured) == (4, 2, 30)
    assert row.difference == Decimal("20.0")
    with pytest.raises(StageError):
        learned["won"]
    assert "configured vs learned from 5 closed deals" in str(learned)
    assert learned.to_records()[0]["learned"] == Decimal("40.0")
    cut = learned_probabilities(closed, as_of=START + timedelta(days=2))
    assert cut.closed == 2  # op-2 and op-3 had closed by then


def test_nothing_closed_means_nothing_learned():
    learned = learned_probabilities([journey(1, (0, "initial_contact"))])
    assert learned.closed == 0
    assert set(learned.probabilities().values()) == {None}
    assert learned["quotation"].difference is None


def test_it_prints_and_converts():
    v = stage_velocity(PIPELINE, by="owner")
    records = v.to_records()
    assert records[0] == {
        "owner": "ann",
        "stage": "initial_contact",
        "entered": 4,
        "advanced": 3,
        "moved_back": 0,
        "lost": 0,
        "current": 1,
        "mean_days": Decimal("20.00"),
        "median_days": Decimal("20.00"),
        "conversion": Decimal("100.0"),
    }
    assert "(all)" not in {r["owner"] for r in records}
    assert {r["owner"] for r in v.total_records()} == {"(all)"}
    assert "<table" in v._repr_html_()
    assert len(v.to_frame()) == len(records)
    assert str(v).startswith("Stage velocity and conversion")


@given(st.integers(0, 10_000))
def test_every_visit_is_accounted_for_on_generated_pipelines(seed):
    items = generate_pipeline(30, seed=seed)
    v = stage_velocity(items)
    total_moves = sum(len(o.history) for o in items)
    assert sum(s.entered for s in v.stages().values()) == total_moves
    assert sum(v.transitions().values()) == total_moves
    for visits in v.stages().values():
        assert visits.entered == visits.ended + visits.current
        if visits.mean_days is not None:
            assert visits.mean_days >= 0
    assert sum(s.current for s in v.stages().values()) == len(items)
    learned = learned_probabilities(items)
    closed = sum(1 for o in items if o.stage in ("won", "lost"))
    assert learned.closed == closed
    reached = [row.reached for row in learned.rows]
    assert reached == sorted(reached, reverse=True)
