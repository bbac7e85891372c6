"""Issue 11: the sales process cannot be fooled through the desk, on every backend.

Each test is one reported case (or one rule of the issue): the attack is tried, refused with the
error a caller can act on, and storage is left exactly as it was.
"""

from __future__ import annotations

import io
import runpy
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

import salesflow
from salesflow import Money
from salesflow.adapters.telephony import CallListSource
from salesflow.analytics.performance import Target
from salesflow.domain.calls import CallRecord, Direction, Disposition
from salesflow.domain.catalog import Catalog, Category, Product
from salesflow.domain.contacts import Contact
from salesflow.domain.contracts import ContractState
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.quotes import Quote, QuoteState
from salesflow.domain.tasks import FollowUpTask
from salesflow.errors import (
    ConcurrencyError,
    ForbiddenDiscountError,
    NotAuthorizedError,
    TransitionNotAllowedError,
    ValidationError,
)
from salesflow.testing.cast import ANN, BOB, DAN, FIN, LEO, MIA, PAT, ROOT, WES, WIL
from salesflow.testing.storage import ManualClock

DAY = date(2026, 11, 2)
HERE = Path(__file__).resolve().parent.parent


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


CATALOG = Catalog(
    categories=[Category(id="services", name="Services")],
    products=[
        Product(
            sku="SRV",
            name="Service",
            category="services",
            list_price=cny("1000.00"),
            floor_price=cny("500.00"),
        ),
        Product(sku="KIT", name="Kit", category="services", list_price=cny("100.00")),
    ],
)


def deal(id: str, owner: str, team: str, amount: str = "25000", stage: str = "quotation") -> Any:
    return Opportunity(
        id=id,
        owner=owner,
        team=team,
        amount=cny(amount),
        stage=stage,
        industry="retail",
        expected_close=date(2026, 11, 20),
    )


@pytest.fixture
def desk(open_desk: Any) -> Any:
    """A desk with the catalog and one opportunity per team (east: ann's, west: wes's)."""
    desk = open_desk(clock=ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC)))
    desk.update_catalog(ROOT, CATALOG)
    desk.add_opportunity(ANN, deal("O-E", "ann", "east"))
    desk.add_opportunity(WES, deal("O-W", "wes", "west"))
    return desk


def quote(
    id: str, discount: int = 0, *, owner: str = "ann", opportunity: str | None = "O-E"
) -> Quote:
    draft = Quote(id=id, owner=owner, currency="CNY", quoted_on=DAY, opportunity_id=opportunity)
    return draft.add_line(CATALOG, "SRV", 25, discount=discount)


def snapshot(desk: Any) -> dict[str, Any]:
    """Everything a command could have changed."""
    return {
        "opportunities": desk.opportunities(),
        "quotes": desk.quotes(),
        "contracts": desk.contracts(),
        "approvals": desk.approvals(),
        "contacts": desk.contacts(),
        "tasks": desk.tasks(),
        "events": len(desk.events()),
    }


def approved_quote(desk: Any, id: str = "Q", **options: Any) -> Quote:
    desk.create_quote(ANN, quote(id, **options))
    return desk.submit_quote(ANN, id).value


def formal_contract(desk: Any, quote_id: str = "Q", id: str = "C") -> Any:
    approved_quote(desk, quote_id)
    desk.create_contract(ANN, quote_id, id=id)
    desk.submit_contract(ANN, id)
    for actor, role in (
        (MIA, "sales_manager"),
        (PAT, "project_manager"),
        (FIN, "finance"),
        (LEO, "legal"),
    ):
        request = desk.approval(f"contract:{id}")
        desk.approve(actor, request.id, role=role, version=request.version)
    return desk.contract(id)


# -- 1. commands own the lifecycle -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("state", QuoteState.APPROVED),
        ("state", QuoteState.PENDING_APPROVAL),
        ("contract_id", "C"),
    ],
)
def test_a_quote_created_in_a_forged_state_is_refused(desk: Any, field: str, value: Any) -> None:
    forged = quote("Q", 45)
    changes = {field: value} | ({"state": QuoteState.CONTRACTED} if field == "contract_id" else {})
    before = snapshot(desk)
    with pytest.raises(ValidationError) as info:
        desk.create_quote(ANN, attrs.evolve(forged, **changes))
    assert info.value.field in changes
    assert snapshot(desk) == before
    with pytest.raises(salesflow.errors.NotFoundError):
        desk.create_contract(ANN, "Q", id="C")


