"""Issue 12, item 4: the invariants hold at the port, not only in the desk.

A caller with a unit of work (``desk.storage.transaction()``) bypasses every command. Each reported
attack is tried that way on every backend (memory, SQLite, PostgreSQL, MariaDB), refused with the
error the port documents, and storage is left exactly as it was. And a request corrupted where the
port cannot see it (written to the database directly) is refused by the desk when it loads it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest

from salesflow import Actor, Money, Opportunity
from salesflow.adapters.sql.storage import SqlStorage
from salesflow.adapters.storage_memory import MemoryStorage
from salesflow.domain.approvals import ApprovalRequest, ApprovalState, Decision
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.contracts import Contract, ContractState
from salesflow.domain.quotes import Quote
from salesflow.errors import (
    ContractLockedError,
    NotAuthorizedError,
    StorageError,
    TransitionNotAllowedError,
    ValidationError,
)
from salesflow.storage import codec
from salesflow.testing.storage import ManualClock

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DAY = START.date()
ANN = Actor("ann", roles={"sales_rep"}, teams={"east"})
MIA = Actor("mia", roles={"sales_manager"}, teams={"east"})
PAT = Actor("pat", roles={"project_manager"})
FIN = Actor("fin", roles={"finance"})
LEO = Actor("leo", roles={"legal"})
ROOT = Actor("root", roles={"admin"})
STEPS = ((MIA, "sales_manager"), (PAT, "project_manager"), (FIN, "finance"), (LEO, "legal"))
CATALOG = Catalog(
    products=[Product(sku="SVC", name="Service", list_price=Money.of("1000.00", "CNY"))]
)
REQUEST = "contract:C"


def in_review(open_desk: Any) -> Any:
    """A desk with ann's contract C submitted for review (its request pending at step one)."""
    desk = open_desk(clock=ManualClock(START))
    desk.update_catalog(ROOT, CATALOG)
    quote = Quote(id="Q", owner="ann", currency="CNY", quoted_on=DAY).add_line(CATALOG, "SVC", 3)
    desk.create_quote(ANN, quote)
    desk.submit_quote(ANN, "Q")
    desk.create_contract(ANN, "Q", id="C", team="east")
    desk.submit_contract(ANN, "C")
    return desk


def approve(desk: Any, actor: Actor, role: str) -> ApprovalRequest:
    version = desk.approval(REQUEST).version
    request: ApprovalRequest = desk.approve(actor, REQUEST, role=role, version=version).value
    return request


def formal(open_desk: Any) -> Any:
    """A desk whose contract C turned formal today."""
    desk = in_review(open_desk)
    for actor, role in STEPS:
        approve(desk, actor, role)
    assert desk.contract("C").state is ContractState.FORMAL
    return desk


def snapshot(desk: Any) -> dict[str, Any]:
    """Everything the attacks could have changed."""
    return {
        "contracts": desk.contracts(),
        "quotes": desk.quotes(),
        "opportunities": desk.opportunities(),
        "billings": [desk.billing(c.id) for c in desk.contracts() if c.is_signed],
        "events": len(desk.events()),
    }


def requests(desk: Any) -> list[ApprovalRequest]:
    """The stored approval requests, read through the port (no replay by the desk)."""
    with desk.storage.transaction() as uow:
        return list(uow.approvals.query())


# -- 1. a formal contract cannot be changed through the port -----------------------------------------


def _other_amount(contract: Contract) -> Contract:
    bigger = (
        Quote(id="Q", owner="ann", currency="CNY", quoted_on=DAY)
        .add_line(CATALOG, "SVC", 30)
        .submit_for_approval()
        .approve()
    )
    return attrs.evolve(contract, quote=bigger, amount=bigger.total)


@pytest.mark.parametrize(
    ("changed", "change"),
    [
        ("terms", lambda c: attrs.evolve(c, terms="delivery whenever")),
        ("owner", lambda c: attrs.evolve(c, owner="mallory")),
        ("signed_on", lambda c: attrs.evolve(c, signed_on=c.signed_on - timedelta(days=30))),
        ("amount", _other_amount),
        ("state", lambda c: attrs.evolve(c, state=ContractState.DRAFT, signed_on=None)),
    ],
)
def test_a_formal_contract_cannot_be_saved_changed(
    open_desk: Any, changed: str, change: Any
) -> None:
    desk = formal(open_desk)
    before = snapshot(desk)
    with pytest.raises(ContractLockedError) as refused, desk.storage.transaction() as uow:
        uow.contracts.save(change(uow.contracts.get("C")))
    assert refused.value.contract == "C"
    assert refused.value.state == "formal"
    assert changed in str(refused.value)
    assert snapshot(desk) == before


