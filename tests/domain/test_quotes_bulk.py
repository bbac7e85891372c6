"""Adding many lines at once: ``Quote.add_lines`` equals adding them one by one, and refuses what
``add_line`` refuses with the same error, also for the later lines of a SKU it has seen (which it
builds without the ordinary constructor's per-line overhead)."""

from __future__ import annotations

import functools
from datetime import date
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.domain import quotes
from salesflow.domain.catalog import Bundle, BundleComponent, Catalog, PriceTier, Product
from salesflow.domain.money import Money
from salesflow.domain.numbers import EXACT, HUNDRED
from salesflow.domain.quotes import Quote, QuoteLine
from salesflow.domain.units import UnitOfMeasure
from salesflow.errors import ValidationError

DAY = date(2026, 11, 26)


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


CATALOG = Catalog(
    products=[
        Product(
            sku="TIERED",
            name="Tiered",
            list_price=cny("100.00"),
            tiers=(PriceTier(10, cny("95.00")), PriceTier(50, cny("90.00"))),
            tier_mode="slab",
        ),
        Product(sku="PLAIN", name="Plain", list_price=cny("19.90")),
        Product(sku="FREE", name="Free", list_price=cny("0")),
        Product(sku="DEAR", name="Dear", list_price=cny("90000000000.00")),
        Product(
            sku="EXTRA", name="Surcharge allowed", list_price=cny("5.00"), allow_surcharge=True
        ),
        Product(
            sku="BOXED",
            name="Boxed",
            list_price=cny("2.00"),
            units=(UnitOfMeasure(code="box", factor=5, price=cny("9.00")),),
        ),
    ],
    bundles=[
        Bundle(
            sku="KIT",
            name="Kit",
            price=cny("120.00"),
            components=[BundleComponent("PLAIN", 2), BundleComponent("TIERED", 1)],
        )
    ],
)
SKUS = ["TIERED", "PLAIN", "FREE", "DEAR", "EXTRA", "BOXED", "KIT"]


def empty(**changes: Any) -> Quote:
    base = Quote(id="Q-1", owner="ann", currency="CNY", quoted_on=DAY)
    return attrs.evolve(base, **changes)


def one_by_one(quote: Quote, entries: list[dict[str, Any]]) -> Quote:
    return functools.reduce(lambda q, e: q.add_line(CATALOG, **e), entries, quote)


def outcome(call: Any) -> Quote | ValidationError:
    """The quote ``call`` returns, or the error it raises."""
    try:
        return call()  # type: ignore[no-any-return]
    except ValidationError as exc:
        return exc