def test_a_pending_quote_cannot_be_flipped_to_approved_by_an_update(desk: Any) -> None:
    desk.create_quote(ANN, quote("Q", 15))
    pending = desk.submit_quote(ANN, "Q").value
    assert pending.state is QuoteState.PENDING_APPROVAL
    before = snapshot(desk)
    forged = attrs.evolve(pending, state=QuoteState.APPROVED, version=pending.version + 1)
    with pytest.raises(ValidationError, match="state"):
        desk.update_quote(ANN, forged)
    assert snapshot(desk) == before
    assert desk.approval("quote:Q").state.value == "pending"
    with pytest.raises(TransitionNotAllowedError):
        desk.create_contract(ANN, "Q", id="C")


def test_a_task_or_contact_arrives_without_lifecycle_fields(desk: Any) -> None:
    contact = Contact(id="K", owner="ann", phones=("+8613800000000",))
    with pytest.raises(ValidationError, match="version"):
        desk.add_contact(ANN, attrs.evolve(contact, version=7))
    desk.add_contact(ANN, contact)
    task = FollowUpTask(id="T", owner="ann", contact_id="K", due=DAY)
    closed = task.complete(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    with pytest.raises(ValidationError, match="status"):
        desk.add_task(ANN, closed)
    assert desk.tasks() == []


@pytest.mark.parametrize(
    "history",
    [
        # placed in quotation in March: months of history the desk never saw
        (StageChange(datetime(2026, 3, 1, tzinfo=UTC), None, "quotation"),),
        # two moves at once, the last one today
        (
            StageChange(datetime(2026, 11, 2, 8, tzinfo=UTC), None, "initial_contact"),
            StageChange(datetime(2026, 11, 2, 8, 30, tzinfo=UTC), "initial_contact", "quotation"),
        ),
        # placed later today than now
        (StageChange(datetime(2026, 11, 2, 17, tzinfo=UTC), None, "quotation"),),
        # placed yesterday evening
        (StageChange(datetime(2026, 11, 1, 20, tzinfo=UTC), None, "quotation"),),
    ],
    ids=["backdated", "two moves", "later than now", "yesterday"],
)
def test_a_new_deal_arrives_without_a_history_the_desk_did_not_see(
    desk: Any, history: tuple[StageChange, ...]
) -> None:
    # A rep who could write a deal's past could make their forecasts look right after the fact.
    before = snapshot(desk)
    with pytest.raises(ValidationError) as refused:
        desk.add_opportunity(ANN, attrs.evolve(deal("O-2", "ann", "east"), history=history))
    assert refused.value.field == "history"
    assert "import_opportunities" in str(refused.value)
    assert snapshot(desk) == before
    # Its first placement today, not later than now, is the truth: it is kept.
    placed = (StageChange(datetime(2026, 11, 2, 8, tzinfo=UTC), None, "quotation"),)
    kept = desk.add_opportunity(ANN, attrs.evolve(deal("O-2", "ann", "east"), history=placed))
    assert kept.value.history == placed


def test_when_a_deal_was_created_is_never_tomorrow_and_never_changes(desk: Any) -> None:
    before = snapshot(desk)
    tomorrow = attrs.evolve(deal("O-2", "ann", "east"), created=date(2026, 11, 3))
    with pytest.raises(ValidationError) as refused:
        desk.add_opportunity(ANN, tomorrow)
    assert (refused.value.field, refused.value.value) == ("created", date(2026, 11, 3))
    stored = desk.opportunity("O-E")
    assert stored.created == DAY  # dated by the desk when it was added
    for moved in (date(2025, 1, 1), date(2026, 11, 3)):
        with pytest.raises(ValidationError) as refused:
            desk.update_opportunity(ANN, attrs.evolve(stored, created=moved))
        assert refused.value.field == "created"
    assert snapshot(desk) == before


def test_only_a_manager_imports_deals_with_their_past(desk: Any) -> None:
    text = "id,owner,team,amount,currency,stage\nO-9,ann,east,100.00,CNY,quotation\n"
    before = snapshot(desk)
    with pytest.raises(NotAuthorizedError):
        desk.import_opportunities(ANN, io.StringIO(text))  # her own deal, still a manager's
    with pytest.raises(NotAuthorizedError):
        desk.import_opportunities(WIL, io.StringIO(text))  # another team's manager
    assert snapshot(desk) == before
    assert desk.import_opportunities(MIA, io.StringIO(text)).value == 1
    assert desk.import_opportunities(DAN, io.StringIO(text.replace("O-9", "O-8"))).value == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("contact_id", "nobody"), ("task_id", "no-task"), ("opportunity_id", "no-deal")],
)
def test_an_imported_call_linked_to_a_record_nobody_stored_is_refused(
    desk: Any, field: str, value: str
) -> None:
    # Claiming a contact the desk does not know would count a call to anyone as work (R7).
    desk.add_contact(ANN, Contact(id="K", owner="ann", phones=("+8613800000000",)))
    call = CallRecord(
        source="pbx",
        external_id="1",
        direction=Direction.OUTBOUND,
        from_number="1001",
        to_number="13999999999",
        started_at=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
        disposition=Disposition.ANSWERED,
        talk_seconds=600,
        owner="ann",
    )
    before = (snapshot(desk), desk.calls())
    with pytest.raises(ValidationError) as refused:
        desk.import_calls(MIA, CallListSource([attrs.evolve(call, **{field: value})], name="pbx"))
    assert (refused.value.field, refused.value.value) == (field, value)
    assert (snapshot(desk), desk.calls()) == before
    # A link to a stored contact is the source's to make (a click-to-call knows whom it dialled).
    linked = attrs.evolve(call, contact_id="K")
    assert desk.import_calls(MIA, CallListSource([linked], name="pbx")).value.counted == 1


