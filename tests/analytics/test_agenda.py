"""The pure agenda: each rule evaluated on its own in the test gives exactly the agenda's items."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.analytics.agenda import Agenda, AgendaKind, AgendaSettings, agenda
from salesflow.analytics.funnel import funnel
from salesflow.domain.approvals import ApprovalRequest, Step, Workflow
from salesflow.domain.calls import CallRecord, Direction, Disposition
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.stages import StagePlan
from salesflow.domain.tasks import FollowUpTask
from salesflow.errors import InvalidTypeError, ValidationError
from salesflow.testing.cast import ANN

ON = date(2026, 12, 1)
PLAN = StagePlan.default()
STAGES = [s.key for s in PLAN]
OWNERS = {"ann": "east", "bob": "east", "wes": "west"}


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, tzinfo=UTC)


offsets = st.integers(min_value=-40, max_value=40)


@st.composite
def opportunities(draw: st.DrawFn, i: int) -> Opportunity:
    owner = draw(st.sampled_from(sorted(OWNERS)))
    moves = draw(st.lists(offsets, max_size=2))
    stage = draw(st.sampled_from(STAGES))
    close = draw(st.none() | offsets.map(lambda d: ON + timedelta(days=d)))
    created = draw(st.none() | offsets.map(lambda d: ON + timedelta(days=d)))
    history = tuple(
        StageChange(at(ON + timedelta(days=d)), None if j == 0 else stage, stage)
        for j, d in enumerate(sorted(moves))
    )
    return Opportunity(
        id=f"op-{i}",
        owner=owner,
        team=OWNERS[owner],
        stage=stage,
        amount=Money.of("100.00", "CNY"),
        expected_close=close,
        created=created,
        history=history,
    )


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(min_value=0, max_value=12))
    opps = [draw(opportunities(i)) for i in range(n)]
    ids = [o.id for o in opps] or ["op-none"]
    tasks = []
    for i in range(draw(st.integers(min_value=0, max_value=6))):
        task = FollowUpTask.create(
            id=f"t-{i}",
            owner=draw(st.sampled_from(sorted(OWNERS))),
            contact_id="c1",
            due=ON + timedelta(days=draw(offsets)),
            at=at(ON + timedelta(days=draw(offsets))),
            opportunity_id=draw(st.none() | st.sampled_from(ids)),
        )
        if draw(st.booleans()) and task.created_at is not None:
            task = task.complete(task.created_at + timedelta(days=draw(st.integers(0, 10))))
        tasks.append(task)
    calls = [
        CallRecord(
            id=f"pbx:{i}",
            source="pbx",
            external_id=str(i),
            owner="ann",
            direction=Direction.OUTBOUND,
            disposition=Disposition.ANSWERED,
            started_at=at(ON + timedelta(days=draw(offsets))),
            talk_seconds=30,
            from_number="+8613800138000",
            to_number="+862188886666",
            opportunity_id=draw(st.sampled_from(ids)),
        )
        for i in range(draw(st.integers(min_value=0, max_value=6)))
    ]
    requests = []
    for i in range(draw(st.integers(min_value=0, max_value=3))):
        sla = draw(st.none() | st.integers(0, 5))
        workflow = Workflow("w", (Step("review", ("sales_manager",), sla_days=sla),))
        request, _ = ApprovalRequest(
            id=f"apr-{i}", subject_id=f"Q-{i}", subject_kind="quote", workflow=workflow
        ).submit(
            ANN, at=at(ON - timedelta(days=draw(st.integers(0, 8)))), content_hash="h", owner="ann"
        )
        requests.append(request)
    settings = AgendaSettings(
        closing_within_days=draw(st.integers(0, 20)),
        stalled_after_days=draw(st.integers(1, 30)),
        approval_sla_days=draw(st.none() | st.integers(0, 5)),
        funnel_target=draw(st.none() | st.just({"initial_contact": 50, "quotation": 50})),
        funnel_min_opportunities=draw(st.integers(0, 4)),
    )
    return {
        "opps": opps,
        "tasks": tasks,
        "calls": calls,
        "requests": requests,
        "settings": settings,
    }


def expected(s: dict[str, Any]) -> set[tuple[str, str]]:
    """Every rule of the module docs, on its own."""
    settings: AgendaSettings = s["settings"]
    found: set[tuple[str, str]] = set()
    open_opps = [o for o in s["opps"] if PLAN[o.stage].is_open]
    n = settings.stalled_after_days

    def recent(d: date | None) -> bool:
        return d is not None and 0 <= (ON - d).days < n

    for o in open_opps:
        if o.expected_close is not None and o.expected_close < ON:
            found.add(("deal_slipped", o.id))
        if (
            o.expected_close is not None
            and 0 <= (o.expected_close - ON).days <= settings.closing_within_days
        ):
            found.add(("deal_closing", o.id))
        activity = [o.created, *(c.at.date() for c in o.history)]
        activity += [c.started_at.date() for c in s["calls"] if c.opportunity_id == o.id]
        for t in s["tasks"]:
            if t.opportunity_id == o.id:
                activity += [t.created_at.date(), t.closed_at.date() if t.closed_at else None]
        if not any(recent(d) for d in activity):
            found.add(("deal_stalled", o.id))
    for t in s["tasks"]:
        if t.is_open and t.due == ON:
            found.add(("task_due", t.id))
        if t.is_open and t.due < ON:
            found.add(("task_overdue", t.id))
    for r in s["requests"]:
        sla = r.workflow.steps[0].sla_days
        sla = settings.approval_sla_days if sla is None else sla
        waited = (ON - r.waiting_since.date()).days
        found.add(
            ("approval_overdue" if sla is not None and waited > sla else "approval_waiting", r.id)
        )
    if settings.funnel_target is not None:
        for team in {o.team for o in open_opps}:
            mine = [o for o in open_opps if o.team == team]
            deviations = funnel(mine, PLAN).deviations(
                dict(settings.funnel_target), min_opportunities=settings.funnel_min_opportunities
            )
            found |= {("funnel_deviation", d.group) for d in deviations}
    return found


@given(scenarios())
def test_the_items_are_exactly_the_rules_evaluated_one_by_one(s: dict[str, Any]) -> None:
    result = agenda(
        on=ON,
        opportunities=s["opps"],
        tasks=s["tasks"],
        calls=s["calls"],
        approvals=s["requests"],
        plan=PLAN,
        settings=s["settings"],
    )
    got = [(str(i.kind), i.record_id) for i in result]
    assert len(got) == len(set(got)), "an item twice"
    assert set(got) == expected(s)
    # most urgent first, and the same input gives the same agenda
    assert [i.sort_key() for i in result] == sorted(i.sort_key() for i in result)
    again = agenda(
        on=ON,
        opportunities=reversed(s["opps"]),
        tasks=reversed(s["tasks"]),
        calls=s["calls"],
        approvals=s["requests"],
        plan=PLAN,
        settings=s["settings"],
    )
    assert again.items == result.items
    for item in result:
        assert item.days == (ON - item.due).days
        assert item.reason
        if item.record_kind == "opportunity":
            assert item.team == OWNERS[item.owner]


def test_a_deal_slips_on_the_day_after_its_expected_close() -> None:
    deal = Opportunity(
        id="op-1",
        owner="ann",
        amount=Money.of("1", "CNY"),
        stage="quotation",
        expected_close=ON,
        created=ON,
    )
    on_the_day = agenda(on=ON, opportunities=[deal], settings=AgendaSettings(closing_within_days=0))
    assert [(i.kind, i.days) for i in on_the_day] == [(AgendaKind.DEAL_CLOSING, 0)]
    assert "today" in on_the_day.items[0].reason
    after = agenda(on=ON + timedelta(days=1), opportunities=[deal])
    assert [i.kind for i in after] == [AgendaKind.DEAL_SLIPPED]
    assert "1 day ago" in after.items[0].reason
    fifteen_before = agenda(on=ON - timedelta(days=15), opportunities=[deal])
    assert fifteen_before.of_kind("deal_closing") == ()
    assert (
        len(agenda(on=ON - timedelta(days=14), opportunities=[deal]).of_kind("deal_closing")) == 1
    )


def test_the_result_prints_and_converts() -> None:
    deal = Opportunity(
        id="op-1",
        owner="ann",
        team="east",
        amount=Money.of("1", "CNY"),
        stage="quotation",
        expected_close=ON - timedelta(days=3),
    )
    result = agenda(on=ON, opportunities=[deal], who="ann")
    assert isinstance(result, Agenda) and len(result) == 2
    assert "Agenda of ann on 2026-12-01 (2 items)" in str(result)
    assert "<table" in result._repr_html_()
    assert result.to_records()[0]["kind"] == "deal_slipped"
    assert result.counts() == {"deal_slipped": 1, "deal_stalled": 1}
    frame = result.to_frame()
    assert list(frame["record_id"]) == ["op-1", "op-1"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("closing_within_days", -1),
        ("closing_within_days", 1.5),
        ("stalled_after_days", 0),
        ("approval_sla_days", -2),
        ("funnel_target", {"quotation": 60}),
        ("funnel_target", {"quotation": "lots"}),
        ("funnel_tolerance", "-0.1"),
        ("funnel_min_opportunities", -1),
    ],
)
def test_bad_settings_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        AgendaSettings(**{field: value})
    assert field in str(refused.value)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValidationError, match="funnel_target"):
        agenda(on=ON, settings=AgendaSettings(funnel_target={"won": Decimal(100)}))
    with pytest.raises(InvalidTypeError, match="settings"):
        agenda(on=ON, settings={"closing_within_days": 3})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="on"):
        agenda(on="someday")
    with pytest.raises(InvalidTypeError, match="approvals"):
        agenda(on=ON, approvals=["apr-1"])  # type: ignore[list-item]


def test_a_step_sla_round_trips_and_old_workflows_are_unchanged() -> None:
    step = Step("legal_review", ("legal",), sla_days=3)
    workflow = Workflow("w", (step,))
    assert workflow.to_dict() == {
        "name": "w",
        "steps": [{"name": "legal_review", "roles": ["legal"], "sla_days": 3}],
    }
    assert Workflow.from_dict(workflow.to_dict()) == workflow
    assert Workflow.contract_default().to_dict()["steps"][0] == {
        "name": "sales_manager_review",
        "roles": ["sales_manager"],
    }
    for bad in (-1, 367, 1.5, "2"):
        with pytest.raises(ValidationError, match="sla_days"):
            Step("x", ("legal",), sla_days=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="sla_days"):
        Workflow.from_dict({"name": "w", "steps": [{"name": "a", "roles": ["x"], "sla_days": -3}]})
