"""A quote priced step by step, and what the discount policy says about it (R9, R10).

A small catalog with volume tiers (range and slab) and a bundle; a quote with line discounts and a
document discount; every step of the waterfall explained; then the policy's verdict for the rep who
wrote the quote and for their manager, and where submitting the quote would send it.

Run it with ``python examples/quote_pricing.py``.
"""

from __future__ import annotations

from datetime import date

from salesflow.domain.actors import Actor
from salesflow.domain.catalog import Bundle, BundleComponent, Catalog, Category, PriceTier, Product
from salesflow.domain.discounts import DiscountPolicy, DiscountVerdict, route_quote
from salesflow.domain.money import Money
from salesflow.domain.quotes import Quote

QUOTED_ON = date(2026, 11, 26)
"""The quote's date: the catalog validity that applies."""

REP = Actor("ann", roles={"sales_rep"})
MANAGER = Actor("bo", roles={"sales_manager"})

POLICY = DiscountPolicy.from_dict(
    {
        "ladder": [
            {"role": "sales_rep", "max_line_discount": 10},
            {"role": "sales_manager", "max_line_discount": 20, "max_average_discount": 15},
            {"role": "sales_director", "max_line_discount": 25},
        ]
    }
)
"""Reps give up to 10 %, managers 20 % on a line and 15 % on average, directors 25 %."""


def cny(amount: str) -> Money:
    """An amount in yuan."""
    return Money.of(amount, "CNY")


def build_catalog() -> Catalog:
    """Laptops with range tiers, docks with slab tiers, and an office kit bundle."""
    return Catalog(
        categories=[
            Category(id="hardware", name="Hardware"),
            Category(id="laptops", name="Laptops", parent="hardware"),
            Category(id="services", name="Services"),
        ],
        products=[
            Product(
                sku="LAPTOP-14",
                name="Laptop 14",
                category="laptops",
                list_price=cny("6000.00"),
                floor_price=cny("4800.00"),
                tiers=(PriceTier(10, cny("5700.00")), PriceTier(50, cny("5400.00"))),
                tier_mode="range",
            ),
            Product(
                sku="DOCK",
                name="USB-C dock",
                category="hardware",
                list_price=cny("899.00"),
                tiers=(PriceTier(5, cny("849.00")),),
                tier_mode="slab",
            ),
            Product(sku="CABLE", name="Cable", category="hardware", list_price=cny("19.90")),
            Product(sku="SETUP", name="Setup hour", category="services", list_price=cny("300.00")),
        ],
        bundles=[
            Bundle(
                sku="OFFICE-KIT",
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


def build_quote(catalog: Catalog) -> Quote:
    """Ann's quote: 12 laptops at 5 % off, 7 docks at 2.5 % off, 2 office kits at 3 % off, 13 %
    tax, and 6 % off the whole quote: every line is within her 10 %, the average is not."""
    quote = Quote(
        id="Q-2026-0042", owner=REP.id, currency="CNY", quoted_on=QUOTED_ON, opportunity_id="op-7"
    )
    return (
        quote.add_line(catalog, "LAPTOP-14", 12, discount=5)
        .add_line(catalog, "DOCK", 7, discount="2.5")
        .add_line(catalog, "OFFICE-KIT", 2, discount=3)
        .set_tax_rate(13)
        .set_document_discount(6)
    )


def describe(who: Actor, verdict: DiscountVerdict) -> str:
    """The verdict in one paragraph."""
    head = (
        f"{who.id} ({', '.join(sorted(who.roles))}): "
        f"within authority: {'yes' if verdict.within_authority else 'no'}; "
        f"required role: {verdict.required_role}; forbidden: {'yes' if verdict.forbidden else 'no'}"
    )
    return "\n".join([head, *(f"  - {reason.message}" for reason in verdict.reasons)])


def main() -> None:
    """Print the explanation, the totals and the verdicts."""
    catalog = build_catalog()
    quote = build_quote(catalog)
    print(quote.explain())
    print()
    print(f"net {quote.net_total}  tax {quote.tax}  total {quote.total}")
    print(f"content hash {quote.content_hash()}")
    print()
    print("Discount policy verdicts")
    for actor in (REP, MANAGER):
        print(describe(actor, POLICY.evaluate(quote, actor)))
    routing = route_quote(quote, REP, POLICY)
    print()
    print(
        f"Submitted by {REP.id}: {routing.decision.value}"
        + (f", waiting for {routing.required_role}" if routing.needs_approval else "")
        + f" (quote is {routing.quote.state.value}, version {routing.quote.version})"
    )


if __name__ == "__main__":
    main()
