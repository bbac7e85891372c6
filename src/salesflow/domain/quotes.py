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
4. **Line discounts**, in this order: the percentage, ``amount x (100 - discount) / 100``, then
   the fixed ``amount_off``, both exact. Negative values are surcharges, allowed only on products
   whose catalog entry says ``allow_surcharge``.
5. **Rounding** of the line to the currency's minor unit, ``ROUND_HALF_UP``: the *subtotal*. This is
   the first rounding point. A bundle is discounted and rounded as a whole, and the rounded bundle
   subtotal is allocated over the components by their step-3 amounts. For a product whose prices
   include tax, the rounded amount is the *included* amount and the subtotal is its untaxed part
   (:func:`salesflow.domain.taxes.untaxed_amount`: divided by 1 + the line's rates, rounded half
   up: the cent rule).
6. **Document discount**: the percentage of the sum of the subtotals, rounded once (``ROUND_HALF_UP``),
   plus the fixed :attr:`Quote.document_amount_off`, allocated over the lines by subtotal (largest
   remainder), so the line nets add up to ``subtotal - document discount`` exactly.
7. **Taxes**: each line pays its own rates (the catalog's for its product or category, those of
   the quote's region, and the quote-wide ``tax_rate`` as code ``tax``). With
   ``tax_rounding="document"`` (the default) each rate is rounded once on the nets of the lines
   carrying it and allocated over them by net; with ``"line"`` each line's tax per rate is rounded
   on its own (see :mod:`salesflow.domain.taxes`).

Quantities may be in a product's unit of measure (:mod:`salesflow.domain.units`); lines count base
units. Lines of products with a cost show ``cost`` and ``margin``; :attr:`Quote.margin` sums them.

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
    check_choice,
    check_count,
    check_id,
    check_instance,
    check_optional_id,
    check_optional_text,
    check_string,
)
from salesflow.domain.money import Money, check_currency, currency_exponent, currency_precision
from salesflow.domain.numbers import (
    EXACT,
    HUNDRED,
    MAX_AMOUNT,
    MAX_QUANTITY,
    ZERO,
    check_bounds,
    exact_sum,
    to_amount,
    to_decimal,
    to_percent,
    to_quantity,
)
from salesflow.domain.slots import SlotBuilder
from salesflow.domain.taxes import (
    TAX_ROUNDINGS,
    TaxRate,
    TaxRounding,
    TaxSource,
    check_unique_codes,
    parse_tax_rates,
    untaxed_amount,
)
from salesflow.domain.units import UnitOfMeasure
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
    "LineTax",
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


def _to_discount(value: object, field: attrs.Attribute[Any]) -> Decimal:
    """A line discount in percent, -100..100: below zero is a surcharge (where the catalog
    allows one)."""
    number = to_decimal(value, field.name)
    if not -HUNDRED <= number <= HUNDRED:
        raise ValidationError(
            field.name, value, "a percentage from -100 (a surcharge) to 100", where=None
        )
    return number


def _to_amount_off(value: object, field: attrs.Attribute[Any]) -> Decimal:
    if value is ZERO or (type(value) is int and value == 0):
        return ZERO  # the usual case, without the bounds check
    return to_amount(value, field.name)


def _to_rates(value: object) -> tuple[TaxRate, ...]:
    if isinstance(value, tuple) and all(type(v) is TaxRate for v in value):
        check_unique_codes(value, "taxes")
        return value
    return parse_tax_rates(value)


if TYPE_CHECKING:
    # What mypy sees (its attrs plugin does not read attrs.Converter, python/mypy#15736).
    def _as_discount(value: object, /) -> Decimal: ...
    def _as_amount_off(value: object, /) -> Decimal: ...

else:
    _as_discount = attrs.Converter(_to_discount, takes_field=True)
    _as_amount_off = attrs.Converter(_to_amount_off, takes_field=True)


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
    taxes: tuple[TaxRate, ...] = attrs.field(default=(), converter=_to_rates)
    """The tax rates the line pays: the catalog's for the product (or its category) and those of
    the quote's region."""

    def to_dict(self) -> dict[str, Any]:
        """This snapshot as a plain dict that :meth:`from_dict` reads back."""
        data: dict[str, Any] = {
            "product": self.product.to_dict(),
            "category_path": list(self.category_path),
            "quantity": str(self.quantity),
        }
        if self.taxes:
            data["taxes"] = [t.to_dict() for t in self.taxes]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProductSnapshot:
        """Build a snapshot from the dict :meth:`to_dict` writes."""
        if not isinstance(data, Mapping) or "product" not in data:
            raise InvalidTypeError("product snapshot", data, "a dict with 'product'")
        return cls(
            product=Product.from_dict(data["product"]),
            category_path=data.get("category_path", ()),
            quantity=data.get("quantity", _ONE),
            taxes=parse_tax_rates(data.get("taxes")),
        )


def _to_snapshots(value: object) -> tuple[ProductSnapshot, ...]:
    if type(value) is tuple and value and all(type(p) is ProductSnapshot for p in value):
        return value  # built by the quote itself: skip the checks of arbitrary input
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
    """One line as the rep entered it: a product (or a bundle), a quantity (in ``unit``, a unit of
    measure of the product, or its base unit), an optional unit price (per that unit), a line
    discount in percent (negative: a surcharge, where the product allows one) and ``amount_off``,
    a fixed amount off the line after the percentage (negative: a surcharge).

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
    discount: Decimal = attrs.field(default=ZERO, converter=_as_discount)
    amount_off: Decimal = attrs.field(default=ZERO, converter=_as_amount_off)
    unit: str | None = attrs.field(default=None, validator=check_optional_id)

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
            units = self.base_quantity
            if product.tiers and units != units.to_integral_value():
                raise ValidationError(
                    "quantity", self.quantity, f"a whole number ({product.sku!r} has volume tiers)"
                )
            if (self.discount < 0 or self.amount_off < 0) and not product.allow_surcharge:
                raise ValidationError(
                    "discount" if self.discount < 0 else "amount_off",
                    self.discount if self.discount < 0 else self.amount_off,
                    f"no surcharge: the catalog does not allow one on {product.sku!r}",
                )
        else:
            if self.unit is not None:
                raise ValidationError("unit", self.unit, "None: a bundle sells whole bundles")
            if self.discount < 0 or self.amount_off < 0:
                raise ValidationError(
                    "discount", self.discount, "no surcharge on a bundle (0 to 100 percent)"
                )
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
            units = self.base_quantity
            if units >= MAX_QUANTITY:
                raise ValidationError(
                    "quantity", qty, f"a quantity whose base units stay below {MAX_QUANTITY:,f}"
                )
            # Tier, band and unit-of-measure prices never exceed the list price (the catalog
            # checks it), so the list amount bounds them all.
            amounts = [("list price", multiply(product.list_price.amount, units))]
            if self.unit_price is not None:
                amounts.append(("unit price", multiply(self.unit_price.amount, qty)))
        if self.amount_off:
            kept = _percent_kept(_gross_amount(self), self.discount)
            if self.amount_off > kept:
                raise ValidationError(
                    "amount_off",
                    self.amount_off,
                    f"at most the line's amount after its discount ({kept})",
                )
        for what, amount in amounts:
            if amount >= MAX_AMOUNT:
                raise ValidationError(
                    "amount",
                    amount,
                    f"a line amount (quantity {qty} x {what}) below {MAX_AMOUNT:,f}",
                )

    @property
    def unit_of_measure(self) -> UnitOfMeasure | None:
        """The product's unit of measure the quantity is in (``None``: its base unit)."""
        if self.unit is None:
            return None
        return self.products[0].product.unit(self.unit)

    @property
    def base_quantity(self) -> Decimal:
        """The quantity in the product's base units (quantity x the unit's factor)."""
        uom = self.unit_of_measure
        return self.quantity if uom is None else EXACT.multiply(self.quantity, uom.factor)

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
        data = {
            "id": self.id,
            "quantity": str(self.quantity),
            "discount": str(self.discount),
            "unit_price": None if self.unit_price is None else str(self.unit_price.amount),
            "bundle": None if self.bundle is None else self.bundle.to_dict(),
            "products": [p.to_dict() for p in self.products],
        }
        if self.amount_off:
            data["amount_off"] = str(self.amount_off)
        if self.unit is not None:
            data["unit"] = self.unit
        return data

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
            amount_off=data.get("amount_off", ZERO),
            unit=data.get("unit"),
        )