# -- 2. prices come from the stored catalog ------------------------------------------------------


def test_a_quote_priced_from_a_made_up_catalog_is_refused(desk: Any) -> None:
    cheap = CATALOG.with_items(
        attrs.evolve(CATALOG.item("SRV"), list_price=cny("100.00"), floor_price=None)
    )
    made_up = Quote(id="Q", owner="ann", currency="CNY", quoted_on=DAY, opportunity_id="O-E")
    made_up = made_up.add_line(cheap, "SRV", 1)
    before = snapshot(desk)
    with pytest.raises(ValidationError) as info:
        desk.create_quote(ANN, made_up)
    message = str(info.value)
    assert "line 'L1'" in message
    assert "100.00" in message
    assert "1000.00" in message
    assert snapshot(desk) == before


def test_a_negotiated_price_is_an_override_the_policy_measures(desk: Any) -> None:
    draft = Quote(id="Q", owner="ann", currency="CNY", quoted_on=DAY, opportunity_id="O-E")
    draft = draft.add_line(CATALOG, "SRV", 1, unit_price="100.00")  # below the 500.00 floor
    desk.create_quote(ANN, draft)
    with pytest.raises(ForbiddenDiscountError):
        desk.submit_quote(ANN, "Q")
    assert desk.quote("Q").state is QuoteState.DRAFT
    (override,) = [s for s in desk.quote("Q").explain().steps if s.step == "unit price"]
    assert override.change == cny("-900.00")  # shown as the discount it is


def test_a_catalog_change_refuses_a_stale_draft_until_it_is_repriced(desk: Any) -> None:
    desk.create_quote(ANN, quote("Q"))
    dearer = desk.catalog().with_items(attrs.evolve(CATALOG.item("SRV"), list_price=cny("1200.00")))
    desk.update_catalog(ROOT, dearer)
    with pytest.raises(ValidationError, match=r"1200\.00"):
        desk.submit_quote(ANN, "Q")
    repriced = desk.quote("Q").repriced(desk.catalog())
    desk.update_quote(ANN, repriced)
    assert desk.submit_quote(ANN, "Q").value.total == cny("30000.00")


