"""Billing of a signed contract: progress, milestones, invoices, credit notes and payments."""

from __future__ import annotations

import contextlib
import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from salesflow.domain.billing import (
    MILESTONE_REACHED,
    BillingLine,
    ContractBilling,
    Invoice,
    Milestone,
    MilestoneReached,
    MilestoneSpec,
    Payment,
    Trigger,
    allocate_milestones,
)
from salesflow.domain.catalog import Bundle, BundleComponent, Catalog, Product
from salesflow.domain.contracts import Contract
from salesflow.domain.money import Money
from salesflow.domain.quotes import Quote
from salesflow.errors import (
    CurrencyMismatchError,
    InvalidTypeError,
    NotFoundError,
    TransitionNotAllowedError,
    ValidationError,
)
from salesflow.storage.codec import dumps, loads
from salesflow.testing.strategies import money

SIGNED = date(2026, 4, 1)
T0 = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


CATALOG = Catalog(
    products=[
        Product(sku="SERVER", name="Server", list_price=cny("30000.00")),
        Product(sku="INSTALL", name="Installation day", list_price=cny("1500.00")),
        Product(sku="CABLE", name="Cable metre", list_price=cny("2.50")),
        Product(sku="HOUR", name="Support hour", list_price=cny("200.00")),
    ],
    bundles=[
        Bundle(
            sku="RACK",
            name="Rack kit",
            price=cny("5000.00"),
            components=[BundleComponent("CABLE", 100), BundleComponent("HOUR", 10)],
        )
    ],
)


def signed_contract(lines: list[dict[str, Any]] | None = None, tax: str = "0") -> Contract:
    entries = lines or [
        {"sku": "SERVER", "quantity": 2},  # L1 60000.00
        {"sku": "INSTALL", "quantity": 4},  # L2 6000.00
        {"sku": "RACK", "quantity": 1},  # L3.1 cables, L3.2 hours: 5000.00 together
        {"sku": "CABLE", "quantity": "12.5"},  # L4 31.25, sold by the metre: not countable
    ]
    quote = (
        Quote(id="Q-1", owner="ann", currency="CNY", quoted_on=date(2026, 3, 1))
        .add_lines(CATALOG, entries)
        .set_tax_rate(tax)
        .submit_for_approval()
        .approve()
    )
    return Contract.from_quote(quote, id="C-1", team="east").submit().make_formal(SIGNED)


def billing(**kwargs: Any) -> ContractBilling:
    return ContractBilling.open(signed_contract(**kwargs))


def at(days: int) -> datetime:
    return T0 + timedelta(days=days)


def planned(*specs: MilestoneSpec) -> ContractBilling:
    plan = specs or (
        MilestoneSpec(name="deposit", share=30, due_on=date(2026, 4, 15)),
        MilestoneSpec(
            name="servers installed",
            share=50,
            due_on=date(2026, 9, 30),
            trigger=Trigger(("L1", "L2")),
        ),
        MilestoneSpec(name="acceptance", share=20, due_on=date(2026, 12, 31)),
    )
    return billing().attach_plan(plan, at=T0).billing


# -- opening ---------------------------------------------------------------------------------------


def test_a_signed_contract_opens_a_billing_that_copies_its_lines() -> None:
    contract = signed_contract(tax="13")
    opened = ContractBilling.open(contract)
    assert opened.contract_id == "C-1"
    assert (opened.owner, opened.currency, opened.signed_on) == ("ann", "CNY", SIGNED)
    assert opened.amount == contract.amount
    assert [line.line_id for line in opened.lines] == ["L1", "L2", "L3.1", "L3.2", "L4"]
    assert [line.item_id for line in opened.lines] == ["L1", "L2", "L3", "L3", "L4"]
    assert sum((line.amount for line in opened.lines), cny("0")) == contract.amount
    assert opened.line("L2").amount == contract.line("L2").total
    assert opened.progress == 0
    assert (opened.invoiced, opened.paid, opened.uninvoiced) == (cny("0"), cny("0"), opened.amount)
    assert opened.version == 1


