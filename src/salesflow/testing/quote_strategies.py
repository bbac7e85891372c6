"""Hypothesis strategies for catalogs, quotes and discount policies.

Use them to property-test code built on salesflow's quotes::

    from hypothesis import given
    from salesflow.testing.quote_strategies import catalogs, quotes

    @given(quotes())
    def test_my_invoice_export(quote): ...
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_CEILING, Decimal

from hypothesis import strategies as st

from salesflow.domain.catalog import Bundle, BundleComponent, Catalog, Category, PriceTier, Product
from salesflow.domain.discounts import CategoryLimit, DiscountPolicy, RoleLimits
from salesflow.domain.money import Money, currency_exponent, currency_precision
from salesflow.domain.quotes import Quote
from salesflow.testing.strategies import currencies, percents

__all__ = [
    "QUOTE_DATE",
    "catalogs",
    "line_entries",
    "policies",
    "products",
    "quotes",
    "unit_prices",
]

QUOTE_DATE = date(2026, 11, 26)
"""The ``quoted_on`` date of generated quotes; generated products are valid on it."""

_CATEGORIES = (
    Category(id="all", name="Everything"),
    Category(id="hardware", name="Hardware", parent="all"),
    Category(id="laptops", name="Laptops", parent="hardware"),
    Category(id="services", name="Services", parent="all"),
)


def unit_prices(
    currency: str, *, max_value: int = 10**5, extra_places: int = 2
) -> st.SearchStrategy[Money]:
    """Unit prices from zero to ``max_value`` with up to ``extra_places`` more decimals than the
    currency's minor unit (prices may be finer than the amounts quotes round to)."""
    places = currency_precision(currency) + extra_places
    return st.integers(0, max_value * 10**places).map(
        lambda units: Money(Decimal(units).scaleb(-places), currency)
    )


def _fraction() -> st.SearchStrategy[Decimal]:
    return st.integers(0, 100).map(lambda n: Decimal(n) / 100)


@st.composite
def products(
    draw: st.DrawFn,
    currency: str = "CNY",
    *,
    sku: str = "P-1",
    tiers: bool | None = None,
    floors: bool = True,
) -> Product:
    """Products in ``currency``: any list price, maybe volume tiers (range or slab), maybe a floor
    price below the lowest tier price (``tiers=True/False`` forces tiers on or off)."""
    price = draw(unit_prices(currency))
    tier_list: list[PriceTier] = []
    with_tiers = draw(st.booleans()) if tiers is None else tiers
    if with_tiers:
        starts = sorted(draw(st.sets(st.integers(2, 120), min_size=1, max_size=4)))
        current = price.amount
        for start in starts:
            current = (current * draw(_fraction())).quantize(price.quantum / 100)
            tier_list.append(PriceTier(start, Money(current, currency)))
    lowest = tier_list[-1].unit_price.amount if tier_list else price.amount
    floor = None
    if floors and draw(st.booleans()):
        floor = Money((lowest * draw(_fraction())).quantize(price.quantum), currency)
        if floor.amount > lowest:
            floor = Money(lowest, currency)
    return Product(
        sku=sku,
        name=f"Product {sku}",
        category=draw(st.sampled_from([c.id for c in _CATEGORIES] + [None])),
        list_price=price,
        floor_price=floor,
        tiers=tier_list,
        tier_mode=draw(st.sampled_from(["range", "slab"])),
        valid_from=date(2026, 1, 1),
    )


