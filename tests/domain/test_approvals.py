"""The approval engine: workflows, every rule of an approval, delegation, audit and queries."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import attrs
import pytest

from salesflow.domain.actors import Actor, Role
from salesflow.domain.approvals import (
    ApprovalAction,
    ApprovalEvent,
    ApprovalEventName,
    ApprovalRequest,
    ApprovalState,
    AuditEntry,
    Decision,
    Delegation,
    Step,
    Workflow,
    hash_content,
    replay,
    waiting_for,
)
from salesflow.domain.money import Money
from salesflow.errors import (
    ConcurrencyError,
    InvalidTypeError,
    NotAuthorizedError,
    TransitionNotAllowedError,
    ValidationError,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

REP = Actor("rep-li", roles={"sales_rep"})
SM = Actor("sm-wang", roles={"sales_manager"})
PM = Actor("pm-zhao", roles={"project_manager"})
FIN = Actor("fin-chen", roles={"finance"})
LEGAL = Actor("legal-sun", roles={"legal"})
NOBODY = Actor("guest")

H1 = "sha256:one"
H2 = "sha256:two"


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def draft(workflow: Workflow | None = None, rid: str = "apr-1") -> ApprovalRequest:
    return ApprovalRequest(
        id=rid,
        subject_id=f"c-{rid}",
        subject_kind="contract",
        workflow=workflow or Workflow.contract_default(),
    )


def submitted(workflow: Workflow | None = None, by: Actor = REP) -> ApprovalRequest:
    request, _ = draft(workflow).submit(by, at=at(0), content_hash=H1)
    return request


def approve(
    request: ApprovalRequest, actor: Actor, role: str, hours: float = 1, **kw: object
) -> ApprovalRequest:
    new, _ = request.approve(
        actor,
        role=role,
        at=at(hours),
        version=request.version,
        content_hash=kw.pop("content_hash", H1),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
    return new


def at_finance_and_legal() -> ApprovalRequest:
    request = approve(submitted(), SM, "sales_manager", 1)
    return approve(request, PM, "project_manager", 2)


# -- workflows ----------------------------------------------------------------------------------


def test_the_contract_workflow_of_the_requirements() -> None:
    workflow = Workflow.contract_default()
    assert [s.roles for s in workflow.steps] == [
        ("sales_manager",),
        ("project_manager",),
        ("finance", "legal"),
    ]
    assert workflow.roles == ("sales_manager", "project_manager", "finance", "legal")
    assert workflow.step_index_of("legal") == 2
    assert workflow.step_index_of("admin") is None
    assert all(type(role) is str for role in workflow.roles)


def test_a_one_step_workflow_for_quotes() -> None:
    workflow = Workflow.one_step(Role.SALES_MANAGER)
    assert workflow.name == "quote_approval"
    assert [s.roles for s in workflow.steps] == [("sales_manager",)]


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([], "steps"),
        ([Step("a", ["x"]), Step("a", ["y"])], "steps[1].name"),
        ([Step("a", ["x"]), Step("b", ["y", "x"])], "steps[1].roles"),
        ("a", "steps"),
        (["not a step"], "steps[0]"),
    ],
)
def test_invalid_workflows_are_refused(steps: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Workflow("w", steps)
    assert info.value.field == field


@pytest.mark.parametrize("roles", [[], ["finance", "finance"], [""], [3], None])
def test_invalid_steps_are_refused(roles: object) -> None:
    with pytest.raises(ValidationError) as info:
        Step("review", roles)
    assert info.value.field == "roles"


def test_a_workflow_round_trips_through_plain_dicts() -> None:
    workflow = Workflow.contract_default()
    data = workflow.to_dict()
    assert data["steps"][2] == {"name": "finance_legal_review", "roles": ["finance", "legal"]}
    assert Workflow.from_dict(json.loads(json.dumps(data))) == workflow


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"name": "w", "steps": [{"name": "a", "roles": []}]}, "steps[0]"),
        ({"name": "w", "steps": [{"name": "a"}]}, "steps[0]"),
        ({"name": "w", "steps": [{"name": "a", "roles": ["x"], "extra": 1}]}, "steps[0]"),
        ({"name": "w"}, "workflow"),
        ({"name": "w", "steps": "x"}, "steps"),
    ],
)
def test_bad_workflow_dicts_name_the_place(data: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as info:
        Workflow.from_dict(data)
    assert where in str(info.value)


# -- submitting ---------------------------------------------------------------------------------


def test_a_new_request_is_a_draft() -> None:
    request = draft()
    assert request.state is ApprovalState.DRAFT
    assert (request.version, request.cycle, request.audit, request.submitter) == (0, 0, (), None)
    assert request.current_step is None
    assert request.awaiting_roles == ()
    assert request.subject == "contract 'c-apr-1'"


def test_submitting_starts_the_first_cycle_at_step_one() -> None:
    request, events = draft().submit(REP, at=at(0), content_hash=H1, comment="first draft")
    assert request.state is ApprovalState.PENDING
    assert (request.submitter, request.cycle, request.step_index, request.version) == (
        "rep-li",
        1,
        0,
        1,
    )
    assert request.content_hash == H1
    assert request.awaiting_roles == ("sales_manager",)
    assert [e.name for e in events] == [
        ApprovalEventName.SUBMITTED,
        ApprovalEventName.REQUESTED,
    ]
    assert events[1].roles == ("sales_manager",)
    assert events[1].step == "sales_manager_review"
    assert all(e.request_id == "apr-1" and e.subject_id == "c-apr-1" for e in events)
    (entry,) = request.audit
    assert entry == AuditEntry(
        seq=1,
        at=at(0),
        actor="rep-li",
        action=ApprovalAction.SUBMIT,
        state_before=ApprovalState.DRAFT,
        state_after=ApprovalState.PENDING,
        version=1,
        cycle=1,
        comment="first draft",
        content_hash=H1,
    )


def test_submitting_twice_is_not_allowed() -> None:
    with pytest.raises(TransitionNotAllowedError) as info:
        submitted().submit(REP, at=at(1), content_hash=H1)
    assert info.value.state == "pending"
    assert info.value.subject == "contract 'c-apr-1'"
    assert "withdraw it first" in str(info.value)


def test_submit_refuses_naive_times_and_missing_hashes() -> None:
    with pytest.raises(ValidationError) as info:
        draft().submit(REP, at=datetime(2026, 3, 2, 9), content_hash=H1)
    assert info.value.field == "at"
    with pytest.raises(ValidationError) as info:
        draft().submit(REP, at=at(0), content_hash="  ")
    assert info.value.field == "content_hash"
    with pytest.raises(InvalidTypeError):
        draft().submit("rep-li", at=at(0), content_hash=H1)  # type: ignore[arg-type]


def test_submit_checks_the_version_when_given() -> None:
    with pytest.raises(ConcurrencyError) as info:
        draft().submit(REP, at=at(0), content_hash=H1, version=3)
    assert (info.value.expected, info.value.actual) == (3, 0)
    request, _ = draft().submit(REP, at=at(0), content_hash=H1, version=0)
    assert request.version == 1


# -- approving ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "last_two", [(FIN, LEGAL), (LEGAL, FIN)], ids=["finance-first", "legal-first"]
)
def test_approval_completes_after_every_role_of_every_step(last_two: tuple[Actor, Actor]) -> None:
    request = at_finance_and_legal()
    assert request.awaiting_roles == ("finance", "legal")
    first, second = last_two
    request, events = request.approve(
        first, role=next(iter(first.roles)), at=at(3), version=request.version, content_hash=H1
    )
    assert request.state is ApprovalState.PENDING
    assert [e.name for e in events] == [ApprovalEventName.GRANTED]
    request, events = request.approve(
        second, role=next(iter(second.roles)), at=at(4), version=request.version, content_hash=H1
    )
    assert request.state is ApprovalState.APPROVED
    assert request.is_final
    assert request.step_index == 3
    assert [e.name for e in events] == [ApprovalEventName.GRANTED, ApprovalEventName.COMPLETED]
    assert set(request.approved_roles) == set(Workflow.contract_default().roles)


def test_finishing_a_step_requests_the_next_roles() -> None:
    request = approve(submitted(), SM, "sales_manager")
    request, events = request.approve(
        PM, role="project_manager", at=at(2), version=request.version, content_hash=H1
    )
    assert [e.name for e in events] == [ApprovalEventName.GRANTED, ApprovalEventName.REQUESTED]
    assert events[0].roles == ("project_manager",)
    assert events[1].roles == ("finance", "legal")
    assert events[1].step == "finance_legal_review"


def test_an_actor_without_the_role_is_not_authorized() -> None:
    request = submitted()
    with pytest.raises(NotAuthorizedError) as info:
        approve(request, NOBODY, "sales_manager")
    assert (info.value.actor, info.value.action, info.value.subject) == (
        "guest",
        "approve",
        "contract 'c-apr-1'",
    )
    assert "do not hold role 'sales_manager'" in str(info.value)


def test_a_role_of_a_later_step_must_wait_its_turn() -> None:
    with pytest.raises(TransitionNotAllowedError) as info:
        approve(submitted(), FIN, "finance")
    assert "waits at step 'sales_manager_review'" in str(info.value)


def test_a_role_the_workflow_does_not_use_is_not_authorized() -> None:
    admin = Actor("root", roles={"admin"})
    with pytest.raises(NotAuthorizedError) as info:
        approve(submitted(), admin, "admin")
    assert "no step for role 'admin'" in str(info.value)


def test_nobody_approves_their_own_submission() -> None:
    manager = Actor("sm-wang", roles={"sales_manager", "sales_rep"})
    request = submitted(by=manager)
    with pytest.raises(NotAuthorizedError) as info:
        approve(request, manager, "sales_manager")
    assert "they submitted it" in str(info.value)


def test_one_actor_approves_at_most_one_role_per_cycle() -> None:
    both = Actor("fl-zhou", roles={"finance", "legal"})
    request = approve(at_finance_and_legal(), both, "finance", 3)
    with pytest.raises(NotAuthorizedError) as info:
        approve(request, both, "legal", 4)
    assert "at most one role per cycle" in str(info.value)
    assert approve(request, LEGAL, "legal", 4).state is ApprovalState.APPROVED


def test_a_role_is_approved_once_per_cycle() -> None:
    other_manager = Actor("sm-liu", roles={"sales_manager", "project_manager"})
    request = approve(submitted(), SM, "sales_manager")
    with pytest.raises(TransitionNotAllowedError):
        approve(request, other_manager, "sales_manager", 2)


def test_a_stale_version_is_refused() -> None:
    request = submitted()
    with pytest.raises(ConcurrencyError) as info:
        request.approve(SM, role="sales_manager", at=at(1), version=0, content_hash=H1)
    assert (info.value.kind, info.value.id) == ("approval request", "apr-1")
    assert (info.value.expected, info.value.actual) == (0, 1)
    assert "reload it" in str(info.value)


def test_a_changed_subject_cannot_be_approved_until_resubmitted() -> None:
    request = approve(submitted(), SM, "sales_manager")
    with pytest.raises(TransitionNotAllowedError) as info:
        approve(request, PM, "project_manager", 2, content_hash=H2)
    assert "changed after it was submitted" in str(info.value)
    request, _ = request.withdraw(REP, at=at(3), version=request.version)
    request, _ = request.resubmit(REP, at=at(4), content_hash=H2)
    assert request.awaiting_roles == ("sales_manager",)
    request = approve(request, SM, "sales_manager", 5, content_hash=H2)
    assert approve(request, PM, "project_manager", 6, content_hash=H2).step_index == 2


def in_state(state: str) -> ApprovalRequest:
    if state == "draft":
        return draft()
    if state == "pending":
        return submitted()
    if state == "approved":
        return approve(approve(at_finance_and_legal(), FIN, "finance", 3), LEGAL, "legal", 4)
    if state == "rejected":
        reason = "no"
        return submitted().reject(SM, role="sales_manager", at=at(1), version=1, reason=reason)[0]
    return submitted().withdraw(REP, at=at(1), version=1)[0]


@pytest.mark.parametrize("state", ["draft", "approved", "rejected", "withdrawn"])
def test_approving_outside_pending_is_not_allowed(state: str) -> None:
    request = in_state(state)
    with pytest.raises(TransitionNotAllowedError) as info:
        approve(request, SM, "sales_manager", 10)
    assert info.value.state == state


def test_an_action_dated_before_the_last_one_is_refused() -> None:
    request = approve(submitted(), SM, "sales_manager", 5)
    with pytest.raises(ValidationError) as info:
        approve(request, PM, "project_manager", 4)
    assert info.value.field == "at"


def test_a_failed_action_changes_nothing() -> None:
    request = approve(submitted(), SM, "sales_manager")
    before = request.to_dict()
    attempts: list[Callable[[], object]] = [
        lambda: approve(request, FIN, "finance", 2),
        lambda: approve(request, REP, "project_manager", 2),
        lambda: approve(request, PM, "project_manager", 2, content_hash=H2),
        lambda: request.reject(PM, role="project_manager", at=at(2), version=2, reason=" "),
        lambda: request.withdraw(SM, at=at(2), version=2),
        lambda: request.resubmit(REP, at=at(2), content_hash=H1),
    ]
    for attempt in attempts:
        with pytest.raises((ValidationError, NotAuthorizedError, TransitionNotAllowedError)):
            attempt()
    assert request.to_dict() == before
    # The same version still works: nothing was consumed by the refusals.
    assert approve(request, PM, "project_manager", 2).version == request.version + 1


def test_the_comment_is_recorded() -> None:
    request = approve(submitted(), SM, "sales_manager", comment="margin is fine")
    assert request.decisions[0].comment == "margin is fine"
    assert request.audit[-1].comment == "margin is fine"


# -- rejecting, withdrawing, resubmitting -------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_rejection_needs_a_reason(reason: str | None) -> None:
    with pytest.raises(ValidationError) as info:
        submitted().reject(
            SM,
            role="sales_manager",
            at=at(1),
            version=1,
            reason=reason,  # type: ignore[arg-type]
        )
    assert info.value.field == "reason"


def test_a_rejection_returns_the_subject_with_the_reason() -> None:
    request = approve(submitted(), SM, "sales_manager")
    request, events = request.reject(
        PM, role="project_manager", at=at(2), version=request.version, reason="  too risky  "
    )
    assert request.state is ApprovalState.REJECTED
    assert request.rejection_reason == "too risky"
    assert request.rejection == request.audit[-1]
    assert request.awaiting_roles == ()
    assert [e.name for e in events] == [ApprovalEventName.REJECTED]
    assert (events[0].comment, events[0].roles, events[0].step) == (
        "too risky",
        ("project_manager",),
        "project_manager_review",
    )


def test_resubmission_starts_again_from_step_one() -> None:
    request = approve(submitted(), SM, "sales_manager")
    request, _ = request.reject(
        PM, role="project_manager", at=at(2), version=request.version, reason="no"
    )
    request, events = request.resubmit(REP, at=at(3), content_hash=H2, comment="fixed")
    assert request.state is ApprovalState.PENDING
    assert (request.cycle, request.step_index, request.decisions) == (2, 0, ())
    assert request.awaiting_roles == ("sales_manager",)
    assert request.rejection_reason is None
    assert [e.name for e in events] == [
        ApprovalEventName.RESUBMITTED,
        ApprovalEventName.REQUESTED,
    ]
    # Last cycle's decision no longer counts, so the same manager approves again.
    assert approve(request, SM, "sales_manager", 4, content_hash=H2).step_index == 1


def test_a_role_that_approved_may_still_reject() -> None:
    both = Actor("fl-zhou", roles={"finance", "legal"})
    request = approve(at_finance_and_legal(), both, "finance", 3)
    request, _ = request.reject(
        both, role="finance", at=at(4), version=request.version, reason="found an error"
    )
    assert request.state is ApprovalState.REJECTED


def test_rejecting_needs_the_role_and_is_not_for_the_submitter() -> None:
    request = submitted()
    with pytest.raises(NotAuthorizedError):
        request.reject(NOBODY, role="sales_manager", at=at(1), version=1, reason="no")
    with pytest.raises(TransitionNotAllowedError):
        request.reject(FIN, role="finance", at=at(1), version=1, reason="no")
    manager = Actor("sm-wang", roles={"sales_manager"})
    own = submitted(by=manager)
    with pytest.raises(NotAuthorizedError) as info:
        own.reject(manager, role="sales_manager", at=at(1), version=1, reason="no")
    assert "withdraws instead" in str(info.value)


def test_only_the_submitter_withdraws_and_only_while_pending() -> None:
    request = submitted()
    with pytest.raises(NotAuthorizedError) as info:
        request.withdraw(SM, at=at(1), version=1)
    assert "only the submitter 'rep-li'" in str(info.value)
    with pytest.raises(ConcurrencyError):
        request.withdraw(REP, at=at(1), version=0)
    withdrawn, events = request.withdraw(REP, at=at(1), version=1, comment="price update")
    assert withdrawn.state is ApprovalState.WITHDRAWN
    assert [e.name for e in events] == [ApprovalEventName.WITHDRAWN]
    assert events[0].comment == "price update"
    with pytest.raises(TransitionNotAllowedError):
        withdrawn.withdraw(REP, at=at(2), version=2)
    with pytest.raises(TransitionNotAllowedError):
        draft().withdraw(REP, at=at(2), version=0)


@pytest.mark.parametrize("state", ["draft", "pending", "approved"])
def test_resubmitting_is_only_for_rejected_or_withdrawn(state: str) -> None:
    request = in_state(state)
    with pytest.raises(TransitionNotAllowedError) as info:
        request.resubmit(REP, at=at(5), content_hash=H1)
    assert info.value.state == state


def test_whoever_resubmits_becomes_the_submitter() -> None:
    manager = Actor("sm-wang", roles={"sales_manager", "sales_rep"})
    request, _ = submitted().withdraw(REP, at=at(1), version=1)
    request, _ = request.resubmit(manager, at=at(2), content_hash=H1)
    assert request.submitter == "sm-wang"
    with pytest.raises(NotAuthorizedError):
        approve(request, manager, "sales_manager", 3)


# -- the seed's story ---------------------------------------------------------------------------


@pytest.mark.parametrize("finance_first", [True, False])
def test_the_milk_powder_promotion(finance_first: bool) -> None:
    """R12: rejected by the project manager, changed, resubmitted, approved by all, complete."""
    risky = hash_content({"message": "replace breast milk for babies under one"})
    fixed = hash_content({"message": "nutrition for babies whose mothers lack milk"})
    request = ApprovalRequest(
        id="apr-milk",
        subject_id="c-milk-2026",
        subject_kind="contract",
        workflow=Workflow.contract_default(),
    )
    request, _ = request.submit(REP, at=at(0), content_hash=risky)
    request, _ = request.approve(
        SM, role="sales_manager", at=at(1), version=request.version, content_hash=risky
    )
    request, events = request.reject(
        PM,
        role="project_manager",
        at=at(2),
        version=request.version,
        reason="'replace breast milk' is a claim we cannot make",
    )
    assert request.state is ApprovalState.REJECTED
    assert "breast milk" in (request.rejection_reason or "")
    assert events[0].name is ApprovalEventName.REJECTED

    request, _ = request.resubmit(REP, at=at(24), content_hash=fixed, comment="message changed")
    for actor, role in [(SM, "sales_manager"), (PM, "project_manager")]:
        request, _ = request.approve(
            actor, role=role, at=at(25), version=request.version, content_hash=fixed
        )
    order = [(FIN, "finance"), (LEGAL, "legal")]
    if not finance_first:
        order.reverse()
    names: list[ApprovalEventName] = []
    for actor, role in order:
        request, events = request.approve(
            actor, role=role, at=at(26), version=request.version, content_hash=fixed
        )
        names += [e.name for e in events]
    assert request.state is ApprovalState.APPROVED
    assert names[-1] is ApprovalEventName.COMPLETED
    assert request.cycle == 2
    assert [(e.action.value, e.state_after.value) for e in request.audit] == [
        ("submit", "pending"),
        ("approve", "pending"),
        ("reject", "rejected"),
        ("resubmit", "pending"),
        ("approve", "pending"),
        ("approve", "pending"),
        ("approve", "pending"),
        ("approve", "approved"),
    ]
    assert request.replayed() == request


# -- delegation ---------------------------------------------------------------------------------

DEPUTY = Actor("dep-wu", roles={"sales_rep"})


def legal_holiday(**changes: object) -> Delegation:
    fields: dict[str, object] = {
        "delegate": DEPUTY,
        "role": "legal",
        "valid_from": date(2026, 3, 2),
        "valid_until": date(2026, 3, 6),
    }
    fields.update(changes)
    return Delegation.grant(LEGAL, **fields)  # type: ignore[arg-type]


def test_a_delegate_approves_and_the_audit_shows_both() -> None:
    request = approve(at_finance_and_legal(), FIN, "finance", 3)
    request, events = request.approve(
        DEPUTY,
        role="legal",
        at=at(4),
        version=request.version,
        content_hash=H1,
        delegations=[legal_holiday()],
    )
    assert request.state is ApprovalState.APPROVED
    entry = request.audit[-1]
    assert (entry.actor, entry.on_behalf_of, entry.role) == ("dep-wu", "legal-sun", "legal")
    assert request.decisions[-1].participants == {"dep-wu", "legal-sun"}
    assert events[0].on_behalf_of == "legal-sun"


def test_only_a_holder_of_a_role_can_delegate_it() -> None:
    with pytest.raises(NotAuthorizedError) as info:
        Delegation.grant(
            FIN, delegate=DEPUTY, role="legal", valid_from="2026-03-02", valid_until="2026-03-03"
        )
    assert (info.value.actor, info.value.action) == ("fin-chen", "delegate")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"delegate": "legal-sun"}, "delegate"),
        ({"valid_until": date(2026, 3, 1)}, "valid_until"),
        ({"valid_from": "soon"}, "valid_from"),
    ],
)
def test_invalid_delegations_are_refused(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        legal_holiday(**changes)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("moment", "valid"),
    [
        (datetime(2026, 3, 2, 0, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 6, 23, 59, tzinfo=UTC), True),
        (datetime(2026, 3, 7, 0, 0, tzinfo=UTC), False),
        # 23:30 in UTC-8 is the next day in UTC: the action's own date counts.
        (datetime(2026, 3, 6, 23, 30, tzinfo=timezone(timedelta(hours=-8))), True),
        (datetime(2026, 3, 7, 7, 0, tzinfo=timezone(timedelta(hours=8))), False),
    ],
)
def test_a_delegation_counts_on_its_dates_only(moment: datetime, valid: bool) -> None:
    request = draft(Workflow.one_step("legal"))
    request, _ = request.submit(REP, at=datetime(2026, 3, 1, tzinfo=UTC), content_hash=H1)

    def act() -> ApprovalRequest:
        new, _ = request.approve(
            DEPUTY,
            role="legal",
            at=moment,
            version=1,
            content_hash=H1,
            delegations=[legal_holiday()],
        )
        return new

    if valid:
        assert act().state is ApprovalState.APPROVED
    else:
        with pytest.raises(NotAuthorizedError) as info:
            act()
        assert "no delegation of it" in str(info.value)


def test_a_delegation_of_another_role_does_not_help() -> None:
    request = approve(at_finance_and_legal(), LEGAL, "legal", 3)
    with pytest.raises(NotAuthorizedError):
        approve(request, DEPUTY, "finance", 4, delegations=[legal_holiday()])


def test_a_delegation_cannot_approve_the_delegators_own_submission() -> None:
    legal_rep = Actor("legal-sun", roles={"legal", "sales_rep"})
    request = approve(at_finance_and_legal(), FIN, "finance", 3)
    request, _ = request.withdraw(REP, at=at(4), version=request.version)
    request, _ = request.resubmit(legal_rep, at=at(5), content_hash=H1)
    for actor, role in [(SM, "sales_manager"), (PM, "project_manager")]:
        request = approve(request, actor, role, 6)
    with pytest.raises(NotAuthorizedError) as info:
        approve(request, DEPUTY, "legal", 7, delegations=[legal_holiday()])
    assert "who submitted it" in str(info.value)


def test_a_delegate_cannot_approve_their_own_submission() -> None:
    request = draft(Workflow.one_step("legal"))
    request, _ = request.submit(DEPUTY, at=at(0), content_hash=H1)
    with pytest.raises(NotAuthorizedError) as info:
        approve(request, DEPUTY, "legal", 1, delegations=[legal_holiday()])
    assert "they submitted it" in str(info.value)


def test_a_delegation_cannot_approve_a_second_role_for_the_delegate() -> None:
    deputy_finance = Actor("dep-wu", roles={"finance"})
    request = approve(at_finance_and_legal(), deputy_finance, "finance", 3)
    with pytest.raises(NotAuthorizedError) as info:
        approve(request, deputy_finance, "legal", 4, delegations=[legal_holiday()])
    assert "'dep-wu' already approved as 'finance'" in str(info.value)


def test_a_delegation_cannot_approve_a_second_role_for_the_delegator() -> None:
    finance_and_legal = Actor("fl-zhou", roles={"finance", "legal"})
    grant = Delegation.grant(
        finance_and_legal,
        delegate=DEPUTY,
        role="legal",
        valid_from=date(2026, 3, 1),
        valid_until=date(2026, 3, 9),
    )
    request = approve(at_finance_and_legal(), finance_and_legal, "finance", 3)
    with pytest.raises(NotAuthorizedError) as info:
        approve(request, DEPUTY, "legal", 4, delegations=[grant])
    assert "'fl-zhou' already approved as 'finance'" in str(info.value)


def test_the_first_usable_delegation_is_used() -> None:
    legal_rep = Actor("legal-qian", roles={"legal", "sales_rep"})
    from_submitter = Delegation.grant(
        legal_rep,
        delegate=DEPUTY,
        role="legal",
        valid_from=date(2026, 3, 1),
        valid_until=date(2026, 3, 9),
    )
    request = draft(Workflow.one_step("legal"))
    request, _ = request.submit(legal_rep, at=at(0), content_hash=H1)
    request = approve(request, DEPUTY, "legal", 1, delegations=[from_submitter, legal_holiday()])
    assert request.audit[-1].on_behalf_of == "legal-sun"


def test_a_delegation_round_trips_through_plain_dicts() -> None:
    grant = legal_holiday()
    assert grant.to_dict() == {
        "delegator": "legal-sun",
        "delegate": "dep-wu",
        "role": "legal",
        "valid_from": "2026-03-02",
        "valid_until": "2026-03-06",
    }
    assert Delegation.from_dict(grant.to_dict()) == grant


# -- audit and replay ---------------------------------------------------------------------------


def finished() -> ApprovalRequest:
    request = approve(submitted(), SM, "sales_manager", 1)
    request, _ = request.reject(
        PM, role="project_manager", at=at(2), version=request.version, reason="no"
    )
    request, _ = request.resubmit(REP, at=at(3), content_hash=H2)
    for hours, (actor, role) in enumerate(
        [(SM, "sales_manager"), (PM, "project_manager"), (LEGAL, "legal"), (FIN, "finance")]
    ):
        request = approve(request, actor, role, 4 + hours, content_hash=H2)
    return request


def test_the_audit_trail_records_every_action() -> None:
    request = finished()
    assert [e.seq for e in request.audit] == list(range(1, 9))
    assert [e.version for e in request.audit] == list(range(1, 9))
    assert request.version == 8
    assert [e.cycle for e in request.audit] == [1, 1, 1, 2, 2, 2, 2, 2]
    reject = request.audit[2]
    assert (reject.actor, reject.role, reject.comment, reject.step) == (
        "pm-zhao",
        "project_manager",
        "no",
        "project_manager_review",
    )
    assert (reject.state_before, reject.state_after) == (
        ApprovalState.PENDING,
        ApprovalState.REJECTED,
    )


def test_every_action_only_appends_to_the_audit() -> None:
    request = submitted()
    grown = approve(request, SM, "sales_manager")
    assert grown.audit[: len(request.audit)] == request.audit
    assert len(grown.audit) == len(request.audit) + 1


def test_the_audit_replays_to_the_request() -> None:
    request = finished()
    assert request.replayed() == request
    assert request.origin() == draft()
    halfway = replay(request.origin(), request.audit[:3])
    assert halfway.state is ApprovalState.REJECTED
    assert replay(halfway, request.audit[3:]) == request


def test_replay_refuses_a_tampered_trail() -> None:
    request = finished()
    audit = list(request.audit)
    audit[7] = attrs.evolve(audit[7], state_after=ApprovalState.PENDING)
    with pytest.raises(ValidationError) as info:
        replay(request.origin(), audit)
    assert "audit[7]" in str(info.value)

    with pytest.raises(ValidationError) as info:
        replay(request.origin(), request.audit[1:])
    assert "audit[0]" in str(info.value)

    self_approved = attrs.evolve(request.audit[1], actor="rep-li")
    with pytest.raises(ValidationError) as info:
        replay(request.origin(), [request.audit[0], self_approved])
    assert "they submitted it" in str(info.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"role": "legal"},
        {"on_behalf_of": "legal-sun"},
        {"content_hash": H1},
        {"cycle": 2},
        {"step": "finance_legal_review"},
    ],
)
def test_replay_refuses_fields_an_action_does_not_have(changes: dict[str, object]) -> None:
    request, _ = submitted().withdraw(REP, at=at(1), version=1)
    forged = attrs.evolve(request.audit[1], **changes)
    with pytest.raises(ValidationError) as info:
        replay(request.origin(), [request.audit[0], forged])
    assert "audit[1]" in str(info.value)


def test_a_request_round_trips_through_json() -> None:
    request = finished()
    text = json.dumps(request.to_dict())
    assert ApprovalRequest.from_dict(json.loads(text)) == request


def test_a_stored_request_is_checked_on_load() -> None:
    with pytest.raises(ValidationError) as info:
        attrs.evolve(submitted(), step_index=3)
    assert info.value.field == "step_index"
    with pytest.raises(ValidationError) as info:
        ApprovalRequest.from_dict({**submitted().to_dict(), "state": "lost"})
    assert info.value.field == "state"


def test_events_are_plain_data_for_notifications() -> None:
    _, events = draft().submit(REP, at=at(0), content_hash=H1)
    assert isinstance(events[1], ApprovalEvent)
    assert events[1].to_dict() == {
        "name": "approval_requested",
        "request_id": "apr-1",
        "subject_id": "c-apr-1",
        "subject_kind": "contract",
        "at": "2026-03-02T09:00:00+00:00",
        "actor": "rep-li",
        "version": 1,
        "cycle": 1,
        "step": "sales_manager_review",
        "roles": ["sales_manager"],
        "on_behalf_of": None,
        "comment": None,
    }


def test_a_decision_round_trips() -> None:
    decision = approve(submitted(), SM, "sales_manager").decisions[0]
    assert Decision.from_dict(decision.to_dict()) == decision


# -- queries ------------------------------------------------------------------------------------


def inbox() -> list[ApprovalRequest]:
    old = draft(rid="apr-old")
    old, _ = old.submit(REP, at=at(0), content_hash=H1)
    new = draft(rid="apr-new")
    new, _ = new.submit(REP, at=at(5), content_hash=H1)
    moved = draft(rid="apr-moved")
    moved, _ = moved.submit(REP, at=at(1), content_hash=H1)
    moved = approve(moved, SM, "sales_manager", 8)
    untouched = draft(rid="apr-draft")
    return [new, moved, untouched, old]


def test_waiting_for_a_role_lists_pending_requests_longest_waiting_first() -> None:
    requests = inbox()
    assert [r.id for r in waiting_for(requests, "sales_manager")] == ["apr-old", "apr-new"]
    assert [r.id for r in waiting_for(requests, Role.PROJECT_MANAGER)] == ["apr-moved"]
    assert waiting_for(requests, "finance") == ()


def test_waiting_for_an_actor_applies_the_rules() -> None:
    requests = inbox()
    assert [r.id for r in waiting_for(requests, SM)] == ["apr-old", "apr-new"]
    assert waiting_for(requests, REP) == ()
    own = Actor("rep-li", roles={"sales_manager"})
    assert waiting_for(requests, own) == ()


def test_waiting_for_counts_delegations_on_the_given_date() -> None:
    grant = Delegation.grant(
        SM, delegate=DEPUTY, role="sales_manager", valid_from="2026-03-02", valid_until="2026-03-03"
    )
    requests = inbox()
    found = waiting_for(requests, DEPUTY, on=date(2026, 3, 3), delegations=[grant])
    assert [r.id for r in found] == ["apr-old", "apr-new"]
    assert waiting_for(requests, DEPUTY, on=date(2026, 3, 4), delegations=[grant]) == ()
    with pytest.raises(ValidationError) as info:
        waiting_for(requests, DEPUTY, delegations=[grant])
    assert info.value.field == "on"


def test_approvable_roles_and_waiting_since() -> None:
    request = at_finance_and_legal()
    both = Actor("fl-zhou", roles={"finance", "legal"})
    assert request.approvable_roles(both) == ("finance", "legal")
    assert request.waiting_since == at(2)
    assert request.submitted_at == at(0)
    request = approve(request, both, "finance", 3)
    assert request.approvable_roles(both) == ()
    assert request.approvable_roles(LEGAL) == ("legal",)


def test_waiting_for_refuses_what_it_cannot_read() -> None:
    with pytest.raises(InvalidTypeError):
        waiting_for(inbox(), 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        waiting_for(["apr-1"], "finance")  # type: ignore[list-item]


# -- content hashes -----------------------------------------------------------------------------


def test_content_hashes_are_stable_and_sensitive() -> None:
    lines = [{"sku": "MP-900", "qty": 3, "price": Money.of("129.90", "CNY")}]
    a = hash_content({"lines": lines, "signed": date(2026, 3, 2), "tags": {"b", "a"}})
    b = hash_content({"tags": {"a", "b"}, "signed": date(2026, 3, 2), "lines": lines})
    assert a == b
    assert a.startswith("sha256:")
    changed = [{"sku": "MP-900", "qty": 3, "price": Money.of("139.90", "CNY")}]
    assert hash_content({"lines": changed, "signed": date(2026, 3, 2), "tags": {"a", "b"}}) != a
    assert hash_content(Decimal("1.0")) != hash_content("1.0")
    assert hash_content(Role.LEGAL) == hash_content("legal")


def test_content_hashes_refuse_floats_and_unknown_types() -> None:
    with pytest.raises(InvalidTypeError):
        hash_content({"amount": 0.1})
    with pytest.raises(InvalidTypeError):
        hash_content({1: "x"})
    with pytest.raises(InvalidTypeError):
        hash_content(object())