# -- 3. one quote, one contract -------------------------------------------------------------------


def test_one_quote_backs_one_contract(desk: Any) -> None:
    approved_quote(desk)
    desk.create_contract(ANN, "Q", id="C")
    locked = desk.quote("Q")
    assert (locked.state, locked.contract_id) == (QuoteState.CONTRACTED, "C")
    before = snapshot(desk)
    with pytest.raises(TransitionNotAllowedError):
        desk.create_contract(ANN, "Q", id="C2")
    with pytest.raises(TransitionNotAllowedError, match="backs contract 'C'"):
        desk.update_quote(ANN, locked.set_discount("L1", 5))
    with pytest.raises(TransitionNotAllowedError):
        desk.submit_quote(ANN, "Q")
    assert snapshot(desk) == before


def test_cancelling_a_draft_contract_releases_its_quote(desk: Any) -> None:
    approved_quote(desk)
    desk.create_contract(ANN, "Q", id="C")
    result = desk.cancel_contract(ANN, "C", reason="customer chose another offer")
    assert [e.name for e in result.events] == ["contract_cancelled", "quote_released"]
    assert desk.contract("C").state is ContractState.CANCELLED
    assert desk.quote("Q").state is QuoteState.APPROVED
    desk.create_contract(ANN, "Q", id="C2")  # free again
    assert desk.quote("Q").contract_id == "C2"


def test_a_formal_contract_keeps_its_quote_until_terminated(desk: Any) -> None:
    contract = formal_contract(desk)
    assert contract.state is ContractState.FORMAL
    stored = desk.quote("Q")
    with pytest.raises(TransitionNotAllowedError):
        desk.update_quote(ANN, stored.set_discount("L1", 5))
    with pytest.raises(TransitionNotAllowedError):
        desk.create_contract(ANN, "Q", id="C2")
    desk.terminate_contract(ANN, "C", reason="customer went bankrupt")
    assert desk.quote("Q").state is QuoteState.APPROVED
    assert desk.contract("C").is_signed  # still counts as signed


# -- 4. signing closes the deal -------------------------------------------------------------------


def test_a_formal_contract_wins_its_opportunity_and_counts_once(desk: Any) -> None:
    period = salesflow.Period.month(2026, 11)
    target = Target(owner="ann", period=period, amount=cny("30000"))
    before = desk.attainment([target], period=period)
    (row,) = [r for r in before.to_records() if r["name"] == "ann"]
    assert (row["signed"], row["expected"]) == (Decimal(0), Decimal("17500.00"))

    contract = formal_contract(desk)
    won = desk.opportunity("O-E")
    assert won.stage == "won"
    assert won.history[-1].at.date() == contract.signed_on
    assert [e.name for e in desk.events(subject_id="O-E")][-1] == "opportunity_won"

    after = desk.attainment([target], period=period)
    (row,) = [r for r in after.to_records() if r["name"] == "ann"]
    assert row["signed"] == contract.amount.amount == Decimal("25000.00")
    assert row["expected"] == Decimal(0)
    assert row["projected"] == Decimal("25000.00")
    assert desk.forecast(as_of=DAY).this_month == cny("17500.00")  # wes's deal only
    assert desk.forecast(as_of=DAY, actor=ANN).this_month == cny("0.00")

    with pytest.raises(TransitionNotAllowedError, match="contract 'C'"):
        desk.move_opportunity(ANN, "O-E", "quotation")  # would count it twice again
    with pytest.raises(TransitionNotAllowedError):
        desk.move_opportunity(ANN, "O-E", "lost", reason="price")
    assert desk.opportunity("O-E") == won


# -- 6. team scope ----------------------------------------------------------------------------------


