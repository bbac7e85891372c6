"""Quotes: the pricing waterfall, exact totals, bundles, versions, states, hashes and explanations."""

from __future__ import annotations

import itertools
import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from salesflow.domain.catalog import Bundle, BundleComponent, Catalog, Category, PriceTier, Product
from salesflow.domain.money import Money
from salesflow.domain.quotes import Quote, QuoteItem, QuoteState
from salesflow.errors import (
    CurrencyMismatchError,
    InvalidTypeError,
    NotFoundError,
    TransitionNotAllowedError,
    ValidationError,
)
from salesflow.testing.quote_strategies import QUOTE_DATE, catalogs, quotes
from salesflow.testing.strategies import percents

DAY = date(2026, 11, 26)


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


def catalog() -> Catalog:
    return Catalog(
        categories=[Category(id="hw", name="Hardware"), Category(id="svc", name="Services")],
        products=[
            Product(
                sku="LAPTOP",
                name="Laptop 14",
                category="hw",
                list_price=cny("6000.00"),
                floor_price=cny("4800.00"),
                tiers=(PriceTier(10, cny("5700.00")), PriceTier(50, cny("5400.00"))),
                tier_mode="range",
            ),
            Product(
                sku="DOCK",
                name="Dock",
                category="hw",
                list_price=cny("899.00"),
                tiers=(PriceTier(5, cny("849.00")),),
                tier_mode="slab",
            ),
            Product(sku="CABLE", name="Cable", category="hw", list_price=cny("19.90")),
            Product(sku="SETUP", name="Setup hour", category="svc", list_price=cny("300.00")),
            Product(sku="OLD", name="Old", list_price=cny("1.00"), active=False),
            Product(sku="LATER", name="Later", list_price=cny("1.00"), valid_from=date(2027, 1, 1)),
            Product(sku="DOLLAR", name="Dollar thing", list_price=Money.of("1.00", "USD")),
        ],
        bundles=[
            Bundle(
                sku="KIT",
                name="Office kit",
                price=cny("1000.00"),
                components=[
                    BundleComponent("DOCK", 1),
                    BundleComponent("CABLE", 3),
                    BundleComponent("SETUP", 1),
                ],
            )
        ],
    )


def empty(**changes: object) -> Quote:
    base = Quote(id="Q-1", owner="ann", currency="CNY", quoted_on=DAY, opportunity_id="op-1")
    return attrs.evolve(base, **changes)


def worked_example() -> Quote:
    return (
        empty()
        .add_line(catalog(), "LAPTOP", 12, discount=5)
        .add_line(catalog(), "DOCK", 7, discount="2.5")
        .set_document_discount(2)
        .set_tax_rate(13)
    )


# -- the waterfall, by hand ------------------------------------------------------------------------


def test_the_worked_example_prices_every_step_as_documented() -> None:
    quote = worked_example()
    laptop, dock = quote.lines
    # Laptop: 12 x 6000 list; range tier from 10 at 5700; 5 % off; already whole cents.
    assert laptop.list_amount == cny("72000.00")
    assert laptop.catalog_amount == cny("68400.00")
    assert laptop.discounted == cny("64980.00")
    assert laptop.subtotal == cny("64980.00")
    # Dock: 7 x 899 list; slab: units 1-4 at 899, 5-7 at 849; 2.5 % off = 5989.425, half up.
    assert dock.list_amount == cny("6293.00")
    assert dock.catalog_amount == cny("6143.00")
    assert dock.discounted.amount == Decimal("5989.425")
    assert dock.subtotal == cny("5989.43")  # half-even would say 5989.42
    # Document discount: 2 % of 70969.43 = 1419.3886 -> 1419.39, split 1299.60 / 119.79
    # (the cent left over goes to the larger remainder, .87 against .13).
    assert quote.subtotal == cny("70969.43")
    assert quote.document_discount_amount == cny("1419.39")
    assert (laptop.document_discount, dock.document_discount) == (cny("1299.60"), cny("119.79"))
    assert (laptop.net, dock.net) == (cny("63680.40"), cny("5869.64"))
    # Tax: 13 % of 69550.04 = 9041.5052 -> 9041.51, split 8278.46 / 763.05.
    assert quote.tax == cny("9041.51")
    assert (laptop.tax, dock.tax) == (cny("8278.46"), cny("763.05"))
    assert quote.net_total == cny("69550.04")
    assert quote.total == cny("78591.55")


