"""Contracts and collections on the desk, and the seed's story as an executable example."""

from __future__ import annotations

import runpy
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import salesflow
from salesflow import Actor, Money
from salesflow.analytics.performance import Target
from salesflow.domain.billing import MilestoneSpec, Trigger
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.contracts import ContractState
from salesflow.domain.quotes import Quote
from salesflow.errors import (
    ContractLockedError,
    NotAuthorizedError,
    TransitionNotAllowedError,
    ValidationError,
)
from salesflow.testing.storage import ManualClock

ROOT = Path(__file__).resolve().parent.parent
ANN = Actor("ann", roles={"sales_rep"}, teams={"east"})
MIA = Actor("mia", roles={"sales_manager"}, teams={"east"})
PAT = Actor("pat", roles={"project_manager"})
FIN = Actor("fin", roles={"finance"})
LEO = Actor("leo", roles={"legal"})
ADMIN = Actor("root", roles={"admin"})
CATALOG = Catalog(
    products=[
        Product(sku="SVC", name="Service", list_price=Money.of("1000.00", "CNY")),
        Product(sku="HW", name="Hardware", list_price=Money.of("333.33", "CNY")),
    ]
)


@pytest.fixture(params=["memory", "sqlite"])
def desk(request: pytest.FixtureRequest, tmp_path: Path) -> salesflow.SalesDesk:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'contracts.db'}"
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    desk = salesflow.open(url, clock=clock, load_entrypoints=False)
    desk.update_catalog(ADMIN, CATALOG)
    quote = Quote(id="Q-1", owner="ann", currency="CNY", quoted_on=date(2026, 11, 2))
    desk.create_quote(ANN, quote.add_line(CATALOG, "SVC", 3).add_line(CATALOG, "HW", 7, discount=5))
    desk.submit_quote(ANN, "Q-1")
    return desk


def approve_all(desk: salesflow.SalesDesk, request: str) -> None:
    for actor, role in (
        (MIA, "sales_manager"),
        (PAT, "project_manager"),
        (FIN, "finance"),
        (LEO, "legal"),
    ):
        desk.approve(actor, request, role=role, version=desk.approval(request).version)


def signed(desk: salesflow.SalesDesk) -> salesflow.Contract:
    desk.create_contract(ANN, "Q-1", id="C-1", team="east")
    desk.submit_contract(ANN, "C-1")
    approve_all(desk, "contract:C-1")
    return desk.contract("C-1")


def test_the_contract_amount_is_the_exact_sum_of_the_quote_lines(desk: salesflow.SalesDesk) -> None:
    contract = desk.create_contract(ANN, "Q-1", id="C-1").value
    quote = desk.quote("Q-1")
    assert contract.amount == Money.sum(line.net + line.tax for line in quote.lines)
    assert contract.amount == quote.total
    assert contract.state is ContractState.DRAFT


def test_only_an_approved_quote_becomes_a_contract(desk: salesflow.SalesDesk) -> None:
    draft = Quote(id="Q-2", owner="ann", currency="CNY", quoted_on=date(2026, 11, 2)).add_line(
        CATALOG, "SVC", 1
    )
    desk.create_quote(ANN, draft)
    with pytest.raises(TransitionNotAllowedError):
        desk.create_contract(ANN, "Q-2", id="C-2")
    assert desk.contracts() == []


def test_formal_only_after_every_role_and_then_frozen(desk: salesflow.SalesDesk) -> None:
    desk.create_contract(ANN, "Q-1", id="C-1")
    result = desk.submit_contract(ANN, "C-1")
    assert [e.name for e in result.events] == [
        "contract_submitted",
        "approval_submitted",
        "approval_requested",
    ]
    assert result.events[-1].data["roles"] == ["sales_manager"]
    with pytest.raises(ContractLockedError, match="in_review"):
        desk.revise_contract(ANN, "C-1", terms="new terms")
    request = "contract:C-1"
    for actor, role in ((MIA, "sales_manager"), (PAT, "project_manager"), (FIN, "finance")):
        desk.approve(actor, request, role=role, version=desk.approval(request).version)
        assert desk.contract("C-1").state is ContractState.IN_REVIEW  # legal has not approved yet
    last = desk.approve(LEO, request, role="legal", version=desk.approval(request).version)
    assert [e.name for e in last.events][-2:] == ["approval_completed", "contract_formal"]
    contract = desk.contract("C-1")
    assert (contract.state, contract.signed_on) == (ContractState.FORMAL, date(2026, 11, 2))
    with pytest.raises(ContractLockedError, match="formal"):
        desk.revise_contract(ANN, "C-1", terms="new terms")
    billing = desk.billing("C-1")  # opened with the signature
    assert billing.amount == contract.amount