def test_another_teams_manager_cannot_decide_or_see_the_request(desk: Any) -> None:
    desk.create_quote(ANN, quote("Q", 15))  # beyond a rep's 10 %: a sales manager decides
    desk.submit_quote(ANN, "Q")
    request = desk.approval("quote:Q")
    assert desk.waiting_for(WIL) == ()
    assert [r.id for r in desk.waiting_for(MIA)] == ["quote:Q"]
    before = snapshot(desk)
    with pytest.raises(NotAuthorizedError):
        desk.approve(WIL, "quote:Q", role="sales_manager", version=request.version)
    with pytest.raises(NotAuthorizedError):
        desk.reject(WIL, "quote:Q", role="sales_manager", version=request.version, reason="no")
    assert snapshot(desk) == before
    desk.approve(MIA, "quote:Q", role="sales_manager", version=request.version)
    assert desk.quote("Q").state is QuoteState.APPROVED


def test_another_teams_manager_cannot_decide_a_contract_step(desk: Any) -> None:
    approved_quote(desk)
    desk.create_contract(ANN, "Q", id="C")
    assert desk.contract("C").team == "east"
    desk.submit_contract(ANN, "C")
    request = desk.approval("contract:C")
    with pytest.raises(NotAuthorizedError):
        desk.approve(WIL, request.id, role="sales_manager", version=request.version)
    assert desk.waiting_for(WIL) == ()
    assert desk.approval(request.id) == request


def test_a_record_cannot_be_moved_out_of_the_actors_scope(desk: Any) -> None:
    stored = desk.opportunity("O-E")
    before = snapshot(desk)
    with pytest.raises(NotAuthorizedError, match="after the change"):
        desk.update_opportunity(MIA, attrs.evolve(stored, team="west"))
    with pytest.raises(NotAuthorizedError, match="after the change"):
        desk.update_opportunity(ANN, attrs.evolve(stored, owner="bob"))
    assert snapshot(desk) == before
    desk.update_opportunity(MIA, attrs.evolve(stored, owner="bob"))  # her team, her call
    assert desk.opportunity("O-E").owner == "bob"


def test_a_rep_cannot_hand_a_contact_to_another_rep(desk: Any) -> None:
    desk.add_contact(ANN, Contact(id="K", owner="ann"))
    stored = desk.contacts()[0]
    with pytest.raises(NotAuthorizedError):
        desk.update_contact(ANN, attrs.evolve(stored, owner="bob"))
    assert desk.contacts() == [stored]


def test_a_manager_cannot_quote_on_another_teams_opportunity(desk: Any) -> None:
    with pytest.raises(NotAuthorizedError):
        desk.create_quote(WIL, quote("Q", owner="wil", opportunity="O-E"))
    with pytest.raises(ValidationError, match="team"):
        desk.create_quote(ANN, attrs.evolve(quote("Q"), team="west"))
    assert desk.quotes() == []
    desk.create_quote(MIA, quote("Q", owner="mia"))
    assert desk.quote("Q").team == "east"


def test_a_quote_is_judged_against_its_owners_authority_whoever_submits(desk: Any) -> None:
    desk.create_quote(ANN, quote("Q1", 15))
    desk.submit_quote(ROOT, "Q1")  # an admin holds no rung of the discount ladder
    request = desk.approval("quote:Q1")
    assert request.awaiting_roles == ("sales_manager",)
    assert desk.waiting_for(BOB) == ()
    desk.create_quote(ANN, quote("Q2", 5))
    assert desk.submit_quote(ROOT, "Q2").value.state is QuoteState.APPROVED  # within ann's 10 %
    desk.create_quote(ANN, quote("Q3", 15))
    desk.submit_quote(DAN, "Q3")  # a director's authority is not ann's
    assert desk.approval("quote:Q3").awaiting_roles == ("sales_manager",)


