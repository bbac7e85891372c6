"""Benchmark: pricing a big quote and evaluating the discount policy, against a plain Decimal loop.

Two seeded quotes of N lines (default 10,000) over 200 products, half with "range" and half with
"slab" volume tiers, with line discounts:

1. with a 3.5 % document discount (issue 17's row: pricing at most 2.5x, with the policy 3x,
   adding the lines from the catalog 3.5x);
2. with two tax rates per line (13 % or 6 % VAT, plus a 1 % city tax, each rounded once per
   document and allocated by net) and a fixed-amount document discount allocated by subtotal
   (issue 15).

"price the quote" computes every line's figures and the totals (what the hand loop computes); the
line objects (``quote.lines``, one :class:`QuoteLine` per line) are built on first use, timed as
"price + the line objects". Each is priced by salesflow and by a hand-written loop that computes the same nets (and taxes) with
nothing but ``Decimal`` and ``int``, in the same run. The script asserts that both give the same
nets and taxes, then prints each figure as a ratio against its hand loop.

Run ``python benchmarks/bench_quotes.py --n 1000`` for a quick look.
"""

from __future__ import annotations

import random
import sys
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Report, best_time, parser

from salesflow.domain.actors import Actor
from salesflow.domain.catalog import Catalog, PriceTier, Product
from salesflow.domain.discounts import DiscountPolicy
from salesflow.domain.money import Money
from salesflow.domain.quotes import Quote
from salesflow.domain.taxes import TaxRate

PRICING_TARGET = 2.5
POLICY_TARGET = 3.0
BUILD_TARGET = 3.5
AMOUNT_OFF = Decimal("12345.67")
VAT = (TaxRate(code="VAT13", rate=13), TaxRate(code="VAT6", rate=6))
CITY = TaxRate(code="CITY", rate=1)
DOCUMENT_DISCOUNT = Decimal("3.5")
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
POLICY = DiscountPolicy.from_dict(
    {
        "ladder": [
            {"role": "sales_rep", "max_line_discount": 10},
            {"role": "sales_manager", "max_line_discount": 20, "max_average_discount": 15},
            {"role": "sales_director", "max_line_discount": 25},
        ]
    }
)
REP = Actor("ann", roles={"sales_rep"})


def build_catalog(seed: int = 7, size: int = 200, *, taxed: bool = False) -> Catalog:
    """Products with two volume tiers each; odd ones slab, even ones range; ``taxed``: each with
    a VAT rate (13 % or 6 %) and the city tax."""
    rng = random.Random(seed)
    products = []
    for i in range(size):
        cents = rng.randint(1_000, 900_000)
        price = Decimal(cents) / 100
        products.append(
            Product(
                sku=f"SKU-{i:04d}",
                name=f"Product {i}",
                list_price=Money(price, "CNY"),
                tiers=(
                    PriceTier(10, Money((price * Decimal("0.95")).quantize(CENT), "CNY")),
                    PriceTier(100, Money((price * Decimal("0.90")).quantize(CENT), "CNY")),
                ),
                tier_mode="slab" if i % 2 else "range",
                taxes=(VAT[i % 3 == 0], CITY) if taxed else (),
            )
        )
    return Catalog(products=products)


def build_entries(catalog: Catalog, n: int, seed: int = 11) -> list[dict[str, Any]]:
    """N quote lines: any product, 1-250 units, a line discount from 0 to 22 % in halves."""
    rng = random.Random(seed)
    skus = [p.sku for p in catalog.products]
    return [
        {
            "sku": rng.choice(skus),
            "quantity": rng.randint(1, 250),
            "discount": Decimal(rng.randint(0, 44)) / 2,
        }
        for _ in range(n)
    ]