_MAX_WHOLE_QUANTITY = int(MAX_QUANTITY)
_PLAIN_KEYS = frozenset({"sku", "quantity", "discount"})


def _plain_item(
    item_id: str, entry: Mapping[str, Any], parts: tuple[ProductSnapshot, ...]
) -> QuoteItem | None:
    """The item :meth:`Quote.add_lines` builds for ``entry``, a line of the product of ``parts``
    (a snapshot built, and its product found sellable in the quote's currency, for an earlier line
    of the same call), or ``None`` when the entry is not a plain one or breaks a rule.

    A plain entry has no unit, no unit price and no amount off, an ``int`` or ``Decimal``
    quantity and discount. For it this runs exactly the checks of the :class:`QuoteItem`
    constructor that such an entry can fail, without its converters' and validators' per-call
    overhead (a 10,000-line quote is mostly plain lines). Anything else returns ``None``, and the
    caller builds the item the ordinary way, which then also raises the ordinary error.
    """
    get = entry.get
    if not _PLAIN_KEYS.issuperset(entry):
        if get("unit") is not None or get("unit_price") is not None:
            return None
        off = get("amount_off", 0)
        if off is not ZERO and (type(off) is not int or off != 0):
            return None
    product = parts[0].product
    qty = get("quantity", 1)
    if type(qty) is int:
        if not 0 < qty < _MAX_WHOLE_QUANTITY:
            return None
        quantity = Decimal(qty)
    elif type(qty) is Decimal:
        try:
            quantity = to_quantity(qty, "quantity")
        except ValidationError:
            return None
        if product.tiers and quantity != quantity.to_integral_value():
            return None
    else:
        return None
    discount = get("discount", 0)
    if type(discount) is int:
        discount = Decimal(discount)
    elif type(discount) is not Decimal or not discount.is_finite():
        return None
    if not -HUNDRED <= discount <= HUNDRED or len(item_id) > MAX_ID_LENGTH:
        return None
    if discount < ZERO and not product.allow_surcharge:
        return None
    if EXACT.multiply(product.list_price.amount, quantity) >= MAX_AMOUNT:
        return None
    return _BUILD_ITEM((item_id, quantity, parts, None, None, discount, ZERO, None))


_BUILD_ITEM = SlotBuilder(
    QuoteItem,
    ("id", "quantity", "products", "bundle", "unit_price", "discount", "amount_off", "unit"),
)


def _catalog_amount(item: QuoteItem, product: Product) -> Decimal:
    """What the catalog asks for a product item: the unit of measure's own price x quantity, or
    the (tiered) price of its base units (exact)."""
    uom = item.unit_of_measure
    if uom is not None and uom.price is not None:
        return EXACT.multiply(uom.price.amount, item.quantity)
    return product._amount_of(item.base_quantity)


def _gross_amount(item: QuoteItem) -> Decimal:
    """The amount the line discount applies to (exact)."""
    if item.unit_price is not None:
        return EXACT.multiply(item.unit_price.amount, item.quantity)
    if item.bundle is not None:
        return EXACT.multiply(item.bundle.price.amount, item.quantity)
    return _catalog_amount(item, item.products[0].product)


def _percent_kept(amount: Decimal, discount: Decimal) -> Decimal:
    """``amount x (100 - discount) / 100``, exact (the factor first, as quotes always did, so
    amounts keep the digits they showed)."""
    if not discount:
        return amount
    # A division in EXACT's precision costs several multiplications, and a quote repeats a few
    # discounts over many lines: the factor is kept per discount. Equal discounts written with
    # other digits (10.5, 10.50) have factors written differently, hence same_quantum.
    known = _KEPT_FACTORS.get(discount)
    if known is not None and known[0].same_quantum(discount):
        return EXACT.multiply(amount, known[1])
    factor = EXACT.divide(EXACT.subtract(HUNDRED, discount), HUNDRED)
    if len(_KEPT_FACTORS) >= _MAX_KEPT_FACTORS:
        _KEPT_FACTORS.clear()
    _KEPT_FACTORS[discount] = (discount, factor)
    return EXACT.multiply(amount, factor)


_KEPT_FACTORS: dict[Decimal, tuple[Decimal, Decimal]] = {}
_MAX_KEPT_FACTORS = 1024


# -- lines: what the customer pays -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LineTax:
    """One tax on one quote line: the rate's ``code``, ``rate`` (percent), ``name`` and the
    ``amount`` the line pays (whole minor units)."""

    code: str
    rate: Decimal
    name: str | None
    amount: Money


