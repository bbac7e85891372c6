"""The agenda and the daily alerts on the desk, on every backend: hand-computed days, team scope,
alerts once a day, and the attacks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import salesflow
from salesflow import hookimpl
from salesflow.analytics.agenda import AgendaKind, AgendaSettings
from salesflow.domain.approvals import ApprovalRequest, Step, Workflow
from salesflow.domain.calls import CallRecord, Direction, Disposition
from salesflow.domain.events import Event
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.tasks import FollowUpTask
from salesflow.errors import InvalidTypeError, NotAuthorizedError, ValidationError
from salesflow.testing.cast import ANN, BOB, DAN, MIA, ROOT, WES, WIL
from salesflow.testing.storage import ManualClock, add_samples, sample_aggregates

D = date(2026, 12, 1)
OpenDesk = Callable[..., Any]


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def opp(id: str, owner: str, team: str, stage: str, close: date, moved: date) -> Opportunity:
    return Opportunity(
        id=id,
        owner=owner,
        team=team,
        stage=stage,
        amount=Money.of("1000.00", "CNY"),
        expected_close=close,
        history=(StageChange(at(moved), None, stage),),
    )


def task(id: str, owner: str, due: date, **fields: Any) -> FollowUpTask:
    return FollowUpTask.create(
        id=id, owner=owner, contact_id="c1", due=due, at=at(D - timedelta(days=40)), **fields
    )


def call(id: str, owner: str, day: date, opportunity: str) -> CallRecord:
    return CallRecord(
        id=f"pbx:{id}",
        source="pbx",
        external_id=id,
        owner=owner,
        direction=Direction.OUTBOUND,
        disposition=Disposition.ANSWERED,
        started_at=at(day),
        talk_seconds=60,
        from_number="+8613800138000",
        to_number="+862188886666",
        opportunity_id=opportunity,
    )


class Recorder:
    """A notification plugin that keeps every event it is handed."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def salesflow_handle_event(self, event: Event) -> None:
        self.events.append(event)


def seeded(open_desk: OpenDesk, **options: Any) -> Any:
    """The scenario of the hand-computed tests (see each test for its day)."""
    desk = open_desk(clock=ManualClock(at(D, 12)), **options)
    samples = sample_aggregates()
    quote = attrs.evolve(samples["quotes"][0], team="east")
    workflow = Workflow("quote_approval", (Step("manager_review", ("sales_manager",), sla_days=2),))
    request, _ = ApprovalRequest(
        id="quote:Q-1", subject_id="Q-1", subject_kind="quote", workflow=workflow
    ).submit(ANN, at=at(D - timedelta(days=3)), content_hash=quote.content_hash(), owner="ann")
    with desk.storage.transaction() as uow:
        uow.opportunities.add_many(
            [
                opp(
                    "op-close",
                    "ann",
                    "east",
                    "quotation",
                    D + timedelta(days=14),
                    D - timedelta(days=5),
                ),
                opp(
                    "op-slip",
                    "bob",
                    "east",
                    "needs_analysis",
                    D - timedelta(days=1),
                    D - timedelta(days=3),
                ),
                opp(
                    "op-stall",
                    "ann",
                    "east",
                    "intent_confirmed",
                    D + timedelta(days=60),
                    D - timedelta(days=21),
                ),
                opp(
                    "op-call",
                    "ann",
                    "east",
                    "intent_confirmed",
                    D + timedelta(days=60),
                    D - timedelta(days=30),
                ),
                opp(
                    "op-west",
                    "wes",
                    "west",
                    "quotation",
                    D + timedelta(days=3),
                    D - timedelta(days=2),
                ),
                opp("op-won", "ann", "east", "won", D - timedelta(days=10), D - timedelta(days=40)),
            ]
        )
        uow.tasks.add_many(
            [
                task("t-due", "ann", D),
                task("t-late", "bob", D - timedelta(days=2)),
                task("t-west", "wes", D - timedelta(days=1)),
            ]
        )
        uow.calls.add_many([call("k1", "ann", D - timedelta(days=20), "op-call")])
        uow.quotes.add(quote)
        uow.approvals.add(request)
        add_samples(uow, {"contracts": samples["contracts"], "billings": samples["billings"]})
    return desk


