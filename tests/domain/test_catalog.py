"""The catalog: categories nest, products validate, tiers price by range or slab, bundles hold,
only sellable items are handed out, and catalogs round-trip through dicts and CSV."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.domain.catalog import (
    Bundle,
    BundleComponent,
    Catalog,
    Category,
    PriceTier,
    Product,
)
from salesflow.domain.money import Money
from salesflow.errors import (
    CurrencyMismatchError,
    InvalidTypeError,
    NotFoundError,
    ValidationError,
)
from salesflow.testing.quote_strategies import catalogs, products

DAY = date(2026, 11, 26)


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


def laptop(**changes: object) -> Product:
    base = Product(
        sku="LAPTOP",
        name="Laptop 14",
        category="laptops",
        list_price=cny("6000.00"),
        floor_price=cny("4800.00"),
        tiers=(PriceTier(10, cny("5700.00")), PriceTier(50, cny("5400.00"))),
    )
    return attrs.evolve(base, **changes)


def sample() -> Catalog:
    return Catalog(
        categories=[
            Category(id="hw", name="Hardware"),
            Category(id="laptops", name="Laptops", parent="hw"),
            Category(id="svc", name="Services"),
        ],
        products=[
            laptop(),
            Product(sku="DOCK", name="Dock", category="hw", list_price=cny("900.00")),
            Product(sku="SETUP", name="Setup hour", category="svc", list_price=cny("300.00")),
            Product(sku="OLD", name="Old model", list_price=cny("10.00"), active=False),
            Product(
                sku="PROMO",
                name="Promo",
                list_price=cny("5.00"),
                valid_from=date(2026, 11, 1),
                valid_until=date(2026, 11, 30),
            ),
        ],
        bundles=[
            Bundle(
                sku="KIT",
                name="Office kit",
                price=cny("1000.00"),
                components=[BundleComponent("DOCK", 1), BundleComponent("SETUP", 1)],
            )
        ],
    )


# -- categories ------------------------------------------------------------------------------------


def test_categories_nest_and_paths_run_up_to_the_root() -> None:
    catalog = sample()
    assert catalog.category_path("laptops") == ("laptops", "hw")
    assert catalog.category_path(None) == ()
    assert [p.sku for p in catalog.products_in("hw")] == ["LAPTOP", "DOCK"]
    assert [p.sku for p in catalog.products_in("hw", nested=False)] == ["DOCK"]


def test_category_cycles_and_unknown_parents_are_refused() -> None:
    with pytest.raises(ValidationError, match="cycle"):
        Catalog(
            categories=[
                Category(id="a", name="A", parent="b"),
                Category(id="b", name="B", parent="a"),
            ]
        )
    with pytest.raises(ValidationError) as info:
        Catalog(categories=[Category(id="a", name="A", parent="nope")])
    assert info.value.field == "categories[0].parent"
    with pytest.raises(ValidationError):
        Category(id="a", name="A", parent="a")


def test_unknown_category_on_a_product_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        Catalog(products=[laptop(category="ghost")])
    assert info.value.field == "products[0].category"
    assert info.value.value == "ghost"


# -- products ---------------------------------------------------------------------------------------


def test_product_fields_are_validated_with_the_field_named() -> None:
    with pytest.raises(InvalidTypeError) as info:
        laptop(list_price=Decimal("10"))
    assert info.value.field == "list_price"
    with pytest.raises(ValidationError) as info:
        laptop(floor_price=cny("7000.00"))
    assert info.value.field == "floor_price"
    assert "LAPTOP" in str(info.value)
    with pytest.raises(CurrencyMismatchError):
        laptop(cost=Money.of("1", "USD"))
    with pytest.raises(ValidationError) as info:
        laptop(valid_from=date(2026, 2, 1), valid_until=date(2026, 1, 1))
    assert info.value.field == "valid_until"
    with pytest.raises(ValidationError):
        laptop(tier_mode="stairs")
    with pytest.raises(ValidationError):
        laptop(sku=" ")
    with pytest.raises(InvalidTypeError):
        laptop(active="yes")


def test_floats_never_reach_a_price() -> None:
    with pytest.raises(InvalidTypeError):
        PriceTier(10, Money.of(9.5, "CNY"))  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        Product.from_dict({"sku": "A", "name": "A", "list_price": 9.99, "currency": "CNY"})


@pytest.mark.parametrize(
    ("tiers", "field"),
    [
        ((PriceTier(10, cny("5700")), PriceTier(10, cny("5600"))), "tiers[1].min_quantity"),
        ((PriceTier(50, cny("5400")), PriceTier(10, cny("5700"))), "tiers[1].min_quantity"),
        ((PriceTier(10, cny("5400")), PriceTier(50, cny("5700"))), "tiers[1].unit_price"),
        ((PriceTier(10, cny("6100")),), "tiers[0].unit_price"),
        ((PriceTier(10, cny("4000")),), "tiers[0].unit_price"),
    ],
)
def test_bad_tiers_are_refused(tiers: tuple[PriceTier, ...], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        laptop(tiers=tiers)
    assert info.value.field == field


def test_a_tier_starts_at_two_whole_units_or_more() -> None:
    for bad in (1, 0, "2.5"):
        with pytest.raises(ValidationError) as info:
            PriceTier(bad, cny("1"))
        assert info.value.field == "min_quantity"


def test_range_tiers_price_every_unit_at_the_tier_reached() -> None:
    product = laptop(tier_mode="range")
    assert product.volume_amount(9) == cny("54000.00")  # 9 x 6000
    assert product.volume_amount(10) == cny("57000.00")  # 10 x 5700
    assert product.volume_amount(60) == cny("324000.00")  # 60 x 5400
    (segment,) = product.volume_segments(12)
    assert (segment.min_quantity, segment.quantity, segment.unit_price) == (
        10,
        12,
        cny("5700.00"),
    )


def test_slab_tiers_price_each_unit_at_its_own_tier() -> None:
    product = laptop(tier_mode="slab")
    assert product.volume_amount(9) == cny("54000.00")
    # units 1-9 at 6000, unit 10 at 5700
    assert product.volume_amount(10) == cny("59700.00")
    # units 1-9 at 6000, 10-49 at 5700, 50-60 at 5400
    assert product.volume_amount(60) == cny("54000") + cny("228000") + cny("59400")
    assert [(s.min_quantity, s.quantity) for s in product.volume_segments(60)] == [
        (1, 9),
        (10, 40),
        (50, 11),
    ]


def test_tiered_products_sell_whole_units_and_others_any_positive_quantity() -> None:
    with pytest.raises(ValidationError) as info:
        laptop().volume_segments("2.5")
    assert info.value.field == "quantity"
    plain = Product(sku="H", name="Hour", list_price=cny("300.00"))
    assert plain.volume_amount("2.5") == cny("750.00")
    with pytest.raises(ValidationError):
        plain.volume_amount(0)


def _unit_by_unit(product: Product, quantity: int) -> Decimal:
    """Each unit at the price of the highest tier that starts at or before it (slab, plainly)."""
    total = Decimal(0)
    for unit in range(1, quantity + 1):
        price = product.list_price.amount
        for tier in product.tiers:
            if tier.min_quantity <= unit:
                price = tier.unit_price.amount
        total += price
    return total


def _reached(product: Product, quantity: int) -> Decimal:
    price = product.list_price.amount
    for tier in product.tiers:
        if tier.min_quantity <= quantity:
            price = tier.unit_price.amount
    return price * quantity


@given(products(tiers=True), st.integers(1, 200))
def test_tier_modes_match_a_unit_by_unit_computation(product: Product, quantity: int) -> None:
    slab = attrs.evolve(product, tier_mode="slab")
    ranged = attrs.evolve(product, tier_mode="range")
    assert slab.volume_amount(quantity).amount == _unit_by_unit(product, quantity)
    assert ranged.volume_amount(quantity).amount == _reached(product, quantity)
    # Prices never rise with the tier, so range never charges more than slab, nor slab than list.
    assert ranged.volume_amount(quantity) <= slab.volume_amount(quantity)
    assert slab.volume_amount(quantity).amount <= product.list_price.amount * quantity
    assert sum(s.quantity for s in slab.volume_segments(quantity)) == quantity


# -- bundles -----------------------------------------------------------------------------------------


def test_bundles_are_validated_against_the_catalog() -> None:
    dock = Product(sku="DOCK", name="Dock", list_price=cny("900.00"), floor_price=cny("700.00"))
    kit = Bundle(
        sku="KIT", name="Kit", price=cny("1000.00"), components=[BundleComponent("DOCK", 2)]
    )
    with pytest.raises(ValidationError, match="floor"):
        Catalog(products=[dock], bundles=[kit])  # 2 docks cannot sell for less than 1400
    with pytest.raises(ValidationError) as info:
        Catalog(products=[], bundles=[kit])
    assert info.value.field == "bundles[0].components[0].sku"
    nested = Bundle(
        sku="BIG", name="Big", price=cny("1.00"), components=[BundleComponent("KIT", 1)]
    )
    with pytest.raises(ValidationError, match="do not nest"):
        Catalog(products=[attrs.evolve(dock, floor_price=None)], bundles=[kit, nested])
    with pytest.raises(CurrencyMismatchError):
        Catalog(
            products=[attrs.evolve(dock, list_price=Money.of("1", "USD"), floor_price=None)],
            bundles=[kit],
        )
    with pytest.raises(ValidationError) as info:
        Bundle(sku="K", name="K", price=cny("1.005"), components=[BundleComponent("DOCK", 1)])
    assert info.value.field == "price"
    with pytest.raises(ValidationError):
        Bundle(sku="K", name="K", price=cny("1"), components=[])
    with pytest.raises(ValidationError):
        Bundle(
            sku="K",
            name="K",
            price=cny("1"),
            components=[BundleComponent("DOCK", 1), BundleComponent("DOCK", 2)],
        )


def test_skus_are_unique_across_products_and_bundles() -> None:
    dock = Product(sku="DOCK", name="Dock", list_price=cny("900.00"))
    clash = Bundle(
        sku="DOCK", name="Kit", price=cny("1.00"), components=[BundleComponent("DOCK", 1)]
    )
    with pytest.raises(ValidationError) as info:
        Catalog(products=[dock], bundles=[clash])
    assert info.value.field == "bundles[0].sku"


# -- lookups ------------------------------------------------------------------------------------------


def test_only_sellable_items_are_handed_out() -> None:
    catalog = sample()
    assert catalog.product("LAPTOP", on=DAY).sku == "LAPTOP"
    with pytest.raises(NotFoundError) as missing:
        catalog.product("NOPE", on=DAY)
    assert missing.value.key == "NOPE"
    with pytest.raises(ValidationError, match="inactive"):
        catalog.product("OLD", on=DAY)
    assert catalog.product("PROMO", on=date(2026, 11, 1)).sku == "PROMO"  # inclusive bounds
    assert catalog.product("PROMO", on=date(2026, 11, 30)).sku == "PROMO"
    for outside in (date(2026, 10, 31), date(2026, 12, 1)):
        with pytest.raises(ValidationError) as info:
            catalog.product("PROMO", on=outside)
        assert info.value.field == "on"
    with pytest.raises(NotFoundError, match="bundle"):
        catalog.product("KIT", on=DAY)
    assert isinstance(catalog.sellable("KIT", on=DAY), Bundle)
    assert catalog.item("OLD").active is False  # item() does not judge
    assert "KIT" in catalog and "NOPE" not in catalog
    assert len(catalog) == 6


def test_a_bundle_is_sellable_only_when_every_component_is() -> None:
    catalog = sample()
    setup = catalog.item("SETUP")
    assert isinstance(setup, Product)
    stale = catalog.with_items(attrs.evolve(setup, valid_until=date(2026, 6, 30)))
    with pytest.raises(ValidationError, match="KIT"):
        stale.bundle("KIT", on=DAY)
    assert [(p.sku, q) for p, q in catalog.components("KIT")] == [("DOCK", 1), ("SETUP", 1)]


def test_dates_are_parameters_and_datetimes_are_refused() -> None:
    from datetime import datetime

    with pytest.raises(InvalidTypeError):
        sample().product("LAPTOP", on=datetime(2026, 11, 26, 9, 0))  # type: ignore[arg-type]


def test_with_items_and_without_return_new_catalogs() -> None:
    catalog = sample()
    cheaper = catalog.with_items(laptop(list_price=cny("5900.00"), tiers=()))
    assert cheaper.product("LAPTOP", on=DAY).list_price == cny("5900.00")
    assert catalog.product("LAPTOP", on=DAY).list_price == cny("6000.00")
    assert "PROMO" not in catalog.without("PROMO")
    with pytest.raises(NotFoundError):
        catalog.without("NOPE")
    with pytest.raises(ValidationError):
        catalog.without("DOCK")  # the bundle needs it


# -- dicts, records and CSV --------------------------------------------------------------------------------


@given(catalogs(currency=None))
def test_catalogs_round_trip_through_plain_dicts(catalog: Catalog) -> None:
    assert Catalog.from_dict(catalog.to_dict()) == catalog


@given(catalogs(currency=None))
def test_catalogs_round_trip_through_csv(catalog: Catalog) -> None:
    products, categories, bundles = io.StringIO(), io.StringIO(), io.StringIO()
    catalog.write_csv(products, categories=categories, bundles=bundles)
    for handle in (products, categories, bundles):
        handle.seek(0)
    assert Catalog.from_csv(products, categories=categories, bundles=bundles) == catalog


def test_from_records_maps_columns_and_names_the_bad_row() -> None:
    rows = [
        {"code": "A", "title": "Alpha", "price": "10.00", "gone": "0", "group": "NULL"},
        {"code": "B", "title": "Beta", "price": "20.00", "gone": "1", "group": "x"},
    ]
    mapping = {
        "sku": "code",
        "name": "title",
        "list_price": "price",
        "category": "group",
        "active": lambda row: row["gone"] == "0",
    }
    catalog = Catalog.from_records(rows, mapping=mapping, currency="EUR")
    assert catalog.product("A", on=DAY).category is None  # NULL means missing
    assert catalog.item("B").active is False
    assert [c.id for c in catalog.categories] == ["x"]  # named, hence created
    bad = [*rows, {"code": "C", "title": "Gamma", "price": "ten", "gone": "0", "group": "x"}]
    with pytest.raises(ValidationError) as info:
        Catalog.from_records(bad, mapping=mapping, currency="EUR")
    assert info.value.field == "list_price"
    assert "products row 3" in str(info.value)
    with pytest.raises(ValidationError, match="mapping"):
        Catalog.from_records(rows, mapping={"colour": "x"}, currency="EUR")


def test_csv_errors_name_the_line_and_tiers_parse_from_text() -> None:
    text = (
        "sku,name,list_price,currency,tiers,tier_mode\n"
        "A,Alpha,10.00,CNY,5:9.00;10:8.50,slab\n"
        "B,Beta,10.00,CNY,5:11.00,range\n"
    )
    with pytest.raises(ValidationError) as info:
        Catalog.from_csv(io.StringIO(text))
    assert "products line 3" in str(info.value)
    good = Catalog.from_csv(io.StringIO(text.rsplit("B,", 1)[0]))
    assert good.product("A", on=DAY).tiers == (
        PriceTier(5, cny("9.00")),
        PriceTier(10, cny("8.50")),
    )
    with pytest.raises(ValidationError):
        Catalog.from_csv(io.StringIO("sku,name,list_price,currency,tiers\nA,A,1,CNY,5-9\n"))


def test_write_csv_needs_a_file_for_every_part_it_has() -> None:
    with pytest.raises(ValidationError) as info:
        sample().write_csv(io.StringIO())
    assert info.value.field == "bundles"


def test_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        Catalog.from_dict({"products": [], "prices": []})
    with pytest.raises(ValidationError) as info:
        Product.from_dict(
            {"sku": "A", "name": "A", "list_price": "1", "currency": "CNY", "colour": "red"}
        )
    assert info.value.value == ["colour"]


# -- Northwind ------------------------------------------------------------------------------------------------

NORTHWIND_MAPPING = {
    "sku": "productID",
    "name": "productName",
    "category": "categoryID",
    "list_price": "unitPrice",
    "active": lambda row: row["discontinued"] == "0",
}


def test_the_northwind_products_load_with_their_categories(northwind: Path) -> None:
    with (
        (northwind / "products.csv").open(newline="", encoding="utf-8") as products,
        (northwind / "categories.csv").open(newline="", encoding="utf-8") as categories,
    ):
        catalog = Catalog.from_csv(
            products,
            categories=categories,
            mapping=NORTHWIND_MAPPING,
            category_mapping={"id": "categoryID", "name": "categoryName"},
            currency="USD",
        )
    with (northwind / "products.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(catalog.products) == len(rows) == 77
    assert len(catalog.categories) == 8
    for row in rows:
        product = catalog.item(row["productID"])
        assert isinstance(product, Product)
        assert product.list_price == Money.of(row["unitPrice"], "USD")
        assert product.active is (row["discontinued"] == "0")
        assert catalog.category(row["categoryID"]).name
    discontinued = [r["productID"] for r in rows if r["discontinued"] != "0"]
    assert discontinued
    for sku in discontinued:
        with pytest.raises(ValidationError):
            catalog.product(sku, on=DAY)
    assert catalog.product("1", on=DAY).name == "Chai"
    assert catalog.category(catalog.product("1", on=DAY).category or "").name == "Beverages"
