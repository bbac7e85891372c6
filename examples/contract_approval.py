"""The seed article's story, end to end: a promotion contract from temporary to formal (R11-R16).

A rep sells a milk-powder brand an in-store promotion. The contract's campaign message, "replace
breast milk for babies under one", passes the sales manager but the project manager rejects it: the
project cannot be delivered with that message. The rep changes it to "nutrition for babies whose
mothers lack milk" and resubmits; the review starts again from the sales manager, the project manager
approves, then finance and legal approve (in either order) and the contract turns formal by itself.
An attempt to change it afterwards fails. Then the project runs: progress on the quote's lines makes
a milestone due, the rep invoices it, the customer pays part, and the collections list shows what is
still owed.

Run it with ``python examples/contract_approval.py``; everything happens in memory, on fixed dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import salesflow
from salesflow import Actor, Money
from salesflow.domain.billing import MilestoneSpec, Trigger
from salesflow.domain.catalog import Catalog, Category, Product
from salesflow.domain.quotes import Quote
from salesflow.errors import TransitionNotAllowedError

REP = Actor("li.wei", roles={"sales_rep"}, teams={"east"})
SALES_MANAGER = Actor("zhang.min", roles={"sales_manager"}, teams={"east"})
PROJECT_MANAGER = Actor("wang.lei", roles={"project_manager"})
FINANCE = Actor("chen.jing", roles={"finance"})
LEGAL = Actor("zhao.yan", roles={"legal"})
ADMIN = Actor("admin", roles={"admin"})


class Clock:
    """A clock the story moves forward by hand, so that every run prints the same."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def days(self, n: int) -> None:
        self.now += timedelta(days=n)


def yuan(amount: str) -> Money:
    """An amount in CNY."""
    return Money.of(amount, "CNY")


CATALOG = Catalog(
    categories=[Category(id="promotion", name="Promotion services")],
    products=[
        Product(
            sku="CAMPAIGN",
            name="Campaign design",
            category="promotion",
            list_price=yuan("120000.00"),
        ),
        Product(
            sku="EVENT", name="In-store event day", category="promotion", list_price=yuan("8000.00")
        ),
        Product(
            sku="POS",
            name="Point-of-sale displays (set)",
            category="promotion",
            list_price=yuan("450.00"),
        ),
    ],
)


def show(title: str, contract: salesflow.Contract) -> None:
    """One line of the story."""
    print(
        f"{title:<58} state={contract.state.value:<9} version={contract.version} amount={contract.amount}"
    )


def main() -> None:
    """Tell the story."""
    clock = Clock()
    desk = salesflow.open("memory://", clock=clock, load_entrypoints=False)
    desk.update_catalog(ADMIN, CATALOG)

    # The quote: within the rep's authority (5 % off the displays), so approved at once.
    quote = (
        Quote(id="Q-2026-118", owner=REP.id, currency="CNY", quoted_on=date(2026, 11, 2))
        .add_line(CATALOG, "CAMPAIGN", 1)
        .add_line(CATALOG, "EVENT", 12)
        .add_line(CATALOG, "POS", 40, discount=5)
    )
    desk.create_quote(REP, quote)
    desk.submit_quote(REP, quote.id)

    # The temporary contract (临时合同): the quote moves onto it; the amount is its lines' sum.
    contract = desk.create_contract(
        REP,
        quote.id,
        id="C-2026-031",
        account="Happy Baby Dairy",
        team="east",
        terms="Campaign message: 'replace breast milk for babies under one'",
    ).value
    show("1. temporary contract drafted from the quote", contract)

    desk.submit_contract(REP, contract.id)
    request = desk.approval("contract:C-2026-031")
    show("2. submitted for review", desk.contract(contract.id))
    clock.days(1)
    desk.approve(SALES_MANAGER, request.id, role="sales_manager", version=request.version)
    request = desk.approval(request.id)
    print(f"   sales manager approved; now waiting for {', '.join(request.awaiting_roles)}")
    clock.days(1)
    desk.reject(
        PROJECT_MANAGER,
        request.id,
        role="project_manager",
        version=request.version,
        reason="The message claims formula replaces breast milk for infants; we cannot run that campaign.",
    )
    contract = desk.contract(contract.id)
    show("3. rejected by the project manager, back with the rep", contract)
    print(f"   reason: {contract.rejection_reason}")

    # The rep changes the message and resubmits: the review starts again at step one.
    clock.days(1)
    desk.revise_contract(
        REP, contract.id, terms="Campaign message: 'nutrition for babies whose mothers lack milk'"
    )
    desk.submit_contract(REP, contract.id)
    show("4. message changed and resubmitted", desk.contract(contract.id))
    for actor, role in (
        (SALES_MANAGER, "sales_manager"),
        (PROJECT_MANAGER, "project_manager"),
        (LEGAL, "legal"),  # finance and legal decide in one step, in either order
        (FINANCE, "finance"),
    ):
        clock.days(1)
        request = desk.approval(request.id)
        desk.approve(actor, request.id, role=role, version=request.version)
        print(f"   {role} approved ({actor.id})")
    contract = desk.contract(contract.id)
    show("5. every role approved: the contract turned formal", contract)
    print(f"   signed on {contract.signed_on}")

    # The customer wants fewer event days: the signed contract is frozen, and so is its quote.
    stored = desk.quote(quote.id)
    event_line = next(item for item in stored.items if item.sku == "EVENT")
    try:
        desk.update_quote(REP, stored.set_quantity(event_line.id, 6))
    except TransitionNotAllowedError as error:
        print(f"6. changing the amount after signing is refused: {error}")
    print(
        f"   the contract holds {desk.contract(contract.id).amount}; its quote is {desk.quote(quote.id).state}"
    )

    print("\nAudit trail of the review:")
    for entry in desk.approval(request.id).audit:
        print(
            f"   {entry.at:%Y-%m-%d} {entry.actor:<10} {entry.action.value:<9} {entry.role or '':<16} {entry.comment or ''}"
        )

    # Execution and collections (R14, R16): half when the campaign is designed, half after the events.
    desk.attach_billing_plan(
        REP,
        contract.id,
        [
            MilestoneSpec(
                name="design", share=50, due_on=date(2026, 12, 15), trigger=Trigger(lines=("L1",))
            ),
            MilestoneSpec(name="events", share=50, due_on=date(2027, 1, 31)),
        ],
    )
    clock.days(10)
    progress = desk.record_progress(REP, contract.id, "L1", 100)
    for event in progress.events:
        if event.name == "milestone_reached":
            print(
                f"\nMilestone '{event.data['milestone']}' reached: {event.data['owner']} should invoice {event.data['amount']} {event.data['currency']}"
            )
    desk.issue_invoice(
        FINANCE, contract.id, "INV-0042", milestone="design", due_on=date(2026, 12, 31)
    )
    clock.days(20)
    desk.record_payment(FINANCE, contract.id, "PAY-0007", "INV-0042", yuan("50000.00"))
    print("\nCollections list (未开票/未到款), as of 2027-02-15:")
    print(desk.receivables(as_of=date(2027, 2, 15)))


if __name__ == "__main__":
    main()