def test_a_formal_contract_may_still_be_terminated_or_expire_keeping_its_content(
    open_desk: Any,
) -> None:
    desk = formal(open_desk)
    with desk.storage.transaction() as uow:
        stored: Contract = uow.contracts.get("C")
        uow.contracts.save(stored)  # unchanged: nothing to refuse
        ended = uow.contracts.save(stored.expire(DAY + timedelta(days=365)))
    assert desk.contract("C") == ended
    assert ended.content_hash() == stored.content_hash()
    # Ended, it is just as frozen: no change, not even back to formal or a new end date.
    for change in (
        lambda c: attrs.evolve(c, state=ContractState.FORMAL, ended_on=None),
        lambda c: attrs.evolve(c, ended_on=c.ended_on + timedelta(days=1)),
        lambda c: attrs.evolve(c, terms="other terms"),
    ):
        with pytest.raises(ContractLockedError), desk.storage.transaction() as uow:
            uow.contracts.save(change(uow.contracts.get("C")))
    assert desk.contract("C") == ended


def test_a_termination_that_also_changes_the_content_is_refused(open_desk: Any) -> None:
    desk = formal(open_desk)
    before = snapshot(desk)
    with pytest.raises(ContractLockedError, match="terms"), desk.storage.transaction() as uow:
        stored = uow.contracts.get("C")
        uow.contracts.save(attrs.evolve(stored.terminate(DAY, "breach"), terms="rewritten"))
    assert snapshot(desk) == before


# -- 2. an approval audit only grows ------------------------------------------------------------------


def test_an_approval_audit_cannot_be_cut_short(open_desk: Any) -> None:
    desk = in_review(open_desk)
    approve(desk, MIA, "sales_manager")
    approve(desk, PAT, "project_manager")
    stored = desk.approval(REQUEST)
    assert len(stored.audit) == 3
    before = requests(desk)
    cut = attrs.evolve(stored.origin(), audit=stored.audit[:1])
    with pytest.raises(ValidationError) as refused, desk.storage.transaction() as uow:
        uow.approvals.get(REQUEST)
        uow.approvals.save(cut.replayed())  # even a consistent request, if its audit shrank
    assert refused.value.field == "audit"
    with pytest.raises(ValidationError) as refused, desk.storage.transaction() as uow:
        uow.approvals.get(REQUEST)
        uow.approvals.save(attrs.evolve(stored, audit=stored.audit[:1]))
    assert refused.value.field == "audit"
    assert "approval request 'contract:C'" in str(refused.value)
    assert requests(desk) == before
    # The desk goes on from the stored request, with its whole audit.
    approve(desk, FIN, "finance")
    assert len(desk.approval(REQUEST).audit) == 4


def test_an_audit_entry_cannot_be_edited(open_desk: Any) -> None:
    desk = in_review(open_desk)
    approve(desk, MIA, "sales_manager")
    stored = desk.approval(REQUEST)
    before = requests(desk)
    forged_entry = attrs.evolve(stored.audit[1], actor="max")  # someone else approved, it says
    with pytest.raises(ValidationError) as refused, desk.storage.transaction() as uow:
        uow.approvals.get(REQUEST)
        uow.approvals.save(attrs.evolve(stored, audit=(stored.audit[0], forged_entry)))
    assert refused.value.field == "audit"
    assert requests(desk) == before


# -- 3. forged decisions never make a contract formal ----------------------------------------------


def _forged(request: ApprovalRequest) -> ApprovalRequest:
    """``request`` (pending at step one) with made-up decisions for every role but legal, waiting
    at the last step: one real approval by legal would then complete it."""
    steps = request.workflow.steps
    decisions = tuple(
        Decision(step=step.name, role=role, actor=f"ghost-{role}", at=START)
        for step in steps
        for role in step.roles
        if role != "legal"
    )
    return attrs.evolve(request, decisions=decisions, step_index=len(steps) - 1)


def test_forged_decisions_are_refused_at_the_port(open_desk: Any) -> None:
    desk = in_review(open_desk)
    before, stored_before = snapshot(desk), requests(desk)
    with pytest.raises(ValidationError) as refused, desk.storage.transaction() as uow:
        uow.approvals.save(_forged(uow.approvals.get(REQUEST)))
    assert refused.value.field == "audit"
    assert "decisions" in str(refused.value)
    assert (snapshot(desk), requests(desk)) == (before, stored_before)
    # The real chain still starts at step one: legal cannot complete it.
    with pytest.raises((NotAuthorizedError, TransitionNotAllowedError)):
        approve(desk, LEO, "legal")
    assert desk.contract("C").state is ContractState.IN_REVIEW