def _allocate(units: int, weights: list[int]) -> list[int]:
    """Largest remainder in exact integer arithmetic: share_i = units * w_i / W."""
    weight_total = sum(weights)
    if not units or not weight_total:
        return [0] * len(weights)
    floors = [units * w // weight_total for w in weights]
    remainders = [units * w % weight_total for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[: units - sum(floors)]:
        floors[i] += 1
    return floors


def hand_nets(
    catalog: Catalog, entries: list[dict[str, Any]], *, amount_off: Decimal | None = None
) -> list[Decimal]:
    """The line nets, computed by hand with Decimal and int only: the document discount is 3.5 %,
    or ``amount_off`` when given."""
    tiers = {
        p.sku: (
            p.tier_mode,
            [(1, p.list_price.amount), *((t.min_quantity, t.unit_price.amount) for t in p.tiers)],
        )
        for p in catalog.products
    }
    subtotals = []
    for entry in entries:
        mode, starts = tiers[entry["sku"]]
        qty = entry["quantity"]
        if mode == "range":
            price = starts[0][1]
            for start, tier_price in starts:
                if start <= qty:
                    price = tier_price
            gross = price * qty
        else:
            gross = Decimal(0)
            for i, (start, tier_price) in enumerate(starts):
                if start > qty:
                    break
                last = qty if i + 1 == len(starts) else min(qty, starts[i + 1][0] - 1)
                gross += tier_price * (last - start + 1)
        net = gross * (HUNDRED - entry["discount"]) / HUNDRED
        subtotals.append(net.quantize(CENT, ROUND_HALF_UP))
    total = sum(subtotals, Decimal(0))
    if amount_off is None:
        doc = (total * DOCUMENT_DISCOUNT / HUNDRED).quantize(CENT, ROUND_HALF_UP)
    else:
        doc = amount_off
    floors = _allocate(int(doc / CENT), [int(s / CENT) for s in subtotals])
    return [s - f * CENT for s, f in zip(subtotals, floors, strict=True)]


def hand_taxed(
    catalog: Catalog, entries: list[dict[str, Any]]
) -> tuple[list[Decimal], list[list[Decimal]]]:
    """The nets (fixed-amount document discount) and each line's two taxes, by hand: each rate
    rounded once on the nets of the lines carrying it, allocated by net."""
    nets = hand_nets(catalog, entries, amount_off=AMOUNT_OFF)
    rates = {p.sku: [(t.code, t.rate) for t in p.taxes] for p in catalog.products}
    groups: dict[tuple[str, Decimal], list[int]] = {}
    for i, entry in enumerate(entries):
        for key in rates[entry["sku"]]:
            groups.setdefault(key, []).append(i)
    shares: dict[tuple[int, str], Decimal] = {}
    for (code, rate), members in groups.items():
        base = sum((nets[i] for i in members), Decimal(0))
        tax = (base * rate / HUNDRED).quantize(CENT, ROUND_HALF_UP)
        parts = _allocate(int(tax / CENT), [int(nets[i] / CENT) for i in members])
        for i, part in zip(members, parts, strict=True):
            shares[i, code] = part * CENT
    taxes = [
        [shares[i, code] for code, _rate in rates[entry["sku"]]] for i, entry in enumerate(entries)
    ]
    return nets, taxes


def main() -> None:
    """Time salesflow against the hand loops and print the ratios."""
    args = parser(__doc__.splitlines()[0], default_n=10_000).parse_args()
    plain = Scenario(build_catalog(), args.n, lambda q: q.set_document_discount(DOCUMENT_DISCOUNT))
    taxed = Scenario(
        build_catalog(taxed=True), args.n, lambda q: q.set_document_amount_off(AMOUNT_OFF)
    )
    runs = plain.time(args.repeat, lambda: hand_nets(plain.catalog, plain.entries))
    quote = runs["price"][1]
    expected = runs["hand"][1]
    assert [line.net.amount for line in quote.lines] == expected, "nets differ from the hand loop"
    report = Report(f"quote pricing, {args.n:,} lines (tiers, document discount)")
    report.figure("nets equal to the hand loop", "yes (asserted)", "")
    report.figure(
        "quote total", str(quote.total), f"required role: {runs['policy'][1].required_role}"
    )
    report.ratio("price the quote", runs["price"][0], runs["hand"][0], PRICING_TARGET)
    report.ratio("price + the line objects", runs["lines"][0], runs["hand"][0])
    report.ratio("price + evaluate the policy", runs["policy"][0], runs["hand"][0], POLICY_TARGET)
    report.ratio(
        "add lines from the catalog + price", runs["build"][0], runs["hand"][0], BUILD_TARGET
    )
    report.print()

    runs = taxed.time(args.repeat, lambda: hand_taxed(taxed.catalog, taxed.entries))
    quote = runs["price"][1]
    nets, taxes = runs["hand"][1]
    assert [line.net.amount for line in quote.lines] == nets, "nets differ from the hand loop"
    assert [list(line.tax_amounts) for line in quote.lines] == taxes, "taxes differ"
    report = Report(
        f"quote pricing, {args.n:,} lines (tiers, two taxes per line, fixed document discount)"
    )
    report.figure("nets and taxes equal to the hand loop", "yes (asserted)", "")
    report.figure("quote total", str(quote.total), f"tax {quote.tax}")
    report.ratio("price the quote", runs["price"][0], runs["hand"][0], PRICING_TARGET)
    report.ratio("price + the line objects", runs["lines"][0], runs["hand"][0])
    report.ratio("price + evaluate the policy", runs["policy"][0], runs["hand"][0], POLICY_TARGET)
    report.ratio(
        "add lines from the catalog + price", runs["build"][0], runs["hand"][0], BUILD_TARGET
    )
    report.print()


class Scenario:
    """A catalog, N seeded entries and the quote salesflow builds from them."""

    def __init__(self, catalog: Catalog, n: int, finish: Any) -> None:
        self.catalog = catalog
        self.entries = build_entries(catalog, n)
        self.finish = finish
        self.empty = Quote(id="Q-BENCH", owner="ann", currency="CNY", quoted_on=date(2026, 11, 26))
        self.built = finish(self.empty.add_lines(catalog, self.entries))

    def price(self) -> Quote:
        """A fresh quote from the same items, priced (nothing priced yet)."""
        built = self.built
        quote = Quote(
            id=built.id,
            owner=built.owner,
            currency=built.currency,
            quoted_on=built.quoted_on,
            items=built.items,
            document_discount=built.document_discount,
            document_amount_off=built.document_amount_off,
        )
        quote.total  # noqa: B018 - pricing happens on first use
        return quote

    def build(self) -> Quote:
        """The quote built from the catalog with one ``add_lines`` call, then priced (adding
        10,000 lines with ``add_line`` one at a time makes 10,000 quotes, each copying the items
        so far: quadratic)."""
        quote = self.finish(self.empty.add_lines(self.catalog, self.entries))
        quote.total  # noqa: B018
        return quote

    def time(self, repeat: int, hand: Any) -> dict[str, tuple[float, Any]]:
        """Best time and result of each contender, in interleaved rounds: on a shared machine
        the load then hits every figure and its baseline alike."""
        contenders = {
            "hand": hand,
            "price": self.price,
            "lines": lambda: self.price().lines,
            "policy": lambda: POLICY.evaluate(self.price(), REP),
            "build": self.build,
        }
        runs: dict[str, tuple[float, Any]] = {}
        for _ in range(repeat):
            for name, fn in contenders.items():
                seconds, result = best_time(fn, 1)
                if name not in runs or seconds < runs[name][0]:
                    runs[name] = (seconds, result)
        return runs


if __name__ == "__main__":
    main()
