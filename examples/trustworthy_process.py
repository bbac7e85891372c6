"""One sales process nobody can fool: the rules the desk keeps, each tried and refused.

Run it with ``python examples/trustworthy_process.py``: it opens an in-memory desk (pass a URL such
as ``sqlite:///crm.db`` as the first argument to use another storage) and prints each attempt
with the desk's answer. The storage guide, the quotes guide and the contracts guide quote it.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime

import attrs

import salesflow
from salesflow import Actor, Money, Opportunity, StageChange
from salesflow.analytics.performance import Target
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.contacts import Contact
from salesflow.domain.quotes import Quote, QuoteState
from salesflow.errors import SalesflowError
from salesflow.testing.storage import ManualClock

ANN = Actor("ann", roles={"sales_rep"}, teams={"east"})
MIA = Actor("mia", roles={"sales_manager"}, teams={"east"})
WIL = Actor("wil", roles={"sales_manager"}, teams={"west"})
PAT = Actor("pat", roles={"project_manager"})
FIN = Actor("fin", roles={"finance"})
LEO = Actor("leo", roles={"legal"})
ROOT = Actor("root", roles={"admin"})
TODAY = date(2026, 11, 2)


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


def attempt(what: str, command: object) -> None:
    """Run ``command`` (a zero-argument callable) and print what the desk said."""
    try:
        command()  # type: ignore[operator]
    except SalesflowError as error:
        print(f"- {what}: refused ({type(error).__name__}: {error})")
    else:
        print(f"- {what}: done")


def main(url: str = "memory://") -> None:
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    desk = salesflow.open(url, clock=clock, load_entrypoints=False)
    catalog = Catalog(
        products=[
            Product(
                sku="SRV",
                name="Service day",
                list_price=cny("1000.00"),
                floor_price=cny("500.00"),
            )
        ]
    )
    desk.update_catalog(ROOT, catalog)
    desk.add_opportunity(
        ANN,
        Opportunity(
            id="O-1",
            owner="ann",
            team="east",
            amount=cny("25000"),
            stage="quotation",
            expected_close=date(2026, 11, 20),
        ),
    )
    draft = Quote(id="Q-1", owner="ann", currency="CNY", quoted_on=TODAY, opportunity_id="O-1")

    print("Commands own the lifecycle:")
    forged = attrs.evolve(draft.add_line(catalog, "SRV", 25, discount=45), state="approved")
    attempt("store a quote already 'approved'", lambda: desk.create_quote(ANN, forged))
    backdated = Opportunity(
        id="O-2",
        owner="ann",
        team="east",
        amount=cny("8000"),
        stage="quotation",
        history=(StageChange(datetime(2026, 6, 1, tzinfo=UTC), None, "quotation"),),
    )
    attempt("add a deal 'in quotation since June'", lambda: desk.add_opportunity(ANN, backdated))

    print("Prices come from the stored catalog:")
    cheap = Catalog(products=[Product(sku="SRV", name="Service day", list_price=cny("100.00"))])
    attempt(
        "quote at a made-up list price",
        lambda: desk.create_quote(ANN, draft.add_line(cheap, "SRV", 25)),
    )

    print("Team scope:")
    quote = draft.add_line(catalog, "SRV", 25, discount=15)  # beyond a rep's 10 %
    desk.create_quote(ANN, quote)
    desk.submit_quote(ANN, "Q-1")
    request = desk.approval("quote:Q-1")
    print(f"- waiting for the west manager: {desk.waiting_for(WIL)}")
    attempt(
        "the west manager approves an east quote",
        lambda: desk.approve(WIL, request.id, role="sales_manager", version=request.version),
    )
    attempt(
        "the east manager approves it",
        lambda: desk.approve(MIA, request.id, role="sales_manager", version=request.version),
    )

    print("One quote, one contract:")
    attempt("make contract C-1", lambda: desk.create_contract(ANN, "Q-1", id="C-1"))
    attempt("make a second contract of Q-1", lambda: desk.create_contract(ANN, "Q-1", id="C-2"))
    locked = desk.quote("Q-1")
    print(f"- Q-1 is {locked.state.value}, backing {locked.contract_id}")
    attempt("edit Q-1", lambda: desk.update_quote(ANN, locked.set_discount("L1", 5)))

    print("Signing closes the deal:")
    desk.submit_contract(ANN, "C-1")
    for actor, role in ((MIA, "sales_manager"), (PAT, "project_manager"), (FIN, "finance")):
        request = desk.approval("contract:C-1")
        desk.approve(actor, request.id, role=role, version=request.version)
    request = desk.approval("contract:C-1")
    desk.approve(LEO, request.id, role="legal", version=request.version)
    contract = desk.contract("C-1")
    print(f"- C-1 is {contract.state.value}, signed on {contract.signed_on}")
    print(f"- its opportunity O-1 is now {desk.opportunity('O-1').stage!r}")
    period = salesflow.Period.month(2026, 11)
    target = Target(owner="ann", period=period, amount=cny("30000"))
    (row,) = desk.attainment([target], period=period).to_records()[:1]
    print(
        f"- ann: signed {row['signed']}, expected {row['expected']}, projected {row['projected']}"
    )

    print("No lost update:")
    desk.add_contact(ANN, Contact(id="K-1", owner="ann", phones=("+8613800000000",)))
    copy = desk.contacts()[0]
    desk.update_contact(ANN, attrs.evolve(copy, phones=(*copy.phones, "+8613900000000")))
    attempt(
        "save the same stale copy again",
        lambda: desk.update_contact(ANN, attrs.evolve(copy, name="Li Lei")),
    )
    print(f"- the contact keeps both numbers: {desk.contacts()[0].phones}")

    print("Reads for an actor:")
    print(f"- the west manager sees opportunities {[o.id for o in desk.opportunities(actor=WIL)]}")
    print(f"- and contracts {[c.id for c in desk.contracts(actor=WIL)]}")
    print(f"- the system's own read sees {[o.id for o in desk.opportunities()]}")
    assert desk.quote("Q-1").state is QuoteState.CONTRACTED
    desk.close()


if __name__ == "__main__":
    main(*sys.argv[1:2])
