"""Analytics on the desk over a window, on every backend: distribution, rep strengths, stage
velocity, learned probabilities and lost reasons read what is stored, equal the pure calculators
over ``desk.opportunities()``, stay in the actor's team, and refuse bad windows; targets set as
managers set them (a stretch, a quarter pro-rated to a month) at the desk."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from salesflow import (
    Money,
    Opportunity,
    Period,
    distribution,
    learned_probabilities,
    lost_reasons,
    recommend_owners,
    rep_industry_matrix,
    stage_velocity,
)
from salesflow.analytics.performance import STRETCH, TEAM, Target
from salesflow.errors import InvalidTypeError, ValidationError
from salesflow.ports import WINDOW_PUSHDOWN
from salesflow.testing.cast import ANN, DAN, MIA, ROOT, WIL
from salesflow.testing.storage import ManualClock

OpenDesk = Callable[..., Any]

Q1 = Period.quarter(2026, 1)
Q2 = Period.quarter(2026, 2)
SHANGHAI = timezone(timedelta(hours=8))


def opp(id: str, owner: str, team: str, industry: str, created: date | None) -> Opportunity:
    return Opportunity(
        id=id,
        owner=owner,
        team=team,
        industry=industry,
        amount=Money.of("1000", "CNY"),
        stage="needs_analysis",
        expected_close=date(2026, 6, 30),
        created=created,
    )


def at(clock: ManualClock, when: datetime) -> None:
    clock.now = when


def a_half_year(open_desk: OpenDesk, **options: Any) -> tuple[Any, ManualClock]:
    """Six deals over the first half of 2026 (UTC moves):

    ====  =====  =====  ========  ==========  =================================
    id    owner  team   industry  created     moves
    ====  =====  =====  ========  ==========  =================================
    op-1  ann    east   retail    2025-12-01  quotation Jan 5, won Jan 20
    op-2  bob    east   energy    2026-01-10  lost (price) Feb 15
    op-3  wes    west   retail    2026-02-01  quotation Feb 2, won Apr 10
    op-4  ann    east   energy    (none)      intent_confirmed Mar 1 (open)
    op-5  wes    west   energy    2026-03-05  lost (competitor) Apr 20
    op-6  bob    east   retail    2026-03-06  won Mar 31 20:00 UTC (Apr 1 in Shanghai)
    ====  =====  =====  ========  ==========  =================================

    op-4 is stored as an import stores it, with no created date.
    """
    clock = ManualClock(datetime(2026, 1, 4, 9, 0, tzinfo=UTC))
    desk = open_desk(clock=clock, **options)
    for row in [
        opp("op-1", "ann", "east", "retail", date(2025, 12, 1)),
        opp("op-2", "bob", "east", "energy", date(2026, 1, 10)),
        opp("op-3", "wes", "west", "retail", date(2026, 2, 1)),
        opp("op-4", "ann", "east", "energy", None),
        opp("op-5", "wes", "west", "energy", date(2026, 3, 5)),
        opp("op-6", "bob", "east", "retail", date(2026, 3, 6)),
    ]:
        if row.created is None:
            # Stored as an import stores it (add_opportunity dates a deal the day it is added).
            with desk.storage.transaction() as uow:
                uow.opportunities.add(row)
        else:
            # Each deal is added on the day it was created: never created ahead of the clock.
            at(clock, datetime.combine(row.created, time(9), UTC))
            desk.add_opportunity(ROOT, row)
    moves = [
        (datetime(2026, 1, 5, 9, tzinfo=UTC), "op-1", "quotation", None),
        (datetime(2026, 1, 20, 9, tzinfo=UTC), "op-1", "won", None),
        (datetime(2026, 2, 2, 9, tzinfo=UTC), "op-3", "quotation", None),
        (datetime(2026, 2, 15, 9, tzinfo=UTC), "op-2", "lost", "price"),
        (datetime(2026, 3, 1, 9, tzinfo=UTC), "op-4", "intent_confirmed", None),
        (datetime(2026, 3, 31, 20, tzinfo=UTC), "op-6", "won", None),
        (datetime(2026, 4, 10, 9, tzinfo=UTC), "op-3", "won", None),
        (datetime(2026, 4, 20, 9, tzinfo=UTC), "op-5", "lost", "competitor"),
    ]
    for when, id, stage, reason in moves:
        at(clock, when)
        desk.move_opportunity(ROOT, id, stage, reason=reason)
    return desk, clock


def owners(result: Any) -> set[str]:
    return {r["owner"] for r in result.to_records()}


def test_windows_select_what_was_created_or_closed_in_them(open_desk: OpenDesk) -> None:
    desk, _clock = a_half_year(open_desk)
    closed_q1 = desk.distribution(closed=Q1)
    assert {(r["owner"], r["industry"], r["count"]) for r in closed_q1.to_records()} == {
        ("ann", "retail", 1),
        ("bob", "energy", 1),
        ("bob", "retail", 1),
    }
    # op-4 has no created date (imported so): its first move (March 1) dates it.
    created_q1 = desk.distribution(by=(), created=Q1)
    assert sum(r["count"] for r in created_q1.to_records()) == 5
    both = desk.distribution(by="owner", created=Q1, closed=Q2)
    assert owners(both) == {"wes"}
    assert sum(r["count"] for r in both.to_records()) == 2
    pair = desk.distribution(closed=(date(2026, 4, 1), None))
    assert owners(pair) == {"wes"}
    lost_in_q2 = desk.lost_reasons(by=(), closed=Q2).to_records()
    assert [(r["reason"], r["count"]) for r in lost_in_q2 if r["count"]] == [("competitor", 1)]
    matrix = desk.rep_strengths(closed=Q1)
    assert {(c.owner, c.industry, c.won, c.lost, c.open) for c in matrix} >= {
        ("ann", "retail", 1, 0, 0),
        ("bob", "energy", 0, 1, 0),
    }
    assert all(c.open == 0 for c in matrix)
    learned = desk.learned_probabilities(closed=Q2)
    assert learned.closed == 2


def test_a_deal_added_without_a_created_date_is_created_the_day_it_is_added(
    open_desk: OpenDesk,
) -> None:
    clock = ManualClock(datetime(2026, 2, 10, 9, 0, tzinfo=UTC))
    desk = open_desk(clock=clock)
    stored = desk.add_opportunity(ROOT, opp("op-9", "ann", "east", "retail", None)).value
    assert stored.created == date(2026, 2, 10)
    assert desk.opportunity("op-9").created == date(2026, 2, 10)
    # Never moved, it is still counted among the deals created in its quarter (and no other).
    assert sum(r["count"] for r in desk.distribution(by=(), created=Q1).to_records()) == 1
    assert sum(r["count"] for r in desk.distribution(by=(), created=Q2).to_records()) == 0
    # A created date the caller gives is kept.
    given = desk.add_opportunity(ROOT, opp("op-8", "ann", "east", "retail", date(2025, 12, 1)))
    assert given.value.created == date(2025, 12, 1)


def test_a_desk_in_shanghai_dates_the_moves_in_shanghai(open_desk: OpenDesk) -> None:
    desk, clock = a_half_year(open_desk)
    assert "bob" in owners(desk.distribution(closed=Period.month(2026, 3)))
    there = open_desk(clock=clock, timezone=SHANGHAI)
    in_march = there.distribution(closed=Period.month(2026, 3))
    assert "bob" not in owners(in_march)  # op-6 was won on April 1st in Shanghai
    in_april = there.distribution(by=(), closed=Period.month(2026, 4))
    assert sum(r["count"] for r in in_april.to_records()) == 3  # op-3, op-5 and op-6
    assert owners(there.distribution(closed=Period.month(2026, 4))) == {"bob", "wes"}


WINDOWS: list[tuple[Any, Any]] = [
    (None, None),
    (Q1, None),
    (None, Q1),
    (None, Q2),
    (Q1, Q2),
    ((date(2026, 1, 15), date(2026, 3, 31)), (None, date(2026, 4, 15))),
]


@pytest.mark.parametrize(
    "actor", [None, ANN, MIA, WIL, DAN], ids=["system", "ann", "mia", "wil", "dan"]
)
def test_desk_reads_equal_the_pure_calculators_over_the_stored_opportunities(
    open_desk: OpenDesk, actor: Any
) -> None:
    desk, _clock = a_half_year(open_desk)
    plan = desk.plan
    stored = desk.opportunities(actor=actor)
    for created, closed in WINDOWS:
        w = {"created": created, "closed": closed}
        assert (
            desk.distribution(actor=actor, **w).to_records()
            == distribution(stored, plan=plan, currency="CNY", **w).to_records()
        )
        matrix = rep_industry_matrix(stored, plan, currency="CNY", **w)
        assert desk.rep_strengths(actor=actor, **w).to_records() == matrix.to_records()
        if "retail" in matrix.industries:
            assert (
                desk.recommend_owners("retail", actor=actor, **w).to_records()
                == recommend_owners(matrix, "retail").to_records()
            )
        assert (
            desk.stage_velocity(by="owner", actor=actor, **w).to_records()
            == stage_velocity(stored, plan, by="owner", **w).to_records()
        )
        assert (
            desk.learned_probabilities(actor=actor, **w).to_records()
            == learned_probabilities(stored, plan, **w).to_records()
        )
        assert (
            desk.lost_reasons(actor=actor, **w).to_records()
            == lost_reasons(stored, plan, **w).to_records()
        )


def test_a_rep_sees_their_own_and_a_manager_their_teams(open_desk: OpenDesk) -> None:
    desk, _clock = a_half_year(open_desk)
    assert owners(desk.distribution(actor=ANN)) == {"ann"}
    assert owners(desk.distribution(actor=MIA)) == {"ann", "bob"}
    assert owners(desk.distribution(actor=WIL)) == {"wes"}
    assert owners(desk.distribution(actor=DAN)) == {"ann", "bob", "wes"}
    assert set(desk.rep_strengths(actor=MIA).owners) == {"ann", "bob"}
    assert {r["owner"] for r in desk.stage_velocity(by="owner", actor=WIL).to_records()} == {"wes"}
    assert all(r["count"] == 0 for r in desk.lost_reasons(actor=WIL, closed=Q1).to_records())
    assert desk.learned_probabilities(actor=WIL, closed=Q1).closed == 0
    assert desk.learned_probabilities(actor=ANN, closed=Q1).closed == 1
    assert desk.learned_probabilities(actor=MIA, closed=Q1).closed == 3
    # A filter never widens the scope: mia asking for the west team gets nothing.
    assert desk.distribution(actor=MIA, team="west").to_records() == []


@pytest.mark.parametrize(
    ("options", "error", "field"),
    [
        ({"closed": (date(2026, 2, 1), date(2026, 1, 1))}, ValidationError, "closed"),
        ({"created": (datetime(2026, 1, 1), None)}, InvalidTypeError, "created.start"),
        ({"created": (None, datetime(2026, 1, 1, tzinfo=UTC))}, InvalidTypeError, "created.end"),
        ({"closed": "2026-Q1"}, InvalidTypeError, "closed"),
        ({"created": date(2026, 1, 1)}, InvalidTypeError, "created"),
        ({"actor": "ann"}, InvalidTypeError, "actor"),
    ],
)
def test_bad_windows_are_refused_and_change_nothing(
    open_desk: OpenDesk, options: dict[str, Any], error: type[Exception], field: str
) -> None:
    desk, _clock = a_half_year(open_desk)
    before = (desk.opportunities(), desk.events())
    for read in (
        desk.distribution,
        desk.rep_strengths,
        desk.stage_velocity,
        desk.learned_probabilities,
        desk.lost_reasons,
        lambda **kw: desk.recommend_owners("retail", **kw),
    ):
        with pytest.raises(error) as info:
            read(**options)
        assert info.value.field == field  # type: ignore[attr-defined]
    assert (desk.opportunities(), desk.events()) == before


def test_the_desk_takes_targets_as_managers_set_them(open_desk: OpenDesk) -> None:
    desk, _clock = a_half_year(open_desk)
    cny = lambda amount: Money.of(amount, "CNY")  # noqa: E731
    targets = [
        Target(owner="east", period="2026-Q2", amount=cny("100000")),
        Target(owner="ann", period="2026-Q2", amount=cny("30000")),
        Target(owner="bob", period="2026-Q2", amount=cny("50000")),
        Target(owner="ann", period="2026-05", amount=cny("12000")),
    ]
    teams = {"east": ["ann", "bob"]}
    quarter = desk.attainment(targets, period="2026-Q2", teams=teams, as_of=date(2026, 4, 1))
    east = quarter.row("east", TEAM)
    assert (east.target, east.members_target, east.difference, east.basis) == (
        cny("100000"),
        cny("80000"),
        cny("20000"),
        STRETCH,
    )
    may = desk.attainment(targets, period="2026-05", teams=teams, as_of=date(2026, 4, 1))
    assert may.row("ann").target == cny("12000")  # May's own target
    assert may.row("bob").target == cny("16666.67")  # a third of the quarter
    assert may.row("east", TEAM).target == cny("33333.33")
    months = [
        desk.attainment(targets, period=f"2026-0{m}", teams=teams, as_of=date(2026, 4, 1))
        .row("east", TEAM)
        .target
        for m in (4, 5, 6)
    ]
    assert Money.sum(months, "CNY") == cny("100000")


GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide" / "analytics.md"


def _blocks(heading: str) -> list[str]:
    section = GUIDE.read_text().split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_guide_examples_on_targets_and_windows_run() -> None:
    blocks = _blocks("## Targets and attainment (R15)")
    targets: dict[str, Any] = {}
    exec(blocks[-1], targets)
    assert [str(m.amount) for m in targets["quarter"].monthly()] == [
        "33333.34 CNY",
        "33333.33 CNY",
        "33333.33 CNY",
    ]
    east = targets["east"]
    assert (str(east.target), str(east.members_target), str(east.difference), east.basis) == (
        "60000.00 CNY",
        "50000.00 CNY",
        "10000.00 CNY",
        STRETCH,
    )
    (desk_block,) = _blocks("## On the desk, over a window")
    scope: dict[str, Any] = {}
    exec(desk_block, scope)
    desk = scope["desk"]
    assert [r["count"] for r in desk.distribution(closed=scope["this_year"]).to_records()] == [1]
    assert desk.distribution(closed=(date(1990, 1, 1), date(1990, 12, 31))).to_records() == []


def test_the_sql_backends_select_the_window_in_the_database(open_desk: OpenDesk) -> None:
    from salesflow.adapters.sql.storage import SqlStorage

    desk, _clock = a_half_year(open_desk)
    capable = WINDOW_PUSHDOWN in desk.storage.capabilities
    assert capable == isinstance(desk.storage, SqlStorage)
    if not capable:
        return
    with desk.storage.transaction() as uow:

        def ids(**options: Any) -> list[str]:
            found = uow.opportunities.query_window(closed_stages=["won", "lost"], **options)
            return [o.id for o in found]

        assert ids(closed=(date(2026, 4, 5), date(2026, 4, 30))) == ["op-3", "op-5"]
        assert ids(closed=(date(2026, 4, 5), None), owner="bob") == []
        assert ids(created=(date(2026, 1, 1), date(2026, 1, 31))) == ["op-2"]
        assert ids(created=(date(2026, 3, 1), date(2026, 3, 1))) == ["op-4"]  # its first move
        # The database keeps a little more than the window (a move's day depends on the zone);
        # the calculator keeps the exact days.
        assert ids(created=(date(2026, 3, 2), date(2026, 3, 2))) == ["op-4"]
    assert desk.distribution(created=(date(2026, 3, 2), date(2026, 3, 2))).to_records() == []