def test_bundle_price_is_allocated_by_list_price_and_adds_up() -> None:
    one = empty().add_line(catalog(), "KIT", 1)
    # Weights 899 : 59.70 : 300 give 714.2290 / 47.4299 / 238.3411 in cents-and-fractions; the
    # two cents left over go to the largest remainders (.99 cable, .90 dock).
    assert [line.id for line in one.lines] == ["L1.1", "L1.2", "L1.3"]
    assert [line.catalog_amount for line in one.lines] == [
        cny("714.23"),
        cny("47.43"),
        cny("238.34"),
    ]
    assert [line.quantity for line in one.lines] == [1, 3, 1]
    two = empty().add_line(catalog(), "KIT", 2)
    # Two kits: 1428.4579 / 94.8598 / 476.6823; again the cable and the dock get the two cents.
    assert [line.catalog_amount for line in two.lines] == [
        cny("1428.46"),
        cny("94.86"),
        cny("476.68"),
    ]
    discounted = empty().add_line(catalog(), "KIT", 2, discount=3)
    assert sum(line.subtotal.amount for line in discounted.lines) == Decimal("1940.00")
    assert discounted.total == cny("1940.00")
    for line in discounted.lines:
        assert abs(line.rounding.amount) < Decimal("0.01")
        assert line.bundle_sku == "KIT"
        assert line.item_id == "L1"


def test_a_unit_price_replaces_the_catalog_price_but_keeps_it_for_reference() -> None:
    quote = empty().add_line(catalog(), "LAPTOP", 12, unit_price="5500.00", discount=1)
    (line,) = quote.lines
    assert line.catalog_amount == cny("68400.00")
    assert line.gross == cny("66000.00")
    assert line.net == cny("65340.00")
    assert line.unit_price == cny("5500.00")


@pytest.mark.parametrize(
    ("currency", "price", "discount", "net"),
    [
        ("JPY", "333", "10", "300"),  # 299.7 -> 300: yen have no minor unit
        ("KWD", "1.2345", "0", "1.235"),  # fils: 3 places, half up
        ("USD", "0.125", "0", "0.13"),
        ("USD", "0.115", "0", "0.12"),
    ],
)
def test_lines_round_half_up_to_the_currency_minor_unit(
    currency: str, price: str, discount: str, net: str
) -> None:
    product = Product(sku="X", name="X", list_price=Money.of(price, currency))
    quote = Quote(id="Q", owner="o", currency=currency, quoted_on=DAY).add_line(
        Catalog(products=[product]), "X", 1, discount=discount
    )
    assert quote.lines[0].net == Money.of(net, currency)
    assert quote.total == Money.of(net, currency)


def test_an_empty_quote_totals_zero() -> None:
    quote = empty().set_document_discount(10).set_tax_rate(13)
    assert quote.lines == ()
    assert quote.total == cny("0")


# -- properties -------------------------------------------------------------------------------------


@given(quotes(currency=None))
def test_line_nets_add_up_to_the_total_exactly(quote: Quote) -> None:
    quantum = quote.lines[0].net.quantum
    nets = sum(line.net.amount for line in quote.lines)
    taxes = sum(line.tax.amount for line in quote.lines)
    assert quote.total.amount == nets + taxes
    assert (
        quote.net_total.amount
        == nets
        == quote.subtotal.amount - quote.document_discount_amount.amount
    )
    assert quote.tax.amount == taxes
    expected_doc = (quote.subtotal.amount * quote.document_discount / 100).quantize(
        quantum, ROUND_HALF_UP
    )
    assert quote.document_discount_amount.amount == expected_doc
    expected_tax = (nets * quote.tax_rate / 100).quantize(quantum, ROUND_HALF_UP)
    assert quote.tax.amount == expected_tax
    for line in quote.lines:
        for money in (line.subtotal, line.document_discount, line.net, line.tax):
            assert money.is_rounded()
        assert line.net.amount >= 0
        assert line.net == line.subtotal - line.document_discount
        if line.bundle_sku is None:
            assert line.subtotal.amount == line.discounted.amount.quantize(quantum, ROUND_HALF_UP)


@given(catalogs(currency=None, max_bundles=2), st.integers(1, 40), percents(2), st.data())
def test_bundle_components_add_up_to_the_bundle_price_exactly(
    source: Catalog, count: int, discount: Decimal, data: st.DataObject
) -> None:
    assume(source.bundles)
    bundle = data.draw(st.sampled_from(source.bundles))
    quote = Quote(id="Q", owner="o", currency=bundle.currency, quoted_on=QUOTE_DATE).add_line(
        source, bundle.sku, count, discount=discount
    )
    gross = bundle.price.amount * count
    assert sum(line.catalog_amount.amount for line in quote.lines) == gross
    expected = (gross * (100 - discount) / 100).quantize(bundle.price.quantum, ROUND_HALF_UP)
    assert sum(line.subtotal.amount for line in quote.lines) == expected
    assert quote.total.amount == expected
    assert [line.sku for line in quote.lines] == [c.sku for c in bundle.components]