def test_a_rejection_returns_a_draft_with_the_reason_and_restarts_at_step_one(
    desk: salesflow.SalesDesk,
) -> None:
    desk.create_contract(ANN, "Q-1", id="C-1")
    desk.submit_contract(ANN, "C-1")
    desk.approve(MIA, "contract:C-1", role="sales_manager", version=1)
    rejected = desk.reject(
        PAT, "contract:C-1", role="project_manager", version=2, reason="cannot deliver by March"
    )
    assert rejected.events[-1].name == "contract_rejected"
    contract = desk.contract("C-1")
    assert (contract.state, contract.rejection_reason) == (
        ContractState.DRAFT,
        "cannot deliver by March",
    )
    desk.revise_contract(ANN, "C-1", terms="delivery by May")
    desk.submit_contract(ANN, "C-1")
    request = desk.approval("contract:C-1")
    assert (request.cycle, request.awaiting_roles) == (2, ("sales_manager",))
    with pytest.raises(NotAuthorizedError):  # a rep holds no reviewing role
        desk.approve(ANN, "contract:C-1", role="sales_manager", version=request.version)


def test_the_submitter_may_withdraw_a_contract_in_review(desk: salesflow.SalesDesk) -> None:
    desk.create_contract(ANN, "Q-1", id="C-1")
    desk.submit_contract(ANN, "C-1")
    with pytest.raises(TransitionNotAllowedError):
        desk.submit_contract(ANN, "C-1")
    desk.withdraw(ANN, "contract:C-1", version=1)
    assert desk.contract("C-1").state is ContractState.DRAFT


def test_milestones_invoices_payments_and_the_receivables_list(desk: salesflow.SalesDesk) -> None:
    contract = signed(desk)
    plan = [
        MilestoneSpec(name="kick-off", share=Decimal("33.33"), due_on=date(2026, 11, 30)),
        MilestoneSpec(
            name="delivery",
            share=Decimal("66.67"),
            due_on=date(2027, 1, 31),
            trigger=Trigger(lines=("L2",)),
        ),
    ]
    desk.attach_billing_plan(ANN, "C-1", plan)
    billing = desk.billing("C-1")
    assert Money.sum(m.amount for m in billing.milestones) == contract.amount
    reached = desk.record_progress(ANN, "C-1", "L2", 100)
    (event,) = [e for e in reached.events if e.name == "milestone_reached"]
    assert (event.data["milestone"], event.data["owner"]) == ("delivery", "ann")
    with pytest.raises(ValidationError):
        desk.record_progress(ANN, "C-1", "L2", 50)  # progress never goes down by mistake
    desk.correct_progress(ANN, "C-1", "L2", 50, reason="one site not installed")
    assert desk.billing("C-1").corrections[-1].reason == "one site not installed"
    desk.issue_invoice(FIN, "C-1", "INV-1", milestone="kick-off", due_on=date(2026, 11, 30))
    with pytest.raises(ValidationError):
        desk.record_payment(FIN, "C-1", "PAY-X", "INV-1", contract.amount)  # more than invoiced
    desk.record_payment(FIN, "C-1", "PAY-1", "INV-1", Money.of("100.00", "CNY"))
    with pytest.raises(NotAuthorizedError):
        desk.record_payment(
            Actor("bob", roles={"sales_rep"}), "C-1", "PAY-2", "INV-1", Money.of("1", "CNY")
        )
    rows = desk.receivables(as_of=date(2026, 12, 31)).to_records()
    (row,) = rows
    invoiced = desk.billing("C-1").invoiced.amount
    assert row["invoiced"] == invoiced
    assert row["paid"] == Decimal("100.00")
    assert row["uninvoiced"] + row["unpaid"] == contract.amount.amount - Decimal("100.00")
    assert desk.receivables(as_of=date(2026, 12, 31), not_paid=True).to_records() == rows


def test_formal_contracts_feed_attainment(desk: salesflow.SalesDesk) -> None:
    contract = signed(desk)
    period = salesflow.Period.month(2026, 11)
    target = Money.of("10000", "CNY")
    result = desk.attainment([Target(owner="ann", period=period, amount=target)], period=period)
    (row,) = [r for r in result.to_records() if r["name"] == "ann"]
    assert row["signed"] == contract.amount.amount  # signed on 2026-11-02, in the period
    assert row["gap"] == max(target.amount - contract.amount.amount, Decimal(0))
    later = desk.attainment([], period=salesflow.Period.month(2026, 12))
    assert all(r["signed"] == 0 for r in later.to_records())


def test_the_seed_story_runs_as_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["contract_approval.py"])
    runpy.run_path(str(ROOT / "examples" / "contract_approval.py"), run_name="__main__")
    out = capsys.readouterr().out
    steps = [line for line in out.splitlines() if line[:2] in {"1.", "2.", "3.", "4.", "5.", "6."}]
    assert [s.split("state=")[1].split()[0] for s in steps[:5]] == [
        "draft",
        "in_review",
        "draft",
        "in_review",
        "formal",
    ]
    assert "rejected by the project manager" in steps[2]
    assert "changing the amount after signing is refused" in steps[5]
    audit = out.split("Audit trail of the review:")[1].split("Milestone")[0]
    actions = [line.split()[2] for line in audit.strip().splitlines()]
    assert actions == [
        "submit",
        "approve",
        "reject",
        "resubmit",
        "approve",
        "approve",
        "approve",
        "approve",
    ]
    assert "Milestone 'design' reached: li.wei should invoice" in out
    assert "C-2026-031" in out.split("Collections list")[1]