def test_an_unsigned_contract_has_no_billing() -> None:
    quote = signed_contract().quote
    for unsigned in (
        Contract.from_quote(quote, id="C-2"),
        Contract.from_quote(quote, id="C-2").submit(),
    ):
        with pytest.raises(TransitionNotAllowedError):
            ContractBilling.open(unsigned)
    with pytest.raises(InvalidTypeError):
        ContractBilling.open("C-1")  # type: ignore[arg-type]


def test_opening_and_planning_leave_the_contract_untouched() -> None:
    contract = signed_contract()
    before = (contract.to_dict(), contract.content_hash())
    opened = ContractBilling.open(contract)
    opened.attach_plan([MilestoneSpec(name="all", share=100, due_on=SIGNED)], at=T0)
    assert (contract.to_dict(), contract.content_hash()) == before


# -- progress ----------------------------------------------------------------------------------------


def test_progress_is_recorded_per_line_and_never_goes_down() -> None:
    start = billing()
    result = start.record_progress("L1", 40, at=at(1), delivered=1)
    step = result.billing
    assert result.events == ()
    line = step.line("L1")
    assert (line.percent, line.delivered, line.updated_at) == (40, 1, at(1))
    assert step.version == 2
    with pytest.raises(ValidationError, match="never goes down") as info:
        step.record_progress("L1", 39, at=at(2))
    assert info.value.field == "percent"
    with pytest.raises(ValidationError, match="delivered"):
        step.record_progress("L1", at=at(2), delivered=0)
    assert step.line("L1").percent == 40  # nothing changed
    again = step.record_progress("L1", 40, at=at(3))
    assert again.billing is step  # the same figures again change nothing
    assert start.line("L1").percent == 0  # the original is untouched


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"percent": 101}, ValidationError),
        ({"percent": -1}, ValidationError),
        ({"percent": 1.5}, InvalidTypeError),
        ({"delivered": 3}, ValidationError),  # only 2 servers were sold
        ({"delivered": "1.5"}, ValidationError),  # servers are countable
        ({}, ValidationError),  # nothing to record
    ],
)
def test_bad_progress_is_refused(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        billing().record_progress("L1", at=at(1), **kwargs)


def test_a_line_sold_in_fractions_takes_fractional_deliveries_and_times_must_be_aware() -> None:
    step = billing().record_progress("L4", at=at(1), delivered="7.25").billing
    assert step.line("L4").delivered == Decimal("7.25")
    assert not step.line("L4").countable
    assert step.line("L1").countable
    with pytest.raises(ValidationError, match="timezone-aware"):
        billing().record_progress("L1", 10, at=datetime(2026, 4, 2, 9, 0))  # naive
    with pytest.raises(NotFoundError):
        billing().record_progress("L9", 10, at=at(1))


def test_a_correction_may_go_down_and_is_audited() -> None:
    step = billing().record_progress("L2", 80, at=at(1), delivered=3).billing
    corrected = step.correct_progress(
        "L2", 50, delivered=2, reason="day 3 was not signed off", by="pm-1", at=at(2)
    ).billing
    assert (corrected.line("L2").percent, corrected.line("L2").delivered) == (50, 2)
    (entry,) = corrected.corrections
    assert (entry.line_id, entry.percent_before, entry.percent_after) == ("L2", 80, 50)
    assert (entry.delivered_before, entry.delivered_after) == (3, 2)
    assert (entry.reason, entry.by, entry.at) == ("day 3 was not signed off", "pm-1", at(2))
    again = corrected.correct_progress("L2", 60, reason="re-measured", by="pm-1", at=at(3))
    assert again.billing.corrections[0] == entry  # the audit only grows
    assert len(again.billing.corrections) == 2
    unchanged = again.billing.correct_progress("L2", 60, reason="same", by="pm-1", at=at(4))
    assert unchanged.billing is again.billing
    for bad in ({"reason": "", "by": "pm-1"}, {"reason": "x", "by": " "}):
        with pytest.raises(ValidationError):
            step.correct_progress("L2", 10, at=at(2), **bad)


def test_overall_progress_is_weighted_by_line_amounts_and_rounded_half_up() -> None:
    step = billing()
    step = step.record_progress("L1", 50, at=at(1)).billing  # 60000.00 of 71031.25
    step = step.record_progress("L2", 100, at=at(1)).billing  # 6000.00
    # (60000 x 50 + 6000 x 100) / 71031.25 = 50.6819...
    assert step.progress == Decimal("50.68")
    # 1/3 of a 3-line contract with equal amounts: 33.333... -> 33.33; 2/3 -> 66.67 (half up).
    even = billing(
        lines=[
            {"sku": "HOUR", "quantity": 1},
            {"sku": "HOUR", "quantity": 1},
            {"sku": "HOUR", "quantity": 1},
        ]
    )
    one = even.record_progress("L1", 100, at=at(1)).billing
    assert one.progress == Decimal("33.33")
    assert one.record_progress("L2", 100, at=at(1)).billing.progress == Decimal("66.67")
    half = even.record_progress("L1", "0.015", at=at(1)).billing  # 0.005 -> 0.01 (half up)
    assert half.progress == Decimal("0.01")


def test_lines_that_are_all_free_weigh_equally() -> None:
    free = Quote(id="Q-2", owner="ann", currency="CNY", quoted_on=date(2026, 3, 1)).add_lines(
        CATALOG, [{"sku": "HOUR", "unit_price": 0}, {"sku": "CABLE", "unit_price": 0}]
    )
    contract = Contract.from_quote(free.submit_for_approval().approve(), id="C-0")
    opened = ContractBilling.open(contract.submit().make_formal(SIGNED))
    assert opened.amount == cny("0")
    assert opened.record_progress("L1", 50, at=at(1)).billing.progress == 25


# -- the billing plan ------------------------------------------------------------------------------


def test_shares_split_the_contract_amount_exactly_by_largest_remainder() -> None:
    plan = planned()
    assert [m.amount for m in plan.milestones] == [
        cny("21309.38"),  # 30 % of 71031.25 = 21309.375
        cny("35515.62"),  # 50 % = 35515.625; the tie goes to the earlier milestone
        cny("14206.25"),
    ]
    assert sum((m.amount for m in plan.milestones), cny("0")) == plan.amount
    assert plan.milestones[0].share == 30
    assert plan.version == 2


def test_fixed_amounts_and_mixed_plans_must_add_up_exactly() -> None:
    amount = cny("1000.00")
    fixed = allocate_milestones(
        amount,
        [
            MilestoneSpec(name="a", amount=cny("250.00"), due_on=SIGNED),
            MilestoneSpec(name="b", amount=cny("750.00"), due_on=SIGNED),
        ],
    )
    assert [m.amount for m in fixed] == [cny("250.00"), cny("750.00")]
    mixed = allocate_milestones(
        amount,
        [
            MilestoneSpec(name="deposit", amount=cny("100.00"), due_on=SIGNED),
            MilestoneSpec(name="rest-1", share=45, due_on=SIGNED),
            MilestoneSpec(name="rest-2", share=45, due_on=SIGNED),
        ],
    )
    assert [m.amount for m in mixed] == [cny("100.00"), cny("450.00"), cny("450.00")]
    refused = [
        [
            MilestoneSpec(name="a", share=60, due_on=SIGNED),
            MilestoneSpec(name="b", share=30, due_on=SIGNED),
        ],
        [MilestoneSpec(name="a", amount=cny("999.99"), due_on=SIGNED)],
        [MilestoneSpec(name="a", amount=cny("1000.01"), due_on=SIGNED)],
        [
            MilestoneSpec(name="a", amount=cny("100.00"), due_on=SIGNED),
            MilestoneSpec(name="b", share=100, due_on=SIGNED),
        ],
        [],
    ]
    for specs in refused:
        with pytest.raises(ValidationError, match="milestones"):
            allocate_milestones(amount, specs)
    with pytest.raises(ValidationError, match="used once"):
        allocate_milestones(
            amount,
            [
                MilestoneSpec(name="a", share=50, due_on=SIGNED),
                MilestoneSpec(name="a", share=50, due_on=SIGNED),
            ],
        )
    for bad in (cny("-1.00"), cny("1.001")):
        with pytest.raises(ValidationError, match="zero or more"):
            allocate_milestones(bad, [MilestoneSpec(name="a", share=100, due_on=SIGNED)])
    with pytest.raises(CurrencyMismatchError):
        allocate_milestones(
            amount, [MilestoneSpec(name="a", amount=Money.of("1000", "USD"), due_on=SIGNED)]
        )


def test_a_milestone_spec_takes_exactly_one_of_share_or_amount() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        MilestoneSpec(name="a", due_on=SIGNED)
    with pytest.raises(ValidationError, match="exactly one"):
        MilestoneSpec(name="a", due_on=SIGNED, share=10, amount=cny("1.00"))
    with pytest.raises(ValidationError):
        MilestoneSpec(name="a", due_on=SIGNED, share=101)
    with pytest.raises(ValidationError):
        MilestoneSpec(name="a", due_on=SIGNED, amount=cny("1.001"))
    with pytest.raises(ValidationError):
        Trigger(())
    with pytest.raises(ValidationError):
        Trigger(("L1",), 0)


@st.composite
def share_plans(draw: st.DrawFn) -> list[Decimal]:
    """Shares with up to 2 decimals that add up to exactly 100."""
    cuts = sorted(draw(st.lists(st.integers(0, 10_000), max_size=6)))
    bounds = [0, *cuts, 10_000]
    return [Decimal(b - a).scaleb(-2) for a, b in itertools.pairwise(bounds)]


@given(money("CNY", max_value=10**7), share_plans(), st.integers(0, 3), st.data())
def test_milestones_always_add_up_to_the_contract_amount(
    amount: Money, shares: list[Decimal], fixed_count: int, data: st.DataObject
) -> None:
    fixed = []
    rest = amount
    for i in range(fixed_count):
        part = data.draw(
            money("CNY", max_value=int(rest.amount) + 1).filter(lambda m, r=rest: m <= r)
        )
        fixed.append(MilestoneSpec(name=f"fixed-{i}", amount=part, due_on=SIGNED))
        rest = rest - part
    if fixed:
        # Shares must cover exactly what the fixed amounts leave; scale them to that part.
        assume(amount.amount > 0)
        last = [s * rest.amount / amount.amount for s in shares]
        specs = fixed + [
            MilestoneSpec(name=f"share-{i}", share=s, due_on=SIGNED) for i, s in enumerate(last)
        ]
        try:
            plan = allocate_milestones(amount, specs)
        except ValidationError:
            # Only a share that cannot be written exactly may be refused.
            assert sum(last, Decimal(0)) * amount.amount != rest.amount * 100
            return
    else:
        specs = [MilestoneSpec(name=f"m-{i}", share=s, due_on=SIGNED) for i, s in enumerate(shares)]
        plan = allocate_milestones(amount, specs)
    assert sum((m.amount.amount for m in plan), Decimal(0)) == amount.amount
    assert all(m.amount.is_rounded() and m.amount.amount >= 0 for m in plan)
    unit = amount.quantum
    for m, spec in zip(plan, specs, strict=True):
        if spec.share is not None:
            exact = amount.amount * spec.share / 100
            assert abs(m.amount.amount - exact) < unit  # never more than a minor unit off


def test_a_trigger_must_name_lines_of_the_contract() -> None:
    with pytest.raises(ValidationError, match="trigger"):
        billing().attach_plan(
            [MilestoneSpec(name="x", share=100, due_on=SIGNED, trigger=Trigger(("L7",)))], at=T0
        )


def test_a_plan_is_replaced_until_one_of_its_milestones_is_invoiced() -> None:
    plan = planned()
    other = [MilestoneSpec(name="all", share=100, due_on=date(2026, 6, 1))]
    replaced = plan.attach_plan(other, at=at(1)).billing
    assert [m.name for m in replaced.milestones] == ["all"]
    invoiced = plan.issue_invoice("INV-1", milestone="deposit", issued_on=SIGNED, due_on=SIGNED)
    with pytest.raises(ValidationError, match="invoiced"):
        invoiced.attach_plan(other, at=at(1))
    free = plan.issue_invoice("INV-1", amount="10.00", issued_on=SIGNED, due_on=SIGNED)
    assert free.attach_plan(other, at=at(1)).billing.milestones[0].name == "all"


# -- triggers and events ---------------------------------------------------------------------------


def test_reaching_a_trigger_returns_an_event_naming_the_rep_once() -> None:
    plan = planned()
    first = plan.record_progress("L1", 100, at=at(1))
    assert first.events == ()  # L2 is not done yet
    done = first.billing.record_progress("L2", 100, at=at(5))
    (event,) = done.events
    assert event == MilestoneReached(
        contract_id="C-1",
        milestone="servers installed",
        owner="ann",
        at=at(5),
        amount=cny("35515.62"),
        due_on=date(2026, 9, 30),
    )
    assert done.billing.milestone("servers installed").reached_at == at(5)
    # Once reached, never again, even after a correction down and back up.
    down = done.billing.correct_progress("L2", 90, reason="snag", by="pm", at=at(6)).billing
    assert down.milestone("servers installed").reached_at == at(5)
    assert down.record_progress("L2", 100, at=at(7)).events == ()
    published = event.to_event()
    assert (published.name, published.subject_kind, published.subject_id) == (
        MILESTONE_REACHED,
        "contract",
        "C-1",
    )
    assert published.data == {
        "milestone": "servers installed",
        "owner": "ann",
        "amount": "35515.62",
        "currency": "CNY",
        "due_on": "2026-09-30",
    }


def test_a_bundle_line_triggers_when_all_its_components_reach_the_threshold() -> None:
    spec = MilestoneSpec(name="rack", share=100, due_on=SIGNED, trigger=Trigger(("L3",), 50))
    plan = billing().attach_plan([spec], at=T0).billing
    half = plan.record_progress("L3.1", 60, at=at(1))
    assert half.events == ()
    both = half.billing.record_progress("L3.2", 50, at=at(2))
    assert [e.milestone for e in both.events] == ["rack"]


def test_a_plan_attached_late_reports_triggers_already_met() -> None:
    done = billing().record_progress("L1", 100, at=at(1)).billing
    result = done.attach_plan(
        [MilestoneSpec(name="servers", share=100, due_on=SIGNED, trigger=Trigger("L1"))], at=at(3)
    )
    assert [e.milestone for e in result.events] == ["servers"]
    assert result.billing.milestone("servers").reached_at == at(3)


def test_an_upward_correction_can_reach_a_trigger() -> None:
    spec = MilestoneSpec(name="m", share=100, due_on=SIGNED, trigger=Trigger("L2"))
    plan = billing().attach_plan([spec], at=T0).billing
    result = plan.correct_progress("L2", 100, reason="was miscounted", by="pm", at=at(1))
    assert [e.milestone for e in result.events] == ["m"]


# -- invoices, credit notes, payments --------------------------------------------------------------


def test_invoicing_a_milestone_defaults_to_what_is_left_of_it() -> None:
    plan = planned()
    whole = plan.issue_invoice(
        "INV-1", milestone="deposit", issued_on="2026-04-15", due_on="2026-05-15"
    )
    invoice = whole.invoice("INV-1")
    assert invoice == Invoice(
        id="INV-1",
        amount=cny("21309.38"),
        issued_on=date(2026, 4, 15),
        due_on=date(2026, 5, 15),
        milestone="deposit",
    )
    assert whole.invoiced == cny("21309.38")
    assert whole.uninvoiced == whole.amount - cny("21309.38")
    with pytest.raises(ValidationError, match="something left"):
        whole.issue_invoice("INV-2", milestone="deposit", issued_on=SIGNED, due_on=SIGNED)
    part = plan.issue_invoice(
        "INV-1", milestone="deposit", amount="10000.00", issued_on=SIGNED, due_on=SIGNED
    )
    rest = part.issue_invoice("INV-2", milestone="deposit", issued_on=SIGNED, due_on=SIGNED)
    assert rest.invoice("INV-2").amount == cny("11309.38")
    assert rest.milestone_invoiced("deposit") == cny("21309.38")
    with pytest.raises(ValidationError, match="left to invoice of milestone"):
        part.issue_invoice(
            "INV-2", milestone="deposit", amount="11309.39", issued_on=SIGNED, due_on=SIGNED
        )
    with pytest.raises(NotFoundError):
        plan.issue_invoice("INV-1", milestone="nope", issued_on=SIGNED, due_on=SIGNED)


def test_invoices_never_exceed_the_contract_amount() -> None:
    start = billing()
    full = start.issue_invoice("INV-1", amount=start.amount, issued_on=SIGNED, due_on=SIGNED)
    assert full.uninvoiced == cny("0")
    with pytest.raises(ValidationError, match="left to invoice of the contract") as info:
        full.issue_invoice("INV-2", amount="0.01", issued_on=SIGNED, due_on=SIGNED)
    assert info.value.field == "amount"
    assert full.invoices == (full.invoice("INV-1"),)  # nothing changed


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"amount": "0"}, ValidationError, "amount"),
        ({"amount": "-5"}, ValidationError, "amount"),
        ({"amount": "1.005"}, ValidationError, "amount"),
        ({"amount": 1.5}, InvalidTypeError, "amount"),
        ({"amount": Money.of("5", "USD")}, CurrencyMismatchError, "currency"),
        ({}, ValidationError, "amount"),
        ({"amount": "5", "issued_on": date(2026, 3, 31)}, ValidationError, "issued_on"),
        ({"amount": "5", "due_on": date(2026, 4, 30)}, ValidationError, "due_on"),
        ({"amount": "5", "id": ""}, ValidationError, "id"),
    ],
)
def test_bad_invoices_are_refused_naming_the_field(
    kwargs: dict[str, Any], error: type[Exception], field: str
) -> None:
    values: dict[str, Any] = {
        "id": "INV-1",
        "issued_on": date(2026, 5, 1),
        "due_on": date(2026, 5, 31),
    }
    values.update(kwargs)
    start = billing()
    with pytest.raises(error) as info:
        start.issue_invoice(values.pop("id"), **values)
    assert getattr(info.value, "field", None) == field