def keys(agenda: Any) -> set[tuple[str, str]]:
    return {(str(item.kind), item.record_id) for item in agenda}


EAST_ON_D = {
    ("deal_closing", "op-close"),
    ("deal_slipped", "op-slip"),
    ("deal_stalled", "op-stall"),
    ("task_due", "t-due"),
    ("task_overdue", "t-late"),
    ("invoice_overdue", "INV-1"),
    ("milestone_due", "advance"),
}


@pytest.mark.parametrize("open_desk", ["memory", "sqlite", "postgres", "mysql"], indirect=True)
def test_each_reason_appears_on_its_day_and_not_a_day_earlier(open_desk: OpenDesk) -> None:
    desk = seeded(open_desk)
    today = desk.agenda(MIA, on=D)
    assert keys(today) == EAST_ON_D | {("approval_overdue", "quote:Q-1")}
    yesterday = desk.agenda(MIA, on=D - timedelta(days=1))
    assert keys(yesterday) == {
        ("deal_closing", "op-slip"),  # expected to close "today"
        ("task_overdue", "t-late"),
        ("approval_waiting", "quote:Q-1"),  # waited 2 days: within its SLA of 2
        ("milestone_due", "advance"),
    }
    tomorrow = desk.agenda(MIA, on=D + timedelta(days=1))
    assert ("deal_stalled", "op-call") in keys(tomorrow)  # the call was 21 days before
    assert ("deal_stalled", "op-call") not in keys(today)
    # most urgent first: the longest overdue, then by kind
    assert [item.due for item in today] == sorted(item.due for item in today)
    assert today.items[0].record_id == "t-late"
    approval = today.of_kind("approval_overdue")[0]
    assert "waited 3 days" in approval.reason and "SLA of 2 days" in approval.reason


@pytest.mark.parametrize("open_desk", ["memory", "sqlite", "postgres", "mysql"], indirect=True)
def test_a_manager_sees_the_team_a_rep_their_own_another_manager_none_of_it(
    open_desk: OpenDesk,
) -> None:
    desk = seeded(open_desk)
    ann = keys(desk.agenda(ANN, on=D))
    assert ann == {
        ("deal_closing", "op-close"),
        ("deal_stalled", "op-stall"),
        ("task_due", "t-due"),
        ("invoice_overdue", "INV-1"),
        ("milestone_due", "advance"),
    }
    assert keys(desk.agenda(BOB, on=D)) == {("deal_slipped", "op-slip"), ("task_overdue", "t-late")}
    west = keys(desk.agenda(WIL, on=D))
    assert west == {("deal_closing", "op-west"), ("task_overdue", "t-west")}
    assert keys(desk.agenda(WES, on=D)) == west
    everyone = keys(desk.agenda(DAN, on=D))
    assert everyone == EAST_ON_D | west
    # a manager looks at one rep's day
    assert keys(desk.agenda(MIA, on=D, owner="bob")) == keys(desk.agenda(BOB, on=D))


@pytest.mark.parametrize("open_desk", ["memory", "sqlite", "postgres", "mysql"], indirect=True)
def test_run_daily_emits_the_days_alerts_once(open_desk: OpenDesk) -> None:
    recorder = Recorder()
    desk = seeded(open_desk, plugins=[recorder])
    first = desk.run_daily(ROOT, on=D)
    names = sorted((e.name, e.subject_id) for e in recorder.events)
    assert names == sorted(
        [
            ("approval_overdue", "quote:Q-1"),
            ("deal_slipping", "op-close"),
            ("deal_slipping", "op-slip"),
            ("deal_slipping", "op-west"),
            ("deal_stalled", "op-stall"),
            ("invoice_overdue", "INV-1"),
            ("task_overdue", "t-late"),
            ("task_overdue", "t-west"),
        ]
    )
    assert [a.key for a in first.value] == [e.data["key"] for e in first.events]
    assert first.events[0].data["on"] == D.isoformat()
    again = desk.run_daily(ROOT, on=D)
    assert again.value == () and again.events == ()
    assert len(recorder.events) == 8
    stored = desk.events(name="task_overdue")
    assert sorted(e.subject_id for e in stored) == ["t-late", "t-west"]
    # the next day emits what is still due, once
    desk._clock.advance(days=1)
    later = desk.run_daily(ROOT, on=D + timedelta(days=1))
    assert {("deal_stalled", "op-call")} <= {(e.name, e.subject_id) for e in later.events}
    assert desk.run_daily(ROOT, on=D + timedelta(days=1)).events == ()


