"""Quotes (R10, R11): lines, an explainable pricing waterfall, versions and approval states.

A :class:`Quote` is a frozen value. What the rep entered are its :attr:`Quote.items`
(:class:`QuoteItem`: a product or bundle from the catalog, a quantity, an optional unit price, a line
discount); what the customer pays are its :attr:`Quote.lines` (:class:`QuoteLine`: one per product
item, one per component of a bundle item), computed from the items by the waterfall below. Every
editing method returns a new quote with ``version + 1``.

The pricing waterfall, in this order, for every line (pinned by tests):

1. **List price** x quantity.
2. **Volume tier**, when the product has tiers: ``"range"`` prices every unit at the tier the
   quantity reaches, ``"slab"`` prices each unit at its own tier (see
   :mod:`salesflow.domain.catalog`). The result is the line's *catalog amount*.
3. **Unit price**: a price set on the quote replaces the catalog amount (``unit price x
   quantity``). A **bundle** instead gets the bundle price x quantity, allocated over its
   components in proportion to their list prices (``list price x quantity per bundle``) with
   :meth:`Money.allocate <salesflow.domain.money.Money.allocate>`, so the components add up to the
   bundle price exactly.
4. **Line discount** (percent): ``amount x (100 - discount) / 100``, exact.
5. **Rounding** of the line to the currency's minor unit, ``ROUND_HALF_UP``: the *subtotal*. This is
   the first of the three rounding points. A bundle is discounted and rounded as a whole, and the
   rounded bundle subtotal is allocated over the components by their step-3 amounts.
6. **Document discount** (percent) on the sum of the subtotals, rounded once (``ROUND_HALF_UP``,
   rounding point 2), then allocated over the lines by subtotal (largest remainder), so the line
   nets add up to ``subtotal - document discount`` exactly.
7. **Tax** (percent) on the sum of the nets, rounded once (``ROUND_HALF_UP``, rounding point 3) and
   allocated over the lines by net the same way.

Nothing else rounds: unit prices and the exact intermediate amounts keep every digit, and
:attr:`Quote.total` is always the exact sum of the line nets plus the exact sum of the line taxes.
:meth:`Quote.explain` shows every step for every line.

States: ``draft`` -> ``pending_approval`` (:meth:`Quote.submit_for_approval`) -> ``approved``
(:meth:`Quote.approve`) or ``rejected`` (:meth:`Quote.reject`); ``approved`` -> ``accepted``
(:meth:`Quote.accept`). Only an approved quote can be accepted. Any change to products, quantities,
prices, discounts or tax of a pending, approved or rejected quote returns it to ``draft`` (the
approval is void); an accepted quote cannot change. State changes keep the version: the version
counts content revisions, and :meth:`Quote.content_hash` fingerprints the priced content, so an
approval engine can tell whether what it approves is what was submitted. Whether a quote may skip
approval is the discount policy's call (:func:`salesflow.domain.discounts.route_quote`).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import attrs

from salesflow.domain.catalog import Bundle, Catalog, Product, TierSegment
from salesflow.domain.checks import (
    MAX_ID_LENGTH,
    as_date,
    as_enum,
    as_percent,
    as_quantity,
    check_count,
    check_id,
    check_instance,
    check_optional_id,
    check_optional_text,
    check_string,
)
from salesflow.domain.money import Money, check_currency, currency_exponent
from salesflow.domain.numbers import (
    EXACT,
    HUNDRED,
    MAX_AMOUNT,
    MAX_QUANTITY,
    ZERO,
    check_bounds,
    exact_sum,
    to_amount,
    to_percent,
)
from salesflow.errors import (
    CurrencyMismatchError,
    InvalidTypeError,
    NotFoundError,
    TransitionNotAllowedError,
    ValidationError,
)
from salesflow.tables import Table, group_thousands, matplotlib_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "PriceStep",
    "ProductSnapshot",
    "Quote",
    "QuoteExplanation",
    "QuoteItem",
    "QuoteLine",
    "QuoteState",
]

_ONE = Decimal(1)


class QuoteState(enum.StrEnum):
    """Where a quote stands in its approval."""

    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    ACCEPTED = "accepted"
    CONTRACTED = "contracted"
    """It backs a live contract: locked (no edit, no resubmission, no second contract) until the
    contract is cancelled or terminated; a formal contract keeps it locked for good."""


def _to_path(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidTypeError("category_path", value, "a sequence of category ids")
    path = tuple(value)
    for i, part in enumerate(path):
        if not isinstance(part, str) or not part:
            raise ValidationError("category_path", path, "non-empty category ids")
        check_string(part, f"category_path[{i}]", MAX_ID_LENGTH)
    return path


def _dec(value: Decimal) -> str:
    """A canonical text for a number: ``10``, ``10.0`` and ``1E+1`` all read ``10``."""
    return format(value.normalize(), "f") if value else "0"


# -- items: what the rep entered ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ProductSnapshot:
    """A product as the catalog described it when the line was added, kept on the quote so that
    later catalog changes never reprice a quote: the product, its category path (its category
    first, then each parent) and, inside a bundle, its quantity per bundle."""

    product: Product = attrs.field(validator=check_instance, metadata={"type": Product})
    category_path: tuple[str, ...] = attrs.field(default=(), converter=_to_path)
    quantity: Decimal = attrs.field(default=_ONE, converter=as_quantity)

    def to_dict(self) -> dict[str, Any]:
        """This snapshot as a plain dict that :meth:`from_dict` reads back."""
        return {
            "product": self.product.to_dict(),
            "category_path": list(self.category_path),
            "quantity": str(self.quantity),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProductSnapshot:
        """Build a snapshot from the dict :meth:`to_dict` writes."""
        if not isinstance(data, Mapping) or "product" not in data:
            raise InvalidTypeError("product snapshot", data, "a dict with 'product'")
        return cls(
            product=Product.from_dict(data["product"]),
            category_path=data.get("category_path", ()),
            quantity=data.get("quantity", _ONE),
        )


def _to_snapshots(value: object) -> tuple[ProductSnapshot, ...]:
    if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
        raise InvalidTypeError("products", value, "a sequence of ProductSnapshot")
    parts = tuple(value)
    if not parts:
        raise ValidationError("products", parts, "at least one product")
    for i, part in enumerate(parts):
        if not isinstance(part, ProductSnapshot):
            raise InvalidTypeError(f"products[{i}]", part, "a ProductSnapshot")
    return parts


@attrs.frozen(kw_only=True)
class QuoteItem:
    """One line as the rep entered it: a product (or a bundle), a quantity, an optional unit price
    and a line discount (percent).

    ``products`` holds one :class:`ProductSnapshot` for a product line, and one per component (in
    bundle order) for a bundle line, whose ``bundle`` is then set. Build items with
    :meth:`Quote.add_line`, which takes them from a catalog; constructing one directly is for
    storage adapters reading back what :meth:`to_dict` wrote.
    """

    id: str = attrs.field(validator=check_id)
    quantity: Decimal = attrs.field(converter=as_quantity)
    products: tuple[ProductSnapshot, ...] = attrs.field(converter=_to_snapshots)
    bundle: Bundle | None = None
    unit_price: Money | None = None
    discount: Decimal = attrs.field(default=ZERO, converter=as_percent)

    def __attrs_post_init__(self) -> None:
        try:
            self._check()
        except ValidationError as exc:
            raise exc.located(f"line {self.id!r}") from None

    def _check(self) -> None:
        whole = self.quantity == self.quantity.to_integral_value()
        if self.bundle is None:
            if len(self.products) != 1 or self.products[0].quantity != _ONE:
                raise ValidationError(
                    "products", self.products, "one product, with quantity 1, for a product line"
                )
            product = self.products[0].product
            if product.tiers and not whole:
                raise ValidationError(
                    "quantity", self.quantity, f"a whole number ({product.sku!r} has volume tiers)"
                )
        else:
            if not isinstance(self.bundle, Bundle):
                raise InvalidTypeError("bundle", self.bundle, "a Bundle or None")
            expected = [(c.sku, c.quantity) for c in self.bundle.components]
            actual = [(p.product.sku, p.quantity) for p in self.products]
            if expected != actual:
                raise ValidationError(
                    "products", actual, f"the bundle's components {expected}, in order"
                )
            if not whole:
                raise ValidationError("quantity", self.quantity, "a whole number of bundles")
            if self.unit_price is not None:
                raise ValidationError(
                    "unit_price", self.unit_price, "None: a bundle sells at the catalog's price"
                )
            for part in self.products:
                if part.product.currency != self.bundle.currency:
                    raise CurrencyMismatchError(self.bundle.currency, part.product.currency)
        if self.unit_price is not None:
            if not isinstance(self.unit_price, Money):
                raise InvalidTypeError("unit_price", self.unit_price, "Money or None")
            if self.unit_price.amount < 0:
                raise ValidationError("unit_price", self.unit_price, "a price of zero or more")
            if self.unit_price.currency != self.currency:
                raise CurrencyMismatchError(self.currency, self.unit_price.currency)
            check_bounds(self.unit_price.amount, "unit_price", value=self.unit_price)
        self._check_amounts()

    def _check_amounts(self) -> None:
        """Every amount the line multiplies out (list price, tier, unit price or bundle price x
        quantity) must be an amount within the bounds, and so must a component's units."""
        multiply, qty = EXACT.multiply, self.quantity
        if self.bundle is not None:
            amounts = [("bundle price", multiply(self.bundle.price.amount, qty))]
            for part in self.products:
                units = multiply(part.quantity, qty)
                if units >= MAX_QUANTITY:
                    raise ValidationError(
                        "quantity",
                        qty,
                        f"a quantity whose units of component {part.product.sku!r} "
                        f"({part.quantity} per bundle) stay below {MAX_QUANTITY:,f}",
                    )
        else:
            product = self.products[0].product
            amounts = [("list price", multiply(product.list_price.amount, qty))]
            if product.tiers:
                amounts.append(("tier price", product.volume_amount(qty).amount))
            if self.unit_price is not None:
                amounts.append(("unit price", multiply(self.unit_price.amount, qty)))
        for what, amount in amounts:
            if amount >= MAX_AMOUNT:
                raise ValidationError(
                    "amount",
                    amount,
                    f"a line amount (quantity {qty} x {what}) below {MAX_AMOUNT:,f}",
                )

    @property
    def sku(self) -> str:
        """The SKU sold: the bundle's, or the product's."""
        return self.bundle.sku if self.bundle is not None else self.products[0].product.sku

    @property
    def name(self) -> str:
        """The name of the bundle or product."""
        return self.bundle.name if self.bundle is not None else self.products[0].product.name

    @property
    def currency(self) -> str:
        """The currency of the item's catalog prices."""
        return (
            self.bundle.currency if self.bundle is not None else self.products[0].product.currency
        )

    @property
    def is_bundle(self) -> bool:
        """Whether the item is a bundle (priced as component lines)."""
        return self.bundle is not None

    def to_dict(self) -> dict[str, Any]:
        """This item as a plain dict that :meth:`from_dict` reads back."""
        return {
            "id": self.id,
            "quantity": str(self.quantity),
            "discount": str(self.discount),
            "unit_price": None if self.unit_price is None else str(self.unit_price.amount),
            "bundle": None if self.bundle is None else self.bundle.to_dict(),
            "products": [p.to_dict() for p in self.products],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuoteItem:
        """Build an item from the dict :meth:`to_dict` writes."""
        if not isinstance(data, Mapping):
            raise InvalidTypeError("item", data, "a dict")
        missing = {"id", "quantity", "products"} - set(data)
        if missing:
            raise ValidationError("item", sorted(missing), "the keys id, quantity and products")
        raw = data["products"]
        if not isinstance(raw, list | tuple) or not raw:
            raise InvalidTypeError("products", raw, "a non-empty list of product snapshots")
        products = tuple(ProductSnapshot.from_dict(p) for p in raw)
        bundle = None if data.get("bundle") is None else Bundle.from_dict(data["bundle"])
        currency = bundle.currency if bundle is not None else products[0].product.currency
        price = data.get("unit_price")
        return cls(
            id=data["id"],
            quantity=data["quantity"],
            products=products,
            bundle=bundle,
            unit_price=None if price is None else Money.of(price, currency),
            discount=data.get("discount", ZERO),
        )


# -- lines: what the customer pays -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class QuoteLine:
    """A priced line: every step of the waterfall, kept for explanation.

    Amounts marked *exact* keep every digit; ``subtotal``, ``document_discount``, ``net`` and
    ``tax`` are whole minor units.
    """

    id: str
    """``"L1"`` for a product item; ``"L3.1"``, ``"L3.2"``... for the components of bundle item L3."""
    item_id: str
    """The :class:`QuoteItem` this line comes from."""
    product: Product
    """The product sold on this line, as the quote's snapshot describes it."""
    bundle_sku: str | None
    """The bundle this line is a component of, or ``None``."""
    category_path: tuple[str, ...]
    """The product's category and its parents, nearest first."""
    quantity: Decimal
    """Units of the product (for a component: per-bundle quantity x bundles)."""
    catalog_amount: Money
    """Steps 2-3: what the catalog asks for the line: list price x quantity with volume tiers
    applied, or the line's share of the bundle price (exact)."""
    unit_price: Money | None
    """Step 3: the unit price set on the quote, or ``None`` for the catalog's."""
    gross: Money
    """Step 3: the amount the line discount applies to (exact)."""
    discount: Decimal
    """Step 4: the line discount, percent."""
    discounted: Money
    """Step 4: gross x (100 - discount) / 100 (exact)."""
    subtotal: Money
    """Step 5: the discounted amount rounded to the minor unit (half up; for bundle components, the
    share of the rounded bundle subtotal)."""
    document_discount: Money
    """Step 6: this line's share of the document discount."""
    net: Money
    """subtotal - document_discount: what the customer pays before tax."""
    tax: Money
    """Step 7: this line's share of the quote's tax."""

    @property
    def sku(self) -> str:
        """The product's SKU."""
        return self.product.sku

    @property
    def name(self) -> str:
        """The product's name."""
        return self.product.name

    @property
    def list_price(self) -> Money:
        """The product's list unit price."""
        return self.product.list_price

    @property
    def list_amount(self) -> Money:
        """Step 1: list price x quantity (exact)."""
        amount = EXACT.multiply(self.product.list_price.amount, self.quantity)
        return Money._trusted(amount, self.net.currency)

    @property
    def volume(self) -> tuple[TierSegment, ...]:
        """Step 2: the runs of units and their tier prices (empty unless the product has tiers and
        the line is not part of a bundle)."""
        if self.bundle_sku is not None or not self.product.tiers:
            return ()
        return self.product.volume_segments(self.quantity)

    @property
    def floor_amount(self) -> Money | None:
        """floor price x quantity, or ``None`` when the product has no floor."""
        floor = self.product.floor_price
        if floor is None:
            return None
        return Money._trusted(EXACT.multiply(floor.amount, self.quantity), self.net.currency)

    @property
    def line_discount_amount(self) -> Money:
        """gross - discounted (exact)."""
        return self.gross - self.discounted

    @property
    def rounding(self) -> Money:
        """subtotal - discounted: what rounding to the minor unit added (negative: removed)."""
        return self.subtotal - self.discounted

    @property
    def total(self) -> Money:
        """net + tax."""
        return self.net + self.tax


@attrs.frozen(kw_only=True)
class _Pricing:
    lines: tuple[QuoteLine, ...]
    list_total: Decimal
    subtotal: Decimal
    document_discount: Decimal
    tax: Decimal


# One priced line before the document discount: item, snapshot, units, catalog amount, gross,
# discounted (exact) and subtotal (rounded).
_Row = tuple[QuoteItem, ProductSnapshot, Decimal, Decimal, Decimal, Decimal, Decimal]


def _rows(item: QuoteItem, quantum: Decimal, currency: str) -> list[_Row]:
    # Every product is exact (EXACT): quantity x price has up to 50 significant digits.
    multiply = EXACT.multiply
    factor = EXACT.divide(EXACT.subtract(HUNDRED, item.discount), HUNDRED)
    qty = item.quantity
    if item.bundle is None:
        part = item.products[0]
        product = part.product
        catalog = (
            product.volume_amount(qty).amount
            if product.tiers
            else multiply(product.list_price.amount, qty)
        )
        gross = catalog if item.unit_price is None else multiply(item.unit_price.amount, qty)
        discounted = multiply(gross, factor)
        return [
            (
                item,
                part,
                qty,
                catalog,
                gross,
                discounted,
                discounted.quantize(quantum, ROUND_HALF_UP, EXACT),
            )
        ]
    # A bundle: allocate the bundle price (whole minor units), then the rounded, discounted bundle
    # amount, so that both the gross and the subtotal shares add up exactly.
    bundle_gross = Money._trusted(multiply(item.bundle.price.amount, qty), currency)
    weights = [multiply(p.product.list_price.amount, p.quantity) for p in item.products]
    if not any(weights):
        weights = [p.quantity for p in item.products]
    shares = bundle_gross.allocate(weights)
    bundle_subtotal = Money._trusted(
        multiply(bundle_gross.amount, factor).quantize(quantum, ROUND_HALF_UP, EXACT), currency
    )
    sub_shares = bundle_subtotal.allocate(
        [s.amount for s in shares] if bundle_gross.amount else weights
    )
    return [
        (
            item,
            part,
            multiply(part.quantity, qty),
            share.amount,
            share.amount,
            multiply(share.amount, factor),
            sub.amount,
        )
        for part, share, sub in zip(item.products, shares, sub_shares, strict=True)
    ]


def _price(
    items: tuple[QuoteItem, ...], currency: str, document_discount: Decimal, tax_rate: Decimal
) -> _Pricing:
    quantum = currency_exponent(currency)
    rows = [row for item in items for row in _rows(item, quantum, currency)]
    subtotals = [row[6] for row in rows]
    subtotal = exact_sum(subtotals)
    doc_total = _percent_of(subtotal, document_discount, quantum)
    doc_shares = _allocate(doc_total, subtotals, currency)
    nets = [EXACT.subtract(s, d) for s, d in zip(subtotals, doc_shares, strict=True)]
    net_total = EXACT.subtract(subtotal, doc_total)
    tax_total = _percent_of(net_total, tax_rate, quantum)
    tax_shares = _allocate(tax_total, nets, currency)

    lines = []
    counters: dict[str, int] = {}
    list_total = ZERO
    for row, doc_share, net, tax in zip(rows, doc_shares, nets, tax_shares, strict=True):
        item, part, units, catalog, gross, discounted, sub = row
        list_total = EXACT.add(list_total, EXACT.multiply(part.product.list_price.amount, units))
        if item.bundle is None:
            line_id = item.id
        else:
            counters[item.id] = counters.get(item.id, 0) + 1
            line_id = f"{item.id}.{counters[item.id]}"
        catalog_money = _amount(catalog, currency)
        lines.append(
            QuoteLine(
                id=line_id,
                item_id=item.id,
                product=part.product,
                bundle_sku=None if item.bundle is None else item.bundle.sku,
                category_path=part.category_path,
                quantity=units,
                catalog_amount=catalog_money,
                unit_price=item.unit_price,
                gross=catalog_money if gross is catalog else _amount(gross, currency),
                discount=item.discount,
                discounted=_amount(discounted, currency),
                subtotal=_amount(sub, currency),
                document_discount=_amount(doc_share, currency),
                net=_amount(net, currency),
                tax=_amount(tax, currency),
            )
        )
    return _Pricing(
        lines=tuple(lines),
        list_total=list_total,
        subtotal=subtotal,
        document_discount=doc_total,
        tax=tax_total,
    )


def _amount(value: Decimal, currency: str) -> Money:
    """Money for an amount the waterfall computed from validated inputs (checks skipped)."""
    return Money._trusted(value, currency)


def _percent_of(amount: Decimal, percent: Decimal, quantum: Decimal) -> Decimal:
    """``amount x percent / 100`` rounded half up to ``quantum``, exactly (dividing by 100 only
    moves the decimal point, so EXACT may divide)."""
    product = EXACT.divide(EXACT.multiply(amount, percent), HUNDRED)
    return product.quantize(quantum, ROUND_HALF_UP, EXACT)


def _allocate(total: Decimal, weights: list[Decimal], currency: str) -> list[Decimal]:
    """``total`` split over ``weights`` in whole minor units, largest remainder (zeros if none)."""
    if not total or not any(weights):
        return [ZERO] * len(weights)
    return [m.amount for m in Money._trusted(total, currency).allocate(weights)]


# -- explanation --------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PriceStep:
    """One step of the waterfall for one line (or for the quote's totals, ``line == "quote"``)."""

    line: str
    """The line id, or ``"quote"`` for the totals."""
    sku: str
    """The product SKU (empty for the totals)."""
    step: str
    """``list price``, ``volume tier``, ``bundle price``, ``unit price``, ``line discount``,
    ``rounding``, ``document discount``, ``tax``; for the quote also ``subtotal`` and ``total``."""
    detail: str
    """How the step was computed, in words and numbers."""
    change: Money | None
    """What the step added (negative: took off), or ``None`` for the starting amount."""
    amount: Money
    """The running amount after the step."""

    def to_record(self) -> dict[str, Any]:
        """This step as a flat dict."""
        return {
            "line": self.line,
            "sku": self.sku,
            "step": self.step,
            "detail": self.detail,
            "change": self.change,
            "amount": self.amount,
        }


@attrs.frozen(kw_only=True)
class QuoteExplanation(Table):
    """Every step of the waterfall for every line, then the quote's totals.

    Prints as a text table, renders in notebooks, and converts to a DataFrame (:class:`Table`);
    :attr:`steps` holds the same as :class:`PriceStep` values.
    """

    quote_id: str
    """The quote explained."""
    version: int
    """Its version."""
    currency: str
    """Its currency."""
    steps: tuple[PriceStep, ...]
    """The steps, line by line in quote order, then the totals."""

    @property
    def caption(self) -> str:
        """``Quote Q-1 version 3 (CNY)``."""
        return f"Quote {self.quote_id} version {self.version} ({self.currency})"

    def for_line(self, line_id: str) -> tuple[PriceStep, ...]:
        """The steps of line ``line_id`` (``"quote"`` for the totals)."""
        found = tuple(s for s in self.steps if s.line == line_id)
        if not found:
            raise NotFoundError("quote line", line_id)
        return found

    def to_records(self) -> list[dict[str, Any]]:
        """One record per step of every line: line, sku, step, detail, change, amount (Money;
        a frame holds their amounts). The quote's totals are :meth:`total_records`."""
        return [s.to_record() for s in self.steps if s.line != _TOTALS]

    def total_records(self) -> list[dict[str, Any]]:
        """One record per step of the quote's totals (line ``"quote"``): list price, subtotal,
        document discount, tax, total."""
        return [s.to_record() for s in self.steps if s.line == _TOTALS]

    def record_columns(self) -> list[str]:
        """line, sku, step, detail, change, amount."""
        return ["line", "sku", "step", "detail", "change", "amount"]

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """The quote's waterfall: from the list price, each step of the totals as a bar from
        the running amount before it to the one after it."""
        axes = matplotlib_axes(ax)
        steps = [s for s in self.steps if s.line == _TOTALS]
        labels = [s.step for s in steps]
        after = [float(s.amount.amount) for s in steps]
        change = [float(s.amount.amount if s.change is None else s.change.amount) for s in steps]
        before = [a - c for a, c in zip(after, change, strict=True)]
        colours = [
            "#4c72b0"
            if s.change is None or s.step == "total"
            else "#55a868"
            if c >= 0
            else "#c44e52"
            for s, c in zip(steps, change, strict=True)
        ]
        kw.setdefault("color", colours)
        title = kw.pop("title", self.caption)
        axes.bar(range(len(steps)), change, bottom=before, **kw)
        axes.set_xticks(range(len(steps)), labels)
        axes.set_ylabel(f"amount ({self.currency})")
        group_thousands(axes)
        axes.set_title(title)
        return axes


_TOTALS = "quote"


def _explain_line(
    line: QuoteLine, quote: Quote, item: QuoteItem, quantum: Decimal
) -> Iterator[PriceStep]:
    def step(name: str, detail: str, change: Money | None, amount: Money) -> PriceStep:
        return PriceStep(
            line=line.id, sku=line.sku, step=name, detail=detail, change=change, amount=amount
        )

    qty = _dec(line.quantity)
    yield step("list price", f"{qty} x {line.list_price.amount}", None, line.list_amount)
    if line.volume:
        first = line.volume[0]
        product = item.products[0].product
        if product.tier_mode == "range":
            if first.min_quantity == 1:
                detail = (
                    f"range: {qty} units are below the first tier "
                    f"({product.tiers[0].min_quantity} units)"
                )
            else:
                detail = (
                    f"range: {qty} units reach the tier from {first.min_quantity}: "
                    f"{qty} x {first.unit_price.amount}"
                )
        else:
            runs = " + ".join(
                f"{_dec(s.quantity)} x {s.unit_price.amount}"
                + (f" (from unit {s.min_quantity})" if s.min_quantity > 1 else "")
                for s in line.volume
            )
            detail = f"slab: {runs}"
        yield step(
            "volume tier", detail, line.catalog_amount - line.list_amount, line.catalog_amount
        )
    if item.bundle is not None:
        yield step(
            "bundle price",
            f"share of bundle {line.bundle_sku} ({item.bundle.price.amount} per bundle), "
            "allocated by list price",
            line.catalog_amount - line.list_amount,
            line.catalog_amount,
        )
    if line.unit_price is not None:
        yield step(
            "unit price",
            f"{qty} x {line.unit_price.amount} set on the quote",
            line.gross - line.catalog_amount,
            line.gross,
        )
    yield step(
        "line discount", f"{_dec(line.discount)}%", -line.line_discount_amount, line.discounted
    )
    rounding = (
        f"bundle subtotal rounded to {quantum} (half up) and allocated by bundle share"
        if line.bundle_sku is not None
        else f"to {quantum} (half up)"
    )
    yield step("rounding", rounding, line.rounding, line.subtotal)
    yield step(
        "document discount",
        f"{_dec(quote.document_discount)}% of the quote, allocated by line subtotal",
        -line.document_discount,
        line.net,
    )
    yield step(
        "tax",
        f"{_dec(quote.tax_rate)}% of the quote's net, allocated by line net",
        line.tax,
        line.net + line.tax,
    )


# -- the quote ------------------------------------------------------------------------------------------


def _to_items(value: object) -> tuple[QuoteItem, ...]:
    if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
        raise InvalidTypeError("items", value, "a sequence of QuoteItem")
    items = tuple(value)
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, QuoteItem):
            raise InvalidTypeError(f"items[{i}]", item, "a QuoteItem")
        if item.id in seen:
            raise ValidationError(f"items[{i}].id", item.id, "a line id used by no other line")
        seen.add(item.id)
    return items