def test_ids_are_used_once() -> None:
    one = billing().issue_invoice("INV-1", amount="100.00", issued_on=SIGNED, due_on=SIGNED)
    with pytest.raises(ValidationError, match="not used yet"):
        one.issue_invoice("INV-1", amount="100.00", issued_on=SIGNED, due_on=SIGNED)
    paid = one.record_payment("PAY-1", "INV-1", "10.00", received_on=SIGNED)
    with pytest.raises(ValidationError, match="not used yet"):
        paid.record_payment("PAY-1", "INV-1", "10.00", received_on=SIGNED)


def test_partial_payments_and_never_more_than_the_invoice() -> None:
    one = billing().issue_invoice(
        "INV-1", amount="1000.00", issued_on="2026-05-01", due_on="2026-05-31"
    )
    part = one.record_payment("PAY-1", "INV-1", "400.00", received_on="2026-05-20")
    assert (part.paid, part.unpaid, part.open_amount("INV-1")) == (
        cny("400.00"),
        cny("600.00"),
        cny("600.00"),
    )
    rest = part.record_payment("PAY-2", "INV-1", cny("600.00"), received_on="2026-06-02")
    assert rest.open_amount("INV-1") == cny("0.00")
    assert rest.payments[1] == Payment(
        id="PAY-2", invoice_id="INV-1", amount=cny("600.00"), received_on=date(2026, 6, 2)
    )
    with pytest.raises(ValidationError, match="still open") as info:
        part.record_payment("PAY-2", "INV-1", "600.01", received_on="2026-06-02")
    assert info.value.field == "amount"
    with pytest.raises(ValidationError, match="issue date"):
        one.record_payment("PAY-1", "INV-1", "1.00", received_on="2026-04-30")
    with pytest.raises(NotFoundError):
        one.record_payment("PAY-1", "INV-9", "1.00", received_on="2026-05-30")
    with pytest.raises(CurrencyMismatchError):
        one.record_payment("PAY-1", "INV-1", Money.of("1.00", "EUR"), received_on="2026-05-30")