@attrs.frozen(kw_only=True)
class QuoteLine:
    """A priced line: every step of the waterfall, kept for explanation.

    Amounts marked *exact* keep every digit; ``subtotal``, ``document_discount``, ``net`` and
    ``tax`` are whole minor units. The waterfall stores plain ``Decimal`` amounts and the
    :class:`Money` properties wrap them on access, so that pricing a big quote builds one object per
    line rather than one per amount.
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
    """Base units of the product (for a component: per-bundle quantity x bundles; in a unit of
    measure: quantity x its factor)."""
    currency: str
    """The quote's currency."""
    unit_price: Money | None
    """Step 3: the unit price set on the quote, or ``None`` for the catalog's."""
    discount: Decimal
    """Step 4: the line discount, percent (negative: a surcharge)."""
    _catalog_amount: Decimal
    _gross: Decimal
    _discounted: Decimal
    _subtotal: Decimal
    _document_discount: Decimal
    _net: Decimal
    _tax: Decimal
    unit: str | None = None
    """The unit of measure the item's quantity is in (``None``: base units)."""
    _amount_off: Decimal = ZERO
    _included: Decimal | None = None
    tax_rates: tuple[TaxRate, ...] = ()
    """The rates the line pays (the quote-wide ``tax_rate`` last, as code ``tax``)."""
    tax_amounts: tuple[Decimal, ...] = ()
    """What the line pays for each of :attr:`tax_rates` (whole minor units)."""
    _cost: Decimal | None = None

    def _money(self, amount: Decimal) -> Money:
        return Money._trusted(amount, self.currency)

    @property
    def catalog_amount(self) -> Money:
        """Steps 2-3: what the catalog asks for the line: list price x quantity with volume tiers
        applied (or the unit of measure's own price), or the line's share of the bundle price
        (exact)."""
        return self._money(self._catalog_amount)

    @property
    def gross(self) -> Money:
        """Step 3: the amount the line discount applies to (exact)."""
        return self._money(self._gross)

    @property
    def discounted(self) -> Money:
        """Step 4: gross x (100 - discount) / 100 - amount off (exact)."""
        return self._money(self._discounted)

    @property
    def subtotal(self) -> Money:
        """Step 5: the discounted amount rounded to the minor unit (half up; for bundle
        components, the share of the rounded bundle subtotal), without tax (see
        :attr:`included`)."""
        return self._money(self._subtotal)

    @property
    def document_discount(self) -> Money:
        """Step 6: this line's share of the document discount."""
        return self._money(self._document_discount)

    @property
    def net(self) -> Money:
        """subtotal - document_discount: what the customer pays before tax."""
        return self._money(self._net)

    @property
    def tax(self) -> Money:
        """Step 7: the line's taxes together (see :attr:`taxes`)."""
        return self._money(self._tax)

    @property
    def amount_off(self) -> Money | None:
        """Step 4: the fixed amount off the line after the percentage (``None``: none)."""
        return self._money(self._amount_off) if self._amount_off else None

    @property
    def included(self) -> Money | None:
        """For a product whose prices include tax: the rounded amount with the taxes in, which
        step 5 divides back (the cent rule, :func:`salesflow.domain.taxes.untaxed_amount`)."""
        return None if self._included is None else self._money(self._included)

    @property
    def cost(self) -> Money | None:
        """The product's cost x quantity (``None`` when the product has no cost)."""
        return None if self._cost is None else self._money(self._cost)

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
        return Money._trusted(amount, self.currency)

    @property
    def volume(self) -> tuple[TierSegment, ...]:
        """Step 2: the runs of units and their tier prices (empty unless the product has tiers and
        the line is not part of a bundle or priced by a unit of measure's own price)."""
        if self.bundle_sku is not None or not self.product.tiers:
            return ()
        uom = self.product.unit(self.unit)
        if uom is not None and uom.price is not None:
            return ()
        return self.product.volume_segments(self.quantity)

    @property
    def floor_amount(self) -> Money | None:
        """floor price x quantity, or ``None`` when the product has no floor (without tax for a
        tax-included product, by the cent rule)."""
        floor = self.product.floor_price
        if floor is None:
            return None
        amount = EXACT.multiply(floor.amount, self.quantity)
        if self.included is not None:
            quantum = currency_exponent(self.currency)
            rates = [r.rate for r in self.tax_rates if r.code != _QUOTE_TAX]
            amount = untaxed_amount(amount.quantize(quantum, ROUND_HALF_UP, EXACT), rates, quantum)
        return Money._trusted(amount, self.currency)

    @property
    def line_discount_amount(self) -> Money:
        """gross - discounted (exact): the percentage and the amount off together."""
        return self._money(self._gross - self._discounted)

    @property
    def rounding(self) -> Money:
        """The rounded amount - discounted: what rounding to the minor unit added (negative:
        removed)."""
        rounded = self._subtotal if self._included is None else self._included
        return self._money(rounded - self._discounted)

    @property
    def taxes(self) -> tuple[LineTax, ...]:
        """Each tax the line pays, in the order of :attr:`tax_rates`."""
        currency = self.currency
        return tuple(
            LineTax(code=r.code, rate=r.rate, name=r.name, amount=Money._trusted(a, currency))
            for r, a in zip(self.tax_rates, self.tax_amounts, strict=True)
        )

    @property
    def total(self) -> Money:
        """net + tax."""
        return self._money(self._net + self._tax)

    @property
    def margin(self) -> Money | None:
        """net - cost (exact; ``None`` without a cost)."""
        return None if self._cost is None else self._money(self._net - self._cost)

    @property
    def margin_percent(self) -> Decimal | None:
        """margin x 100 / net (``None`` without a cost or with a zero net)."""
        if self._cost is None or not self._net:
            return None
        return _ratio(self._net - self._cost, self._net)


_QUOTE_TAX = "tax"
"""The code of the quote-wide ``tax_rate`` on a line."""


def _ratio(part: Decimal, whole: Decimal) -> Decimal:
    """``part x 100 / whole`` to 28 significant digits (one rounding, in the quotient)."""
    return EXACT.multiply(part, HUNDRED) / whole


# One priced line before the document discount: item, snapshot, units, catalog amount, gross,
# discounted (exact), subtotal (rounded, untaxed) and the tax-included subtotal (or None).
_Row = tuple[
    QuoteItem, ProductSnapshot, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal | None
]


class _Pricing:
    """The waterfall's figures, one list per step, and the line objects built from them on first
    use: totals, nets and the policy's figures need the numbers only."""

    __slots__ = (
        "_ids",
        "_lines",
        "currency",
        "doc_shares",
        "document_discount",
        "line_rates",
        "line_taxes",
        "nets",
        "rows",
        "subtotal",
        "tax",
        "taxes",
    )

    def __init__(
        self,
        *,
        currency: str,
        rows: list[_Row],
        doc_shares: list[Decimal],
        nets: list[Decimal],
        line_rates: list[tuple[TaxRate, ...]],
        line_taxes: list[tuple[Decimal, ...]],
        subtotal: Decimal,
        document_discount: Decimal,
        tax: Decimal,
        taxes: tuple[tuple[TaxRate, Decimal, Decimal], ...],
    ) -> None:
        self.currency = currency
        self.rows = rows
        self.doc_shares = doc_shares
        self.nets = nets
        self.line_rates = line_rates
        self.line_taxes = line_taxes
        self.subtotal = subtotal
        self.document_discount = document_discount
        self.tax = tax
        self.taxes = taxes
        """(rate, base, amount) per tax, in order of first appearance."""
        self._ids: list[str] | None = None
        self._lines: tuple[QuoteLine, ...] | None = None

    @property
    def ids(self) -> list[str]:
        """The line ids: the item's, or ``L3.1``, ``L3.2``... for a bundle's components."""
        ids = self._ids
        if ids is None:
            ids = []
            counters: dict[str, int] = {}
            for row in self.rows:
                item = row[0]
                if item.bundle is None:
                    ids.append(item.id)
                else:
                    counters[item.id] = counters.get(item.id, 0) + 1
                    ids.append(f"{item.id}.{counters[item.id]}")
            self._ids = ids
        return ids

    @property
    def lines(self) -> tuple[QuoteLine, ...]:
        """The priced lines, built on first use."""
        lines = self._lines
        if lines is None:
            lines = tuple(self._build())
            self._lines = lines
        return lines

    def _build(self) -> Iterator[QuoteLine]:
        # Built without QuoteLine's constructor, whose keyword handling costs more than setting
        # the slots from the waterfall's figures, which need no checks.
        currency = self.currency
        multiply = EXACT.multiply
        build = _BUILD_LINE
        for line_id, row, doc_share, net, rates, taxes in zip(
            self.ids,
            self.rows,
            self.doc_shares,
            self.nets,
            self.line_rates,
            self.line_taxes,
            strict=True,
        ):
            item, part, units, catalog, gross, discounted, sub, included = row
            product = part.product
            cost = product.cost
            values = (  # in the order of _LINE_FIELDS
                line_id,
                item.id,
                product,
                None if item.bundle is None else item.bundle.sku,
                part.category_path,
                units,
                currency,
                item.unit_price,
                item.discount,
                catalog,
                gross,
                discounted,
                sub,
                doc_share,
                net,
                exact_sum(taxes) if taxes else ZERO,
                item.unit,
                item.amount_off,
                included,
                rates,
                taxes,
                None if cost is None else multiply(cost.amount, units),
            )
            yield build(values)