@st.composite
def catalogs(
    draw: st.DrawFn,
    currency: str | None = "CNY",
    *,
    min_products: int = 1,
    max_products: int = 6,
    max_bundles: int = 2,
    floors: bool = True,
) -> Catalog:
    """Catalogs in one currency (any of :func:`currencies` when ``None``) with nested categories,
    products (some tiered, some with floors) and bundles of them."""
    code = draw(currencies()) if currency is None else currency
    count = draw(st.integers(min_products, max_products))
    items = [draw(products(code, sku=f"P-{i + 1}", floors=floors)) for i in range(count)]
    bundles = []
    for b in range(draw(st.integers(0, max_bundles))):
        chosen = draw(
            st.lists(st.sampled_from(items), min_size=1, max_size=min(3, count), unique=True)
        )
        components = [BundleComponent(p.sku, draw(st.integers(1, 5))) for p in chosen]
        floor = sum(
            (
                p.floor_price.amount * c.quantity
                for p, c in zip(chosen, components, strict=True)
                if p.floor_price is not None
            ),
            Decimal(0),
        )
        quantum = currency_exponent(code)
        extra = draw(st.integers(0, 10**5)) * quantum
        bundles.append(
            Bundle(
                sku=f"B-{b + 1}",
                name=f"Bundle {b + 1}",
                price=Money(floor.quantize(quantum, ROUND_CEILING) + extra, code),
                components=components,
            )
        )
    return Catalog(categories=_CATEGORIES, products=items, bundles=bundles)


@st.composite
def line_entries(
    draw: st.DrawFn,
    catalog: Catalog,
    *,
    max_discount: Decimal | None = None,
    overrides: bool = True,
) -> dict[str, object]:
    """One ``add_lines`` entry for a product or bundle of ``catalog``: a valid quantity (whole for
    tiered products and bundles), a discount up to ``max_discount`` and maybe a unit price."""
    item = draw(st.sampled_from(list(catalog)))
    if isinstance(item, Bundle) or item.tiers:
        quantity: Decimal = Decimal(draw(st.integers(1, 150)))
    else:
        quantity = Decimal(draw(st.integers(1, 15000))) / 100
    discount = draw(percents(2))
    if max_discount is not None:
        discount = min(discount, max_discount)
    entry: dict[str, object] = {"sku": item.sku, "quantity": quantity, "discount": discount}
    if overrides and isinstance(item, Product) and draw(st.booleans()):
        entry["unit_price"] = draw(unit_prices(item.currency))
    return entry


@st.composite
def quotes(
    draw: st.DrawFn,
    catalog: Catalog | None = None,
    *,
    currency: str | None = "CNY",
    max_lines: int = 12,
    max_discount: Decimal | None = None,
    overrides: bool = True,
    document_discount: bool = True,
    tax: bool = True,
) -> Quote:
    """Draft quotes with 1..``max_lines`` lines from ``catalog`` (a generated one when ``None``),
    line discounts up to ``max_discount``, maybe unit prices, a document discount and a tax rate."""
    source = draw(catalogs(currency)) if catalog is None else catalog
    code = next(iter(source)).currency
    entries = draw(
        st.lists(
            line_entries(source, max_discount=max_discount, overrides=overrides),
            min_size=1,
            max_size=max_lines,
        )
    )
    quote = Quote(id="Q-1", owner="ann", currency=code, quoted_on=QUOTE_DATE).add_lines(
        source, entries
    )
    if document_discount:
        quote = quote.set_document_discount(draw(percents(2)))
    if tax:
        quote = quote.set_tax_rate(draw(st.sampled_from(["0", "6", "9", "13", "20", "7.25"])))
    return quote


@st.composite
def policies(
    draw: st.DrawFn,
    roles: tuple[str, ...] = ("sales_rep", "sales_manager", "sales_director"),
    *,
    categories: bool = False,
) -> DiscountPolicy:
    """Valid discount policies over ``roles`` (lowest first), limits rising up the ladder, maybe
    with per-category overrides."""
    lines = sorted(draw(st.lists(percents(0), min_size=len(roles), max_size=len(roles))))
    averages = sorted(draw(st.lists(percents(0), min_size=len(roles), max_size=len(roles))))
    ladder = []
    overrides = sorted(draw(st.lists(percents(0), min_size=len(roles), max_size=len(roles))))
    for role, line, average, override in zip(roles, lines, averages, overrides, strict=True):
        scoped = [CategoryLimit(category="hardware", max_line_discount=override)]
        ladder.append(
            RoleLimits(
                role=role,
                max_line_discount=line,
                max_average_discount=average,
                categories=scoped if categories else (),
            )
        )
    return DiscountPolicy(ladder=ladder, measure_from=draw(st.sampled_from(["catalog", "list"])))