@pytest.mark.parametrize("open_desk", ["memory", "sqlite"], indirect=True)
def test_funnel_deviations_reach_the_manager_not_the_rep(open_desk: OpenDesk) -> None:
    desk = open_desk(clock=ManualClock(at(D, 12)))
    with desk.storage.transaction() as uow:
        uow.opportunities.add_many(
            opp(f"op-{i}", "bob", "east", "quotation", D + timedelta(days=90), D) for i in range(10)
        )
    settings = AgendaSettings(
        funnel_target={"initial_contact": 40, "needs_analysis": 30, "quotation": 30}
    )
    manager = desk.agenda(MIA, on=D, settings=settings).of_kind("funnel_deviation")
    assert [(i.owner, i.team) for i in manager] == [("bob", "east")]
    assert "quotation 100.0 % (target 30 %)" in manager[0].reason
    assert desk.agenda(BOB, on=D, settings=settings).of_kind("funnel_deviation") == ()
    assert desk.agenda(WIL, on=D, settings=settings).of_kind("funnel_deviation") == ()
    nine = AgendaSettings(funnel_target={"quotation": 100}, funnel_min_opportunities=11)
    assert desk.agenda(MIA, on=D, settings=nine).of_kind("funnel_deviation") == ()


# -- attacks ------------------------------------------------------------------------------------------


def snapshot(desk: Any) -> list[Any]:
    with desk.storage.transaction() as uow:
        return [list(uow.alerts.query()), list(uow.events.query())]


@pytest.mark.parametrize("open_desk", ["memory", "sqlite", "postgres", "mysql"], indirect=True)
def test_only_an_administrator_runs_the_daily_alerts(open_desk: OpenDesk) -> None:
    desk = seeded(open_desk)
    before = snapshot(desk)
    for actor in (ANN, MIA, DAN):
        with pytest.raises(NotAuthorizedError) as refused:
            desk.run_daily(actor, on=D)
        assert "administrator" in str(refused.value)
    with pytest.raises(InvalidTypeError):
        desk.run_daily("root", on=D)
    assert snapshot(desk) == before


@pytest.mark.parametrize("open_desk", ["memory", "sqlite"], indirect=True)
def test_nobody_reads_an_agenda_beyond_their_scope(open_desk: OpenDesk) -> None:
    desk = seeded(open_desk)
    with pytest.raises(NotAuthorizedError):
        desk.agenda(ANN, on=D, owner="bob")
    with pytest.raises(NotAuthorizedError):
        desk.agenda(WIL, on=D, owner="ann")
    assert keys(desk.agenda(ANN, on=D, owner="ann")) == keys(desk.agenda(ANN, on=D))


@pytest.mark.parametrize("open_desk", ["memory"], indirect=True)
def test_bad_settings_and_days_are_refused_clearly(open_desk: OpenDesk) -> None:
    desk = seeded(open_desk)
    with pytest.raises(InvalidTypeError, match="on"):
        desk.agenda(MIA, on=datetime(2026, 12, 1, tzinfo=UTC))
    with pytest.raises(InvalidTypeError, match="settings"):
        desk.agenda(MIA, on=D, settings={"closing_within_days": 3})
    with pytest.raises(ValidationError, match="funnel_target"):
        desk.agenda(MIA, on=D, settings=AgendaSettings(funnel_target={"won": 100}))
    before = snapshot(desk)
    with pytest.raises(InvalidTypeError):
        desk.run_daily(ROOT, on="2026-12-01")
    # A day not yet come: its alerts would be marked emitted before anyone could act on them.
    with pytest.raises(ValidationError, match="on"):
        desk.run_daily(ROOT, on=desk.today() + timedelta(days=1))
    assert snapshot(desk) == before