_LINE_FIELDS = (
    "id",
    "item_id",
    "product",
    "bundle_sku",
    "category_path",
    "quantity",
    "currency",
    "unit_price",
    "discount",
    "_catalog_amount",
    "_gross",
    "_discounted",
    "_subtotal",
    "_document_discount",
    "_net",
    "_tax",
    "unit",
    "_amount_off",
    "_included",
    "tax_rates",
    "tax_amounts",
    "_cost",
)
"""Every field of :class:`QuoteLine`, in the order :meth:`_Pricing._build` sets them (a test pins
it to the class)."""
_BUILD_LINE = SlotBuilder(QuoteLine, _LINE_FIELDS)


def _untaxed(
    part: ProductSnapshot, amount: Decimal, quantum: Decimal
) -> tuple[Decimal, Decimal | None]:
    if not part.product.tax_included:
        return amount, None
    return untaxed_amount(amount, [t.rate for t in part.taxes], quantum), amount


def _product_row(item: QuoteItem, quantum: Decimal) -> _Row:
    """The row of a product item (not a bundle)."""
    # Every product is exact (EXACT): quantity x price has up to 50 significant digits.
    discount = item.discount
    off = item.amount_off
    qty = item.quantity
    part = item.products[0]
    product = part.product
    if item.unit is None:
        units = qty
        catalog = product._amount_of(qty)
    else:
        units = item.base_quantity
        catalog = _catalog_amount(item, product)
    gross = catalog if item.unit_price is None else EXACT.multiply(item.unit_price.amount, qty)
    discounted = _percent_kept(gross, discount) if discount else gross
    if off:
        discounted = EXACT.subtract(discounted, off)
    sub = discounted.quantize(quantum, ROUND_HALF_UP, EXACT)
    if product.tax_included:
        untaxed, included = _untaxed(part, sub, quantum)
        return (item, part, units, catalog, gross, discounted, untaxed, included)
    return (item, part, units, catalog, gross, discounted, sub, None)


def _rows(item: QuoteItem, quantum: Decimal, currency: str) -> list[_Row]:
    if item.bundle is None:
        return [_product_row(item, quantum)]
    multiply = EXACT.multiply
    discount = item.discount
    off = item.amount_off
    qty = item.quantity
    # A bundle: allocate the bundle price (whole minor units), then the rounded, discounted bundle
    # amount, so that both the gross and the subtotal shares add up exactly.
    bundle_gross = Money._trusted(multiply(item.bundle.price.amount, qty), currency)
    weights = [multiply(p.product.list_price.amount, p.quantity) for p in item.products]
    if not any(weights):
        weights = [p.quantity for p in item.products]
    shares = bundle_gross.allocate(weights)
    kept = EXACT.subtract(_percent_kept(bundle_gross.amount, discount), off)
    bundle_subtotal = Money._trusted(kept.quantize(quantum, ROUND_HALF_UP, EXACT), currency)
    sub_shares = bundle_subtotal.allocate(
        [s.amount for s in shares] if bundle_gross.amount else weights
    )
    rows: list[_Row] = []
    for part, share, sub_share in zip(item.products, shares, sub_shares, strict=True):
        # The exact discounted share: the bundle's discounted amount split like its price.
        part_discounted = (
            EXACT.multiply(kept, share.amount) / bundle_gross.amount
            if bundle_gross.amount
            else ZERO
        )
        untaxed, included = _untaxed(part, sub_share.amount, quantum)
        rows.append(
            (
                item,
                part,
                multiply(part.quantity, qty),
                share.amount,
                share.amount,
                part_discounted if off else _percent_kept(share.amount, discount),
                untaxed,
                included,
            )
        )
    return rows


def _price(
    items: tuple[QuoteItem, ...],
    currency: str,
    document_discount: Decimal,
    tax_rate: Decimal,
    amount_off: Decimal = ZERO,
    rounding: TaxRounding = "document",
) -> _Pricing:
    quantum = currency_exponent(currency)
    rows: list[_Row] = []
    for item in items:
        if item.bundle is None:
            rows.append(_product_row(item, quantum))
        else:
            rows.extend(_rows(item, quantum, currency))
    subtotals = [row[6] for row in rows]
    subtotal = exact_sum(subtotals)
    doc_total = EXACT.add(_percent_of(subtotal, document_discount, quantum), amount_off)
    doc_shares = _allocate(doc_total, subtotals, currency)
    nets = [EXACT.subtract(s, d) for s, d in zip(subtotals, doc_shares, strict=True)]
    quote_rate = (TaxRate(code=_QUOTE_TAX, rate=tax_rate),) if tax_rate else ()
    line_rates = [row[1].taxes + quote_rate if quote_rate else row[1].taxes for row in rows]
    line_taxes, summary = _taxes(line_rates, nets, quantum, currency, rounding)
    tax_total = exact_sum(amount for _rate, _base, amount in summary)

    return _Pricing(
        currency=currency,
        rows=rows,
        doc_shares=doc_shares,
        nets=nets,
        line_rates=line_rates,
        line_taxes=line_taxes,
        subtotal=subtotal,
        document_discount=doc_total,
        tax=tax_total,
        taxes=summary,
    )


