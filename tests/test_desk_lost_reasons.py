"""Lost reasons at the desk, on every backend: moves into a lost stage say why, reads report it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from salesflow import Actor, Money, Opportunity, lost_reasons
from salesflow.errors import StageError, ValidationError
from salesflow.testing.storage import ManualClock

OpenDesk = Callable[..., Any]

ADMIN = Actor("root", roles={"admin"})
ANN = Actor("ann", roles={"sales_rep"}, teams={"east"})


def opp(i: int, owner: str = "ann", team: str = "east", amount: str = "100") -> Opportunity:
    return Opportunity(
        id=f"op-{i}",
        owner=owner,
        team=team,
        industry="retail" if i % 2 else "energy",
        amount=Money.of(amount, "CNY"),
        stage="needs_analysis",
        expected_close=date(2026, 12, 1),
    )


def snapshot(desk: Any) -> tuple[object, object]:
    return desk.opportunities(), desk.events()


def test_a_move_to_lost_records_reason_and_note_and_reads_report_them(
    open_desk: OpenDesk,
) -> None:
    clock = ManualClock(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    desk = open_desk(clock=clock)
    for i, (owner, team, amount) in enumerate(
        [
            ("ann", "east", "100.10"),
            ("ann", "east", "250"),
            ("bob", "west", "75.5"),
            ("cai", "west", "40"),
        ]
    ):
        desk.add_opportunity(ADMIN, opp(i, owner, team, amount))
    desk.move_opportunity(ANN, "op-0", "quotation")
    clock.advance(hours=2)
    moved = desk.move_opportunity(ANN, "op-0", "lost", reason="price", note=" 15 % over budget ")
    assert moved.value.history[-1].reason == "price"
    assert moved.events[0].data == {
        "from": "quotation",
        "to": "lost",
        "reason": "price",
        "note": "15 % over budget",
    }
    desk.move_opportunity(ANN, "op-1", "Lost", reason="competitor")  # a display name works too
    desk.move_opportunity(ADMIN, "op-2", "lost", reason="price", version=1)
    desk.move_opportunity(ADMIN, "op-3", "won")

    # A second desk on the same storage reads what was stored: the history says why.
    again = open_desk(clock=clock)
    stored = again.opportunity("op-0")
    assert [(c.from_stage, c.to_stage, c.reason, c.note) for c in stored.history] == [
        ("needs_analysis", "quotation", None, None),
        ("quotation", "lost", "price", "15 % over budget"),
    ]
    assert stored.history[-1].at == datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    assert again.opportunity("op-1").history[-1].reason == "competitor"
    assert [e.data.get("reason") for e in again.events(name="opportunity_moved")] == [
        None,
        "price",
        "competitor",
        "price",
        None,
    ]

    for by in ("owner", "team", "industry", "died_in", ("team", "owner")):
        read = again.lost_reasons(by=by)
        assert (
            read.to_records() == lost_reasons(again.opportunities(), again.plan, by=by).to_records()
        )
    report = again.lost_reasons()
    assert report.total() == 3
    assert report.counts("ann")["price"] == 1 and report.counts("ann")["competitor"] == 1
    assert report.amounts()["price"] == Money.of("175.60", "CNY")
    assert again.lost_reasons(by="died_in").groups == ("needs_analysis", "quotation")
    assert again.lost_reasons(team="west").total() == 1
    assert again.lost_reasons(stage="won").total() == 0
    assert again.lost_reasons(actor=ANN).total() == 2  # only what ann may read


def test_a_move_to_lost_without_a_valid_reason_leaves_storage_as_it_was(
    open_desk: OpenDesk,
) -> None:
    desk = open_desk()
    desk.add_opportunity(ADMIN, opp(1))
    before = snapshot(desk)
    with pytest.raises(ValidationError) as info:
        desk.move_opportunity(ANN, "op-1", "lost")
    assert info.value.field == "reason"
    assert "no_budget" in str(info.value)  # the codes allowed are named
    with pytest.raises(ValidationError, match="one of the plan's lost reasons"):
        desk.move_opportunity(ANN, "op-1", "lost", reason="too_dear")
    with pytest.raises(ValidationError, match="not a lost stage"):
        desk.move_opportunity(ANN, "op-1", "quotation", reason="price")
    with pytest.raises(ValidationError, match="not a lost stage"):
        desk.move_opportunity(ANN, "op-1", "quotation", note="a note")
    with pytest.raises(StageError):
        desk.move_opportunity(ANN, "op-1", "gone", reason="price")
    assert snapshot(desk) == before
    assert desk.opportunity("op-1").version == 1


def test_a_desk_with_its_own_reasons(open_desk: OpenDesk) -> None:
    desk = open_desk()
    plan = desk.plan.with_lost_reasons(["budget_cut", "went_dark"])
    custom = open_desk(plan=plan)
    custom.add_opportunity(ADMIN, opp(1))
    with pytest.raises(ValidationError, match="went_dark"):
        custom.move_opportunity(ADMIN, "op-1", "lost", reason="price")
    custom.move_opportunity(ADMIN, "op-1", "lost", reason="went_dark")
    assert custom.lost_reasons(by=()).reasons == ("budget_cut", "went_dark")
    assert custom.lost_reasons(by=()).counts() == {"budget_cut": 0, "went_dark": 1}