def error_of(call: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        call()
    return info.value


NUMBERS = st.one_of(
    st.integers(-3, 200),
    st.decimals("-120", "250", places=2),
    st.sampled_from(["7", " 2.5 ", "x", 1.5, True, None, Decimal("NaN"), Decimal("Infinity")]),
    st.sampled_from([10**15, 10**14, 2 * 10**4, Decimal("1E+15"), Decimal("0.00000000001")]),
)


@st.composite
def entries(draw: st.DrawFn, *, valid: bool) -> dict[str, Any]:
    """An add_lines entry; ``valid``: one the quote accepts, else anything numbers may be."""
    sku = draw(st.sampled_from(SKUS))
    entry: dict[str, Any] = {"sku": sku}
    if valid:
        whole = sku in {"TIERED", "KIT"}
        quantity: object = (
            draw(st.integers(1, 300)) if whole else draw(st.decimals("0.01", "300", places=2))
        )
        discount: object = draw(st.one_of(st.integers(0, 100), st.decimals("0", "100", places=2)))
        if sku == "EXTRA":
            discount = draw(st.one_of(st.integers(-100, 100), st.decimals("-50", "50", places=1)))
        if sku == "DEAR":
            quantity = draw(st.integers(1, 5000))
    else:
        quantity = draw(NUMBERS)
        discount = draw(NUMBERS)
    if draw(st.booleans()):
        entry["quantity"] = draw(st.sampled_from([quantity, str(quantity)])) if valid else quantity
    if draw(st.booleans()):
        entry["discount"] = discount
    if sku == "BOXED" and draw(st.booleans()):
        entry["unit"] = "box"
    if sku not in {"KIT"} and draw(st.booleans()):
        entry["unit_price"] = draw(st.sampled_from(["3.50", Decimal("12"), 0]))
    if draw(st.integers(0, 4)) == 0:
        entry["amount_off"] = draw(st.sampled_from([0, Decimal("0"), Decimal("0.00"), "1"]))
    return entry


@given(st.lists(entries(valid=True), min_size=1, max_size=30), st.integers(1, 500))
def test_adding_lines_at_once_equals_adding_them_one_by_one(
    lines: list[dict[str, Any]], next_line: int
) -> None:
    start = empty(next_line=next_line)
    expected = outcome(lambda: one_by_one(start, lines))
    if isinstance(expected, ValidationError):
        # e.g. an amount off beyond the line's amount: all at once refuses the same line
        assert type(error_of(lambda: start.add_lines(CATALOG, lines))) is type(expected)
        return
    quote = start.add_lines(CATALOG, lines)
    assert quote.items == expected.items
    assert [i.to_dict() for i in quote.items] == [i.to_dict() for i in expected.items]
    # Every item is what the ordinary constructor builds from its fields.
    assert all(attrs.evolve(item) == item for item in quote.items)
    assert all(hash(item) == hash(attrs.evolve(item)) for item in quote.items)
    assert quote.next_line == expected.next_line
    assert quote.version == start.version + 1
    assert quote.total == expected.total
    assert [line.net for line in quote.lines] == [line.net for line in expected.lines]
    assert Quote.from_dict(quote.to_dict()) == quote


@given(entries(valid=False))
def test_a_bad_later_line_of_a_known_sku_is_refused_as_on_its_own(bad: dict[str, Any]) -> None:
    """The third line names a SKU the call has already added: its checks are the same."""
    quote = empty()
    first = [{"sku": "PLAIN", "quantity": 3}, {"sku": bad["sku"]}]
    alone = outcome(lambda: quote.add_lines(CATALOG, [bad]))
    together = outcome(lambda: quote.add_lines(CATALOG, [*first, bad]))
    if isinstance(alone, ValidationError):
        assert isinstance(together, ValidationError)
        assert type(together) is type(alone)
        assert (together.field, repr(together.value)) == (alone.field, repr(alone.value))
        shown = str(alone).replace("lines[0]", "lines[2]").replace("'L1'", "'L3'")
        assert str(together) == shown
    else:
        assert isinstance(together, Quote)
        assert together.items[2] == attrs.evolve(alone.items[0], id="L3")


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"sku": "PLAIN", "quantity": 0}, "quantity"),
        ({"sku": "PLAIN", "quantity": -2}, "quantity"),
        ({"sku": "PLAIN", "quantity": 10**15}, "quantity"),
        ({"sku": "PLAIN", "quantity": True}, "quantity"),
        ({"sku": "PLAIN", "quantity": 1.5}, "quantity"),
        ({"sku": "PLAIN", "quantity": Decimal("0.00000000001")}, "quantity"),
        ({"sku": "TIERED", "quantity": Decimal("2.5")}, "quantity"),
        ({"sku": "PLAIN", "discount": 101}, "discount"),
        ({"sku": "PLAIN", "discount": Decimal("-0.5")}, "discount"),
        ({"sku": "PLAIN", "discount": Decimal("NaN")}, "discount"),
        ({"sku": "PLAIN", "discount": 0.5}, "discount"),
        ({"sku": "DEAR", "quantity": 20_000}, "amount"),
        ({"sku": "PLAIN", "amount_off": "100"}, "amount_off"),
        ({"sku": "PLAIN", "unit": "box"}, "unit"),
    ],
)
def test_each_rule_still_holds_for_a_later_line(entry: dict[str, Any], field: str) -> None:
    quote = empty().add_line(CATALOG, "PLAIN")
    before = quote.to_dict()
    err = error_of(lambda: quote.add_lines(CATALOG, [{"sku": entry["sku"]}, entry]))
    assert err.field == field
    assert "lines[1]" in str(err)
    assert quote.to_dict() == before


def test_an_id_too_long_for_a_line_is_refused_for_every_line() -> None:
    quote = empty(next_line=10**130)
    err = error_of(lambda: quote.add_lines(CATALOG, [{"sku": "PLAIN"}] * 2))
    assert err.field == "id"