def _taxes(
    line_rates: list[tuple[TaxRate, ...]],
    nets: list[Decimal],
    quantum: Decimal,
    currency: str,
    rounding: TaxRounding,
) -> tuple[list[tuple[Decimal, ...]], tuple[tuple[TaxRate, Decimal, Decimal], ...]]:
    """Each line's tax per rate, and (rate, base, amount) per rate for the quote."""
    none: tuple[Decimal, ...] = ()
    if rounding == "line":
        per_line = [
            tuple([_percent_of(net, r.rate, quantum) for r in rates]) if rates else none
            for rates, net in zip(line_rates, nets, strict=True)
        ]
        summary: dict[TaxRate, list[Decimal]] = {}
        for rates, net, taxes in zip(line_rates, nets, per_line, strict=True):
            for rate, amount in zip(rates, taxes, strict=True):
                entry = summary.get(rate)
                if entry is None:
                    summary[rate] = [net, amount]
                else:
                    entry[0] = EXACT.add(entry[0], net)
                    entry[1] = EXACT.add(entry[1], amount)
        return per_line, tuple((rate, base, amount) for rate, (base, amount) in summary.items())
    # One group per rate: the lines carrying it, rounded once and allocated by net.
    groups: dict[TaxRate, tuple[list[int], list[int]]] = {}
    for i, rates in enumerate(line_rates):
        for j, rate in enumerate(rates):
            group = groups.get(rate)
            if group is None:
                groups[rate] = ([i], [j])
            else:
                group[0].append(i)
                group[1].append(j)
    if not groups:
        return [none] * len(nets), ()
    collected: list[list[Decimal]] = [[ZERO] * len(rates) for rates in line_rates]
    totals = []
    for rate, (members, places) in groups.items():
        weights = [nets[i] for i in members]
        base = exact_sum(weights)
        total = _percent_of(base, rate.rate, quantum)
        totals.append((rate, base, total))
        shares = _allocate(total, weights, currency)
        for i, j, share in zip(members, places, shares, strict=True):
            collected[i][j] = share
    return [tuple(found) for found in collected], tuple(totals)


def _amount(value: Decimal, currency: str) -> Money:
    """Money for an amount the waterfall computed from validated inputs (checks skipped)."""
    return Money._trusted(value, currency)


def _percent_of(amount: Decimal, percent: Decimal, quantum: Decimal) -> Decimal:
    """``amount x percent / 100`` rounded half up to ``quantum``, exactly (dividing by 100 only
    moves the decimal point, so EXACT may divide)."""
    if not percent:
        return ZERO
    product = EXACT.divide(EXACT.multiply(amount, percent), HUNDRED)
    return product.quantize(quantum, ROUND_HALF_UP, EXACT)


def _allocate(total: Decimal, weights: list[Decimal], currency: str) -> list[Decimal]:
    """``total`` split over ``weights`` in whole minor units, largest remainder (zeros if none).

    The same split as :meth:`Money.allocate` (tests compare them), for weights that are whole
    minor units of ``currency`` (subtotals and nets), on integers and without a Money per share.
    """
    if not total or not any(weights):
        return [ZERO] * len(weights)
    places = currency_precision(currency)
    scale = EXACT.scaleb
    units = int(scale(total, places))
    integers = [int(scale(w, places)) for w in weights]
    if any(w < 0 for w in integers) or units < 0:
        return [m.amount for m in Money._trusted(total, currency).allocate(weights)]
    whole = sum(integers)
    split = [divmod(units * w, whole) for w in integers]
    floors = [share for share, _rest in split]
    left = units - sum(floors)
    if left:
        by_remainder = sorted(range(len(split)), key=lambda i: (-split[i][1], i))
        for i in by_remainder[:left]:
            floors[i] += 1
    exponent = -places
    return [Decimal(n).scaleb(exponent) for n in floors]


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
    shown = f"{qty} x {line.list_price.amount}"
    if line.unit is not None:
        shown += f" ({_dec(item.quantity)} {line.unit})"
    yield step("list price", shown, None, line.list_amount)
    if line.volume:
        first = line.volume[0]
        product = item.products[0].product
        if product.tier_mode == "band":
            if first.min_quantity == 1:
                detail = f"band: {qty} units fall in no band, at the list price"
            else:
                tier = next(t for t in product.tiers if t.min_quantity == first.min_quantity)
                top = "..." if tier.max_quantity is None else str(tier.max_quantity)
                detail = (
                    f"band: {qty} units fall in the band {tier.min_quantity}-{top}: "
                    f"{qty} x {first.unit_price.amount}"
                )
        elif product.tier_mode == "range":
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
    if line.unit is not None and line.bundle_sku is None and not line.volume:
        uom = line.product.unit(line.unit)
        if uom is not None and uom.price is not None:
            yield step(
                "unit of measure",
                f"{_dec(item.quantity)} {uom.code} x {uom.price.amount}",
                line.catalog_amount - line.list_amount,
                line.catalog_amount,
            )
    if line.unit_price is not None:
        per = "" if line.unit is None else f" per {line.unit}"
        yield step(
            "unit price",
            f"{_dec(item.quantity)} x {line.unit_price.amount}{per} set on the quote",
            line.gross - line.catalog_amount,
            line.gross,
        )
    kind = "surcharge" if line.discount < 0 else "line discount"
    if line.amount_off is None:
        yield step(kind, f"{_dec(line.discount)}%", -line.line_discount_amount, line.discounted)
    else:
        after = line.discounted + line.amount_off
        yield step(kind, f"{_dec(line.discount)}%", after - line.gross, after)
        name = "amount surcharge" if line.amount_off.amount < 0 else "amount off"
        yield step(
            name, f"{line.amount_off.amount} off the line", -line.amount_off, line.discounted
        )
    rounding = (
        f"bundle subtotal rounded to {quantum} (half up) and allocated by bundle share"
        if line.bundle_sku is not None
        else f"to {quantum} (half up)"
    )
    if line.included is None:
        yield step("rounding", rounding, line.rounding, line.subtotal)
    else:
        yield step("rounding", rounding, line.rounding, line.included)
        rates = " + ".join(r.label for r in line.tax_rates if r.code != _QUOTE_TAX)
        yield step(
            "tax included",
            f"{line.included.amount} / (1 + {rates}), rounded to {quantum} (half up)",
            line.subtotal - line.included,
            line.subtotal,
        )
    yield step(
        "document discount",
        f"{_dec(quote.document_discount)}% of the quote"
        + (f" + {quote.document_amount_off} off" if quote.document_amount_off else "")
        + ", allocated by line subtotal",
        -line.document_discount,
        line.net,
    )
    running = line.net
    if not line.tax_rates:
        yield step("tax", "0% of the quote's net, allocated by line net", line.tax, line.total)
    share = (
        "share of the quote's tax on the rate, allocated by line net"
        if quote.tax_rounding == "document"
        else f"of the line's net, rounded to {quantum} (half up)"
    )
    for rate, amount in zip(line.tax_rates, line.tax_amounts, strict=True):
        money = Money._trusted(amount, line.net.currency)
        running = running + money
        if rate.code == _QUOTE_TAX and len(line.tax_rates) == 1:
            detail = f"{_dec(rate.rate)}% of the quote's net, allocated by line net"
            yield step("tax", detail, money, running)
        else:
            yield step(f"tax {rate.code}", f"{rate.label}: {share}", money, running)


# -- the quote ------------------------------------------------------------------------------------------