@given(quotes(currency=None, max_lines=6), st.data())
def test_a_larger_line_discount_never_raises_the_net(quote: Quote, data: st.DataObject) -> None:
    item = data.draw(st.sampled_from(quote.items))
    higher = data.draw(percents(2).filter(lambda d: d >= item.discount))
    assert quote.set_discount(item.id, higher).net_total <= quote.net_total


@given(quotes(currency=None))
def test_quotes_round_trip_through_json(quote: Quote) -> None:
    text = json.dumps(quote.to_dict())
    back = Quote.from_dict(json.loads(text))
    assert back == quote
    assert back.content_hash() == quote.content_hash()
    assert back.lines == quote.lines


@given(quotes(currency=None, max_lines=5))
def test_every_explained_step_follows_from_the_previous_one(quote: Quote) -> None:
    explanation = quote.explain()
    for line in quote.lines:
        steps = explanation.for_line(line.id)
        assert steps[0].step == "list price"
        assert steps[0].amount == line.list_amount
        for before, after in itertools.pairwise(steps):
            assert after.change is not None
            assert before.amount + after.change == after.amount
        assert [s.step for s in steps[-4:]] == [
            "line discount",
            "rounding",
            "document discount",
            "tax",
        ]
        assert steps[-1].amount == line.net + line.tax
    totals = explanation.for_line("quote")
    assert totals[-1].amount == quote.total


# -- explanation ---------------------------------------------------------------------------------------


def test_explain_names_tiers_bundles_and_prices_for_people() -> None:
    quote = (
        worked_example()
        .add_line(catalog(), "KIT", 1)
        .add_line(catalog(), "SETUP", 2, unit_price="280")
    )
    explanation = quote.explain()
    text = str(explanation)
    assert text.startswith("Quote Q-1 version 7 (CNY)")
    assert "range: 12 units reach the tier from 10: 12 x 5700.00" in text
    assert "slab: 4 x 899.00 + 3 x 849.00 (from unit 5)" in text
    assert "share of bundle KIT (1000.00 per bundle)" in text
    assert "2 x 280 set on the quote" in text
    assert "<table" in explanation._repr_html_()
    records = explanation.to_records()
    assert set(records[0]) == {"line", "sku", "step", "detail", "change", "amount"}
    assert {r["line"] for r in records} == {"L1", "L2", "L3.1", "L3.2", "L3.3", "L4"}
    assert {r["line"] for r in explanation.total_records()} == {"quote"}
    with pytest.raises(NotFoundError):
        explanation.for_line("L9")


# -- editing and versions ------------------------------------------------------------------------------------


def test_every_edit_returns_a_new_version_and_leaves_the_old_one_alone() -> None:
    v1 = empty()
    v2 = v1.add_line(catalog(), "LAPTOP", 2)
    v3 = v2.set_discount("L1", 5)
    v4 = v3.set_quantity("L1", 12)
    v5 = v4.set_unit_price("L1", cny("5600.00"))
    v6 = v5.set_document_discount("1.5")
    v7 = v6.set_tax_rate(13)
    v8 = v7.remove_line("L1")
    assert [q.version for q in (v1, v2, v3, v4, v5, v6, v7, v8)] == list(range(1, 9))
    assert v1.items == () and v2.items[0].discount == 0 and v3.items[0].quantity == 2
    assert v8.items == ()


def test_an_edit_that_changes_nothing_keeps_the_version_and_the_approval() -> None:
    approved = empty().add_line(catalog(), "LAPTOP", 2, discount=5).submit_for_approval().approve()
    assert approved.set_discount("L1", "5.00") is approved
    assert approved.set_document_discount(0) is approved
    assert approved.set_unit_price("L1", None) is approved


def test_line_ids_are_never_reused_and_bundles_go_as_a_whole() -> None:
    quote = empty().add_line(catalog(), "DOCK", 1).add_line(catalog(), "KIT", 1)
    assert [i.id for i in quote.items] == ["L1", "L2"]
    quote = quote.remove_line("L2")
    assert quote.lines[-1].id == "L1"
    quote = quote.add_line(catalog(), "CABLE", 1)
    assert [i.id for i in quote.items] == ["L1", "L3"]
    with pytest.raises(NotFoundError, match="bundle line 'L2'"):
        quote.item("L2.1")