@attrs.frozen(kw_only=True)
class Quote:
    """A quote (报价单): an immutable value with versions and an approval state.

    Required: ``id``, ``owner`` (the rep's id), ``currency`` and ``quoted_on`` (the date whose
    catalog validity applies). Optional: ``opportunity_id``, ``items``, ``document_discount`` and
    ``tax_rate`` (percent), ``next_line`` (the number the next automatic line id uses) and
    ``team`` (the team of its opportunity, which the desk sets; for a quote without one, the
    team it is made for).

    ``version``, ``state``, ``rejection_reason`` and ``contract_id`` are its lifecycle: the
    quote's own methods (and the desk's commands) set them, never a caller.

    Start empty and add lines from a catalog::

        quote = Quote(id="Q-1", owner="ann", currency="CNY", quoted_on=date(2026, 11, 26))
        quote = quote.add_line(catalog, "LAPTOP-14", 12, discount=5)
    """

    id: str = attrs.field(validator=check_id)
    owner: str = attrs.field(validator=check_id)
    currency: str = attrs.field(validator=check_currency)
    quoted_on: date = attrs.field(converter=as_date)
    opportunity_id: str | None = attrs.field(default=None, validator=check_optional_id)
    items: tuple[QuoteItem, ...] = attrs.field(default=(), converter=_to_items)
    document_discount: Decimal = attrs.field(default=ZERO, converter=as_percent)
    tax_rate: Decimal = attrs.field(default=ZERO, converter=as_percent)
    version: int = attrs.field(default=1, validator=check_count)
    state: QuoteState = attrs.field(
        default=QuoteState.DRAFT, converter=as_enum, metadata={"enum": QuoteState}
    )
    rejection_reason: str | None = attrs.field(default=None, validator=check_optional_text)
    next_line: int = attrs.field(default=1, validator=check_count)
    team: str | None = attrs.field(default=None, validator=check_optional_id)
    contract_id: str | None = attrs.field(default=None, validator=check_optional_id)
    """The contract this quote backs while :attr:`state` is ``contracted``."""
    _pricing: _Pricing | None = attrs.field(init=False, default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        for item in self.items:
            if item.currency != self.currency:
                raise CurrencyMismatchError(self.currency, item.currency, operation="quote")
        if (self.state is QuoteState.REJECTED) != (self.rejection_reason is not None):
            raise ValidationError(
                "rejection_reason",
                self.rejection_reason,
                "a reason exactly when the quote is rejected",
            )
        if (self.state is QuoteState.CONTRACTED) != (self.contract_id is not None):
            raise ValidationError(
                "contract_id",
                self.contract_id,
                "a contract id exactly when the quote is contracted",
            )

    # -- prices ---------------------------------------------------------------------------------

    @property
    def _priced(self) -> _Pricing:
        # Priced on first use and kept: the quote is immutable, and a 10,000-line quote built with
        # add_line() should not be repriced after every line.
        pricing = self._pricing
        if pricing is None:
            pricing = _price(self.items, self.currency, self.document_discount, self.tax_rate)
            object.__setattr__(self, "_pricing", pricing)
        return pricing

    @property
    def lines(self) -> tuple[QuoteLine, ...]:
        """The priced lines: one per product item, one per bundle component, in item order."""
        return self._priced.lines

    def _money(self, amount: Decimal) -> Money:
        # Totals are exact and may exceed the bound of a single amount.
        return Money._trusted(amount, self.currency)

    @property
    def list_total(self) -> Money:
        """Sum of list price x quantity over the lines (exact)."""
        return self._money(self._priced.list_total)

    @property
    def subtotal(self) -> Money:
        """Sum of the rounded line subtotals, before the document discount."""
        return self._money(self._priced.subtotal)

    @property
    def document_discount_amount(self) -> Money:
        """The document discount: subtotal x document_discount / 100, rounded half up."""
        return self._money(self._priced.document_discount)

    @property
    def net_total(self) -> Money:
        """Sum of the line nets (subtotal - document discount amount)."""
        return self._money(EXACT.subtract(self._priced.subtotal, self._priced.document_discount))

    @property
    def tax(self) -> Money:
        """The tax: net_total x tax_rate / 100, rounded half up (the sum of the lines' taxes)."""
        return self._money(self._priced.tax)

    @property
    def total(self) -> Money:
        """What the customer pays: the exact sum of the line nets plus the tax."""
        priced = self._priced
        net = EXACT.subtract(priced.subtotal, priced.document_discount)
        return self._money(EXACT.add(net, priced.tax))

    def line(self, line_id: str) -> QuoteLine:
        """The priced line ``line_id``; :class:`~salesflow.errors.NotFoundError` otherwise."""
        for line in self.lines:
            if line.id == line_id:
                return line
        raise NotFoundError("quote line", line_id, f"lines of quote {self.id!r}")

    def item(self, item_id: str) -> QuoteItem:
        """The entered item ``item_id``; :class:`~salesflow.errors.NotFoundError` otherwise."""
        for item in self.items:
            if item.id == item_id:
                return item
        hint = f"items of quote {self.id!r}"
        if isinstance(item_id, str) and "." in item_id:
            hint += f"; edit bundle components through their bundle line {item_id.split('.')[0]!r}"
        raise NotFoundError("quote line", item_id, hint)

    def explain(self) -> QuoteExplanation:
        """Every step of the waterfall for every line, then the quote's totals."""
        quantum = currency_exponent(self.currency)
        items = {i.id: i for i in self.items}
        steps: list[PriceStep] = []
        for line in self.lines:
            steps.extend(_explain_line(line, self, items[line.item_id], quantum))

        def total(name: str, detail: str, change: Money | None, amount: Money) -> PriceStep:
            return PriceStep(
                line="quote", sku="", step=name, detail=detail, change=change, amount=amount
            )

        steps.append(total("list price", "sum of the lines' list amounts", None, self.list_total))
        steps.append(
            total(
                "subtotal",
                "sum of the rounded line subtotals",
                self.subtotal - self.list_total,
                self.subtotal,
            )
        )
        steps.append(
            total(
                "document discount",
                f"{_dec(self.document_discount)}% of {self.subtotal.amount}, rounded to "
                f"{quantum} (half up)",
                -self.document_discount_amount,
                self.net_total,
            )
        )
        steps.append(
            total(
                "tax",
                f"{_dec(self.tax_rate)}% of {self.net_total.amount}, rounded to {quantum} (half up)",
                self.tax,
                self.total,
            )
        )
        steps.append(total("total", "sum of the line nets plus tax", None, self.total))
        return QuoteExplanation(
            quote_id=self.id, version=self.version, currency=self.currency, steps=tuple(steps)
        )

    def content_hash(self) -> str:
        """A SHA-256 hex digest of the priced content: id, currency, every item (with the catalog
        prices it was priced from), document discount, tax rate and every line's net and tax.

        It ignores owner, state, version and dates, and numbers are compared by value (``10`` and
        ``10.00`` hash alike), so two quotes hash alike exactly when they sell the same things at
        the same prices. An approval engine records it at submission and compares it later.
        """
        payload = {
            "id": self.id,
            "currency": self.currency,
            "document_discount": _dec(self.document_discount),
            "tax_rate": _dec(self.tax_rate),
            "items": [_fingerprint(item) for item in self.items],
            "lines": [
                [line.id, _dec(line.net.amount), _dec(line.tax.amount)] for line in self.lines
            ],
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    # -- editing ----------------------------------------------------------------------------------

    def check_editable(self) -> None:
        """Raise :class:`~salesflow.errors.TransitionNotAllowedError` if this quote may not change:
        it was accepted by the customer, or it backs a contract."""
        if self.state is QuoteState.ACCEPTED:
            raise TransitionNotAllowedError(
                "change",
                self.state.value,
                f"quote {self.id!r}",
                "an accepted quote is final; start a new quote",
            )
        if self.state is QuoteState.CONTRACTED:
            raise TransitionNotAllowedError(
                "change",
                self.state.value,
                f"quote {self.id!r}",
                f"it backs contract {self.contract_id!r} (it is free again once that contract is "
                "cancelled before signing, or terminated)",
            )

    def _edited(self, **changes: Any) -> Quote:
        self.check_editable()
        if all(getattr(self, name) == value for name, value in changes.items()):
            return self
        return attrs.evolve(
            self,
            **changes,
            version=self.version + 1,
            state=QuoteState.DRAFT,
            rejection_reason=None,
        )

    def _new_item(
        self,
        catalog: Catalog,
        item_id: str,
        sku: str,
        quantity: object,
        discount: object,
        unit_price: object,
    ) -> QuoteItem:
        found = catalog.sellable(sku, on=self.quoted_on)
        if found.currency != self.currency:
            raise CurrencyMismatchError(self.currency, found.currency, operation="quote")
        price = self._unit_price(unit_price)
        if isinstance(found, Bundle):
            parts = tuple(
                ProductSnapshot(
                    product=product,
                    category_path=catalog.category_path(product.category),
                    quantity=qty,
                )
                for product, qty in catalog.components(found.sku)
            )
            return QuoteItem(
                id=item_id,
                quantity=quantity,
                products=parts,
                bundle=found,
                unit_price=price,
                discount=discount,
            )
        part = ProductSnapshot(product=found, category_path=catalog.category_path(found.category))
        return QuoteItem(
            id=item_id, quantity=quantity, products=(part,), unit_price=price, discount=discount
        )

    def check_prices(self, catalog: Catalog) -> None:
        """Refuse a line whose catalog prices are not ``catalog``'s on :attr:`quoted_on`.

        Every line is priced again from ``catalog`` (list price, floor, tiers, bundle price, the
        category path the policy's limits follow); a line that differs raises
        :class:`~salesflow.errors.ValidationError` naming the line, the price on the quote and the
        catalog's. A negotiated price is not a difference: it is the line's ``unit_price``
        override, which the discount policy measures as a discount. Unknown, inactive or expired
        items raise as in :meth:`add_line`.
        """
        if not isinstance(catalog, Catalog):
            raise InvalidTypeError("catalog", catalog, "a Catalog")
        for item in self.items:
            where = f"quote {self.id!r}, line {item.id!r} ({item.sku!r})"
            try:
                expected = self._new_item(
                    catalog, item.id, item.sku, item.quantity, item.discount, item.unit_price
                )
            except ValidationError as exc:
                raise exc.located(where) from None
            for field, given, wanted in _price_differences(item, expected):
                raise ValidationError(
                    field, given, f"the stored catalog's {wanted} on {self.quoted_on}", where=where
                )

    def repriced(self, catalog: Catalog) -> Quote:
        """A new version whose lines carry ``catalog``'s current prices (quantities, discounts and
        negotiated prices kept); this quote itself when nothing changed. Use it on a draft after
        the catalog changed: :meth:`check_prices` refuses stale prices."""
        if not isinstance(catalog, Catalog):
            raise InvalidTypeError("catalog", catalog, "a Catalog")
        items = tuple(
            self._new_item(catalog, i.id, i.sku, i.quantity, i.discount, i.unit_price)
            for i in self.items
        )
        return self._edited(items=items)

    def _unit_price(self, value: object) -> Money | None:
        if value is None:
            return None
        if isinstance(value, Money):
            if value.currency != self.currency:
                raise CurrencyMismatchError(self.currency, value.currency, operation="price")
            price = value
        else:
            price = Money._trusted(to_amount(value, "unit_price"), self.currency)
        if price.amount < 0:
            raise ValidationError("unit_price", value, "a price of zero or more")
        return price

    def _free_ids(self) -> Iterator[tuple[int, str]]:
        taken = {item.id for item in self.items}
        number = self.next_line
        while True:
            if f"L{number}" not in taken:
                yield number, f"L{number}"
            number += 1

    def add_line(
        self,
        catalog: Catalog,
        sku: str,
        quantity: Decimal | int | str = 1,
        *,
        discount: Decimal | int | str = 0,
        unit_price: Money | Decimal | int | str | None = None,
    ) -> Quote:
        """A new version with a line for product or bundle ``sku`` from ``catalog``.

        The product must be sellable on :attr:`quoted_on` (see :meth:`Catalog.sellable`) and priced
        in the quote's currency. ``unit_price`` (products only) replaces the catalog price; the
        discount policy measures it as a discount. The new line's id is ``"L<n>"``.
        """
        entry = {"sku": sku, "quantity": quantity, "discount": discount, "unit_price": unit_price}
        return self.add_lines(catalog, [entry])

    def add_lines(self, catalog: Catalog, lines: Iterable[Mapping[str, Any]]) -> Quote:
        """A new version with several lines at once (one version step): each a dict with ``sku``
        and optionally ``quantity``, ``discount`` and ``unit_price``, as in :meth:`add_line`.

        Either every line is added or, at the first bad one, none (the error names it).
        """
        if not isinstance(catalog, Catalog):
            raise InvalidTypeError("catalog", catalog, "a Catalog")
        allowed = {"sku", "quantity", "discount", "unit_price"}
        ids = self._free_ids()
        new: list[QuoteItem] = []
        number = self.next_line
        for i, entry in enumerate(lines):
            if not isinstance(entry, Mapping) or "sku" not in entry or set(entry) - allowed:
                raise ValidationError(
                    f"lines[{i}]",
                    entry,
                    "a dict with sku and optionally quantity, discount, unit_price",
                )
            number, item_id = next(ids)
            try:
                new.append(
                    self._new_item(
                        catalog,
                        item_id,
                        entry["sku"],
                        entry.get("quantity", 1),
                        entry.get("discount", 0),
                        entry.get("unit_price"),
                    )
                )
            except ValidationError as exc:
                raise exc.located(f"lines[{i}] ({entry['sku']!r})") from None
        if not new:
            return self
        return self._edited(items=(*self.items, *new), next_line=number + 1)

    def remove_line(self, item_id: str) -> Quote:
        """A new version without line ``item_id`` (a bundle line goes with all its components)."""
        self.item(item_id)
        return self._edited(items=tuple(i for i in self.items if i.id != item_id))

    def _change_item(self, item_id: str, **changes: Any) -> Quote:
        item = self.item(item_id)
        try:
            changed = attrs.evolve(item, **changes)
        except ValidationError as exc:
            raise exc.located(f"quote {self.id!r}") from None
        return self._edited(items=tuple(changed if i.id == item_id else i for i in self.items))

    def set_quantity(self, item_id: str, quantity: Decimal | int | str) -> Quote:
        """A new version with line ``item_id`` at ``quantity`` (tiers are re-applied)."""
        return self._change_item(item_id, quantity=quantity)

    def set_discount(self, item_id: str, discount: Decimal | int | str) -> Quote:
        """A new version with line ``item_id`` at ``discount`` percent."""
        return self._change_item(item_id, discount=discount)

    def set_unit_price(self, item_id: str, unit_price: Money | Decimal | int | str | None) -> Quote:
        """A new version with line ``item_id`` at ``unit_price`` (``None``: the catalog price)."""
        return self._change_item(item_id, unit_price=self._unit_price(unit_price))

    def set_document_discount(self, discount: Decimal | int | str) -> Quote:
        """A new version with a document discount of ``discount`` percent."""
        return self._edited(document_discount=to_percent(discount, "document_discount"))

    def set_tax_rate(self, rate: Decimal | int | str) -> Quote:
        """A new version with a tax rate of ``rate`` percent."""
        return self._edited(tax_rate=to_percent(rate, "tax_rate"))

    # -- states -----------------------------------------------------------------------------------

    def _move(
        self, action: str, allowed: tuple[QuoteState, ...], to: QuoteState, **extra: Any
    ) -> Quote:
        if self.state not in allowed:
            raise TransitionNotAllowedError(
                action,
                self.state.value,
                f"quote {self.id!r}",
                f"only a quote that is {' or '.join(s.value for s in allowed)} can be {to.value}",
            )
        return attrs.evolve(self, state=to, **extra)

    def submit_for_approval(self) -> Quote:
        """This quote, pending approval (from draft or rejected; it needs at least one line).

        Use :func:`salesflow.domain.discounts.route_quote`, which asks the discount policy first
        and refuses a forbidden quote; this method only moves the state.
        """
        if not self.items:
            raise ValidationError("items", (), "at least one line", where=f"quote {self.id!r}")
        if self.total.amount >= MAX_AMOUNT:
            raise ValidationError(
                "total",
                self.total,
                f"a total below {MAX_AMOUNT:,f}, the bound of a contract amount",
                where=f"quote {self.id!r}",
            )
        return self._move(
            "submit",
            (QuoteState.DRAFT, QuoteState.REJECTED),
            QuoteState.PENDING_APPROVAL,
            rejection_reason=None,
        )

    def approve(self) -> Quote:
        """This quote, approved (from pending approval)."""
        return self._move("approve", (QuoteState.PENDING_APPROVAL,), QuoteState.APPROVED)

    def reject(self, reason: str) -> Quote:
        """This quote, rejected with ``reason`` (from pending approval)."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("reason", reason, "a non-empty reason for the rep")
        return self._move(
            "reject", (QuoteState.PENDING_APPROVAL,), QuoteState.REJECTED, rejection_reason=reason
        )

    def accept(self) -> Quote:
        """This quote, accepted by the customer (only an approved quote can be accepted)."""
        return self._move("accept", (QuoteState.APPROVED,), QuoteState.ACCEPTED)

    def lock_for(self, contract_id: str) -> Quote:
        """This quote backing contract ``contract_id`` (from approved or accepted): locked."""
        return self._move(
            "put into a contract",
            (QuoteState.APPROVED, QuoteState.ACCEPTED),
            QuoteState.CONTRACTED,
            contract_id=contract_id,
        )

    def release(self) -> Quote:
        """This quote approved again, no longer backing a contract (its contract was cancelled
        before signing, or terminated)."""
        return self._move(
            "release", (QuoteState.CONTRACTED,), QuoteState.APPROVED, contract_id=None
        )

    def reopen(self) -> Quote:
        """This quote back in draft without a change of content (a withdrawn submission, a
        rejected quote to rework, an approval given up); the version stays."""
        return self._move(
            "reopen",
            (QuoteState.PENDING_APPROVAL, QuoteState.APPROVED, QuoteState.REJECTED),
            QuoteState.DRAFT,
            rejection_reason=None,
        )

    # -- plain dicts ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """This quote as plain dicts and lists (JSON-friendly) that :meth:`from_dict` reads back.

        The items carry the product snapshots they were priced from; the priced lines are not
        stored, since they follow from the items.
        """
        return {
            "id": self.id,
            "owner": self.owner,
            "opportunity_id": self.opportunity_id,
            "currency": self.currency,
            "quoted_on": self.quoted_on.isoformat(),
            "version": self.version,
            "state": self.state.value,
            "rejection_reason": self.rejection_reason,
            "document_discount": str(self.document_discount),
            "tax_rate": str(self.tax_rate),
            "next_line": self.next_line,
            "team": self.team,
            "contract_id": self.contract_id,
            "items": [item.to_dict() for item in self.items],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Quote:
        """Build a quote from the dict :meth:`to_dict` writes."""
        if not isinstance(data, Mapping):
            raise InvalidTypeError("quote", data, "a dict")
        fields = {
            "id",
            "owner",
            "opportunity_id",
            "currency",
            "quoted_on",
            "version",
            "state",
            "rejection_reason",
            "document_discount",
            "tax_rate",
            "next_line",
            "team",
            "contract_id",
            "items",
        }
        unknown = set(data) - fields
        if unknown:
            raise ValidationError("quote", sorted(unknown), f"only the keys {sorted(fields)}")
        missing = {"id", "owner", "currency", "quoted_on"} - set(data)
        if missing:
            raise ValidationError("quote", sorted(missing), "id, owner, currency and quoted_on")
        raw = data.get("items", [])
        if not isinstance(raw, list | tuple):
            raise InvalidTypeError("items", raw, "a list of item dicts")
        items = []
        for i, entry in enumerate(raw):
            try:
                items.append(QuoteItem.from_dict(entry))
            except ValidationError as exc:
                raise exc.located(f"items[{i}]") from None
        return cls(
            id=data["id"],
            owner=data["owner"],
            currency=data["currency"],
            quoted_on=data["quoted_on"],
            opportunity_id=data.get("opportunity_id"),
            items=items,
            document_discount=data.get("document_discount", ZERO),
            tax_rate=data.get("tax_rate", ZERO),
            version=data.get("version", 1),
            state=data.get("state", QuoteState.DRAFT),
            rejection_reason=data.get("rejection_reason"),
            next_line=data.get("next_line", 1),
            team=data.get("team"),
            contract_id=data.get("contract_id"),
        )


def _price_differences(given: QuoteItem, expected: QuoteItem) -> Iterator[tuple[str, Any, Any]]:
    """``(field, value on the quote, the catalog's)`` for each price that differs."""
    if given.bundle is not None and expected.bundle is not None:
        if given.bundle.price != expected.bundle.price:
            yield "bundle price", given.bundle.price, expected.bundle.price
        if given.bundle.components != expected.bundle.components:
            yield "bundle components", given.bundle.components, expected.bundle.components
            return
    for given_part, part in zip(given.products, expected.products, strict=True):
        mine, theirs = given_part.product, part.product
        for field in ("list_price", "floor_price", "tiers", "tier_mode"):
            if getattr(mine, field) != getattr(theirs, field):
                yield f"{mine.sku} {field}", getattr(mine, field), getattr(theirs, field)
        if given_part.category_path != part.category_path:
            yield f"{mine.sku} category_path", given_part.category_path, part.category_path


def _fingerprint(item: QuoteItem) -> dict[str, Any]:
    def product(part: ProductSnapshot) -> dict[str, Any]:
        p = part.product
        return {
            "sku": p.sku,
            "name": p.name,
            "category_path": list(part.category_path),
            "per_bundle": _dec(part.quantity),
            "list_price": _dec(p.list_price.amount),
            "floor_price": None if p.floor_price is None else _dec(p.floor_price.amount),
            "tier_mode": p.tier_mode,
            "tiers": [[t.min_quantity, _dec(t.unit_price.amount)] for t in p.tiers],
        }

    return {
        "id": item.id,
        "quantity": _dec(item.quantity),
        "discount": _dec(item.discount),
        "unit_price": None if item.unit_price is None else _dec(item.unit_price.amount),
        "bundle": None
        if item.bundle is None
        else [item.bundle.sku, item.bundle.name, _dec(item.bundle.price.amount)],
        "products": [product(p) for p in item.products],
    }