def test_credit_notes_reduce_what_was_invoiced_and_reopen_the_milestone() -> None:
    plan = planned().issue_invoice(
        "INV-1", milestone="deposit", issued_on=SIGNED, due_on="2026-05-01"
    )
    paid = plan.record_payment("PAY-1", "INV-1", "20000.00", received_on="2026-04-20")
    credited = paid.issue_credit_note(
        "CN-1", "INV-1", "1309.38", issued_on="2026-04-21", reason="early-payment discount"
    )
    assert credited.invoiced == cny("20000.00")
    assert credited.credited == cny("1309.38")
    assert credited.open_amount("INV-1") == cny("0.00")
    assert credited.milestone_invoiced("deposit") == cny("20000.00")
    assert [m.name for m in credited.due_milestones("2026-04-21")] == ["deposit"]
    with pytest.raises(ValidationError, match="still open"):
        paid.issue_credit_note("CN-1", "INV-1", "1309.39", issued_on="2026-04-21", reason="x")
    with pytest.raises(ValidationError, match="issue date"):
        paid.issue_credit_note("CN-1", "INV-1", "1.00", issued_on="2026-03-01", reason="x")
    with pytest.raises(ValidationError):
        paid.issue_credit_note("CN-1", "INV-1", "1.00", issued_on="2026-04-21", reason="")
    # A new invoice may take up what was credited.
    again = credited.issue_invoice(
        "INV-2", milestone="deposit", issued_on="2026-04-22", due_on="2026-05-01"
    )
    assert again.invoice("INV-2").amount == cny("1309.38")


