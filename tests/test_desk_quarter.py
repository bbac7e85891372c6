"""A quarter in the life of a sales team, through the desk, on every backend (issue 11).

Two teams with a manager each, reps, a director, a project manager, finance and legal live through
the fourth quarter of 2026: opportunities are created and moved, quotes are approved within
authority, routed and forbidden, the seed's milk-powder contract is rejected and resubmitted,
contracts turn formal, deals are won and lost with reasons, and progress, invoices and payments are
recorded. At each step the figures a manager reads are asserted against numbers computed by hand
(shown next to each assertion).

The default stage plan: initial_contact 10 %, needs_analysis 30 %, intent_confirmed 50 %,
quotation 70 %, won 100 %, lost 0 %; the forecast counts stages of 70 % and more.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from salesflow import Actor, Money, Period
from salesflow.analytics.performance import Target
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.contracts import ContractState
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.quotes import Quote, QuoteState
from salesflow.errors import ForbiddenDiscountError, NotAuthorizedError
from salesflow.testing.cast import ANN, BOB, DAN, FIN, LEO, MIA, PAT, ROOT, WES, WIL
from salesflow.testing.storage import ManualClock

TEAMS = {"east": ["ann", "bob"], "west": ["wes"]}
OCT, NOV = Period.month(2026, 10), Period.month(2026, 11)


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


CATALOG = Catalog(
    products=[
        Product(sku="SRV", name="Service day", list_price=cny("1000.00"), floor_price=cny("500")),
    ]
)


def deal(id: str, owner: str, team: str, amount: str, stage: str, close: date) -> Opportunity:
    return Opportunity(
        id=id,
        owner=owner,
        team=team,
        amount=cny(amount),
        stage=stage,
        industry="dairy" if team == "east" else "retail",
        expected_close=close,
    )


def per_owner(desk: Any, as_of: date, **options: Any) -> dict[str, dict[str, Decimal]]:
    """The forecast as ``{owner: {bucket label: amount}}``."""
    table = desk.forecast(as_of=as_of, **options).table()
    return {
        owner: {str(bucket): money.amount for bucket, money in cells.items()}
        for owner, cells in table.items()
    }


def attainment_rows(desk: Any, period: Period, targets: list[Target]) -> dict[str, tuple[Any, ...]]:
    rows = desk.attainment(targets, period=period, teams=TEAMS).to_records()
    return {
        r["name"]: (r["target"], r["signed"], r["gap"], r["expected"], r["projected"]) for r in rows
    }


def decide(desk: Any, request_id: str, *steps: tuple[Actor, str]) -> None:
    for actor, role in steps:
        request = desk.approval(request_id)
        desk.approve(actor, request_id, role=role, version=request.version)


def new_quote(id: str, owner: str, opportunity: str, days: int, discount: int) -> Quote:
    draft = Quote(
        id=id, owner=owner, currency="CNY", quoted_on=date(2026, 10, 1), opportunity_id=opportunity
    )
    return draft.add_line(CATALOG, "SRV", days, discount=discount)


def test_a_quarter_in_the_life_of_a_sales_team(open_desk: Any) -> None:
    clock = ManualClock(datetime(2026, 10, 1, 9, 0, tzinfo=UTC))
    desk = open_desk(clock=clock)
    desk.update_catalog(ROOT, CATALOG)

    # -- 1 October: the pipeline ---------------------------------------------------------------
    for actor, opportunity in (
        (ANN, deal("E1", "ann", "east", "25000", "quotation", date(2026, 10, 20))),
        (ANN, deal("E2", "ann", "east", "10000", "intent_confirmed", date(2026, 11, 15))),
        (BOB, deal("E3", "bob", "east", "40000", "needs_analysis", date(2026, 11, 10))),
        (WES, deal("W1", "wes", "west", "30000", "quotation", date(2026, 10, 25))),
        (WES, deal("W2", "wes", "west", "8000", "needs_analysis", date(2026, 12, 1))),
    ):
        desk.add_opportunity(actor, opportunity)
    clock.advance(days=1)
    desk.move_opportunity(BOB, "E3", "quotation")  # bob's deal reaches 70 %: it now counts
    # ann: E1 25,000 x 70 % = 17,500 in October; E2 at 50 % is below the threshold.
    # bob: E3 40,000 x 70 % = 28,000 in November. wes: W1 30,000 x 70 % = 21,000 in October.
    assert per_owner(desk, date(2026, 10, 2)) == {
        "ann": {"2026-10": Decimal("17500.00")},
        "bob": {"2026-11": Decimal("28000.00")},
        "wes": {"2026-10": Decimal("21000.00")},
    }
    fc = desk.forecast(as_of=date(2026, 10, 2))
    assert (fc.this_month, fc.next_month) == (cny("38500.00"), cny("28000.00"))
    assert desk.forecast(as_of=date(2026, 10, 2), actor=WIL).total == cny("21000.00")
    funnel = {
        (r["owner"], r["stage"]): r["share"]
        for r in desk.funnel().to_records()
        if r["owner"] != "(all)" and r["count"]
    }
    # ann: 1 at quotation, 1 at intent_confirmed -> 50/50; bob: 1 -> 100; wes: 1 + 1 -> 50/50.
    assert funnel == {
        ("ann", "intent_confirmed"): Decimal("50.0"),
        ("ann", "quotation"): Decimal("50.0"),
        ("bob", "quotation"): Decimal("100.0"),
        ("wes", "needs_analysis"): Decimal("50.0"),
        ("wes", "quotation"): Decimal("50.0"),
    }

    # -- quotes: within authority, routed, forbidden -------------------------------------------------
    desk.create_quote(ANN, new_quote("Q-E1", "ann", "E1", 25, 0))  # 25 x 1,000 = 25,000.00
    assert desk.submit_quote(ANN, "Q-E1").value.state is QuoteState.APPROVED
    desk.create_quote(BOB, new_quote("Q-E3", "bob", "E3", 40, 15))  # 40,000 - 15 % = 34,000.00
    desk.submit_quote(BOB, "Q-E3")
    assert [r.id for r in desk.waiting_for(MIA)] == ["quote:Q-E3"]
    assert desk.waiting_for(WIL) == ()
    with pytest.raises(NotAuthorizedError):
        decide(desk, "quote:Q-E3", (WIL, "sales_manager"))
    decide(desk, "quote:Q-E3", (MIA, "sales_manager"))
    desk.create_quote(WES, new_quote("Q-W1", "wes", "W1", 30, 45))
    with pytest.raises(ForbiddenDiscountError):
        desk.submit_quote(WES, "Q-W1")  # 45 %: beyond every role, below the floor
    stored = desk.quote("Q-W1")
    desk.update_quote(WES, stored.set_discount("L1", 22))  # 30,000 - 22 % = 23,400.00
    desk.submit_quote(WES, "Q-W1")
    assert desk.approval("quote:Q-W1").awaiting_roles == ("sales_director",)
    decide(desk, "quote:Q-W1", (DAN, "sales_director"))
    assert {q.id: q.total for q in desk.quotes() if q.state is QuoteState.APPROVED} == {
        "Q-E1": cny("25000.00"),
        "Q-E3": cny("34000.00"),
        "Q-W1": cny("23400.00"),
    }

    # -- the milk-powder contract: rejected by the project manager, revised, resubmitted ------------
    clock.advance(days=3)  # 5 October
    desk.create_contract(ANN, "Q-E1", id="C-E1", terms="Formula replaces breast milk")
    desk.submit_contract(ANN, "C-E1")
    decide(desk, "contract:C-E1", (MIA, "sales_manager"))
    request = desk.approval("contract:C-E1")
    desk.reject(
        PAT, request.id, role="project_manager", version=request.version, reason="Misleading claim"
    )
    assert desk.contract("C-E1").state is ContractState.DRAFT
    desk.revise_contract(ANN, "C-E1", terms="Nutrition for babies whose mothers lack milk")
    desk.submit_contract(ANN, "C-E1")
    clock.advance(days=5)  # 10 October: signed
    decide(
        desk,
        "contract:C-E1",
        (MIA, "sales_manager"),
        (PAT, "project_manager"),
        (FIN, "finance"),
        (LEO, "legal"),
    )
    assert desk.contract("C-E1").signed_on == date(2026, 10, 10)
    assert desk.opportunity("E1").stage == "won"

    clock.advance(
        days=10
    )  # 20 October: west signs; east's second contract waits for the project manager
    desk.create_contract(WES, "Q-W1", id="C-W1")
    desk.submit_contract(WES, "C-W1")
    decide(
        desk,
        "contract:C-W1",
        (WIL, "sales_manager"),
        (PAT, "project_manager"),
        (LEO, "legal"),
        (FIN, "finance"),
    )
    desk.create_contract(BOB, "Q-E3", id="C-E3")
    desk.submit_contract(BOB, "C-E3")
    decide(desk, "contract:C-E3", (MIA, "sales_manager"))
    assert [r.id for r in desk.waiting_for(PAT)] == ["contract:C-E3"]

    # -- deals lost, with reasons ---------------------------------------------------------------------
    desk.move_opportunity(ANN, "E2", "lost", reason="price", note="went with a cheaper brand")
    desk.move_opportunity(WES, "W2", "lost", reason="competitor")
    reasons = {
        (r["owner"], r["reason"]): (r["count"], r["amount"])
        for r in desk.lost_reasons().to_records()
        if r["owner"] != "(all)" and r["count"]
    }
    assert reasons == {("ann", "price"): (1, Decimal(10000)), ("wes", "competitor"): (1, 8000)}

    # -- what October and November look like on 21 October ------------------------------------------
    as_of = date(2026, 10, 21)
    # Won deals no longer count as expected: only bob's E3 (28,000 in November) is left.
    assert per_owner(desk, as_of) == {"bob": {"2026-11": Decimal("28000.00")}}
    targets = [
        Target(owner="ann", period=OCT, amount=cny("20000")),
        Target(owner="bob", period=OCT, amount=cny("30000")),
        Target(owner="wes", period=OCT, amount=cny("30000")),
    ]
    # (target, signed, gap, expected, projected); gap = max(target - signed, 0).
    october = attainment_rows(desk, OCT, targets)
    assert october["ann"] == (
        Decimal("20000"),
        Decimal("25000.00"),
        Decimal("0"),
        Decimal("0"),
        Decimal("25000.00"),
    )
    assert october["wes"] == (
        Decimal("30000"),
        Decimal("23400.00"),
        Decimal("6600.00"),
        Decimal("0"),
        Decimal("23400.00"),
    )
    assert october["bob"][1:] == (Decimal("0"), Decimal("30000"), Decimal("0"), Decimal("0"))
    november = attainment_rows(desk, NOV, [Target(owner="bob", period=NOV, amount=cny("30000"))])
    assert november["bob"] == (
        Decimal("30000"),
        Decimal("0"),
        Decimal("30000"),
        Decimal("28000.00"),
        Decimal("28000.00"),
    )

    # -- execution and collections --------------------------------------------------------------------
    desk.record_progress(ANN, "C-E1", "L1", 50)
    desk.issue_invoice(FIN, "C-E1", "INV-1", amount="12500.00", due_on=date(2026, 11, 20))
    desk.issue_invoice(FIN, "C-W1", "INV-2", amount="23400.00", due_on=date(2026, 11, 5))
    clock.advance(days=10)  # 30 October
    desk.record_payment(FIN, "C-E1", "PAY-1", "INV-1", "12500.00")
    desk.record_payment(FIN, "C-W1", "PAY-2", "INV-2", "10000.00")
    collections = desk.receivables(as_of=date(2026, 11, 30))
    rows = {r.contract_id: r for r in collections.rows}
    # C-E1: 25,000 signed, 12,500 invoiced and paid -> 12,500 to invoice, nothing unpaid.
    # C-W1: 23,400 signed and invoiced, 10,000 paid -> 13,400 unpaid, due 5 November: 25 days
    # overdue on 30 November, in the 0-30 bucket.
    figures = {
        key: (row.uninvoiced, row.unpaid, row.overdue, row.max_days_overdue)
        for key, row in rows.items()
    }
    assert figures == {
        "C-E1": (cny("12500.00"), cny("0.00"), cny("0.00"), None),
        "C-W1": (cny("0.00"), cny("13400.00"), cny("13400.00"), 25),
    }
    assert [r.contract_id for r in collections.rows] == ["C-E1", "C-W1"]  # oldest signing first
    assert [r.contract_id for r in desk.receivables(as_of=date(2026, 11, 30), actor=MIA).rows] == [
        "C-E1"
    ]
