"""A system of record that cannot be fooled (issue 11): segregation of duties in approvals,
delegations that can be taken back, and time that only moves forward per record. Every test runs
through the desk on every backend (memory, SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

import salesflow
from salesflow import Actor, Money, Opportunity
from salesflow.domain.approvals import ApprovalState, DelegationState, Workflow
from salesflow.domain.billing import MilestoneSpec, Trigger
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.contracts import ContractState
from salesflow.domain.quotes import Quote
from salesflow.errors import NotAuthorizedError, TransitionNotAllowedError, ValidationError
from salesflow.testing.storage import ManualClock

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TODAY = START.date()
ANN = Actor("ann", roles={"sales_rep"}, teams={"east"})
BOB = Actor("bob", roles={"sales_rep"}, teams={"east"})
SUE = Actor("sue", roles={"sales_manager"}, teams={"east"})  # a manager who also sells
MAX = Actor("max", roles={"sales_manager"}, teams={"east"})
MIA = Actor("mia", roles={"sales_manager"}, teams={"east"})
PAT = Actor("pat", roles={"project_manager"})
FIN = Actor("fin", roles={"finance"})
LEO = Actor("leo", roles={"legal"})
ADMIN = Actor("root", roles={"admin"})
CATALOG = Catalog(
    products=[Product(sku="SVC", name="Service", list_price=Money.of("1000.00", "CNY"))]
)
REQUEST = "contract:C-1"


def in_review(open_desk: Any, *, owner: Actor, submitter: Actor, **options: Any) -> Any:
    """A desk (clock at START) with contract C-1 of ``owner``, submitted by ``submitter``."""
    clock = ManualClock(START)
    desk = open_desk(clock=clock, **options)
    desk.update_catalog(ADMIN, CATALOG)
    quote = Quote(id="Q-1", owner=owner.id, currency="CNY", quoted_on=TODAY)
    desk.create_quote(owner, quote.add_line(CATALOG, "SVC", 3))
    desk.submit_quote(owner, "Q-1")
    desk.create_contract(owner, "Q-1", id="C-1", team="east")
    desk.submit_contract(submitter, "C-1")
    return desk


def approve(desk: Any, actor: Actor, role: str) -> Any:
    return desk.approve(actor, REQUEST, role=role, version=desk.approval(REQUEST).version)


def signed(open_desk: Any) -> tuple[Any, ManualClock]:
    """A desk whose contract C-1 (ann's) turned formal on TODAY, with its clock."""
    desk = in_review(open_desk, owner=ANN, submitter=ANN)
    for actor, role in (
        (MIA, "sales_manager"),
        (PAT, "project_manager"),
        (FIN, "finance"),
        (LEO, "legal"),
    ):
        approve(desk, actor, role)
    assert desk.contract("C-1").signed_on == TODAY
    clock = desk._clock
    assert isinstance(clock, ManualClock)
    return desk, clock


# -- A. segregation of duties ------------------------------------------------------------------------


def test_an_owner_who_manages_sales_cannot_decide_her_own_contract(open_desk: Any) -> None:
    desk = in_review(open_desk, owner=SUE, submitter=MAX)
    request, contract = desk.approval(REQUEST), desk.contract("C-1")
    assert request.owner == "sue"
    with pytest.raises(NotAuthorizedError, match="they own it") as refused:
        approve(desk, SUE, "sales_manager")
    assert (refused.value.actor, refused.value.action) == ("sue", "approve")
    with pytest.raises(NotAuthorizedError, match="they own it"):
        desk.reject(SUE, REQUEST, role="sales_manager", version=request.version, reason="mine")
    assert desk.approval(REQUEST) == request  # nothing changed
    assert desk.contract("C-1") == contract
    # Nor through a delegation of someone else's role: acting for the owner is refused too.
    desk.delegate(SUE, to="bob", role="sales_manager", valid_from=TODAY, valid_until=TODAY)
    with pytest.raises(NotAuthorizedError, match="who owns it"):
        approve(desk, BOB, "sales_manager")
    assert desk.approval(REQUEST) == request
    approve(desk, MIA, "sales_manager")  # somebody else may
    assert desk.approval(REQUEST).awaiting_roles == ("project_manager",)


def test_the_submitter_cannot_decide_either(open_desk: Any) -> None:
    desk = in_review(open_desk, owner=SUE, submitter=MAX)
    request = desk.approval(REQUEST)
    with pytest.raises(NotAuthorizedError, match="they submitted it"):
        approve(desk, MAX, "sales_manager")
    with pytest.raises(NotAuthorizedError, match="they submitted it"):
        desk.reject(MAX, REQUEST, role="sales_manager", version=request.version, reason="no")
    assert desk.approval(REQUEST) == request
    assert desk.contract("C-1").state is ContractState.IN_REVIEW


def test_a_workflow_may_allow_self_approval_explicitly_and_the_audit_says_so(
    open_desk: Any,
) -> None:
    relaxed = attrs.evolve(Workflow.contract_default(), allow_self_approval=True)
    desk = in_review(open_desk, owner=SUE, submitter=MAX, contract_workflow=relaxed)
    approve(desk, SUE, "sales_manager")
    entry = desk.approval(REQUEST).audit[-1]
    assert (entry.actor, entry.role, entry.self_approval) == ("sue", "sales_manager", ("owner",))
    approve(desk, PAT, "project_manager")
    assert desk.approval(REQUEST).audit[-1].self_approval == ()
    stored = desk.approval(REQUEST)
    assert stored.workflow.allow_self_approval
    assert stored.replayed() == stored  # the audit replays to the stored state


# -- B. delegations that can be taken back ----------------------------------------------------------


def test_a_revoked_delegation_stops_counting_at_once_and_is_kept(open_desk: Any) -> None:
    desk = in_review(open_desk, owner=ANN, submitter=ANN)
    grant = desk.delegate(
        MIA, to="bob", role="sales_manager", valid_from=TODAY, valid_until=TODAY + timedelta(5)
    ).value
    assert [r.id for r in desk.waiting_for(BOB)] == [REQUEST]
    desk._clock.advance(minutes=1)
    result = desk.revoke_delegation(MIA, grant, reason="back early")
    revoked = result.value
    assert (revoked.revoked_by, revoked.revoked_at) == ("mia", START + timedelta(minutes=1))
    assert [e.name for e in result.events] == ["delegation_revoked"]
    assert desk.events(name="delegation_revoked")[0].data["reason"] == "back early"
    request = desk.approval(REQUEST)
    with pytest.raises(NotAuthorizedError, match="no delegation"):
        approve(desk, BOB, "sales_manager")
    assert desk.approval(REQUEST) == request
    assert desk.waiting_for(BOB) == ()
    # Kept, with its revocation; listed with its state; never revoked twice.
    [(stored, state)] = desk.delegations(delegator="mia")
    assert (stored, state) == (revoked, DelegationState.REVOKED)
    assert desk.delegations(state="active") == []
    with pytest.raises(TransitionNotAllowedError):
        desk.revoke_delegation(ADMIN, grant.id)
    # Even with the clock set back before the revocation, the desk ignores the revoked grant.
    desk._clock.now = START
    with pytest.raises(NotAuthorizedError):
        approve(desk, BOB, "sales_manager")


def test_the_delegator_or_an_admin_revokes_and_a_grant_may_be_made_again(open_desk: Any) -> None:
    desk = in_review(open_desk, owner=ANN, submitter=ANN)
    grant = desk.delegate(
        MIA, to="bob", role="sales_manager", valid_from=TODAY, valid_until=TODAY
    ).value
    with pytest.raises(NotAuthorizedError):
        desk.revoke_delegation(MAX, grant)  # another manager may not
    # Mia lost the role: an admin ends her delegation of it (it is not re-checked when used).
    desk.revoke_delegation(ADMIN, grant, reason="mia moved to marketing")
    desk._clock.advance(minutes=1)
    again = desk.delegate(
        MIA, to="bob", role="sales_manager", valid_from=TODAY, valid_until=TODAY
    ).value
    assert again.id != grant.id
    states = {g.id: s for g, s in desk.delegations(role="sales_manager")}
    assert states == {grant.id: DelegationState.REVOKED, again.id: DelegationState.ACTIVE}
    approve(desk, BOB, "sales_manager")
    assert desk.approval(REQUEST).audit[-1].on_behalf_of == "mia"


class DenyWhenAsked:
    """A policy plugin that refuses every action once switched on."""

    def __init__(self) -> None:
        self.deny = False

    @salesflow.hookimpl
    def salesflow_authorize(self, actor: Actor, action: str) -> bool | None:
        return False if self.deny else None


def test_the_authorization_hook_stops_granting_and_revoking(open_desk: Any) -> None:
    policy = DenyWhenAsked()
    desk = open_desk(clock=ManualClock(START), plugins=[policy])
    grant = desk.delegate(
        MIA, to="bob", role="sales_manager", valid_from=TODAY, valid_until=TODAY
    ).value
    policy.deny = True
    with pytest.raises(NotAuthorizedError, match=r"delegation\.grant"):
        desk.delegate(
            MIA,
            to="cai",
            role="sales_manager",
            valid_from=TODAY + timedelta(1),
            valid_until=TODAY + timedelta(2),
        )
    with pytest.raises(NotAuthorizedError, match=r"delegation\.revoke"):
        desk.revoke_delegation(MIA, grant)
    assert desk.delegations() == [(grant, DelegationState.ACTIVE)]
    assert [e.name for e in desk.events()] == ["delegation_granted"]


def test_overlapping_and_backdated_grants_are_refused(open_desk: Any) -> None:
    desk = open_desk(clock=ManualClock(START))
    first = desk.delegate(
        MIA, to="bob", role="sales_manager", valid_from=TODAY, valid_until=TODAY + timedelta(5)
    ).value
    with pytest.raises(ValidationError, match=first.id.replace("+", r"\+")) as refused:
        desk.delegate(
            MIA,
            to="cai",
            role="sales_manager",
            valid_from=TODAY + timedelta(3),
            valid_until=TODAY + timedelta(9),
        )
    assert refused.value.field == "valid_from"
    with pytest.raises(ValidationError, match="backdated") as refused:
        desk.delegate(
            MIA,
            to="cai",
            role="sales_manager",
            valid_from=TODAY - timedelta(1),
            valid_until=TODAY + timedelta(9),
        )
    assert refused.value.field == "valid_from"
    assert [g for g, _state in desk.delegations()] == [first]
    # Days after it, another role, or another delegator: fine.
    later = desk.delegate(
        MIA,
        to="cai",
        role="sales_manager",
        valid_from=TODAY + timedelta(6),
        valid_until=TODAY + timedelta(9),
    ).value
    assert desk.delegations(delegate="cai") == [(later, DelegationState.SCHEDULED)]
    desk.delegate(SUE, to="cai", role="sales_manager", valid_from=TODAY, valid_until=TODAY)


# -- C. time only moves forward per record -----------------------------------------------------------


def test_progress_before_the_signing_date_is_refused_and_nothing_stored(open_desk: Any) -> None:
    desk, clock = signed(open_desk)
    desk.attach_billing_plan(
        ANN, "C-1", [MilestoneSpec(name="all", share=100, due_on=TODAY, trigger=Trigger(("L1",)))]
    )
    desk.issue_invoice(FIN, "C-1", "INV-1", amount="100.00", due_on=TODAY + timedelta(30))
    billing, events = desk.billing("C-1"), desk.events()
    clock.now = START - timedelta(days=20)
    with pytest.raises(ValidationError, match="signing date 2026-11-02") as refused:
        desk.record_progress(ANN, "C-1", "L1", 100)
    assert refused.value.field == "at"
    assert desk.billing("C-1") == billing
    assert desk.events() == events  # no progress, no milestone_reached
    with pytest.raises(ValidationError, match="signing date"):
        desk.record_payment(FIN, "C-1", "P-1", "INV-1", "1.00")  # before the invoice, too
    with pytest.raises(ValidationError, match="signing date"):
        desk.issue_invoice(FIN, "C-1", "INV-2", amount="1.00", due_on=TODAY + timedelta(30))
    with pytest.raises(ValidationError, match="signing date"):
        desk.attach_billing_plan(ANN, "C-1", [MilestoneSpec(name="all", share=100, due_on=TODAY)])
    assert desk.billing("C-1") == billing
    assert desk.events() == events


def test_progress_never_goes_back_in_time(open_desk: Any) -> None:
    desk, clock = signed(open_desk)
    clock.advance(days=2)
    desk.record_progress(ANN, "C-1", "L1", 10)
    billing, events = desk.billing("C-1"), desk.events()
    clock.now -= timedelta(days=1)  # still after the signing, but before that progress
    with pytest.raises(ValidationError, match="latest progress time") as refused:
        desk.record_progress(ANN, "C-1", "L1", 20)
    assert refused.value.field == "at"
    assert desk.billing("C-1") == billing
    assert desk.events() == events
    clock.advance(days=2)
    assert desk.record_progress(ANN, "C-1", "L1", 20).value.line("L1").percent == Decimal(20)


def test_a_clock_set_back_never_moves_a_records_time_back(open_desk: Any) -> None:
    clock = ManualClock(START)
    desk = open_desk(clock=clock)
    opportunity = Opportunity(
        id="OPP-1",
        owner="ann",
        team="east",
        amount=Money.of("1000.00", "CNY"),
        stage="quotation",
        expected_close=date(2026, 12, 15),
    )
    desk.add_opportunity(ANN, opportunity)
    synced = clock.advance(minutes=10)
    stored = desk.update_opportunity(
        ANN, desk.opportunity("OPP-1").evolve(amount=Money.of("1500.00", "CNY"))
    ).value
    assert [o.id for o in desk.opportunities(updated_since=START)] == ["OPP-1"]
    clock.now = START + timedelta(minutes=5)  # the clock goes back
    with pytest.raises(ValidationError, match="OPP-1") as refused:
        desk.update_opportunity(ANN, stored.evolve(amount=Money.of("2000.00", "CNY")))
    assert refused.value.field in ("clock", "at")
    assert desk.opportunity("OPP-1") == stored  # nothing changed
    with pytest.raises(ValidationError):
        desk.move_opportunity(ANN, "OPP-1", "won")
    assert desk.opportunity("OPP-1") == stored
    clock.now = synced + timedelta(minutes=1)  # right again: the change goes through, and is seen
    desk.update_opportunity(ANN, stored.evolve(amount=Money.of("2000.00", "CNY")))
    assert [o.id for o in desk.opportunities(updated_since=synced)] == ["OPP-1"]
    times = [e.at for e in desk.events(subject_id="OPP-1")]
    assert times == sorted(times)
    assert len(times) == 3


def test_the_approval_state_is_what_its_audit_replays(open_desk: Any) -> None:
    desk = in_review(open_desk, owner=SUE, submitter=MAX)
    approve(desk, MIA, "sales_manager")
    request = desk.approval(REQUEST)
    assert request.replayed() == request
    assert request.audit[0].owner == "sue"
    assert request.state is ApprovalState.PENDING