def _to_items(value: object) -> tuple[QuoteItem, ...]:
    if (
        type(value) is tuple
        and all(type(item) is QuoteItem for item in value)
        and len({item.id for item in value}) == len(value)
    ):
        return value  # the usual case, checked in bulk: every quote edit passes all its items
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
    document_amount_off: Decimal = attrs.field(default=ZERO, converter=_as_amount_off)
    """A fixed amount off the whole quote, after the document discount percentage."""
    tax_rounding: TaxRounding = attrs.field(
        default="document", validator=check_choice, metadata={"choices": TAX_ROUNDINGS}
    )
    """Where taxes round: ``"document"`` (once per rate) or ``"line"``."""
    region: str | None = attrs.field(default=None, validator=check_optional_id)
    """The customer's tax region, whose rates a tax source (the desk's plugins) adds."""
    version: int = attrs.field(default=1, validator=check_count)
    state: QuoteState = attrs.field(
        default=QuoteState.DRAFT, converter=as_enum, metadata={"enum": QuoteState}
    )
    rejection_reason: str | None = attrs.field(default=None, validator=check_optional_text)
    next_line: int = attrs.field(default=1, validator=check_count)
    team: str | None = attrs.field(default=None, validator=check_optional_id)
    contract_id: str | None = attrs.field(default=None, validator=check_optional_id)
    """The contract this quote backs while :attr:`state` is ``contracted``."""
    rules_version: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(check_count)
    )
    """The version of the desk's sales rules whose discount policy judged this quote when it was
    last submitted (``None`` before, after an edit, or when the desk's policy was passed in code).
    A decision stands under later rules: a stricter policy does not undo an approval."""
    _pricing: _Pricing | None = attrs.field(init=False, default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        currency = self.currency
        for item in self.items:
            # item.currency, inlined: every quote edit checks all its items
            bundle = item.bundle
            if (
                bundle.currency
                if bundle is not None
                else item.products[0].product.list_price.currency
            ) != currency:
                raise CurrencyMismatchError(currency, item.currency, operation="quote")
        if self.document_amount_off < 0:
            raise ValidationError(
                "document_amount_off", self.document_amount_off, "an amount of zero or more"
            )
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
            pricing = _price(
                self.items,
                self.currency,
                self.document_discount,
                self.tax_rate,
                self.document_amount_off,
                self.tax_rounding,
            )
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
        multiply = EXACT.multiply
        return self._money(
            exact_sum(
                multiply(line.product.list_price.amount, line.quantity) for line in self.lines
            )
        )

    @property
    def subtotal(self) -> Money:
        """Sum of the rounded line subtotals, before the document discount."""
        return self._money(self._priced.subtotal)

    @property
    def document_discount_amount(self) -> Money:
        """The document discount: subtotal x document_discount / 100, rounded half up, plus
        :attr:`document_amount_off`."""
        return self._money(self._priced.document_discount)

    @property
    def net_total(self) -> Money:
        """Sum of the line nets (subtotal - document discount amount)."""
        return self._money(EXACT.subtract(self._priced.subtotal, self._priced.document_discount))

    @property
    def tax(self) -> Money:
        """Every tax together: the sum of the lines' taxes (see :attr:`taxes`)."""
        return self._money(self._priced.tax)

    @property
    def taxes(self) -> tuple[LineTax, ...]:
        """Each tax rate of the quote with what it comes to over the lines carrying it, in order
        of first appearance (the quote-wide ``tax_rate`` as code ``tax``)."""
        return tuple(
            LineTax(code=r.code, rate=r.rate, name=r.name, amount=self._money(amount))
            for r, _base, amount in self._priced.taxes
        )

    @property
    def cost_total(self) -> Money | None:
        """The cost of the lines whose product has one (``None`` when none has)."""
        costs = [line.cost.amount for line in self.lines if line.cost is not None]
        return self._money(exact_sum(costs)) if costs else None

    @property
    def margin(self) -> Money | None:
        """The margin of the lines with a cost: their nets - their costs (exact)."""
        costed = [line for line in self.lines if line.cost is not None]
        if not costed:
            return None
        return self._money(
            exact_sum(line.net.amount for line in costed)
            - exact_sum(line.cost.amount for line in costed if line.cost is not None)
        )

    @property
    def margin_percent(self) -> Decimal | None:
        """margin x 100 / the nets of the lines with a cost (``None`` without costs or nets)."""
        costed = [line for line in self.lines if line.cost is not None]
        net = exact_sum(line.net.amount for line in costed)
        margin = self.margin
        if margin is None or not net:
            return None
        return _ratio(margin.amount, net)

    @property
    def total(self) -> Money:
        """What the customer pays: the exact sum of the line nets plus the taxes."""
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
        off = f" + {self.document_amount_off} off" if self.document_amount_off else ""
        steps.append(
            total(
                "document discount",
                f"{_dec(self.document_discount)}% of {self.subtotal.amount}, rounded to "
                f"{quantum} (half up){off}",
                -self.document_discount_amount,
                self.net_total,
            )
        )
        running = self.net_total
        taxes = self._priced.taxes
        if not taxes:
            detail = f"0% of {self.net_total.amount}, rounded to {quantum} (half up)"
            steps.append(total("tax", detail, self.tax, self.total))
        for rate, base, amount in taxes:
            money = self._money(amount)
            running = running + money
            if rate.code == _QUOTE_TAX and len(taxes) == 1:
                detail = f"{_dec(rate.rate)}% of {base}, rounded to {quantum} (half up)"
                steps.append(total("tax", detail, money, running))
                continue
            how = (
                f"of {base} (the nets of the lines carrying it), rounded to {quantum} (half up)"
                if self.tax_rounding == "document"
                else f"of each line's net ({base} together), each rounded to {quantum} (half up)"
            )
            steps.append(total(f"tax {rate.code}", f"{rate.label} {how}", money, running))
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
        # Added only when set, so a quote made before these fields keeps its fingerprint.
        if self.document_amount_off:
            payload["document_amount_off"] = _dec(self.document_amount_off)
        if self.tax_rounding != "document":
            payload["tax_rounding"] = self.tax_rounding
        if self.region is not None:
            payload["region"] = self.region
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
            rules_version=None,
        )

    def _snapshot(
        self,
        catalog: Catalog,
        product: Product,
        tax_source: TaxSource | None,
        quantity: Decimal = _ONE,
        memo: dict[tuple[str, Decimal], ProductSnapshot] | None = None,
    ) -> ProductSnapshot:
        # Snapshots are immutable: lines of one product added together share one.
        if memo is not None:
            known = memo.get((product.sku, quantity))
            if known is not None and known.product is product:
                return known
        snapshot = self._new_snapshot(catalog, product, tax_source, quantity)
        if memo is not None:
            memo[product.sku, quantity] = snapshot
        return snapshot

    def _new_snapshot(
        self, catalog: Catalog, product: Product, tax_source: TaxSource | None, quantity: Decimal
    ) -> ProductSnapshot:
        path = catalog.category_path(product.category)
        taxes = catalog.tax_rates(product)
        if tax_source is not None and self.region is not None:
            extra = tuple(
                tax_source(
                    sku=product.sku, category_path=path, region=self.region, on=self.quoted_on
                )
            )
            for i, rate in enumerate(extra):
                if not isinstance(rate, TaxRate):
                    raise InvalidTypeError(f"tax_source[{i}]", rate, "a TaxRate")
            taxes = (*taxes, *extra)
        return ProductSnapshot(product=product, category_path=path, quantity=quantity, taxes=taxes)

    def _new_item(
        self,
        catalog: Catalog,
        item_id: str,
        sku: str,
        quantity: object,
        discount: object,
        unit_price: object,
        *,
        amount_off: object = ZERO,
        unit: str | None = None,
        tax_source: TaxSource | None = None,
        memo: dict[tuple[str, Decimal], ProductSnapshot] | None = None,
    ) -> QuoteItem:
        found = catalog.sellable(sku, on=self.quoted_on)
        if found.currency != self.currency:
            raise CurrencyMismatchError(self.currency, found.currency, operation="quote")
        price = self._unit_price(unit_price)
        if isinstance(found, Bundle):
            parts = tuple(
                self._snapshot(catalog, product, tax_source, qty, memo)
                for product, qty in catalog.components(found.sku)
            )
            return QuoteItem(
                id=item_id,
                quantity=quantity,
                products=parts,
                bundle=found,
                unit_price=price,
                discount=discount,
                amount_off=amount_off,
                unit=unit,
            )
        part = self._snapshot(catalog, found, tax_source, _ONE, memo)
        item = QuoteItem(
            id=item_id,
            quantity=quantity,
            products=(part,),
            unit_price=price,
            discount=discount,
            amount_off=amount_off,
            unit=unit,
        )
        if unit is not None:
            item.unit_of_measure  # noqa: B018 - refuses a unit the product does not have
        return item

    def _renew(self, catalog: Catalog, item: QuoteItem, tax_source: TaxSource | None) -> QuoteItem:
        return self._new_item(
            catalog,
            item.id,
            item.sku,
            item.quantity,
            item.discount,
            item.unit_price,
            amount_off=item.amount_off,
            unit=item.unit,
            tax_source=tax_source,
        )

    def check_prices(self, catalog: Catalog, *, tax_source: TaxSource | None = None) -> None:
        """Refuse a line whose catalog prices are not ``catalog``'s on :attr:`quoted_on`.

        Every line is priced again from ``catalog`` (list price, floor, tiers, bundle price, the
        category path the policy's limits follow); a line that differs raises
        :class:`~salesflow.errors.ValidationError` naming the line, the price on the quote and the
        catalog's. A negotiated price is not a difference: it is the line's ``unit_price``
        override, which the discount policy measures as a discount. Unknown, inactive or expired
        items raise as in :meth:`add_line`. Taxes, costs, units and the surcharge permission are
        checked the same way (with ``tax_source`` for the rates of the quote's region).
        """
        if not isinstance(catalog, Catalog):
            raise InvalidTypeError("catalog", catalog, "a Catalog")
        for item in self.items:
            where = f"quote {self.id!r}, line {item.id!r} ({item.sku!r})"
            try:
                expected = self._renew(catalog, item, tax_source)
            except ValidationError as exc:
                raise exc.located(where) from None
            for field, given, wanted in _price_differences(item, expected):
                raise ValidationError(
                    field, given, f"the stored catalog's {wanted} on {self.quoted_on}", where=where
                )
        self._check_document_amount_off()

    def _check_document_amount_off(self) -> None:
        """Refuse a fixed document discount larger than what the percentage leaves."""
        if not self.document_amount_off:
            return
        subtotal = exact_sum(row[6] for row in self._priced.rows)
        quantum = currency_exponent(self.currency)
        left = EXACT.subtract(subtotal, _percent_of(subtotal, self.document_discount, quantum))
        if self.document_amount_off > left:
            raise ValidationError(
                "document_amount_off",
                self.document_amount_off,
                f"at most {left}, the quote's subtotal after its discount",
                where=f"quote {self.id!r}",
            )

    def repriced(self, catalog: Catalog, *, tax_source: TaxSource | None = None) -> Quote:
        """A new version whose lines carry ``catalog``'s current prices (quantities, discounts and
        negotiated prices kept); this quote itself when nothing changed. Use it on a draft after
        the catalog changed: :meth:`check_prices` refuses stale prices."""
        if not isinstance(catalog, Catalog):
            raise InvalidTypeError("catalog", catalog, "a Catalog")
        items = tuple(self._renew(catalog, i, tax_source) for i in self.items)
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
        amount_off: Decimal | int | str = 0,
        unit: str | None = None,
        tax_source: TaxSource | None = None,
    ) -> Quote:
        """A new version with a line for product or bundle ``sku`` from ``catalog``.

        The product must be sellable on :attr:`quoted_on` (see :meth:`Catalog.sellable`) and priced
        in the quote's currency. ``quantity`` is in ``unit`` (a unit of measure of the product, or
        its base unit); ``unit_price`` (products only, per ``unit``) replaces the catalog price;
        the discount policy measures it as a discount. ``discount`` (percent) and then
        ``amount_off`` come off the line; negative values are surcharges, where the product allows
        them. The line's taxes are the catalog's for the product, plus those ``tax_source`` gives
        for the quote's :attr:`region`. The new line's id is ``"L<n>"``.
        """
        entry: dict[str, Any] = {
            "sku": sku,
            "quantity": quantity,
            "discount": discount,
            "unit_price": unit_price,
            "amount_off": amount_off,
            "unit": unit,
        }
        return self.add_lines(catalog, [entry], tax_source=tax_source)

    def add_lines(
        self,
        catalog: Catalog,
        lines: Iterable[Mapping[str, Any]],
        *,
        tax_source: TaxSource | None = None,
    ) -> Quote:
        """A new version with several lines at once (one version step): each a dict with ``sku``
        and optionally ``quantity``, ``discount``, ``unit_price``, ``amount_off`` and ``unit``, as
        in :meth:`add_line`.

        Either every line is added or, at the first bad one, none (the error names it).
        """
        if not isinstance(catalog, Catalog):
            raise InvalidTypeError("catalog", catalog, "a Catalog")
        allowed = {"sku", "quantity", "discount", "unit_price", "amount_off", "unit"}
        ids = self._free_ids()
        new: list[QuoteItem] = []
        number = self.next_line
        memo: dict[tuple[str, Decimal], ProductSnapshot] = {}
        # The snapshot of each product SKU a line of this call added: the catalog is immutable,
        # so the SKU stays sellable on quoted_on and in the quote's currency for the later lines.
        sold: dict[str, tuple[ProductSnapshot, ...]] = {}
        for i, entry in enumerate(lines):
            if (
                not (type(entry) is dict or isinstance(entry, Mapping))
                or "sku" not in entry
                or not allowed.issuperset(entry)
            ):
                raise ValidationError(
                    f"lines[{i}]",
                    entry,
                    "a dict with sku and optionally quantity, discount, unit_price, amount_off, unit",
                )
            number, item_id = next(ids)
            sku = entry["sku"]
            parts = sold.get(sku) if type(sku) is str else None
            item = None if parts is None else _plain_item(item_id, entry, parts)
            if item is None:
                try:
                    item = self._new_item(
                        catalog,
                        item_id,
                        sku,
                        entry.get("quantity", 1),
                        entry.get("discount", 0),
                        entry.get("unit_price"),
                        amount_off=entry.get("amount_off", 0),
                        unit=entry.get("unit"),
                        tax_source=tax_source,
                        memo=memo,
                    )
                except ValidationError as exc:
                    raise exc.located(f"lines[{i}] ({sku!r})") from None
                if item.bundle is None and type(sku) is str:
                    sold[sku] = item.products
            new.append(item)
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

    def set_unit(self, item_id: str, unit: str | None, quantity: Decimal | int | str) -> Quote:
        """A new version with line ``item_id`` at ``quantity`` in ``unit`` (a unit of measure of
        its product; ``None``: base units)."""
        changed = self._change_item(item_id, unit=unit, quantity=quantity)
        changed.item(item_id).unit_of_measure  # noqa: B018 - refuses a unit the product lacks
        return changed

    def set_unit_price(self, item_id: str, unit_price: Money | Decimal | int | str | None) -> Quote:
        """A new version with line ``item_id`` at ``unit_price`` (``None``: the catalog price)."""
        return self._change_item(item_id, unit_price=self._unit_price(unit_price))

    def set_document_discount(self, discount: Decimal | int | str) -> Quote:
        """A new version with a document discount of ``discount`` percent."""
        return self._edited(document_discount=to_percent(discount, "document_discount"))

    def set_tax_rate(self, rate: Decimal | int | str) -> Quote:
        """A new version with a quote-wide tax rate of ``rate`` percent (on every line, beside the
        lines' own taxes)."""
        return self._edited(tax_rate=to_percent(rate, "tax_rate"))

    def set_amount_off(self, item_id: str, amount: Decimal | int | str) -> Quote:
        """A new version with ``amount`` off line ``item_id`` (after its percentage; negative: a
        surcharge, where the product allows one)."""
        return self._change_item(item_id, amount_off=amount)

    def set_document_amount_off(self, amount: Decimal | int | str) -> Quote:
        """A new version with a fixed ``amount`` off the whole quote, after the document discount
        percentage, allocated over the lines by subtotal. It may not exceed what is left after
        the percentage."""
        changed = self._edited(document_amount_off=to_amount(amount, "document_amount_off"))
        changed._check_document_amount_off()
        return changed

    def set_tax_rounding(self, rounding: TaxRounding) -> Quote:
        """A new version whose taxes round per ``"document"`` (once per rate) or per ``"line"``."""
        if rounding not in TAX_ROUNDINGS:
            raise ValidationError("tax_rounding", rounding, f"one of {list(TAX_ROUNDINGS)}")
        return self._edited(tax_rounding=rounding)

    def set_region(
        self, region: str | None, catalog: Catalog, *, tax_source: TaxSource | None = None
    ) -> Quote:
        """A new version for a customer in ``region``, its lines' taxes taken again from
        ``catalog`` and ``tax_source``."""
        moved = attrs.evolve(self, region=region)
        items = tuple(moved._renew(catalog, i, tax_source) for i in self.items)
        return self._edited(region=region, items=items)

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
            rules_version=None,
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
            "rules_version": self.rules_version,
            "items": [item.to_dict() for item in self.items],
            **self._extras_dict(),
        }

    def _extras_dict(self) -> dict[str, Any]:
        # Written only when set: documents stored before these fields read back equal.
        data: dict[str, Any] = {}
        if self.document_amount_off:
            data["document_amount_off"] = str(self.document_amount_off)
        if self.tax_rounding != "document":
            data["tax_rounding"] = self.tax_rounding
        if self.region is not None:
            data["region"] = self.region
        return data

    def to_toml(self) -> str:
        """This quote as a TOML document (its :meth:`to_dict`, amounts as strings) that
        :meth:`from_toml` reads back equal."""
        from salesflow.domain import toml_text

        return toml_text.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str) -> Quote:
        """Read a quote from the TOML that :meth:`to_toml` writes."""
        from salesflow.domain import toml_text

        return cls.from_dict(toml_text.loads(text, "quote"))

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
            "rules_version",
            "items",
            "document_amount_off",
            "tax_rounding",
            "region",
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
            document_amount_off=data.get("document_amount_off", ZERO),
            tax_rounding=data.get("tax_rounding", "document"),
            region=data.get("region"),
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
        for field in _PRICED_FIELDS:
            if getattr(mine, field) != getattr(theirs, field):
                yield f"{mine.sku} {field}", getattr(mine, field), getattr(theirs, field)
        if given_part.category_path != part.category_path:
            yield f"{mine.sku} category_path", given_part.category_path, part.category_path
        if given_part.taxes != part.taxes:
            yield f"{mine.sku} taxes", given_part.taxes, part.taxes