def test_due_milestones_by_date_or_by_trigger() -> None:
    plan = planned()
    assert [m.name for m in plan.due_milestones("2026-04-14")] == []
    assert [m.name for m in plan.due_milestones("2026-04-15")] == ["deposit"]
    reached = plan.record_progress("L1", 100, at=at(2)).billing
    reached = reached.record_progress("L2", 100, at=at(3)).billing
    assert [m.name for m in reached.due_milestones(at(3).date())] == ["servers installed"]
    assert [m.name for m in reached.due_milestones(at(3).date() - timedelta(days=1))] == []


def test_the_constructor_checks_every_invariant_when_storage_reads_one_back() -> None:
    good = planned().issue_invoice("INV-1", milestone="deposit", issued_on=SIGNED, due_on=SIGNED)
    good = good.record_payment("PAY-1", "INV-1", "100.00", received_on=SIGNED)
    assert loads(dumps(good), ContractBilling) == good
    bad_invoice = Invoice(id="INV-2", amount=good.amount, issued_on=SIGNED, due_on=SIGNED)
    broken = [
        ({"invoices": (*good.invoices, bad_invoice)}, "contract amount"),
        (
            {
                "payments": (
                    *good.payments,
                    Payment(id="PAY-2", invoice_id="INV-1", amount=good.amount, received_on=SIGNED),
                )
            },
            "at most the invoice",
        ),
        (
            {
                "payments": (
                    Payment(id="PAY-1", invoice_id="INV-9", amount=cny("1.00"), received_on=SIGNED),
                )
            },
            "invoice of this billing",
        ),
        ({"amount": cny("1.00")}, "adding up"),
        ({"lines": ()}, "at least one"),
        ({"lines": (*good.lines, good.lines[0])}, "used once"),
        ({"milestones": good.milestones[:1]}, "milestone"),
        ({"signed_on": date(2026, 5, 1)}, "signing date"),
        ({"currency": "USD"}, "currency"),
    ]
    for changes, message in broken:
        with pytest.raises(ValidationError, match=message):
            attrs.evolve(good, **changes)
    with pytest.raises(ValidationError):
        BillingLine(
            line_id="L1", item_id="L1", sku="S", amount=cny("1.00"), quantity=2, delivered=3
        )
    with pytest.raises(ValidationError):
        Milestone(name="m", due_on=SIGNED, amount=cny("-1.00"))


