"""Taxes, amount discounts, surcharges, bands, units and margins (issue 15).

Each peer case cites the peer's own test; the properties pin the invariants the quote keeps for any
mix of rates and discounts.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow.domain.actors import Actor
from salesflow.domain.catalog import Catalog, Category, PriceTier, Product
from salesflow.domain.contracts import Contract
from salesflow.domain.discounts import DiscountPolicy, ReasonKind, route_quote
from salesflow.domain.money import Money
from salesflow.domain.quotes import Quote
from salesflow.domain.taxes import TaxRate, untaxed_amount
from salesflow.domain.units import UnitOfMeasure
from salesflow.errors import InvalidTypeError, ValidationError

DAY = date(2026, 11, 26)
CENT = Decimal("0.01")
REP = Actor("ann", roles={"sales_rep"})


def usd(amount: str | int) -> Money:
    return Money.of(amount, "USD")


def empty(**fields: Any) -> Quote:
    return Quote(id="Q", owner="ann", currency="USD", quoted_on=DAY, **fields)


# -- the peers' cases ---------------------------------------------------------------------------


def test_each_tax_rounds_on_its_own_odoo_round_globally() -> None:
    """Odoo ``test_taxes_round_globally`` (account/tests/test_tax.py): 0.05 with two 10 % taxes
    gives tax 0.02 and total 0.07, each tax rounded on its own."""
    rates = [TaxRate(code="T1", rate=10), TaxRate(code="T2", rate=10)]
    catalog = Catalog(products=[Product(sku="P", name="P", list_price=usd("0.05"), taxes=rates)])
    quote = empty().add_line(catalog, "P", 1)
    assert quote.tax == usd("0.02")
    assert quote.total == usd("0.07")
    assert [(t.code, t.amount) for t in quote.lines[0].taxes] == [
        ("T1", usd("0.01")),
        ("T2", usd("0.01")),
    ]


def test_tax_included_price_backs_out_odoo_discount_and_untaxed_subtotal() -> None:
    """Odoo ``test_discount_and_untaxed_subtotal`` (sale/tests/test_sale_order.py): a 15 % tax
    included in 541.26, 38 units at 2 % off, leave an untaxed subtotal of 17,527.41."""
    catalog = Catalog(
        products=[
            Product(
                sku="P", name="P", list_price=usd("541.26"), taxes="VAT15:15", tax_included=True
            )
        ],
    )
    quote = empty().add_line(catalog, "P", 38, discount=2)
    assert quote.net_total == usd("17527.41")
    assert quote.total == usd("20156.52")
    assert quote.lines[0].included == usd("20156.52")


def test_percent_then_amount_erpnext_multiple_pricing_rules() -> None:
    """ERPNext ``test_apply_multiple_pricing_rules_for_discount_percentage_and_amount``
    (accounts/doctype/pricing_rule/test_pricing_rule.py): 1000 at 10 % off then 100 off is 800."""
    catalog = Catalog(products=[Product(sku="P", name="P", list_price=usd(1000))])
    quote = empty().add_line(catalog, "P", 1, discount=10, amount_off=100)
    assert quote.total == usd("800.00")
    steps = [s.step for s in quote.explain().for_line("L1")]
    assert steps.index("line discount") < steps.index("amount off")


def test_negative_discount_is_a_surcharge_odoo() -> None:
    """Odoo ``test_sale_order_line_negative_discount`` style (sale/tests): -10 % on 20.00 gives
    22.00, where the catalog allows a surcharge."""
    catalog = Catalog(
        products=[Product(sku="P", name="P", list_price=usd("20.00"), allow_surcharge=True)]
    )
    quote = empty().add_line(catalog, "P", 1, discount=-10)
    assert quote.total == usd("22.00")
    assert [s.step for s in quote.explain().for_line("L1")][1] == "surcharge"


def test_a_band_ends_erpnext_max_qty() -> None:
    """ERPNext ``test_pricing_rule_with_margin_and_discount`` sibling case with ``max_qty``
    (``test_pricing_rule_for_product_discount_on_same_item`` family): 17.5 % off from 5 to 7 units;
    10 units pay the full price."""
    catalog = Catalog(
        products=[
            Product(
                sku="P",
                name="P",
                list_price=usd(100),
                tier_mode="band",
                tiers=[PriceTier(5, usd("82.50"), 7)],
            )
        ]
    )
    totals = {n: empty().add_line(catalog, "P", n).total for n in (4, 5, 7, 8, 10)}
    assert totals == {
        4: usd("400.00"),
        5: usd("412.50"),
        7: usd("577.50"),
        8: usd("800.00"),
        10: usd("1000.00"),
    }


def test_cost_plus_markup_then_discount_erpnext_margin() -> None:
    """ERPNext ``test_pricing_rule_with_margin_and_discount``
    (accounts/doctype/pricing_rule/test_pricing_rule.py): 1000 + 10 % margin = 1100, then 10 % off
    = 990."""
    product = Product.cost_plus(sku="P", name="P", cost=usd(1000), markup=10)
    assert product.list_price == usd(1100)
    quote = empty().add_line(Catalog(products=[product]), "P", 1, discount=10)
    assert quote.total == usd("990.00")
    assert quote.margin == usd("-10.00")


# -- rates as data ----------------------------------------------------------------------------------


VAT13, VAT6, CITY = (
    TaxRate(code="VAT13", rate=13),
    TaxRate(code="VAT6", rate=6),
    TaxRate(code="CITY", rate=1),
)


def china_catalog() -> Catalog:
    return Catalog(
        categories=[
            Category(id="goods", name="Goods", taxes=[VAT13]),
            Category(id="services", name="Services", taxes=[VAT6]),
            Category(id="laptops", name="Laptops", parent="goods"),
        ],
        products=[
            Product(sku="LAPTOP", name="Laptop", category="laptops", list_price=usd("999.99")),
            Product(sku="SETUP", name="Setup", category="services", list_price=usd("150")),
            Product(
                sku="DESK",
                name="Desk",
                category="goods",
                list_price=usd("300"),
                taxes=[VAT13, CITY],
            ),
        ],
    )


def test_rates_come_from_the_product_or_its_nearest_category() -> None:
    catalog = china_catalog()
    quote = empty().add_lines(
        catalog, [{"sku": "LAPTOP", "quantity": 2}, {"sku": "SETUP"}, {"sku": "DESK"}]
    )
    assert [[t.code for t in line.taxes] for line in quote.lines] == [
        ["VAT13"],
        ["VAT6"],
        ["VAT13", "CITY"],
    ]
    # VAT13 on 1999.98 + 300.00, VAT6 on 150, CITY on 300: each rounded once.
    assert [(t.code, t.amount) for t in quote.taxes] == [
        ("VAT13", usd("299.00")),
        ("VAT6", usd("9.00")),
        ("CITY", usd("3.00")),
    ]
    assert "tax VAT13" in {s.step for s in quote.explain().steps}


def test_one_rate_per_code_and_no_duplicates() -> None:
    with pytest.raises(ValidationError, match="one rate for code 'VAT'"):
        Catalog(
            products=[
                Product(sku="P", name="P", list_price=usd(1), taxes="VAT:13"),
                Product(sku="Q", name="Q", list_price=usd(1), taxes="VAT:9"),
            ]
        )
    with pytest.raises(ValidationError, match="each tax code once"):
        Product(sku="P", name="P", list_price=usd(1), taxes="VAT:1;VAT:1")
    assert china_catalog().taxes == (VAT13, VAT6, CITY)
    with pytest.raises(InvalidTypeError):
        TaxRate(code="F", rate=0.5)  # type: ignore[arg-type]


def test_line_rounding_rounds_each_line() -> None:
    catalog = Catalog(products=[Product(sku="P", name="P", list_price=usd("0.05"), taxes="T:10")])
    quote = empty().add_lines(catalog, [{"sku": "P"}, {"sku": "P"}, {"sku": "P"}])
    assert quote.tax == usd("0.02")  # 10 % of 0.15, once
    per_line = quote.set_tax_rounding("line")
    assert per_line.tax == usd("0.03")  # 0.005 rounds up on each line
    assert Quote.from_dict(per_line.to_dict()).tax == usd("0.03")


def test_a_region_adds_the_tax_source_rates() -> None:
    seen: list[dict[str, Any]] = []

    def source(**where: Any) -> list[TaxRate]:
        seen.append(where)
        return [TaxRate(code="STATE", rate="7.25")] if where["region"] == "CA" else []

    catalog = china_catalog()
    quote = empty(region="CA").add_line(catalog, "SETUP", 1, tax_source=source)
    assert [t.code for t in quote.lines[0].taxes] == ["VAT6", "STATE"]
    assert seen[0]["category_path"] == ("services",) and seen[0]["on"] == DAY
    quote.check_prices(catalog, tax_source=source)
    with pytest.raises(ValidationError, match="taxes"):
        quote.check_prices(catalog)  # without the region's rates, the line's rates differ
    moved = quote.set_region("NV", catalog, tax_source=source)
    assert [t.code for t in moved.lines[0].taxes] == ["VAT6"]


# -- discounts and surcharges -----------------------------------------------------------------------


def test_a_surcharge_needs_the_catalogs_permission() -> None:
    catalog = Catalog(products=[Product(sku="P", name="P", list_price=usd(20))])
    with pytest.raises(ValidationError, match="no surcharge"):
        empty().add_line(catalog, "P", 1, discount=-10)
    with pytest.raises(ValidationError, match="no surcharge"):
        empty().add_line(catalog, "P", 1, amount_off=-5)
    with pytest.raises(ValidationError, match="-100"):
        empty().add_line(catalog, "P", 1, discount=-101)


def test_an_amount_off_never_exceeds_the_line() -> None:
    catalog = Catalog(products=[Product(sku="P", name="P", list_price=usd(100))])
    with pytest.raises(ValidationError, match="amount_off"):
        empty().add_line(catalog, "P", 1, discount=50, amount_off="50.01")
    quote = empty().add_line(catalog, "P", 1)
    with pytest.raises(ValidationError, match="document_amount_off"):
        quote.set_document_amount_off("100.01")


def test_the_policy_judges_every_kind_by_its_effect() -> None:
    catalog = Catalog(products=[Product(sku="P", name="P", list_price=usd(1000))])
    policy = DiscountPolicy.from_dict(
        {
            "ladder": [
                {"role": "sales_rep", "max_line_discount": 10},
                {"role": "sales_manager", "max_line_discount": 20},
            ]
        }
    )
    by_percent = empty().add_line(catalog, "P", 1, discount=15)
    by_amount = empty().add_line(catalog, "P", 1, amount_off=150)
    by_document = empty().add_line(catalog, "P", 1).set_document_amount_off(150)
    for quote in (by_percent, by_amount):
        verdict = policy.evaluate(quote, REP)
        assert verdict.max_line_discount == Decimal(15)
        assert verdict.required_role == "sales_manager"
    verdict = policy.evaluate(by_document, REP)
    assert verdict.average_discount == Decimal(15)
    assert verdict.required_role == "sales_manager"


# -- bands and units --------------------------------------------------------------------------------


def test_bands_must_not_overlap_and_only_the_last_is_open() -> None:
    with pytest.raises(ValidationError, match="upper bound"):
        Product(
            sku="P",
            name="P",
            list_price=usd(10),
            tier_mode="band",
            tiers=[PriceTier(2, usd(9)), PriceTier(5, usd(8))],
        )
    with pytest.raises(ValidationError, match="previous band"):
        Product(
            sku="P",
            name="P",
            list_price=usd(10),
            tier_mode="band",
            tiers=[PriceTier(2, usd(9), 6), PriceTier(5, usd(8))],
        )
    with pytest.raises(ValidationError, match="bands"):
        Product(sku="P", name="P", list_price=usd(10), tiers=[PriceTier(2, usd(9), 6)])


def test_units_of_measure_count_base_units_and_may_carry_a_price() -> None:
    product = Product(
        sku="PEN",
        name="Pen",
        list_price=usd("1.00"),
        cost=usd("0.40"),
        tiers=[PriceTier(12, usd("0.90"))],
        units=[
            UnitOfMeasure(code="box", factor=5, price=usd("4.50")),
            UnitOfMeasure(code="dozen", factor=12),
        ],
    )
    catalog = Catalog(products=[product])
    boxes = empty().add_line(catalog, "PEN", 3, unit="box")
    assert boxes.lines[0].quantity == Decimal(15)
    assert boxes.total == usd("13.50")
    dozens = empty().add_line(catalog, "PEN", 2, unit="dozen")
    assert dozens.total == usd("21.60")  # 24 units reach the tier at 12
    assert dozens.cost_total == usd("9.60")
    per_box = empty().add_line(catalog, "PEN", 2, unit="box", unit_price="4.00")
    assert per_box.total == usd("8.00")
    with pytest.raises(ValidationError, match="units of 'PEN'"):
        empty().add_line(catalog, "PEN", 1, unit="crate")
    again = Quote.from_dict(dozens.to_dict())
    assert again == dozens and again.lines == dozens.lines


# -- round trips --------------------------------------------------------------------------------------


def full_catalog() -> Catalog:
    vat = TaxRate(code="VAT13", rate=13, name="VAT")
    return Catalog(
        categories=[Category(id="goods", name="Goods", taxes=[vat])],
        products=[
            Product(
                sku="A",
                name="A",
                category="goods",
                list_price=usd("113.00"),
                tax_included=True,
                allow_surcharge=True,
                taxes=[vat, TaxRate(code="CITY", rate="0.5")],
                units=[UnitOfMeasure(code="box", factor=5, price=usd("500"))],
                tier_mode="band",
                tiers=[PriceTier(5, usd("100"), 9), PriceTier(20, usd(90))],
            ),
            Product.cost_plus(sku="B", name="B", cost=usd("80"), markup="12.5"),
        ],
    )


def test_the_catalog_round_trips_every_new_field_through_dicts_and_csv() -> None:
    import io

    catalog = full_catalog()
    assert Catalog.from_dict(catalog.to_dict()) == catalog
    files = {name: io.StringIO() for name in ("products", "categories")}
    catalog.write_csv(files["products"], categories=files["categories"])
    for handle in files.values():
        handle.seek(0)
    again = Catalog.from_csv(files["products"], categories=files["categories"])
    assert again == catalog


def test_the_catalog_and_the_quote_round_trip_through_toml() -> None:
    catalog = full_catalog()
    text = catalog.to_toml()
    assert 'tier_mode = "band"' in text and "max_quantity = 9" in text
    assert Catalog.from_toml(text) == catalog
    quote = (
        empty(region="SH")
        .add_line(catalog, "A", 2, unit="box", discount=-5, amount_off="10")
        .add_line(catalog, "B", 3)
        .set_document_amount_off("20")
        .set_tax_rounding("line")
    )
    again = Quote.from_toml(quote.to_toml())
    assert again == quote and again.lines == quote.lines
    with pytest.raises(ValidationError, match="TOML"):
        Catalog.from_toml("products = [")


def test_the_quote_and_its_contract_keep_every_new_field() -> None:
    catalog = full_catalog()
    quote = (
        empty(region="SH")
        .add_line(catalog, "A", 2, unit="box", discount=-5, amount_off="10")
        .add_line(catalog, "B", 3)
        .set_document_amount_off("20")
        .set_tax_rounding("line")
    )
    again = Quote.from_dict(quote.to_dict())
    assert again == quote
    assert again.lines == quote.lines
    assert again.content_hash() == quote.content_hash()
    approved = route_quote(quote, Actor("dan", roles={"sales_rep"}), _open_policy()).quote
    contract = Contract.from_quote(approved, id="C-1", account="acme")
    copied = Contract.from_dict(contract.to_dict())
    assert copied.lines == approved.lines
    assert [line.taxes for line in copied.lines] == [line.taxes for line in quote.lines]
    assert copied.amount == quote.total


def test_a_quote_stored_before_these_fields_still_loads() -> None:
    legacy = {
        "id": "Q-OLD",
        "owner": "ann",
        "currency": "USD",
        "quoted_on": "2026-01-05",
        "tax_rate": "13",
        "document_discount": "5",
        "items": [
            {
                "id": "L1",
                "quantity": "3",
                "discount": "10",
                "unit_price": None,
                "bundle": None,
                "products": [
                    {
                        "product": {
                            "sku": "P",
                            "name": "P",
                            "list_price": "99.90",
                            "currency": "USD",
                        },
                        "category_path": [],
                        "quantity": "1",
                    }
                ],
            }
        ],
    }
    quote = Quote.from_dict(legacy)
    assert quote.total == usd("289.55")  # 269.73 - 13.49 = 256.24 net, 13 % = 33.31
    assert "document_amount_off" not in quote.to_dict()
    assert [s.step for s in quote.explain().for_line("quote")][-2] == "tax"


def _open_policy() -> DiscountPolicy:
    return DiscountPolicy.from_dict({"ladder": [{"role": "sales_rep", "max_line_discount": 100}]})


# -- margins --------------------------------------------------------------------------------------------


def test_a_margin_below_the_roles_minimum_goes_up_the_ladder() -> None:
    catalog = Catalog(products=[Product(sku="P", name="P", list_price=usd(100), cost=usd(70))])
    policy = DiscountPolicy.from_dict(
        {
            "ladder": [
                {"role": "sales_rep", "max_line_discount": 20, "min_margin": 25},
                {"role": "sales_manager", "max_line_discount": 20, "min_margin": 15},
            ]
        }
    )
    assert DiscountPolicy.from_dict(policy.to_dict()) == policy
    fine = empty().add_line(catalog, "P", 1)
    assert fine.margin_percent == Decimal(30)
    assert policy.evaluate(fine, REP).within_authority
    thin = empty().add_line(catalog, "P", 1, discount=10)  # 90 - 70 = 20 / 90 = 22.2 %
    verdict = policy.evaluate(thin, REP)
    assert verdict.required_role == "sales_manager"
    assert [r.kind for r in verdict.reasons] == [ReasonKind.MARGIN]
    assert "below the sales_rep minimum of 25.00%" in verdict.reasons[0].message
    gone = empty().add_line(catalog, "P", 1, discount=20)  # 80 - 70 = 12.5 %
    assert policy.evaluate(gone, REP).forbidden
    with pytest.raises(ValidationError, match="minimum margins never rise"):
        DiscountPolicy.from_dict(
            {
                "ladder": [
                    {"role": "a", "max_line_discount": 1},
                    {"role": "b", "max_line_discount": 1, "min_margin": 5},
                ]
            }
        )


def test_costs_refuse_floats() -> None:
    with pytest.raises(InvalidTypeError):
        Money(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        Product.from_dict({"sku": "P", "name": "P", "cost": 0.1, "markup": 10, "currency": "USD"})


# -- properties -------------------------------------------------------------------------------------


_RATES = st.sampled_from(["0", "5", "6", "7.25", "10", "13", "15", "20", "0.5"])


@st.composite
def taxed_quotes(draw: st.DrawFn) -> Quote:
    codes = ["A", "B", "C"]
    rates = [TaxRate(code=c, rate=draw(_RATES)) for c in codes]
    products = []
    for i in range(draw(st.integers(1, 4))):
        cents = draw(st.integers(0, 10**7))
        taxes = draw(st.lists(st.sampled_from(rates), max_size=3, unique_by=lambda r: r.code))
        products.append(
            Product(
                sku=f"P{i}",
                name=f"P{i}",
                list_price=Money(Decimal(cents).scaleb(-3), "USD"),
                cost=Money(Decimal(draw(st.integers(0, 10**6))).scaleb(-2), "USD"),
                taxes=taxes,
                tax_included=draw(st.booleans()),
            )
        )
    catalog = Catalog(products=products)
    entries = [
        {
            "sku": draw(st.sampled_from([p.sku for p in products])),
            "quantity": draw(st.integers(1, 500)),
            "discount": Decimal(draw(st.integers(0, 200))) / 4,
        }
        for _ in range(draw(st.integers(1, 6)))
    ]
    quote = empty(tax_rate=draw(st.sampled_from(["0", "3"]))).add_lines(catalog, entries)
    quote = quote.set_document_discount(Decimal(draw(st.integers(0, 30))))
    left = quote.subtotal.amount - quote.document_discount_amount.amount
    off = draw(st.integers(0, int(left * 100))) if left > 0 else 0
    quote = quote.set_document_amount_off(Decimal(off).scaleb(-2))
    return quote.set_tax_rounding(draw(st.sampled_from(["document", "line"])))


@settings(max_examples=150, deadline=None)
@given(taxed_quotes())
def test_nets_plus_taxes_are_the_total_for_any_mix_of_rates(quote: Quote) -> None:
    lines = quote.lines
    nets = sum((line.net.amount for line in lines), Decimal(0))
    taxes = sum((a for line in lines for a in line.tax_amounts), Decimal(0))
    assert quote.total.amount == nets + taxes
    assert quote.tax.amount == taxes == sum((t.amount.amount for t in quote.taxes), Decimal(0))
    for line in lines:
        assert line.net.is_rounded() and line.tax.is_rounded()
        assert line.tax.amount == sum(line.tax_amounts, Decimal(0))
    # The document discount (percent and fixed amount together) is allocated exactly.
    assert sum((line.document_discount.amount for line in lines), Decimal(0)) == (
        quote.document_discount_amount.amount
    )
    pct = (quote.subtotal.amount * quote.document_discount / 100).quantize(CENT, ROUND_HALF_UP)
    assert quote.document_discount_amount.amount == pct + quote.document_amount_off
    if quote.tax_rounding == "document":
        for tax in quote.taxes:
            base = sum(
                (
                    line.net.amount
                    for line in lines
                    if any(r.code == tax.code for r in line.tax_rates)
                ),
                Decimal(0),
            )
            assert tax.amount.amount == (base * tax.rate / 100).quantize(CENT, ROUND_HALF_UP)
    # Margins are exact Decimal arithmetic on the nets and costs, never a float.
    margin = quote.margin
    assert margin is not None and type(margin.amount) is Decimal
    costs = sum((line.cost.amount for line in lines if line.cost is not None), Decimal(0))
    assert margin.amount == nets - costs
    assert Quote.from_dict(quote.to_dict()).total == quote.total


@settings(max_examples=150, deadline=None)
@given(
    cents=st.integers(1, 10**7),
    quantity=st.integers(1, 1000),
    rates=st.lists(_RATES, min_size=1, max_size=2),
)
def test_an_inclusive_price_list_gives_the_exclusive_total(
    cents: int, quantity: int, rates: list[str]
) -> None:
    """Where the untaxed amount is whole cents (the peers agree on it then), a tax-included price
    list and the equivalent tax-excluded one give the same nets, taxes and total."""
    taxes = [TaxRate(code=f"T{i}", rate=r) for i, r in enumerate(rates)]
    exclusive = Decimal(cents).scaleb(-2)
    total_rate = sum((t.rate for t in taxes), Decimal(0))
    inclusive = exclusive * (100 + total_rate) / 100  # exact: at most 4 decimals more
    catalog = Catalog(
        products=[
            Product(sku="EX", name="EX", list_price=usd(str(exclusive)), taxes=taxes),
            Product(
                sku="IN", name="IN", list_price=usd(str(inclusive)), taxes=taxes, tax_included=True
            ),
        ],
    )
    ex = empty().add_line(catalog, "EX", quantity)
    inc = empty().add_line(catalog, "IN", quantity)
    assert inc.net_total == ex.net_total
    assert inc.tax == ex.tax
    assert inc.total == ex.total
    assert untaxed_amount(inc.lines[0].included.amount, [t.rate for t in taxes], CENT) == (  # type: ignore[union-attr]
        ex.net_total.amount
    )


@settings(max_examples=100, deadline=None)
@given(
    subtotals=st.lists(st.integers(1, 10**6), min_size=1, max_size=8),
    share=st.integers(0, 100),
)
def test_a_fixed_document_discount_allocates_exactly(subtotals: list[int], share: int) -> None:
    products = [
        Product(sku=f"P{i}", name="P", list_price=Money(Decimal(c).scaleb(-2), "USD"))
        for i, c in enumerate(subtotals)
    ]
    quote = empty().add_lines(Catalog(products=products), [{"sku": p.sku} for p in products])
    off = (quote.subtotal.amount * share / 100).quantize(CENT)
    quote = quote.set_document_amount_off(off)
    shares = [line.document_discount.amount for line in quote.lines]
    assert sum(shares, Decimal(0)) == off
    assert all(
        Decimal(0) <= s <= line.subtotal.amount for s, line in zip(shares, quote.lines, strict=True)
    )
    assert quote.net_total.amount == quote.subtotal.amount - off


@settings(max_examples=200, deadline=None)
@given(
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
    units=st.lists(st.integers(0, 10**9), min_size=1, max_size=12),
    total=st.integers(0, 10**10),
)
def test_the_waterfalls_split_is_money_allocate(
    currency: str, units: list[int], total: int
) -> None:
    """The quote allocates document discounts and taxes on integers; it splits exactly as
    :meth:`Money.allocate` does."""
    from salesflow.domain.money import currency_precision
    from salesflow.domain.quotes import _allocate

    places = currency_precision(currency)
    weights = [Decimal(u).scaleb(-places) for u in units]
    amount = Decimal(total).scaleb(-places)
    if not any(weights):
        assert _allocate(amount, weights, currency) == [Decimal(0)] * len(weights)
        return
    expected = [m.amount for m in Money(amount, currency).allocate(weights)] if total else None
    got = _allocate(amount, weights, currency)
    assert sum(got, Decimal(0)) == amount
    if expected is not None:
        assert got == expected


def test_the_policys_minimum_margins_survive_the_rules_toml() -> None:
    """The stored, versioned sales rules write the discount policy as TOML: min_margin included."""
    from salesflow.domain.rules import Rules

    policy = DiscountPolicy.from_dict(
        {
            "ladder": [
                {"role": "sales_rep", "max_line_discount": 10, "min_margin": "20.5"},
                {"role": "sales_manager", "max_line_discount": 20, "min_margin": 10},
                {"role": "sales_director", "max_line_discount": 25},
            ]
        }
    )
    rules = Rules().with_part(policy)
    assert Rules.from_toml(rules.to_toml()).discount_policy == policy
    assert DiscountPolicy.from_dict(policy.to_dict()).ladder[0].min_margin == Decimal("20.5")


def test_the_guides_example_prints_what_it_says() -> None:
    """docs/guide/quotes.md: the taxes section's example runs and its comments are its output."""
    import re
    from pathlib import Path

    guide = Path(__file__).resolve().parents[2] / "docs" / "guide" / "quotes.md"
    text = guide.read_text(encoding="utf-8")
    section = text[text.index("## Taxes, amount discounts") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)
    quote = namespace["quote"]
    assert [(t.code, str(t.amount)) for t in quote.taxes] == [
        ("VAT13", "9821.57 CNY"),
        ("VAT6", "266.41 CNY"),
    ]
    assert str(quote.total) == "90078.65 CNY"
    assert quote.line("L5").discounted == Money.of("990", "CNY")