def test_reads_for_an_actor_return_only_their_scope(desk: Any) -> None:
    formal_contract(desk)
    desk.add_contact(ANN, Contact(id="K-E", owner="ann"))
    desk.add_contact(WES, Contact(id="K-W", owner="wes"))
    assert [o.id for o in desk.opportunities(actor=ANN)] == ["O-E"]
    assert [o.id for o in desk.opportunities(actor=WIL)] == ["O-W"]
    assert [o.id for o in desk.opportunities(actor=DAN)] == ["O-E", "O-W"]
    assert [o.id for o in desk.opportunities()] == ["O-E", "O-W"]  # the system's own read
    assert desk.quotes(actor=WES) == []
    assert desk.contracts(actor=WIL) == []
    assert [c.id for c in desk.contracts(actor=FIN)] == ["C"]
    assert [c.id for c in desk.contacts(actor=ANN)] == ["K-E"]
    assert desk.approvals(actor=WIL) == []
    assert desk.receivables(actor=WIL).rows == ()
    assert desk.forecast(as_of=DAY, actor=WIL).this_month == cny("17500.00")
    assert desk.funnel(actor=ANN).to_records() == desk.funnel(owner="ann").to_records()
    with pytest.raises(NotAuthorizedError):
        desk.opportunity("O-E", actor=WES)
    with pytest.raises(NotAuthorizedError):
        desk.contract("C", actor=WIL)


# -- 7. no lost update ---------------------------------------------------------------------------------


def test_two_updates_from_one_stale_contact_lose_nothing(desk: Any) -> None:
    desk.add_contact(ANN, Contact(id="K", owner="ann", phones=("+8613800000000",)))
    copy = desk.contacts()[0]
    first = desk.update_contact(ANN, attrs.evolve(copy, phones=(*copy.phones, "+8613900000000")))
    assert first.value.version == copy.version + 1
    with pytest.raises(ConcurrencyError) as info:
        desk.update_contact(ANN, attrs.evolve(copy, name="Li Lei"))
    assert (info.value.kind, info.value.expected, info.value.actual) == (
        "contact",
        copy.version,
        copy.version + 1,
    )
    assert desk.contacts()[0].phones == ("+8613800000000", "+8613900000000")


def test_a_stale_opportunity_raises_a_concurrency_error(desk: Any) -> None:
    copy = desk.opportunity("O-E")
    desk.move_opportunity(ANN, "O-E", "intent_confirmed")
    with pytest.raises(ConcurrencyError) as info:
        desk.update_opportunity(ANN, attrs.evolve(copy, name="renamed"))
    assert (info.value.expected, info.value.actual) == (copy.version, copy.version + 1)
    assert desk.opportunity("O-E").name is None


def test_stale_versions_of_tasks_billings_and_the_catalog_are_refused(desk: Any) -> None:
    desk.add_contact(ANN, Contact(id="K", owner="ann"))
    desk.add_task(ANN, FollowUpTask(id="T", owner="ann", contact_id="K", due=DAY))
    with pytest.raises(ConcurrencyError):
        desk.complete_task(ANN, "T", version=3)
    assert desk.complete_task(ANN, "T", version=1).value.version == 2
    formal_contract(desk)
    billing = desk.billing("C")
    desk.record_progress(ANN, "C", "L1", 50, version=billing.version)
    with pytest.raises(ConcurrencyError):
        desk.record_progress(ANN, "C", "L1", 60, version=billing.version)
    catalog = desk.catalog()
    desk.update_catalog(ROOT, catalog.without("KIT"))
    with pytest.raises(ConcurrencyError):
        desk.update_catalog(ROOT, catalog)
    assert [p.sku for p in desk.catalog().products] == ["SRV"]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_the_example_tries_every_rule_and_each_is_refused(
    backend: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path / 'example.db'}"
    example = runpy.run_path(str(HERE / "examples" / "trustworthy_process.py"))
    example["main"](url)
    out = capsys.readouterr().out
    for attack in (
        "store a quote already 'approved': refused (ValidationError",
        "add a deal 'in quotation since June': refused (ValidationError",
        "quote at a made-up list price: refused (ValidationError",
        "the west manager approves an east quote: refused (NotAuthorizedError",
        "make a second contract of Q-1: refused (TransitionNotAllowedError",
        "edit Q-1: refused (TransitionNotAllowedError",
        "save the same stale copy again: refused (ConcurrencyError",
    ):
        assert attack in out
    assert "its opportunity O-1 is now 'won'" in out
    assert "ann: signed 21250.00, expected 0, projected 21250.00" in out
    assert "the west manager sees opportunities []" in out