def test_alert_kinds_cover_the_issue() -> None:
    from salesflow.analytics.agenda import ALERT_OF
    from salesflow.domain.alerts import ALERT_NAMES

    assert set(ALERT_OF.values()) == set(ALERT_NAMES)
    assert AgendaKind("deal_closing") in ALERT_OF


# -- scoping never leaks ----------------------------------------------------------------------------

PEOPLE = {"ann": "east", "bob": "east", "wes": "west"}
days = st.integers(min_value=-30, max_value=30).map(lambda d: D + timedelta(days=d))


@st.composite
def stored(draw: st.DrawFn) -> tuple[list[Opportunity], list[FollowUpTask]]:
    opps = []
    for i in range(draw(st.integers(0, 10))):
        owner = draw(st.sampled_from(sorted(PEOPLE)))
        stage = draw(st.sampled_from(["initial_contact", "quotation", "won"]))
        opps.append(opp(f"op-{i}", owner, PEOPLE[owner], stage, draw(days), draw(days)))
    tasks = []
    for i in range(draw(st.integers(0, 6))):
        linked = draw(st.none() | st.sampled_from(opps)) if opps else None
        owner = draw(st.sampled_from(sorted(PEOPLE))) if linked is None else linked.owner
        tasks.append(task(f"t-{i}", owner, draw(days), opportunity_id=linked and linked.id))
    return opps, tasks


@settings(max_examples=30)
@given(stored())
def test_scoping_never_leaks(data: tuple[list[Opportunity], list[FollowUpTask]]) -> None:
    opps, tasks = data
    target = AgendaSettings(
        funnel_target={"initial_contact": 50, "quotation": 50}, funnel_min_opportunities=1
    )
    with salesflow.open("memory://", load_entrypoints=False) as desk:
        with desk.storage.transaction() as uow:
            uow.opportunities.add_many(opps)
            uow.tasks.add_many(tasks)
        everything = desk.agenda(ROOT, on=D, settings=target)
        team_of = {o.id: o.team for o in opps}
        for actor in (ANN, BOB, WES, MIA, WIL, DAN):
            mine = desk.agenda(actor, on=D, settings=target)
            org_wide = actor is DAN

            def shown(item: Any, actor: Any = actor, org_wide: bool = org_wide) -> bool:
                if item.kind is AgendaKind.FUNNEL_DEVIATION and item.owner == actor.id:
                    return False
                if org_wide or item.owner == actor.id:
                    return True
                team = item.team
                if item.record_kind == "task":
                    linked = next(t.opportunity_id for t in tasks if t.id == item.record_id)
                    owned = {o.team for o in opps if o.owner == item.owner and o.stage != "won"}
                    team = (
                        team_of.get(linked)
                        if linked in team_of
                        and any(o.id == linked and o.stage != "won" for o in opps)
                        else min(owned, default=None)
                    )
                return "sales_manager" in actor.roles and team in actor.teams

            assert mine.items == tuple(i for i in everything if shown(i))


def test_the_guide_runs(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    from pathlib import Path

    guide = Path(__file__).resolve().parent.parent / "docs" / "guide" / "agenda.md"
    blocks = re.findall(r"^```python\n(.*?)^```$", guide.read_text("utf-8"), re.M | re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"agenda.md (python block {number})", "exec"), namespace)


class Broken:
    """A notification plugin whose server is down."""

    @hookimpl
    def salesflow_handle_event(self, event: Event) -> None:
        raise ConnectionError("smtp server down")


@pytest.mark.parametrize("open_desk", ["memory", "sqlite"], indirect=True)
def test_a_failing_handler_never_undoes_the_days_alerts(open_desk: OpenDesk) -> None:
    desk = seeded(open_desk, plugins=[Broken()])
    first = desk.run_daily(ROOT, on=D)
    assert len(first.value) == 8
    assert len(first.handler_errors) == 8
    assert all(isinstance(e.error, ConnectionError) for e in first.handler_errors)
    assert desk.run_daily(ROOT, on=D).value == ()  # stored: not emitted twice