def test_a_new_request_must_replay_from_its_own_audit(open_desk: Any) -> None:
    desk = in_review(open_desk)
    stored = desk.approval(REQUEST)
    before = requests(desk)
    forged = attrs.evolve(
        _forged(stored), id="contract:C#2", state=ApprovalState.APPROVED, step_index=3
    )
    with pytest.raises(ValidationError) as refused, desk.storage.transaction() as uow:
        uow.approvals.add(forged)
    assert refused.value.field == "audit"
    with pytest.raises(ValidationError), desk.storage.transaction() as uow:
        uow.approvals.add_many([attrs.evolve(forged, audit=())])
    assert requests(desk) == before


def _smuggle(desk: Any, request: ApprovalRequest) -> None:
    """Write ``request`` under the port, as a database administrator (or a bug) could."""
    storage = desk.storage
    if isinstance(storage, MemoryStorage):
        with storage.transaction():
            stored = storage._read("approvals", request.id)
            assert stored is not None
            assert storage._write("approvals", attrs.evolve(stored, body=request), stored.revision)
        return
    assert isinstance(storage, SqlStorage)
    table = storage.tables.documents["approvals"]
    with storage.transaction() as uow:
        uow.connection.execute(
            table.update().where(table.c.id == request.id).values(body=codec.dumps(request))
        )


def test_the_desk_refuses_a_request_corrupted_below_the_port(open_desk: Any) -> None:
    desk = in_review(open_desk)
    version = desk.approval(REQUEST).version
    _smuggle(desk, _forged(desk.approval(REQUEST)))  # legal's approval would now complete it
    before = snapshot(desk)
    for read in (
        lambda: desk.approve(LEO, REQUEST, role="legal", version=version),
        lambda: desk.reject(MIA, REQUEST, role="sales_manager", version=version, reason="no"),
        lambda: desk.approval(REQUEST),
        lambda: desk.approvals(),
        lambda: desk.approvals(actor=MIA, subject_kind="contract"),
        lambda: desk.waiting_for(LEO),
        lambda: desk.waiting_for("legal"),
    ):
        with pytest.raises(StorageError, match="approval request 'contract:C'"):
            read()
    assert snapshot(desk) == before
    assert desk.contract("C").state is ContractState.IN_REVIEW


# -- 4. stage history only grows (as before), through the desk's storage too -------------------------


def test_stage_history_cannot_be_rewritten_through_the_port(open_desk: Any) -> None:
    desk = open_desk(clock=ManualClock(START))
    opportunity = Opportunity(
        id="O-1",
        owner="ann",
        team="east",
        amount=Money.of("1000", "CNY"),
        stage="needs_analysis",
        expected_close=date(2026, 12, 1),
    )
    desk.add_opportunity(ANN, opportunity)
    desk.move_opportunity(ANN, opportunity.id, "quotation")
    stored = desk.opportunity(opportunity.id)
    with pytest.raises(ValidationError) as refused, desk.storage.transaction() as uow:
        uow.opportunities.save(attrs.evolve(stored, history=()))
    assert refused.value.field == "history"
    assert desk.opportunity(opportunity.id) == stored


# -- nothing signed or audited disappears, and nothing arrives signed ---------------------------------


def test_a_signed_contract_and_an_approval_request_are_never_deleted(open_desk: Any) -> None:
    desk = formal(open_desk)
    before = snapshot(desk)
    with pytest.raises(ContractLockedError), desk.storage.transaction() as uow:
        uow.contracts.get("C")
        uow.contracts.delete("C")
    with pytest.raises(ValidationError) as info, desk.storage.transaction() as uow:
        uow.approvals.get(REQUEST)
        uow.approvals.delete(REQUEST)
    assert info.value.field == "audit"
    assert snapshot(desk) == before


def test_a_contract_cannot_be_added_already_formal(open_desk: Any) -> None:
    desk = formal(open_desk)
    forged = attrs.evolve(desk.contract("C"), id="C-FORGED")
    before = snapshot(desk)
    with pytest.raises(ValidationError) as info, desk.storage.transaction() as uow:
        uow.contracts.add(forged)
    assert info.value.field == "state"
    assert snapshot(desk) == before