def test_bad_input_is_refused_naming_the_field_and_changes_nothing() -> None:
    quote = empty().add_line(catalog(), "LAPTOP", 2)
    before = quote.to_dict()
    with pytest.raises(NotFoundError):
        quote.add_line(catalog(), "GHOST")
    with pytest.raises(ValidationError, match="inactive"):
        quote.add_line(catalog(), "OLD")
    with pytest.raises(ValidationError) as info:
        quote.add_line(catalog(), "LATER")
    assert info.value.field == "on"
    with pytest.raises(CurrencyMismatchError):
        quote.add_line(catalog(), "DOLLAR")
    with pytest.raises(ValidationError) as info:
        quote.add_line(catalog(), "KIT", unit_price="900")
    assert info.value.field == "unit_price"
    with pytest.raises(InvalidTypeError) as info:
        quote.add_line(catalog(), "CABLE", discount=0.1)  # type: ignore[arg-type]
    assert info.value.field == "discount"
    with pytest.raises(ValidationError):
        quote.set_discount("L1", 101)
    with pytest.raises(ValidationError) as info:
        quote.set_quantity("L1", "2.5")  # tiered: whole units
    assert info.value.field == "quantity"
    with pytest.raises(ValidationError):
        quote.set_quantity("L1", 0)
    with pytest.raises(ValidationError):
        quote.set_unit_price("L1", "-1")
    with pytest.raises(NotFoundError):
        quote.set_discount("L7", 1)
    with pytest.raises(ValidationError) as info:
        quote.add_lines(catalog(), [{"sku": "CABLE"}, {"sku": "OLD"}])
    assert "lines[1]" in str(info.value)
    with pytest.raises(ValidationError):
        quote.add_lines(catalog(), [{"sku": "CABLE", "colour": "red"}])
    assert quote.to_dict() == before


def test_a_quote_keeps_the_prices_it_was_made_with() -> None:
    quote = empty().add_line(catalog(), "CABLE", 10)
    dearer = catalog().with_items(
        Product(sku="CABLE", name="Cable", category="hw", list_price=cny("29.90"))
    )
    assert quote.total == cny("199.00")
    assert quote.add_line(dearer, "CABLE", 1).total == cny("228.90")


def test_the_constructor_validates_what_storage_reads_back() -> None:
    item = empty().add_line(catalog(), "CABLE", 1).items[0]
    with pytest.raises(ValidationError):
        Quote(id="Q", owner="o", currency="XXX1", quoted_on=DAY)
    with pytest.raises(CurrencyMismatchError):
        Quote(id="Q", owner="o", currency="USD", quoted_on=DAY, items=[item])
    with pytest.raises(ValidationError):
        Quote(id="Q", owner="o", currency="CNY", quoted_on=DAY, items=[item, item])
    with pytest.raises(ValidationError) as info:
        Quote(id="Q", owner="o", currency="CNY", quoted_on=DAY, state="rejected")
    assert info.value.field == "rejection_reason"
    with pytest.raises(ValidationError):
        Quote(id="Q", owner="o", currency="CNY", quoted_on=DAY, state="lost")
    with pytest.raises(ValidationError):
        attrs.evolve(item, products=(item.products[0], item.products[0]))
    with pytest.raises(ValidationError):
        Quote.from_dict({"id": "Q", "owner": "o", "currency": "CNY"})


def test_quote_items_are_built_from_their_dicts() -> None:
    quote = empty().add_line(catalog(), "KIT", 2, discount=3)
    item = quote.items[0]
    assert QuoteItem.from_dict(item.to_dict()) == item
    assert item.is_bundle and item.sku == "KIT" and item.name == "Office kit"


# -- states ----------------------------------------------------------------------------------------------------


def test_only_an_approved_quote_can_be_accepted() -> None:
    draft = empty().add_line(catalog(), "CABLE", 1)
    with pytest.raises(TransitionNotAllowedError) as info:
        draft.accept()
    assert info.value.state == "draft"
    pending = draft.submit_for_approval()
    with pytest.raises(TransitionNotAllowedError):
        pending.accept()
    accepted = pending.approve().accept()
    assert accepted.state is QuoteState.ACCEPTED
    with pytest.raises(TransitionNotAllowedError):
        accepted.set_discount("L1", 1)
    with pytest.raises(TransitionNotAllowedError):
        accepted.reopen()


def test_changing_a_pending_or_approved_quote_voids_its_approval() -> None:
    pending = empty().add_line(catalog(), "CABLE", 1).submit_for_approval()
    approved = pending.approve()
    for quote in (pending, approved):
        changed = quote.set_quantity("L1", 2)
        assert changed.state is QuoteState.DRAFT
        assert changed.version == quote.version + 1
        with pytest.raises(TransitionNotAllowedError):
            changed.accept()