# -- random sequences of money documents ------------------------------------------------------------

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["invoice", "milestone", "pay", "credit"]),
        st.integers(0, 4),  # which invoice / milestone
        st.integers(1, 4_000_000),  # amount in cents
        st.integers(0, 120),  # days after signing
    ),
    max_size=30,
)


def _apply(state: ContractBilling, op: tuple[str, int, int, int], n: int) -> ContractBilling:
    kind, which, cents, days = op
    amount = Money(Decimal(cents).scaleb(-2), "CNY")
    day = SIGNED + timedelta(days=days)
    invoices = state.invoices
    if kind == "invoice":
        return state.issue_invoice(
            f"I{n}", amount=amount, issued_on=day, due_on=day + timedelta(days=30)
        )
    if kind == "milestone":
        name = state.milestones[which % len(state.milestones)].name
        return state.issue_invoice(f"I{n}", milestone=name, issued_on=day, due_on=day)
    if not invoices:
        raise ValidationError("invoice", None, "an invoice")
    target = invoices[which % len(invoices)]
    when = target.issued_on + timedelta(days=days % 40)
    if kind == "pay":
        return state.record_payment(f"P{n}", target.id, amount, received_on=when)
    return state.issue_credit_note(f"N{n}", target.id, amount, issued_on=when, reason="fix")


