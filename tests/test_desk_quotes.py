"""Quotes on the desk: the catalog, the discount policy's routing, and the approval engine."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import salesflow
from salesflow import Actor, Money
from salesflow.domain.catalog import Catalog, Category, Product
from salesflow.domain.quotes import Quote, QuoteState
from salesflow.errors import (
    ConcurrencyError,
    ForbiddenDiscountError,
    NotAuthorizedError,
    NotFoundError,
    TransitionNotAllowedError,
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