def test_rejection_needs_a_reason_and_a_rejected_quote_can_be_reworked() -> None:
    pending = empty().add_line(catalog(), "CABLE", 1).submit_for_approval()
    with pytest.raises(ValidationError):
        pending.reject(" ")
    rejected = pending.reject("price too low for this customer")
    assert rejected.rejection_reason == "price too low for this customer"
    reworked = rejected.set_discount("L1", 0)
    assert reworked is rejected  # no change, still rejected
    reworked = rejected.set_quantity("L1", 3)
    assert (reworked.state, reworked.rejection_reason) == (QuoteState.DRAFT, None)
    assert rejected.submit_for_approval().state is QuoteState.PENDING_APPROVAL


def test_an_empty_quote_cannot_be_submitted() -> None:
    with pytest.raises(ValidationError) as info:
        empty().submit_for_approval()
    assert info.value.field == "items"


def test_state_changes_keep_version_and_content_hash() -> None:
    draft = worked_example()
    approved = draft.submit_for_approval().approve()
    assert approved.version == draft.version
    assert approved.content_hash() == draft.content_hash()
    assert attrs.evolve(draft, owner="bob").content_hash() == draft.content_hash()
    assert draft.set_discount("L1", 6).content_hash() != draft.content_hash()
    # Numbers hash by value: 5 % and 5.00 % are the same quote.
    same = attrs.evolve(
        draft, items=(attrs.evolve(draft.items[0], discount=Decimal("5.00")), draft.items[1])
    )
    assert same.content_hash() == draft.content_hash()
    assert len(draft.content_hash()) == 64


class QuoteLifecycle(RuleBasedStateMachine):
    """Random edits and transitions; the quote must follow the state model at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.quote = empty().add_line(catalog(), "CABLE", 1)
        self.state = QuoteState.DRAFT
        self.version = self.quote.version
        self.was_approved = False

    def _refused(self, action: str) -> None:
        before = self.quote
        with pytest.raises(TransitionNotAllowedError):
            getattr(self.quote, action)()
        assert self.quote == before

    @rule(quantity=st.integers(1, 5), discount=percents(0))
    def edit(self, quantity: int, discount: Decimal) -> None:
        if self.state is QuoteState.ACCEPTED:
            with pytest.raises(TransitionNotAllowedError):
                self.quote.set_quantity("L1", quantity)
            return
        item = self.quote.items[0]
        edited = self.quote.set_quantity("L1", quantity).set_discount("L1", discount)
        changes = int(item.quantity != quantity) + int(item.discount != discount)
        if changes:
            assert edited.state is QuoteState.DRAFT
            self.state = QuoteState.DRAFT
            self.was_approved = False
            self.version += changes
        self.quote = edited

    @rule()
    def submit(self) -> None:
        if self.state in (QuoteState.DRAFT, QuoteState.REJECTED):
            self.quote = self.quote.submit_for_approval()
            self.state = QuoteState.PENDING_APPROVAL
        else:
            self._refused("submit_for_approval")

    @rule()
    def approve(self) -> None:
        if self.state is QuoteState.PENDING_APPROVAL:
            self.quote = self.quote.approve()
            self.state = QuoteState.APPROVED
            self.was_approved = True
        else:
            self._refused("approve")

    @rule()
    def reject(self) -> None:
        if self.state is QuoteState.PENDING_APPROVAL:
            self.quote = self.quote.reject("no")
            self.state = QuoteState.REJECTED
        else:
            with pytest.raises(TransitionNotAllowedError):
                self.quote.reject("no")

    @rule()
    def accept(self) -> None:
        if self.state is QuoteState.APPROVED:
            self.quote = self.quote.accept()
            self.state = QuoteState.ACCEPTED
        else:
            self._refused("accept")

    @precondition(lambda self: self.state is not QuoteState.DRAFT)
    @rule()
    def reopen(self) -> None:
        if self.state is QuoteState.ACCEPTED:
            self._refused("reopen")
        else:
            self.quote = self.quote.reopen()
            self.state = QuoteState.DRAFT
            self.was_approved = False

    @invariant()
    def follows_the_model(self) -> None:
        assert self.quote.state is self.state
        assert self.quote.version == self.version
        if self.state is QuoteState.ACCEPTED:
            assert self.was_approved
        assert (self.quote.rejection_reason is not None) == (self.state is QuoteState.REJECTED)


TestQuoteLifecycle = QuoteLifecycle.TestCase