def test_ten_thousand_lines_at_once_equal_the_same_lines_one_by_one() -> None:
    lines: list[dict[str, Any]] = [
        {"sku": sku, "quantity": 1 + i % 97, "discount": Decimal(i % 41) / 2}
        for i, sku in enumerate(["TIERED", "PLAIN", "EXTRA", "FREE"] * 2_500)
    ]
    at_once = empty().add_lines(CATALOG, lines)
    assert len(at_once.items) == 10_000
    sample = [0, 1, 2, 3, 4, 997, 5_001, 9_999]
    for i in sample:
        alone = empty(next_line=i + 1).add_line(CATALOG, **lines[i])
        assert at_once.items[i] == alone.items[0]
    # Lines of one product share its snapshot.
    assert at_once.items[0].products is at_once.items[4].products


def test_the_line_objects_set_every_field_of_quote_line_in_order() -> None:
    """Priced lines are built slot by slot in the order of ``_LINE_FIELDS``: it must stay the
    class's own field order, or amounts would land in the wrong field."""
    assert tuple(field.name for field in attrs.fields(QuoteLine)) == quotes._LINE_FIELDS


@given(st.lists(entries(valid=True), min_size=1, max_size=12))
def test_each_line_object_equals_the_one_its_constructor_builds(
    lines: list[dict[str, Any]],
) -> None:
    try:
        quote = empty(tax_rate=Decimal(6)).add_lines(CATALOG, lines).set_document_discount(3)
    except ValidationError:
        return
    for line in quote.lines:
        fields = {str(f.alias): getattr(line, f.name) for f in attrs.fields(QuoteLine)}
        assert QuoteLine(**fields) == line
        assert line.net.amount == line.subtotal.amount - line.document_discount.amount
        assert line.total == line.net + line.tax
        assert line.item_id == line.id or line.id.startswith(f"{line.item_id}.")
        assert line.gross.amount >= line.discounted.amount or line.discount < 0


def test_a_quote_refuses_two_items_with_one_id() -> None:
    quote = empty().add_lines(CATALOG, [{"sku": "PLAIN"}, {"sku": "FREE"}])
    twice = (*quote.items, attrs.evolve(quote.items[1], id="L1"))
    err = error_of(lambda: attrs.evolve(quote, items=twice))
    assert err.field == "items[2].id"
    err = error_of(lambda: attrs.evolve(quote, items=(*quote.items, "L9")))
    assert err.field == "items[2]"


def direct_kept(amount: Decimal, discount: Decimal) -> Decimal:
    return EXACT.multiply(amount, EXACT.divide(EXACT.subtract(HUNDRED, discount), HUNDRED))


@given(
    st.decimals("0", "1000000", places=4),
    st.decimals("-100", "100", places=3),
    st.integers(0, 4),
)
def test_the_kept_factor_per_discount_keeps_every_digit(
    amount: Decimal, discount: Decimal, zeros: int
) -> None:
    """``amount x (100 - discount) / 100`` from the factor kept per discount is the direct one,
    digit for digit, also after an equal discount written with more zeros was seen."""
    exponent = discount.as_tuple().exponent
    assert isinstance(exponent, int)
    padded = discount.quantize(Decimal(1).scaleb(exponent - zeros))
    assert padded == discount
    for seen in (padded, discount, padded, discount):
        expected = direct_kept(amount, seen) if seen else amount
        assert str(quotes._percent_kept(amount, seen)) == str(expected)


def test_lines_with_equal_discounts_written_differently_keep_their_own_digits() -> None:
    lines = [
        {"sku": "PLAIN", "quantity": 3, "discount": Decimal("10.5")},
        {"sku": "PLAIN", "quantity": 3, "discount": Decimal("10.50")},
        {"sku": "PLAIN", "quantity": 3, "discount": Decimal("10.5000")},
    ]
    quote = empty().add_lines(CATALOG, lines)
    shown = [str(line.discounted.amount) for line in quote.lines]
    assert shown == [str(direct_kept(Decimal("59.70"), Decimal(str(e["discount"])))) for e in lines]
    assert len(set(shown)) == 2  # 10.5000 keeps more digits