def check_invariants(state: ContractBilling) -> None:
    zero = cny("0")
    assert zero <= state.invoiced <= state.amount
    assert zero <= state.paid <= state.invoiced
    assert state.uninvoiced + state.unpaid == state.amount - state.paid
    for invoice in state.invoices:
        assert zero <= state.open_amount(invoice.id) <= invoice.amount
    for m in state.milestones:
        assert zero <= state.milestone_invoiced(m.name) <= m.amount


@given(_OPS)
def test_any_sequence_of_invoices_payments_and_credit_notes_keeps_the_invariants(
    ops: list[tuple[str, int, int, int]],
) -> None:
    state = planned()
    for n, op in enumerate(ops):
        before = state
        try:
            state = _apply(state, op, n)
        except (ValidationError, NotFoundError):
            assert state is before
            assert state == before  # a refused action changes nothing
        check_invariants(state)
    assert loads(dumps(state), ContractBilling) == state


class BillingMachine(RuleBasedStateMachine):
    """Progress, corrections and money documents in any order, with a model of what was done."""

    def __init__(self) -> None:
        super().__init__()
        self.state = planned()
        self.n = 0
        self.reached: set[str] = set()
        self.corrections = 0
        self.clock = 0

    def _tick(self) -> datetime:
        self.clock += 1
        return at(self.clock)

    @rule(line=st.sampled_from(["L1", "L2", "L3.1", "L3.2", "L4"]), percent=st.integers(0, 100))
    def progress(self, line: str, percent: int) -> None:
        before = self.state
        current = before.line(line).percent
        try:
            result = before.record_progress(line, percent, at=self._tick())
        except ValidationError:
            assert percent < current
            return
        assert percent >= current
        self.state = result.billing
        for event in result.events:
            assert event.milestone not in self.reached
            assert event.owner == "ann"
            self.reached.add(event.milestone)

    @rule(line=st.sampled_from(["L1", "L2"]), percent=st.integers(0, 100))
    def correct(self, line: str, percent: int) -> None:
        result = self.state.correct_progress(
            line, percent, reason="re-measured", by="pm", at=self._tick()
        )
        if result.billing is not self.state:
            self.corrections += 1
        self.state = result.billing
        self.reached.update(e.milestone for e in result.events)

    @rule(op=_OPS.filter(bool).map(lambda ops: ops[0]))
    def money_document(self, op: tuple[str, int, int, int]) -> None:
        self.n += 1
        with contextlib.suppress(ValidationError, NotFoundError):
            self.state = _apply(self.state, op, self.n)

    @invariant()
    def money_invariants_hold(self) -> None:
        check_invariants(self.state)

    @invariant()
    def reached_milestones_match_the_events(self) -> None:
        assert {m.name for m in self.state.milestones if m.reached_at is not None} == self.reached

    @invariant()
    def the_audit_only_grows(self) -> None:
        assert len(self.state.corrections) == self.corrections

    @invariant()
    def progress_stays_in_range(self) -> None:
        assert 0 <= self.state.progress <= 100


TestBillingMachine = BillingMachine.TestCase
