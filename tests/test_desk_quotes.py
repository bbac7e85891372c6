"""Quotes on the desk: the catalog, the discount policy's routing, and the approval engine."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

import salesflow
from salesflow import Actor, Money
from salesflow.domain.catalog import Catalog, Category, Product
from salesflow.domain.quotes import Quote, QuoteState
from salesflow.domain.taxes import TaxRate
from salesflow.domain.units import UnitOfMeasure
from salesflow.errors import (
    ConcurrencyError,
    ForbiddenDiscountError,
    NotAuthorizedError,
    NotFoundError,
    TransitionNotAllowedError,
    ValidationError,
)
from salesflow.testing.storage import ManualClock

ANN = Actor("ann", roles={"sales_rep"}, teams={"east"})
BOB = Actor("bob", roles={"sales_rep"}, teams={"east"})
MIA = Actor("mia", roles={"sales_manager"}, teams={"east"})
DAN = Actor("dan", roles={"sales_director"})
ADMIN = Actor("root", roles={"admin"})
DAY = date(2026, 11, 26)


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


CATALOG = Catalog(
    categories=[Category(id="hardware", name="Hardware")],
    products=[
        Product(
            sku="LAPTOP",
            name="Laptop",
            category="hardware",
            list_price=cny("6000.00"),
            floor_price=cny("4500.00"),
        ),
        Product(sku="DOCK", name="Dock", category="hardware", list_price=cny("800.00")),
    ],
)


@pytest.fixture(params=["memory", "sqlite"])
def desk(request: pytest.FixtureRequest, tmp_path: Path) -> salesflow.SalesDesk:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'quotes.db'}"
    desk = salesflow.open(
        url, clock=ManualClock(datetime(2026, 11, 26, 9, 0, tzinfo=UTC)), load_entrypoints=False
    )
    desk.update_catalog(ADMIN, CATALOG)
    return desk


def quote(id: str, discount: int, *, owner: str = "ann", quantity: int = 2) -> Quote:
    draft = Quote(id=id, owner=owner, currency="CNY", quoted_on=DAY)
    return draft.add_line(CATALOG, "LAPTOP", quantity, discount=discount).add_line(
        CATALOG, "DOCK", quantity
    )


def sorted_catalog(catalog: Catalog) -> Catalog:
    """The catalog as storage returns it: items in id order."""
    return Catalog(
        categories=sorted(catalog.categories, key=lambda c: c.id),
        products=sorted(catalog.products, key=lambda p: p.sku),
        bundles=sorted(catalog.bundles, key=lambda b: b.sku),
    )


def test_the_catalog_round_trips_and_only_admins_change_it(desk: salesflow.SalesDesk) -> None:
    assert desk.catalog() == sorted_catalog(CATALOG)
    with pytest.raises(NotAuthorizedError):
        desk.update_catalog(MIA, CATALOG)
    stored = desk.catalog()
    assert stored.version == 1
    smaller = stored.without("DOCK")
    result = desk.update_catalog(ADMIN, smaller)
    assert result.events[0].data["changed"] == 1
    assert result.value.version == 2
    assert desk.catalog() == sorted_catalog(smaller)
    with pytest.raises(ConcurrencyError, match="version 1 but is at version 2"):
        desk.update_catalog(ADMIN, stored)  # a stale copy never undoes the change
    assert desk.catalog() == sorted_catalog(smaller)


def test_a_quote_must_use_real_products(desk: salesflow.SalesDesk) -> None:
    other = Catalog(products=[Product(sku="GOLD", name="Gold", list_price=cny("1"))])
    fake = Quote(id="Q-9", owner="ann", currency="CNY", quoted_on=DAY).add_line(other, "GOLD", 1)
    with pytest.raises(NotFoundError):
        desk.create_quote(ANN, fake)
    assert desk.quotes() == []


def test_a_discount_within_authority_is_approved_at_once(desk: salesflow.SalesDesk) -> None:
    desk.create_quote(ANN, quote("Q-1", 5))
    result = desk.submit_quote(ANN, "Q-1")
    assert result.value.state is QuoteState.APPROVED
    assert [e.name for e in result.events] == ["quote_approved"]
    assert result.events[0].data["within_authority"] is True
    assert desk.approvals() == []  # nobody had to look at it
    assert desk.accept_quote(ANN, "Q-1").value.state is QuoteState.ACCEPTED


def test_a_larger_discount_waits_for_the_lowest_sufficient_role(desk: salesflow.SalesDesk) -> None:
    desk.create_quote(ANN, quote("Q-2", 15))
    submitted = desk.submit_quote(ANN, "Q-2")
    assert submitted.value.state is QuoteState.PENDING_APPROVAL
    names = [e.name for e in submitted.events]
    assert names == ["quote_submitted", "approval_submitted", "approval_requested"]
    assert submitted.events[2].data["roles"] == ["sales_manager"]
    assert [r.id for r in desk.waiting_for(MIA)] == ["quote:Q-2"]
    assert [r.id for r in desk.waiting_for("sales_manager")] == ["quote:Q-2"]
    assert desk.waiting_for(DAN) == ()  # a director holds another role of the ladder
    with pytest.raises(TransitionNotAllowedError):
        desk.accept_quote(ANN, "Q-2")
    with pytest.raises(NotAuthorizedError):
        desk.approve(BOB, "quote:Q-2", role="sales_manager", version=1)
    approved = desk.approve(
        MIA, "quote:Q-2", role="sales_manager", version=1, comment="ok for a new logo"
    )
    assert desk.quote("Q-2").state is QuoteState.APPROVED
    assert [e.name for e in approved.events] == [
        "approval_granted",
        "approval_completed",
        "quote_approved",
    ]
    assert desk.waiting_for(MIA) == ()


def test_a_forbidden_quote_cannot_be_submitted(desk: salesflow.SalesDesk) -> None:
    desk.create_quote(ANN, quote("Q-3", 30))  # 4200 < floor 4500, and beyond the top role
    with pytest.raises(ForbiddenDiscountError) as info:
        desk.submit_quote(ANN, "Q-3")
    assert info.value.reasons
    assert desk.quote("Q-3").state is QuoteState.DRAFT
    assert desk.approvals() == []


def test_changing_a_submitted_quote_voids_the_old_approval(desk: salesflow.SalesDesk) -> None:
    desk.create_quote(ANN, quote("Q-4", 15))
    desk.submit_quote(ANN, "Q-4")
    stored = desk.quote("Q-4")
    edited = stored.set_discount(stored.items[0].id, 12)
    result = desk.update_quote(ANN, edited)
    assert result.value.state is QuoteState.DRAFT
    assert [e.name for e in result.events] == ["approval_withdrawn", "quote_updated"]
    assert desk.waiting_for(MIA) == ()
    with pytest.raises(TransitionNotAllowedError):
        desk.approve(MIA, "quote:Q-4", role="sales_manager", version=2)
    with pytest.raises(ConcurrencyError):
        desk.update_quote(ANN, stored.set_discount(stored.items[0].id, 11))  # from a stale version
    again = desk.submit_quote(ANN, "Q-4")
    assert [e.name for e in again.events] == [
        "quote_submitted",
        "approval_resubmitted",
        "approval_requested",
    ]
    request = desk.approval("quote:Q-4")
    assert request.cycle == 2
    desk.approve(MIA, "quote:Q-4", role="sales_manager", version=request.version)
    assert desk.quote("Q-4").state is QuoteState.APPROVED


def test_a_bigger_discount_routes_to_a_higher_role_in_a_request_of_its_own(
    desk: salesflow.SalesDesk,
) -> None:
    desk.create_quote(ANN, quote("Q-5", 15))
    desk.submit_quote(ANN, "Q-5")
    stored = desk.quote("Q-5")
    desk.update_quote(ANN, stored.set_discount(stored.items[0].id, 22))
    desk.submit_quote(ANN, "Q-5")
    assert {r.id: r.state.value for r in desk.approvals(subject_id="Q-5")} == {
        "quote:Q-5": "withdrawn",
        "quote:Q-5#2": "pending",
    }
    assert [r.id for r in desk.waiting_for(DAN)] == ["quote:Q-5#2"]
    assert desk.waiting_for(MIA) == ()


def test_a_rejection_sends_the_quote_back_with_the_reason(desk: salesflow.SalesDesk) -> None:
    desk.create_quote(ANN, quote("Q-6", 15))
    desk.submit_quote(ANN, "Q-6")
    rejected = desk.reject(
        MIA, "quote:Q-6", role="sales_manager", version=1, reason="too generous for 2 units"
    )
    assert rejected.value.rejection_reason == "too generous for 2 units"
    assert desk.quote("Q-6").state is QuoteState.REJECTED
    assert desk.quote("Q-6").rejection_reason == "too generous for 2 units"
    with pytest.raises(ConcurrencyError):
        desk.approve(MIA, "quote:Q-6", role="sales_manager", version=1)  # it moved on
    desk.submit_quote(ANN, "Q-6")  # as it was: a new cycle from step one
    assert desk.approval("quote:Q-6").cycle == 2


def test_a_delegate_decides_on_behalf_and_the_audit_shows_both(desk: salesflow.SalesDesk) -> None:
    desk.delegate(
        MIA, to="bob", role="sales_manager", valid_from=DAY, valid_until=date(2026, 12, 5)
    )
    with pytest.raises(NotAuthorizedError):
        desk.delegate(ANN, to="bob", role="sales_manager", valid_from=DAY, valid_until=DAY)
    desk.create_quote(ANN, quote("Q-7", 15))
    desk.submit_quote(ANN, "Q-7")
    assert [r.id for r in desk.waiting_for(BOB)] == ["quote:Q-7"]
    result = desk.approve(BOB, "quote:Q-7", role="sales_manager", version=1)
    granted = result.events[0]
    assert (granted.actor, granted.data["on_behalf_of"]) == ("bob", "mia")
    entry = desk.approval("quote:Q-7").audit[-1]
    assert (entry.actor, entry.on_behalf_of) == ("bob", "mia")


def test_nobody_approves_their_own_submission_even_as_a_delegate(desk: salesflow.SalesDesk) -> None:
    desk.delegate(MIA, to="ann", role="sales_manager", valid_from=DAY, valid_until=DAY)
    desk.create_quote(ANN, quote("Q-8", 15))
    desk.submit_quote(ANN, "Q-8")
    with pytest.raises(NotAuthorizedError):
        desk.approve(ANN, "quote:Q-8", role="sales_manager", version=1)
    assert desk.quote("Q-8").state is QuoteState.PENDING_APPROVAL


# -- taxes, amount discounts, surcharges and margins on every backend (issue 15) --------------------

TAXED = Catalog(
    categories=[
        Category(id="goods", name="Goods", taxes="VAT13:13;CITY:1"),
        Category(id="services", name="Services", taxes="VAT6:6"),
    ],
    products=[
        Product(
            sku="SERVER",
            name="Server",
            category="goods",
            list_price=cny("20000.00"),
            cost=cny("14000.00"),
            units=[UnitOfMeasure(code="rack", factor=4)],
        ),
        Product(
            sku="SETUP",
            name="Setup",
            category="services",
            list_price=cny("1130.00"),
            cost=cny("300.00"),
            tax_included=True,
        ),
        Product(
            sku="GPU",
            name="GPU card",
            category="goods",
            list_price=cny("10000.00"),
            cost=cny("7500.00"),
        ),
        Product(
            sku="RUSH",
            name="Rush delivery",
            category="services",
            list_price=cny("500.00"),
            allow_surcharge=True,
        ),
    ],
)
MARGIN_POLICY = salesflow.DiscountPolicy.from_dict(
    {
        "ladder": [
            {"role": "sales_rep", "max_line_discount": 10, "min_margin": 20},
            {"role": "sales_manager", "max_line_discount": 20, "min_margin": 10},
            {"role": "sales_director", "max_line_discount": 25},
        ]
    }
)


class RegionTaxes:
    """A plugin giving a regional surtax in Shanghai."""

    @salesflow.hookimpl
    def salesflow_get_tax_rates(self, sku: str, region: str) -> list[TaxRate] | None:
        return [TaxRate(code="SH", rate="0.5")] if region == "SH" and sku != "RUSH" else None


def taxed_quote(desk: Any, id: str = "T-1", *, server_discount: int = 5) -> Quote:
    draft = Quote(id=id, owner="ann", currency="CNY", quoted_on=DAY, region="SH")
    return draft.add_lines(
        desk.catalog(),
        [
            {"sku": "SERVER", "quantity": 1, "unit": "rack", "discount": server_discount},
            {"sku": "SETUP", "quantity": 3, "amount_off": "100"},
            {"sku": "RUSH", "discount": -20},
        ],
        tax_source=desk.tax_source,
    ).set_document_amount_off("999.99")


def state_of(desk: Any) -> dict[str, Any]:
    return {"quotes": desk.quotes(), "approvals": desk.approvals(), "events": len(desk.events())}


def test_a_taxed_quote_with_a_fixed_document_discount_on_every_backend(open_desk: Any) -> None:
    desk = open_desk(
        plugins=[RegionTaxes()],
        discount_policy=MARGIN_POLICY,
        clock=ManualClock(datetime(2026, 11, 26, 9, 0, tzinfo=UTC)),
    )
    desk.update_catalog(ADMIN, TAXED)
    made = taxed_quote(desk)
    assert [[t.code for t in line.taxes] for line in made.lines] == [
        ["VAT13", "CITY", "SH"],
        ["VAT6", "SH"],
        ["VAT6"],
    ]
    desk.create_quote(ANN, made)
    stored = desk.quote("T-1")
    assert stored.lines == made.lines
    assert stored.total == made.total
    assert sum((line.document_discount.amount for line in stored.lines), Decimal(0)) == Decimal(
        "999.99"
    )
    assert stored.total.amount == sum(
        (line.net.amount + line.tax.amount for line in stored.lines), Decimal(0)
    )
    result = desk.submit_quote(ANN, "T-1")
    assert result.value.state is QuoteState.APPROVED
    contract = desk.create_contract(ANN, "T-1", id="C-T1").value
    assert contract.amount == stored.total
    assert [line.taxes for line in contract.lines] == [line.taxes for line in stored.lines]


def test_taxed_quote_attacks_change_nothing(open_desk: Any) -> None:
    desk = open_desk(plugins=[RegionTaxes()], discount_policy=MARGIN_POLICY)
    desk.update_catalog(ADMIN, TAXED)
    catalog = desk.catalog()
    before = state_of(desk)
    # A surcharge on a product the catalog does not allow it on: refused before the desk.
    with pytest.raises(ValidationError, match="no surcharge"):
        Quote(id="X", owner="ann", currency="CNY", quoted_on=DAY).add_line(
            catalog, "SERVER", 1, discount=-5
        )
    # ... and a quote built from a forged catalog that allows it is refused by the desk.
    forged = catalog.with_items(attrs.evolve(catalog.item("SERVER"), allow_surcharge=True))
    sneaky = Quote(id="X1", owner="ann", currency="CNY", quoted_on=DAY).add_line(
        forged, "SERVER", 1, discount=-5
    )
    with pytest.raises(ValidationError, match="no surcharge"):
        desk.create_quote(ANN, sneaky)
    # An invented cost (to fake a margin) and missing taxes are refused from the stored catalog.
    cheaper = catalog.with_items(attrs.evolve(catalog.item("SERVER"), cost=cny("1.00")))
    fake_cost = Quote(id="X2", owner="ann", currency="CNY", quoted_on=DAY).add_line(
        cheaper, "SERVER", 1
    )
    with pytest.raises(ValidationError, match="cost"):
        desk.create_quote(ANN, fake_cost)
    untaxed = Quote(id="X3", owner="ann", currency="CNY", quoted_on=DAY, region="SH").add_line(
        catalog, "SERVER", 1
    )  # built without the desk's tax source: the regional rate is missing
    with pytest.raises(ValidationError, match="taxes"):
        desk.create_quote(ANN, untaxed)
    # A fixed document discount beyond the quote (made without the quote's own check) is refused.
    real = Quote(id="X4", owner="ann", currency="CNY", quoted_on=DAY).add_line(catalog, "GPU", 1)
    too_much = attrs.evolve(real, document_amount_off=Decimal("10000.01"))
    with pytest.raises(ValidationError, match="document_amount_off"):
        desk.create_quote(ANN, too_much)
    assert state_of(desk) == before
    # A stored quote edited with an invented tax rate is refused too.
    desk.create_quote(ANN, taxed_quote(desk, "T-2"))
    before = state_of(desk)
    stored = desk.quote("T-2")
    item = stored.items[0]
    part = attrs.evolve(item.products[0], taxes=(TaxRate(code="VAT13", rate=1),))
    edited = stored._edited(items=(attrs.evolve(item, products=(part,)), *stored.items[1:]))
    with pytest.raises(ValidationError, match="taxes"):
        desk.update_quote(ANN, edited)
    assert state_of(desk) == before


def test_a_margin_below_the_reps_minimum_waits_for_a_manager(open_desk: Any) -> None:
    desk = open_desk(plugins=[RegionTaxes()], discount_policy=MARGIN_POLICY)
    desk.update_catalog(ADMIN, TAXED)
    # 10 % off the card (within the rep's discount) leaves 1500 / 9000 = 16.7 % margin: below
    # the rep's 20 %, above the manager's 10 %.
    draft = Quote(id="M-1", owner="ann", currency="CNY", quoted_on=DAY).add_line(
        desk.catalog(), "GPU", 1, discount=10
    )
    assert draft.margin == cny("1500.00")
    desk.create_quote(ANN, draft)
    verdict = desk.check_quote(ANN, draft)
    assert [r.kind.value for r in verdict.reasons] == ["margin"]
    submitted = desk.submit_quote(ANN, "M-1")
    assert submitted.value.state is QuoteState.PENDING_APPROVAL
    assert [r.id for r in desk.waiting_for(MIA)] == ["quote:M-1"]
