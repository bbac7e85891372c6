"""Quotes over the real Northwind order lines (../shared/data/northwind, see its SOURCE.txt).

Every order becomes a quote priced by salesflow; every line's net is checked against a plain
Decimal computation written here, with no salesflow pricing code. Then a sample policy (rep 10 %,
manager 20 %, director 25 %) routes every line, and the counts are checked against an independent
count. Northwind discounts are fractions (0.05 is 5 %); its order prices are historic (most orders
before spring 1997 were taken at 80 % of today's catalog price).
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from salesflow.domain.actors import Actor
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.discounts import DiscountPolicy
from salesflow.domain.money import Money
from salesflow.domain.quotes import Quote

pytestmark = pytest.mark.realdata

CENT = Decimal("0.01")
REP = Actor("rep", roles={"sales_rep"})
SAMPLE_POLICY = DiscountPolicy.from_dict(
    {
        "ladder": [
            {"role": "sales_rep", "max_line_discount": 10},
            {"role": "sales_manager", "max_line_discount": 20},
            {"role": "sales_director", "max_line_discount": 25},
        ]
    }
)


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_catalog(folder: Path, *, as_sold: bool) -> Catalog:
    """The Northwind catalog; ``as_sold`` keeps discontinued products sellable, as they were when
    the historic orders were taken."""
    with (
        (folder / "products.csv").open(newline="", encoding="utf-8") as products,
        (folder / "categories.csv").open(newline="", encoding="utf-8") as categories,
    ):
        return Catalog.from_csv(
            products,
            categories=categories,
            mapping={
                "sku": "productID",
                "name": "productName",
                "category": "categoryID",
                "list_price": "unitPrice",
                "active": (lambda row: True)
                if as_sold
                else (lambda row: row["discontinued"] == "0"),
            },
            category_mapping={"id": "categoryID", "name": "categoryName"},
            currency="USD",
        )


def plain_net(row: dict[str, str]) -> Decimal:
    """The line net, computed plainly: price x quantity x (1 - discount), rounded half up."""
    price = Decimal(row["unitPrice"])
    quantity = Decimal(row["quantity"])
    fraction = Decimal(row["discount"])
    return (price * quantity * (1 - fraction)).quantize(CENT, rounding=ROUND_HALF_UP)


def plain_role(effective_percent: Decimal) -> str:
    """The lowest role of the sample policy allowed to give ``effective_percent``, or forbidden."""
    if effective_percent <= 10:
        return "sales_rep"
    if effective_percent <= 20:
        return "sales_manager"
    if effective_percent <= 25:
        return "sales_director"
    return "forbidden"


def percent(row: dict[str, str]) -> Decimal:
    return Decimal(row["discount"]) * 100


@pytest.fixture(scope="module")
def order_lines(northwind: Path) -> list[dict[str, str]]:
    rows = read(northwind / "order-details.csv")
    assert len(rows) == 2155
    return rows


@pytest.fixture(scope="module")
def orders(northwind: Path) -> dict[str, dict[str, str]]:
    return {row["orderID"]: row for row in read(northwind / "orders.csv")}


def test_every_order_line_nets_what_a_plain_computation_says(
    northwind: Path, order_lines: list[dict[str, str]], orders: dict[str, dict[str, str]]
) -> None:
    catalog = load_catalog(northwind, as_sold=True)
    by_order: dict[str, list[dict[str, str]]] = {}
    for row in order_lines:
        by_order.setdefault(row["orderID"], []).append(row)
    checked = 0
    for order_id, rows in by_order.items():
        order = orders[order_id]
        quote = Quote(
            id=order_id,
            owner=order["employeeID"],
            currency="USD",
            quoted_on=date.fromisoformat(order["orderDate"][:10]),
        ).add_lines(
            catalog,
            [
                {
                    "sku": row["productID"],
                    "quantity": row["quantity"],
                    "unit_price": row["unitPrice"],
                    "discount": percent(row),
                }
                for row in rows
            ],
        )
        assert len(quote.lines) == len(rows)
        expected_total = Decimal(0)
        for line, row in zip(quote.lines, rows, strict=True):
            expected = plain_net(row)
            assert line.net.amount == expected, (order_id, row)
            assert line.sku == row["productID"]
            expected_total += expected
            checked += 1
        assert quote.total == Money(expected_total, "USD")
    assert checked == len(order_lines)


def route_counts(
    lines: list[dict[str, str]], catalog: Catalog, *, historic_as_list: bool
) -> Counter[str]:
    """Route every line as a one-line quote and count the roles the sample policy requires."""
    counts: Counter[str] = Counter()
    for row in lines:
        entry: dict[str, Any] = {
            "sku": row["productID"],
            "quantity": row["quantity"],
            "discount": percent(row),
        }
        source = catalog
        if historic_as_list:
            # The price list in force when the order was taken: the order's price is the list.
            product = catalog.item(row["productID"])
            source = Catalog(
                products=[
                    Product(
                        sku=product.sku,
                        name=product.name,
                        list_price=Money.of(row["unitPrice"], "USD"),
                    )
                ]
            )
        else:
            entry["unit_price"] = row["unitPrice"]
        quote = Quote(id="q", owner="rep", currency="USD", quoted_on=date(1997, 1, 1)).add_lines(
            source, [entry]
        )
        verdict = SAMPLE_POLICY.evaluate(quote, REP)
        counts["forbidden" if verdict.forbidden else str(verdict.required_role)] += 1
    return counts


def test_the_sample_policy_routes_lines_by_their_discount(
    northwind: Path, order_lines: list[dict[str, str]]
) -> None:
    catalog = load_catalog(northwind, as_sold=True)
    counts = route_counts(order_lines, catalog, historic_as_list=True)
    independent = Counter(plain_role(percent(row)) for row in order_lines)
    assert counts == independent
    assert sum(counts.values()) == len(order_lines)
    # Northwind never gave more than 25 %: nothing is beyond the director.
    assert counts["forbidden"] == 0
    assert counts["sales_rep"] > counts["sales_manager"] > counts["sales_director"] > 0


def test_against_todays_catalog_historic_prices_count_as_discount(
    northwind: Path, order_lines: list[dict[str, str]]
) -> None:
    catalog = load_catalog(northwind, as_sold=True)
    book = {p.sku: p for p in catalog.products}
    counts = route_counts(order_lines, catalog, historic_as_list=False)
    independent: Counter[str] = Counter()
    for row in order_lines:
        net_price = Decimal(row["unitPrice"]) * (1 - Decimal(row["discount"]))
        effective = 100 - net_price * 100 / book[row["productID"]].list_price.amount
        independent[plain_role(effective)] += 1
    assert counts == independent
    # Lines taken at the old price list (80 % of today's) are 20 % below it before any discount.
    assert counts["forbidden"] > 0
    assert counts["sales_rep"] < sum(1 for row in order_lines if percent(row) <= 10)


def test_todays_catalog_refuses_discontinued_products(northwind: Path) -> None:
    current = load_catalog(northwind, as_sold=False)
    discontinued = [p for p in current.products if not p.active]
    assert len(discontinued) == 8
    quote = Quote(id="q", owner="rep", currency="USD", quoted_on=date(2026, 11, 26))
    for product in discontinued:
        with pytest.raises(ValueError, match="inactive"):
            quote.add_line(current, product.sku, 1)