_PRICED_FIELDS = (
    "list_price",
    "floor_price",
    "tiers",
    "tier_mode",
    "cost",
    "markup",
    "tax_included",
    "allow_surcharge",
    "units",
)
"""The product fields a quote line's price, margin or taxes follow from."""


def _fingerprint(item: QuoteItem) -> dict[str, Any]:
    def product(part: ProductSnapshot) -> dict[str, Any]:
        p = part.product
        data: dict[str, Any] = {
            "sku": p.sku,
            "name": p.name,
            "category_path": list(part.category_path),
            "per_bundle": _dec(part.quantity),
            "list_price": _dec(p.list_price.amount),
            "floor_price": None if p.floor_price is None else _dec(p.floor_price.amount),
            "tier_mode": p.tier_mode,
            "tiers": [
                [t.min_quantity, _dec(t.unit_price.amount)]
                + ([] if t.max_quantity is None else [t.max_quantity])
                for t in p.tiers
            ],
        }
        # Added only when set, so a quote made before these fields keeps its fingerprint.
        if part.taxes:
            data["taxes"] = [[t.code, _dec(t.rate)] for t in part.taxes]
        if p.tax_included:
            data["tax_included"] = True
        if p.cost is not None:
            data["cost"] = _dec(p.cost.amount)
        if p.units:
            data["units"] = [
                [u.code, _dec(u.factor), None if u.price is None else _dec(u.price.amount)]
                for u in p.units
            ]
        return data

    extras: dict[str, Any] = {}
    if item.amount_off:
        extras["amount_off"] = _dec(item.amount_off)
    if item.unit is not None:
        extras["unit"] = item.unit
    return {
        **extras,
        "id": item.id,
        "quantity": _dec(item.quantity),
        "discount": _dec(item.discount),
        "unit_price": None if item.unit_price is None else _dec(item.unit_price.amount),
        "bundle": None
        if item.bundle is None
        else [item.bundle.sku, item.bundle.name, _dec(item.bundle.price.amount)],
        "products": [product(p) for p in item.products],
    }
