"""The product catalog (R9): categories, products, volume tiers and bundles.

A :class:`Catalog` is a frozen, validated set of :class:`Category`, :class:`Product` and
:class:`Bundle` values. Quotes may only sell what the catalog says is sellable on the quote's date:
:meth:`Catalog.product`, :meth:`Catalog.bundle` and :meth:`Catalog.sellable` raise
:class:`~salesflow.errors.NotFoundError` for an unknown SKU and
:class:`~salesflow.errors.ValidationError` for one that is inactive or outside its validity dates.

Rules (pinned by tests):

* Categories nest through ``parent``; every parent exists and there are no cycles.
* SKUs are unique across products and bundles.
* A product's list price is zero or more; its optional floor price lies between zero and the list
  price; its optional cost is zero or more; all three share one currency. Prices may carry more
  decimals than the currency's minor unit (a unit price of ``0.125``): quotes round line amounts,
  never unit prices.
* **Volume tiers.** A tier says "from ``min_quantity`` units on, the unit price is ``unit_price``".
  Tiers start at 2 units or more, in increasing order, with unit prices that never rise, stay at or
  below the list price and at or above the floor price. With ``tier_mode="range"`` every unit gets
  the price of the highest tier the quantity reaches (12 units with a tier at 10 are all at the tier
  price); with ``"slab"`` each unit gets the price of its own tier (units 1-9 at the list price,
  units 10-12 at the tier price). Tiers count whole units, so a tiered product is sold in whole
  numbers. With ``"band"`` tiers may end at ``max_quantity``: the band the quantity falls in
  prices every unit, and a quantity in no band pays the list price (bands do not overlap, only the
  last may be open, prices stay between the floor and the list price).
* **Taxes** (:mod:`salesflow.domain.taxes`): a product or a category carries tax rates; a product
  without any pays its nearest category's; one code means one rate across the catalog.
  ``tax_included`` says the product's prices include them.
* **Units of measure** (:mod:`salesflow.domain.units`): a product may be sold in other units (a
  box of 5), each with a factor and an optional price of its own, at least the floor amount.
* **Surcharges** (negative discounts) are allowed on a product only with ``allow_surcharge``.
* **Cost plus markup**: with ``markup`` the list price is exactly ``cost x (100 + markup) / 100``
  (:meth:`Product.cost_plus`).
* **Bundles** are made of products (never of other bundles) with quantities per bundle, and have a
  bundle price in whole minor units, in the components' currency. The bundle price is at least the
  sum of the components' floor amounts, so a bundle sold without a discount never breaks a floor.

Catalogs load from and dump to plain dicts (:meth:`Catalog.from_dict`, :meth:`Catalog.to_dict`),
from rows of any shape (:meth:`Catalog.from_records`, with a column ``mapping``) and from CSV files
that the caller opens (:meth:`Catalog.from_csv`, :meth:`Catalog.write_csv`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from decimal import Decimal
from typing import IO, Any, Literal, TypeAlias

import attrs

from salesflow.cells import neutralise_cell
from salesflow.domain.checks import (
    as_optional_date,
    as_quantity,
    as_tuple,
    check_bool,
    check_choice,
    check_count,
    check_id,
    check_money,
    check_name,
    check_optional_id,
    check_optional_money,
)
from salesflow.domain.dates import to_date
from salesflow.domain.money import Money
from salesflow.domain.numbers import (
    EXACT,
    HUNDRED,
    MAX_QUANTITY,
    ZERO,
    exact_sum,
    to_amount,
    to_decimal,
    to_quantity,
)
from salesflow.domain.taxes import TaxRate, check_unique_codes, parse_tax_rates
from salesflow.domain.units import UnitOfMeasure, parse_units
from salesflow.errors import (
    CurrencyMismatchError,
    InvalidTypeError,
    NotFoundError,
    ValidationError,
)

__all__ = [
    "BUNDLE_FIELDS",
    "CATEGORY_FIELDS",
    "PRODUCT_FIELDS",
    "Bundle",
    "BundleComponent",
    "Catalog",
    "Category",
    "PriceTier",
    "Product",
    "TierMode",
    "TierSegment",
]

TierMode: TypeAlias = Literal["range", "slab", "band"]
"""How volume tiers apply: ``"range"`` (every unit at the tier reached), ``"slab"`` (each unit
at its own tier) or ``"band"`` (every unit at the price of the band the quantity falls in)."""

_TIER_MODES = ("range", "slab", "band")

Column: TypeAlias = str | Callable[[Mapping[str, Any]], Any]
"""Where a field comes from in a row: a column name, or a function of the whole row."""

PRODUCT_FIELDS = (
    "sku",
    "name",
    "category",
    "list_price",
    "currency",
    "floor_price",
    "cost",
    "active",
    "valid_from",
    "valid_until",
    "tier_mode",
    "tiers",
    "taxes",
    "tax_included",
    "allow_surcharge",
    "markup",
    "units",
)
"""The product fields a record or CSV row can fill, in the order :meth:`Catalog.write_csv` writes.
``tiers`` is written ``"10:9.00;50:8.50"`` (min quantity and unit price, ``;`` between tiers; a
band with an upper bound ``"5-7:82.50"``), ``taxes`` ``"VAT13:13;CITY:1"`` (code and rate in
percent, optionally ``:name``) and ``units``
``"box:5:45.00;dozen:12"`` (code, factor and optional price)."""

CATEGORY_FIELDS = ("id", "name", "parent", "taxes")
"""The category fields a record or CSV row can fill."""

BUNDLE_FIELDS = (
    "sku",
    "name",
    "category",
    "price",
    "currency",
    "active",
    "valid_from",
    "valid_until",
    "components",
)
"""The bundle fields a record or CSV row can fill; ``components`` is written ``"A-1:1;B-2:3"``."""


# -- field checks -------------------------------------------------------------------------------


def _to_tax_rates(value: object) -> tuple[TaxRate, ...]:
    if isinstance(value, tuple) and all(type(v) is TaxRate for v in value):
        check_unique_codes(value, "taxes")
        return value
    return parse_tax_rates(value)


def _to_optional_markup(value: object) -> Decimal | None:
    if value is None:
        return None
    number = to_decimal(value, "markup")
    if not ZERO <= number < MAX_QUANTITY:
        raise ValidationError("markup", value, "a markup percentage of zero or more")
    return number


def _to_min_quantity(value: object) -> int:
    number = to_decimal(value, "min_quantity")
    if not 2 <= number < MAX_QUANTITY or number != number.to_integral_value():
        raise ValidationError(
            "min_quantity",
            value,
            "a whole number of units, 2 or more (1 unit pays the list price) and below "
            f"{MAX_QUANTITY:,f}",
        )
    return int(number)


def _check_validity(valid_from: date | None, valid_until: date | None) -> None:
    if valid_from is not None and valid_until is not None and valid_until < valid_from:
        raise ValidationError(
            "valid_until", valid_until, f"a date on or after valid_from ({valid_from.isoformat()})"
        )


def _sellable_check(
    kind: str,
    sku: str,
    active: bool,
    valid_from: date | None,
    valid_until: date | None,
    on: object,
) -> None:
    day = on if type(on) is date else to_date(on, "on")
    if not active:
        raise ValidationError("sku", sku, f"an active {kind} ({sku!r} is inactive)")
    if (valid_from is not None and day < valid_from) or (
        valid_until is not None and day > valid_until
    ):
        span = f"{valid_from.isoformat() if valid_from else '...'} to "
        span += valid_until.isoformat() if valid_until else "..."
        raise ValidationError(
            "on", day, f"a date within the validity of {kind} {sku!r} ({span}, inclusive)"
        )


# -- categories ----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Category:
    """A product category; categories nest through ``parent`` (the parent category's id)."""

    id: str = attrs.field(validator=check_id)
    name: str = attrs.field(validator=check_name)
    parent: str | None = attrs.field(default=None, validator=check_optional_id)
    taxes: tuple[TaxRate, ...] = attrs.field(default=(), converter=_to_tax_rates)
    """The tax rates its products (and its subcategories') pay, unless they name their own."""

    def __attrs_post_init__(self) -> None:
        if self.parent == self.id:
            raise ValidationError("parent", self.parent, f"a category other than {self.id!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str | None = None) -> Category:
        """Build a category from ``{"id": ..., "name": ..., "parent": ...}`` (name defaults to id;
        empty strings mean missing)."""
        record = _clean(data, CATEGORY_FIELDS, "category", where)
        try:
            if record.get("id") is None:
                raise ValidationError("id", None, "a category id")
            return cls(
                id=_as_text(record["id"], "id"),
                name=_as_text(record.get("name") or record["id"], "name"),
                parent=None
                if record.get("parent") is None
                else _as_text(record["parent"], "parent"),
                taxes=record.get("taxes") or (),
            )
        except ValidationError as exc:
            raise (exc.located(where) if where else exc) from None

    def to_dict(self) -> dict[str, Any]:
        """This category as a plain dict that :meth:`from_dict` reads back."""
        data: dict[str, Any] = {"id": self.id, "name": self.name, "parent": self.parent}
        if self.taxes:
            data["taxes"] = [t.to_dict() for t in self.taxes]
        return data


# -- products and tiers ----------------------------------------------------------------------------


def _to_max_quantity(value: object) -> int | None:
    return None if value is None else _to_min_quantity(value)


@attrs.frozen
class PriceTier:
    """A volume tier: from ``min_quantity`` units on, a unit costs ``unit_price``; a price band
    (``tier_mode="band"``) may end at ``max_quantity`` units (inclusive)."""

    min_quantity: int = attrs.field(converter=_to_min_quantity)
    unit_price: Money = attrs.field(validator=check_money)
    max_quantity: int | None = attrs.field(default=None, converter=_to_max_quantity)

    def __attrs_post_init__(self) -> None:
        if self.max_quantity is not None and self.max_quantity < self.min_quantity:
            raise ValidationError(
                "max_quantity", self.max_quantity, f"at least min_quantity {self.min_quantity}"
            )

    def to_dict(self) -> dict[str, Any]:
        """This tier as a plain dict (the price as a string, to stay exact in JSON)."""
        data: dict[str, Any] = {
            "min_quantity": self.min_quantity,
            "unit_price": str(self.unit_price.amount),
        }
        if self.max_quantity is not None:
            data["max_quantity"] = self.max_quantity
        return data

    def text(self) -> str:
        """The tier as CSV writes it: ``10:9.00``, or ``5-7:82.50`` for a bounded band."""
        bound = "" if self.max_quantity is None else f"-{self.max_quantity}"
        return f"{self.min_quantity}{bound}:{self.unit_price.amount}"


@attrs.frozen(kw_only=True)
class TierSegment:
    """A run of units priced alike: ``quantity`` units at ``unit_price``.

    ``min_quantity`` is where the tier applied starts (1 for the list price).
    """

    min_quantity: int
    quantity: Decimal
    unit_price: Money

    @property
    def amount(self) -> Money:
        """``quantity x unit_price``, exact (not rounded)."""
        amount = EXACT.multiply(self.quantity, self.unit_price.amount)
        return Money._trusted(amount, self.unit_price.currency)


@attrs.frozen(kw_only=True)
class Product:
    """A product that quotes may sell.

    Required: ``sku``, ``name``, ``list_price`` (:class:`Money`, zero or more). Optional:
    ``category`` (a category id), ``floor_price`` (the lowest net unit price any approver may
    accept), ``cost`` (what one unit costs; quotes show margins from it), ``active`` (default
    ``True``), ``valid_from`` / ``valid_until`` (inclusive dates), ``tiers`` (a tuple of
    :class:`PriceTier`) and ``tier_mode`` (``"range"``, ``"slab"`` or ``"band"``, see the module
    docs), ``taxes`` (tax codes), ``tax_included``, ``allow_surcharge``, ``markup`` and ``units``.
    """

    sku: str = attrs.field(validator=check_id)
    name: str = attrs.field(validator=check_name)
    list_price: Money = attrs.field(validator=check_money)
    category: str | None = attrs.field(default=None, validator=check_optional_id)
    floor_price: Money | None = attrs.field(default=None, validator=check_optional_money)
    cost: Money | None = attrs.field(default=None, validator=check_optional_money)
    active: bool = attrs.field(default=True, validator=check_bool)
    valid_from: date | None = attrs.field(default=None, converter=as_optional_date)
    valid_until: date | None = attrs.field(default=None, converter=as_optional_date)
    tiers: tuple[PriceTier, ...] = attrs.field(
        default=(), converter=as_tuple, metadata={"items": PriceTier}
    )
    tier_mode: TierMode = attrs.field(
        default="range", validator=check_choice, metadata={"choices": _TIER_MODES}
    )
    taxes: tuple[TaxRate, ...] = attrs.field(default=(), converter=_to_tax_rates)
    """The tax rates the product pays (empty: its nearest category's)."""
    tax_included: bool = attrs.field(default=False, validator=check_bool)
    """Whether its prices (list, tiers, units, floor) include its taxes."""
    allow_surcharge: bool = attrs.field(default=False, validator=check_bool)
    """Whether a quote may charge more than its price (a negative discount)."""
    markup: Decimal | None = attrs.field(default=None, converter=_to_optional_markup)
    """A cost-plus price rule: the list price is cost x (100 + markup) / 100 (see :meth:`cost_plus`)."""
    units: tuple[UnitOfMeasure, ...] = attrs.field(
        default=(), converter=as_tuple, metadata={"items": UnitOfMeasure}
    )
    """Other units it is sold in (box of 5, dozen), see :mod:`salesflow.domain.units`."""
    _starts: tuple[tuple[int, Money], ...] = attrs.field(init=False, eq=False, repr=False)
    _steps: tuple[tuple[Decimal, Decimal, Decimal], ...] = attrs.field(
        init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        try:
            self._check_prices()
            _check_validity(self.valid_from, self.valid_until)
        except ValidationError as exc:
            raise exc.located(f"product {self.sku!r}") from None
        # Where each price starts (the list price at unit 1), kept for pricing big quotes.
        starts = ((1, self.list_price), *((t.min_quantity, t.unit_price) for t in self.tiers))
        object.__setattr__(self, "_starts", starts)
        # (start, unit price, amount of the units before start), highest start first: a tiered
        # amount is then one lookup, one multiplication and one addition.
        steps = []
        before = ZERO
        for i, (start, price) in enumerate(starts):
            steps.append(
                (Decimal(start), price.amount, before if self.tier_mode == "slab" else ZERO)
            )
            if i + 1 < len(starts):
                width = Decimal(starts[i + 1][0] - start)
                before = EXACT.add(before, EXACT.multiply(width, price.amount))
        object.__setattr__(self, "_steps", tuple(reversed(steps)))

    @classmethod
    def cost_plus(
        cls, *, sku: str, name: str, cost: Money, markup: Decimal | int | str, **fields: Any
    ) -> Product:
        """A product priced by the cost-plus rule: list price = cost x (100 + markup) / 100,
        exact (ERPNext: 1000 + 10 % = 1100)."""
        rate = _to_optional_markup(markup)
        assert rate is not None
        price = EXACT.divide(EXACT.multiply(cost.amount, EXACT.add(HUNDRED, rate)), HUNDRED)
        return cls(
            sku=sku,
            name=name,
            cost=cost,
            markup=rate,
            list_price=Money.of(price, cost.currency),
            **fields,
        )

    def unit(self, code: str | None) -> UnitOfMeasure | None:
        """The unit of measure ``code`` (``None``: the base unit); ValidationError otherwise."""
        if code is None:
            return None
        for unit in self.units:
            if unit.code == code:
                return unit
        raise ValidationError(
            "unit", code, f"one of the units of {self.sku!r}: {[u.code for u in self.units]}"
        )

    def _check_extras(self) -> None:
        currency = self.list_price.currency
        if self.markup is not None:
            if self.cost is None:
                raise ValidationError("markup", self.markup, "a product with a cost")
            wanted = EXACT.divide(
                EXACT.multiply(self.cost.amount, EXACT.add(HUNDRED, self.markup)), HUNDRED
            )
            if wanted != self.list_price.amount:
                raise ValidationError(
                    "list_price",
                    self.list_price,
                    f"cost x (100 + markup) / 100 = {wanted} (use Product.cost_plus)",
                )
        seen: set[str] = set()
        for i, unit in enumerate(self.units):
            if unit.code in seen:
                raise ValidationError(f"units[{i}].code", unit.code, "each unit code once")
            seen.add(unit.code)
            if unit.price is None:
                continue
            if unit.price.currency != currency:
                raise CurrencyMismatchError(currency, unit.price.currency, operation="use units")
            if self.floor_price is not None:
                floor = EXACT.multiply(self.floor_price.amount, unit.factor)
                if unit.price.amount < floor:
                    raise ValidationError(
                        f"units[{i}].price", unit.price, f"at least the floor amount {floor}"
                    )

    def _check_prices(self) -> None:
        currency = self.list_price.currency
        for field in ("floor_price", "cost"):
            value = getattr(self, field)
            if value is not None and value.currency != currency:
                raise CurrencyMismatchError(currency, value.currency, operation=f"use {field}")
        if self.floor_price is not None and self.floor_price > self.list_price:
            raise ValidationError(
                "floor_price", self.floor_price, f"at most the list price {self.list_price}"
            )
        self._check_extras()
        band = self.tier_mode == "band"
        previous: PriceTier | None = None
        for i, tier in enumerate(self.tiers):
            price = tier.unit_price
            if price.currency != currency:
                raise CurrencyMismatchError(currency, price.currency, operation="use tier prices")
            if not band and tier.max_quantity is not None:
                raise ValidationError(
                    f"tiers[{i}].max_quantity", tier.max_quantity, "None (bounds are for bands)"
                )
            if band:
                self._check_band(i, tier, previous)
                previous = tier
                continue
            if previous is not None and tier.min_quantity <= previous.min_quantity:
                raise ValidationError(
                    f"tiers[{i}].min_quantity",
                    tier.min_quantity,
                    f"more than the previous tier's {previous.min_quantity}",
                )
            ceiling = self.list_price if previous is None else previous.unit_price
            if price > ceiling:
                raise ValidationError(
                    f"tiers[{i}].unit_price",
                    price,
                    f"at most {ceiling} (tiers never raise the unit price)",
                )
            if self.floor_price is not None and price < self.floor_price:
                raise ValidationError(
                    f"tiers[{i}].unit_price", price, f"at least the floor price {self.floor_price}"
                )
            previous = tier

    def _check_band(self, i: int, tier: PriceTier, previous: PriceTier | None) -> None:
        if previous is not None:
            if previous.max_quantity is None:
                raise ValidationError(
                    f"tiers[{i - 1}].max_quantity",
                    None,
                    "an upper bound (only the last band is open)",
                )
            if tier.min_quantity <= previous.max_quantity:
                raise ValidationError(
                    f"tiers[{i}].min_quantity",
                    tier.min_quantity,
                    f"more than the previous band's upper bound {previous.max_quantity}",
                )
        price = tier.unit_price
        if price > self.list_price:
            raise ValidationError(
                f"tiers[{i}].unit_price", price, f"at most the list price {self.list_price}"
            )
        if self.floor_price is not None and price < self.floor_price:
            raise ValidationError(
                f"tiers[{i}].unit_price", price, f"at least the floor price {self.floor_price}"
            )

    # -- properties ---------------------------------------------------------------------------

    @property
    def currency(self) -> str:
        """The currency of the product's prices."""
        return self.list_price.currency

    def is_sellable(self, on: date) -> bool:
        """Whether the product is active and valid on the date ``on``."""
        try:
            self.check_sellable(on)
        except ValidationError:
            return False
        return True

    def check_sellable(self, on: date) -> None:
        """Raise :class:`~salesflow.errors.ValidationError` unless the product is active and valid
        on the date ``on``."""
        _sellable_check("product", self.sku, self.active, self.valid_from, self.valid_until, on)

    def volume_segments(self, quantity: Decimal | int | str) -> tuple[TierSegment, ...]:
        """How ``quantity`` units are priced: runs of units and the unit price of each run.

        Without tiers (or below the first tier) this is one run at the list price. A tiered product
        needs a whole ``quantity``. See the module docs for ``"range"`` and ``"slab"``.
        """
        qty = self._tier_quantity(quantity)
        return tuple(
            TierSegment(min_quantity=start, quantity=count, unit_price=price)
            for start, count, price in self._runs(qty)
        )

    def volume_amount(self, quantity: Decimal | int | str) -> Money:
        """The exact (unrounded) catalog amount of ``quantity`` units, volume tiers applied."""
        qty = self._tier_quantity(quantity)
        return Money._trusted(self._amount_of(qty), self.currency)

    def _amount_of(self, qty: Decimal) -> Decimal:
        """The exact catalog amount of a checked quantity (see :meth:`volume_amount`)."""
        if not self.tiers:
            return EXACT.multiply(self.list_price.amount, qty)
        if self.tier_mode == "band":
            return exact_sum(EXACT.multiply(c, p.amount) for _s, c, p in self._runs(qty))
        for start, price, before in self._steps:
            if start <= qty:
                if before:  # slab: the full slabs below, then this slab's units
                    return EXACT.add(
                        before, EXACT.multiply(EXACT.add(EXACT.subtract(qty, start), 1), price)
                    )
                return EXACT.multiply(price, qty)
        raise AssertionError("the list price starts at unit 1")

    def _tier_quantity(self, quantity: object) -> Decimal:
        if type(quantity) is Decimal and quantity.is_finite() and quantity > 0:
            qty = quantity
        else:
            qty = to_quantity(quantity, "quantity")
        if len(self._starts) > 1 and qty != qty.to_integral_value():
            raise ValidationError(
                "quantity", quantity, f"a whole number of units ({self.sku!r} has volume tiers)"
            )
        return qty

    def _runs(self, qty: Decimal) -> list[tuple[int, Decimal, Money]]:
        """(first unit, number of units, unit price) for each run, for a checked quantity."""
        starts = self._starts
        if len(starts) == 1:
            return [(1, qty, self.list_price)]
        if self.tier_mode == "band":
            for tier in self.tiers:
                top = tier.max_quantity
                if tier.min_quantity <= qty and (top is None or qty <= top):
                    return [(tier.min_quantity, qty, tier.unit_price)]
            return [(1, qty, self.list_price)]
        if self.tier_mode == "range":
            start, price = next((s, p) for s, p in reversed(starts) if s <= qty)
            return [(start, qty, price)]
        runs = []
        for i, (start, price) in enumerate(starts):
            if start > qty:
                break
            # A slab runs from its own start to the unit before the next slab starts.
            last = qty if i + 1 == len(starts) else min(qty, Decimal(starts[i + 1][0] - 1))
            runs.append((start, last - start + 1, price))
        return runs

    # -- records ---------------------------------------------------------------------------------

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, currency: str | None = None, where: str | None = None
    ) -> Product:
        """Build a product from a plain dict (the shape :meth:`to_dict` writes) or a row of text.

        Prices are strings or ``Decimal`` in the record's ``currency`` (or else ``currency``);
        ``active`` accepts booleans and ``true/false/yes/no/1/0``; ``tiers`` is a list of
        ``{"min_quantity", "unit_price"}`` dicts or the text ``"10:9.00;50:8.50"``. Empty strings
        mean missing. Errors name the field and ``where``.
        """
        record = _clean(data, PRODUCT_FIELDS, "product", where)
        try:
            for name in ("sku", "name"):
                if record.get(name) is None:
                    raise ValidationError(name, None, "a value")
            code = record.get("currency") or currency
            if code is None:
                raise ValidationError("currency", None, "a currency field or currency=...")
            code = _as_text(code, "currency").upper()
            if record.get("list_price") is None and record.get("markup") is None:
                raise ValidationError("list_price", None, "a value (or a cost and a markup)")

            def money(name: str) -> Money | None:
                value = record.get(name)
                return None if value is None else Money.of(_amount(value, name), code)

            if record.get("list_price") is None and record.get("markup") is not None:
                cost = money("cost")
                if cost is None:
                    raise ValidationError("cost", None, "a cost for the markup")
                markup = _to_optional_markup(record["markup"])
                assert markup is not None
                record["list_price"] = EXACT.divide(
                    EXACT.multiply(cost.amount, EXACT.add(HUNDRED, markup)), HUNDRED
                )
            list_price = money("list_price")
            assert list_price is not None
            return cls(
                sku=_as_text(record["sku"], "sku"),
                name=_as_text(record["name"], "name"),
                category=None
                if record.get("category") is None
                else _as_text(record["category"], "category"),
                list_price=list_price,
                floor_price=money("floor_price"),
                cost=money("cost"),
                active=_to_bool(record.get("active", True), "active"),
                valid_from=record.get("valid_from"),
                valid_until=record.get("valid_until"),
                tier_mode=record.get("tier_mode") or "range",
                tiers=_parse_tiers(record.get("tiers"), code),
                taxes=record.get("taxes") or (),
                tax_included=_to_bool(record.get("tax_included", False), "tax_included"),
                allow_surcharge=_to_bool(record.get("allow_surcharge", False), "allow_surcharge"),
                markup=record.get("markup"),
                units=parse_units(record.get("units"), code),
            )
        except ValidationError as exc:
            raise (exc.located(where) if where else exc) from None

    def to_dict(self) -> dict[str, Any]:
        """This product as a plain dict of JSON-friendly values that :meth:`from_dict` reads."""
        return {
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "list_price": str(self.list_price.amount),
            "currency": self.currency,
            "floor_price": None if self.floor_price is None else str(self.floor_price.amount),
            "cost": None if self.cost is None else str(self.cost.amount),
            "active": self.active,
            "valid_from": None if self.valid_from is None else self.valid_from.isoformat(),
            "valid_until": None if self.valid_until is None else self.valid_until.isoformat(),
            "tier_mode": self.tier_mode,
            "tiers": [t.to_dict() for t in self.tiers],
            **self._extras_dict(),
        }

    def _extras_dict(self) -> dict[str, Any]:
        # Written only when set, so that documents stored before these fields read back equal.
        data: dict[str, Any] = {}
        if self.taxes:
            data["taxes"] = [t.to_dict() for t in self.taxes]
        if self.tax_included:
            data["tax_included"] = True
        if self.allow_surcharge:
            data["allow_surcharge"] = True
        if self.markup is not None:
            data["markup"] = str(self.markup)
        if self.units:
            data["units"] = [u.to_dict() for u in self.units]
        return data


# -- bundles --------------------------------------------------------------------------------------


@attrs.frozen
class BundleComponent:
    """``quantity`` units of the product ``sku`` in one bundle."""

    sku: str = attrs.field(validator=check_id)
    quantity: Decimal = attrs.field(converter=as_quantity)


def _to_components(value: object) -> tuple[BundleComponent, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidTypeError("components", value, "a sequence of BundleComponent")
    components = tuple(value)
    if not components:
        raise ValidationError("components", components, "at least one component")
    seen: set[str] = set()
    for i, component in enumerate(components):
        if not isinstance(component, BundleComponent):
            raise InvalidTypeError(f"components[{i}]", component, "a BundleComponent")
        if component.sku in seen:
            raise ValidationError(
                f"components[{i}].sku", component.sku, "each product once per bundle"
            )
        seen.add(component.sku)
    return components


@attrs.frozen(kw_only=True)
class Bundle:
    """A combination of products sold together at one price (R9).

    ``price`` is the price of one bundle, in whole minor units of the components' currency; a quote
    allocates it over the components in proportion to their list prices.
    """

    sku: str = attrs.field(validator=check_id)
    name: str = attrs.field(validator=check_name)
    price: Money = attrs.field(validator=check_money)
    components: tuple[BundleComponent, ...] = attrs.field(converter=_to_components)
    category: str | None = attrs.field(default=None, validator=check_optional_id)
    active: bool = attrs.field(default=True, validator=check_bool)
    valid_from: date | None = attrs.field(default=None, converter=as_optional_date)
    valid_until: date | None = attrs.field(default=None, converter=as_optional_date)

    def __attrs_post_init__(self) -> None:
        try:
            if not self.price.is_rounded():
                raise ValidationError(
                    "price", self.price, f"whole minor units of {self.price.currency}"
                )
            _check_validity(self.valid_from, self.valid_until)
        except ValidationError as exc:
            raise exc.located(f"bundle {self.sku!r}") from None

    @property
    def currency(self) -> str:
        """The currency of the bundle price."""
        return self.price.currency

    def check_sellable(self, on: date) -> None:
        """Raise :class:`~salesflow.errors.ValidationError` unless the bundle itself is active and
        valid on ``on`` (:meth:`Catalog.bundle` also checks its components)."""
        _sellable_check("bundle", self.sku, self.active, self.valid_from, self.valid_until, on)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, currency: str | None = None, where: str | None = None
    ) -> Bundle:
        """Build a bundle from a plain dict (the shape :meth:`to_dict` writes) or a row of text;
        ``components`` is a list of ``{"sku", "quantity"}`` dicts or the text ``"A-1:1;B-2:3"``."""
        record = _clean(data, BUNDLE_FIELDS, "bundle", where)
        try:
            for name in ("sku", "name", "price", "components"):
                if record.get(name) is None:
                    raise ValidationError(name, None, "a value")
            code = record.get("currency") or currency
            if code is None:
                raise ValidationError("currency", None, "a currency field or currency=...")
            return cls(
                sku=_as_text(record["sku"], "sku"),
                name=_as_text(record["name"], "name"),
                price=Money.of(
                    _amount(record["price"], "price"), _as_text(code, "currency").upper()
                ),
                components=_parse_components(record["components"]),
                category=None
                if record.get("category") is None
                else _as_text(record["category"], "category"),
                active=_to_bool(record.get("active", True), "active"),
                valid_from=record.get("valid_from"),
                valid_until=record.get("valid_until"),
            )
        except ValidationError as exc:
            raise (exc.located(where) if where else exc) from None

    def to_dict(self) -> dict[str, Any]:
        """This bundle as a plain dict of JSON-friendly values that :meth:`from_dict` reads."""
        return {
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "price": str(self.price.amount),
            "currency": self.currency,
            "active": self.active,
            "valid_from": None if self.valid_from is None else self.valid_from.isoformat(),
            "valid_until": None if self.valid_until is None else self.valid_until.isoformat(),
            "components": [{"sku": c.sku, "quantity": str(c.quantity)} for c in self.components],
        }


# -- the catalog ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Catalog:
    """A validated, immutable catalog of categories, products and bundles.

    Look items up with :meth:`product`, :meth:`bundle` or :meth:`sellable` (which check that the
    item may be sold on a date), or :meth:`item` (which does not). Change it with
    :meth:`with_items` / :meth:`without`, which return a new catalog.

    ``version`` is the stored catalog's version as the desk read it (0 for a catalog never
    stored); it takes no part in equality.
    """

    categories: tuple[Category, ...] = attrs.field(
        default=(), converter=as_tuple, metadata={"items": Category}
    )
    products: tuple[Product, ...] = attrs.field(
        default=(), converter=as_tuple, metadata={"items": Product}
    )
    bundles: tuple[Bundle, ...] = attrs.field(
        default=(), converter=as_tuple, metadata={"items": Bundle}
    )
    version: int = attrs.field(default=0, validator=check_count, eq=False)
    _categories: Mapping[str, Category] = attrs.field(init=False, repr=False, eq=False)
    _items: Mapping[str, Product | Bundle] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        categories: dict[str, Category] = {}
        for i, category in enumerate(self.categories):
            if category.id in categories:
                raise ValidationError(f"categories[{i}].id", category.id, "a unique category id")
            categories[category.id] = category
        for i, category in enumerate(self.categories):
            if category.parent is not None and category.parent not in categories:
                raise ValidationError(
                    f"categories[{i}].parent",
                    category.parent,
                    "the id of a category in the catalog",
                )
        for category in self.categories:
            seen = {category.id}
            parent = category.parent
            while parent is not None:
                if parent in seen:
                    raise ValidationError(
                        "categories", category.id, "categories whose parents do not form a cycle"
                    )
                seen.add(parent)
                parent = categories[parent].parent
        items: dict[str, Product | Bundle] = {}
        groups: tuple[tuple[str, tuple[Product | Bundle, ...]], ...] = (
            ("products", self.products),
            ("bundles", self.bundles),
        )
        for field, entries in groups:
            for i, entry in enumerate(entries):
                if entry.sku in items:
                    raise ValidationError(
                        f"{field}[{i}].sku", entry.sku, "a SKU used by no other product or bundle"
                    )
                if entry.category is not None and entry.category not in categories:
                    raise ValidationError(
                        f"{field}[{i}].category",
                        entry.category,
                        "the id of a category in the catalog",
                    )
                items[entry.sku] = entry
        for i, bundle in enumerate(self.bundles):
            self._check_bundle(i, bundle, items)
        rates: dict[str, TaxRate] = {}
        named: list[tuple[str, tuple[TaxRate, ...]]] = [
            *((f"categories[{c.id!r}].taxes", c.taxes) for c in self.categories),
            *((f"products[{p.sku!r}].taxes", p.taxes) for p in self.products),
        ]
        for field, taxes in named:
            for rate in taxes:
                known = rates.setdefault(rate.code, rate)
                if known != rate:
                    raise ValidationError(
                        field, rate, f"the catalog's one rate for code {rate.code!r}: {known}"
                    )
        object.__setattr__(self, "_categories", categories)
        object.__setattr__(self, "_items", items)

    @staticmethod
    def _check_bundle(i: int, bundle: Bundle, items: Mapping[str, Product | Bundle]) -> None:
        floor = ZERO
        for j, component in enumerate(bundle.components):
            field = f"bundles[{i}].components[{j}].sku"
            product = items.get(component.sku)
            if product is None:
                raise ValidationError(field, component.sku, "the SKU of a product in the catalog")
            if not isinstance(product, Product):
                raise ValidationError(field, component.sku, "a product (bundles do not nest)")
            if product.currency != bundle.currency:
                raise CurrencyMismatchError(
                    bundle.currency, product.currency, operation=f"bundle {bundle.sku!r} with"
                )
            if product.floor_price is not None:
                floor += product.floor_price.amount * component.quantity
        if bundle.price.amount < floor:
            raise ValidationError(
                f"bundles[{i}].price",
                bundle.price,
                f"at least {floor} {bundle.currency}, the sum of the components' floor prices",
            )

    # -- lookup ---------------------------------------------------------------------------------

    def item(self, sku: str) -> Product | Bundle:
        """The product or bundle ``sku``, sellable or not; :class:`~salesflow.errors.NotFoundError`
        when the catalog has none."""
        try:
            return self._items[sku]
        except (KeyError, TypeError):
            raise NotFoundError("product", sku, "not in the catalog") from None

    def product(self, sku: str, *, on: date) -> Product:
        """The product ``sku``, checked sellable on the date ``on``.

        Raises :class:`~salesflow.errors.NotFoundError` when the catalog has no such product, and
        :class:`~salesflow.errors.ValidationError` when it is inactive or not valid on ``on``.
        """
        found = self.item(sku)
        if not isinstance(found, Product):
            raise NotFoundError("product", sku, "it is a bundle: use Catalog.bundle()")
        found.check_sellable(on)
        return found

    def bundle(self, sku: str, *, on: date) -> Bundle:
        """The bundle ``sku``, checked sellable on ``on`` together with every component (errors as
        in :meth:`product`)."""
        found = self.item(sku)
        if not isinstance(found, Bundle):
            raise NotFoundError("bundle", sku, "it is a product: use Catalog.product()")
        found.check_sellable(on)
        for component in found.components:
            try:
                self.product(component.sku, on=on)
            except ValidationError as exc:
                raise exc.located(f"bundle {sku!r}") from None
        return found

    def sellable(self, sku: str, *, on: date) -> Product | Bundle:
        """The product or bundle ``sku``, checked sellable on ``on`` (see :meth:`product`)."""
        found = self.item(sku)
        return self.product(sku, on=on) if isinstance(found, Product) else self.bundle(sku, on=on)

    def components(self, sku: str) -> tuple[tuple[Product, Decimal], ...]:
        """The products of bundle ``sku`` with their quantities per bundle, in bundle order."""
        found = self.item(sku)
        if not isinstance(found, Bundle):
            raise NotFoundError("bundle", sku, "it is a product")
        products = []
        for component in found.components:
            product = self._items[component.sku]
            assert isinstance(product, Product)
            products.append((product, component.quantity))
        return tuple(products)

    def category(self, category_id: str) -> Category:
        """The category ``category_id``; :class:`~salesflow.errors.NotFoundError` otherwise."""
        try:
            return self._categories[category_id]
        except (KeyError, TypeError):
            raise NotFoundError("category", category_id, "not in the catalog") from None

    def category_path(self, category_id: str | None) -> tuple[str, ...]:
        """The ids from ``category_id`` up to its root category (``()`` for ``None``)."""
        path: list[str] = []
        current = category_id
        while current is not None:
            path.append(current)
            current = self.category(current).parent
        return tuple(path)

    @property
    def taxes(self) -> tuple[TaxRate, ...]:
        """Every tax rate a category or product names (each code once, in catalog order)."""
        rates: dict[str, TaxRate] = {}
        named: list[tuple[TaxRate, ...]] = [c.taxes for c in self.categories]
        named.extend(p.taxes for p in self.products)
        for taxes in named:
            for rate in taxes:
                rates.setdefault(rate.code, rate)
        return tuple(rates.values())

    def tax_rates(self, product: Product) -> tuple[TaxRate, ...]:
        """The tax rates ``product`` pays: its own, else those of the nearest category on its path
        that has any (``()`` when none has)."""
        if product.taxes:
            return product.taxes
        for category_id in self.category_path(product.category):
            found = self.category(category_id).taxes
            if found:
                return found
        return ()

    def products_in(self, category_id: str, *, nested: bool = True) -> tuple[Product, ...]:
        """The products of category ``category_id`` (and of its subcategories when ``nested``)."""
        self.category(category_id)
        if not nested:
            return tuple(p for p in self.products if p.category == category_id)
        return tuple(p for p in self.products if category_id in self.category_path(p.category))

    def __contains__(self, sku: object) -> bool:
        return sku in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Product | Bundle]:
        return iter(self._items.values())

    # -- changes ----------------------------------------------------------------------------------

    def with_items(self, *items: Product | Bundle | Category) -> Catalog:
        """A catalog with ``items`` added, replacing those with the same SKU (or category id)."""
        categories = {c.id: c for c in self.categories}
        products = {p.sku: p for p in self.products}
        bundles = {b.sku: b for b in self.bundles}
        for i, entry in enumerate(items):
            if isinstance(entry, Category):
                categories[entry.id] = entry
            elif isinstance(entry, Product):
                bundles.pop(entry.sku, None)
                products[entry.sku] = entry
            elif isinstance(entry, Bundle):
                products.pop(entry.sku, None)
                bundles[entry.sku] = entry
            else:
                raise InvalidTypeError(f"items[{i}]", entry, "a Product, Bundle or Category")
        return Catalog(
            categories=tuple(categories.values()),
            products=tuple(products.values()),
            bundles=tuple(bundles.values()),
            version=self.version,
        )

    def without(self, *skus: str) -> Catalog:
        """A catalog without the products or bundles ``skus`` (each must exist)."""
        for sku in skus:
            self.item(sku)
        gone = set(skus)
        return Catalog(
            categories=self.categories,
            products=tuple(p for p in self.products if p.sku not in gone),
            bundles=tuple(b for b in self.bundles if b.sku not in gone),
            version=self.version,
        )

    # -- plain dicts --------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalog:
        """Build a catalog from ``{"categories": [...], "products": [...], "bundles": [...]}``, each
        a list of the dicts that :meth:`Category.to_dict`, :meth:`Product.to_dict` and
        :meth:`Bundle.to_dict` write."""
        if not isinstance(data, Mapping):
            raise InvalidTypeError("catalog", data, "a mapping with categories, products, bundles")
        unknown = set(data) - {"categories", "products", "bundles"}
        if unknown:
            raise ValidationError(
                "catalog", sorted(unknown), "only the keys categories, products and bundles"
            )
        parts: dict[str, list[Any]] = {}
        parsers: dict[str, Callable[..., Any]] = {
            "categories": Category.from_dict,
            "products": Product.from_dict,
            "bundles": Bundle.from_dict,
        }
        for key, parse in parsers.items():
            raw = data.get(key, [])
            if not isinstance(raw, list | tuple):
                raise InvalidTypeError(key, raw, "a list of dicts")
            parts[key] = [parse(entry, where=f"{key}[{i}]") for i, entry in enumerate(raw)]
        return cls(
            categories=parts["categories"],
            products=parts["products"],
            bundles=parts["bundles"],
        )

    def to_dict(self) -> dict[str, Any]:
        """This catalog as plain dicts and lists that :meth:`from_dict` reads back."""
        return {
            "categories": [c.to_dict() for c in self.categories],
            "products": [p.to_dict() for p in self.products],
            "bundles": [b.to_dict() for b in self.bundles],
        }

    def to_toml(self) -> str:
        """This catalog as a TOML document (``[[categories]]``, ``[[products]]``, ``[[bundles]]``
        tables, amounts as strings) that :meth:`from_toml` reads back equal."""
        from salesflow.domain import toml_text

        return toml_text.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str) -> Catalog:
        """Read a catalog from the TOML that :meth:`to_toml` writes (or a person wrote)."""
        from salesflow.domain import toml_text

        return cls.from_dict(toml_text.loads(text, "catalog"))

    # -- records and CSV -------------------------------------------------------------------------------

    @classmethod
    def from_records(
        cls,
        products: Iterable[Mapping[str, Any]],
        *,
        categories: Iterable[Mapping[str, Any]] | None = None,
        bundles: Iterable[Mapping[str, Any]] | None = None,
        mapping: Mapping[str, Column] | None = None,
        category_mapping: Mapping[str, Column] | None = None,
        currency: str | None = None,
        null_values: Iterable[str] = ("", "NULL"),
    ) -> Catalog:
        """Build a catalog from rows of any shape (``csv.DictReader`` rows, dicts, ORM rows as
        mappings).

        Args:
            products: one row per product.
            categories: one row per category. When omitted, every category a product names becomes
                a root category named after its id.
            bundles: one row per bundle, with the :data:`BUNDLE_FIELDS` as keys.
            mapping: product field -> column name, or -> function of the row, e.g. for Northwind
                ``{"sku": "productID", "list_price": "unitPrice",
                "active": lambda row: row["discontinued"] == "0"}``. Fields not mapped are read
                from the column of the same name, when there is one.
            category_mapping: the same for category rows.
            currency: the currency of prices when rows have no currency column.
            null_values: cell texts that mean "missing" (Northwind writes ``NULL``).

        Raises :class:`~salesflow.errors.ValidationError` naming the row and field.
        """
        nulls = frozenset(null_values)
        category_list = (
            None
            if categories is None
            else [
                Category.from_dict(record, where=where)
                for where, record in _map_rows(
                    categories, category_mapping, CATEGORY_FIELDS, nulls, "categories"
                )
            ]
        )
        product_list = [
            Product.from_dict(record, currency=currency, where=where)
            for where, record in _map_rows(products, mapping, PRODUCT_FIELDS, nulls, "products")
        ]
        bundle_list: list[Bundle] = (
            []
            if bundles is None
            else [
                Bundle.from_dict(record, currency=currency, where=where)
                for where, record in _map_rows(bundles, None, BUNDLE_FIELDS, nulls, "bundles")
            ]
        )
        if category_list is None:
            everything: list[Product | Bundle] = [*product_list, *bundle_list]
            named = dict.fromkeys(e.category for e in everything if e.category is not None)
            category_list = [Category(id=c, name=c) for c in named if c is not None]
        return cls(categories=category_list, products=product_list, bundles=bundle_list)

    @classmethod
    def from_csv(
        cls,
        products: IO[str],
        *,
        categories: IO[str] | None = None,
        bundles: IO[str] | None = None,
        mapping: Mapping[str, Column] | None = None,
        category_mapping: Mapping[str, Column] | None = None,
        currency: str | None = None,
        null_values: Iterable[str] = ("", "NULL"),
    ) -> Catalog:
        """Read a catalog from CSV files the caller has opened (``newline=""``); see
        :meth:`from_records` for the arguments. Errors name the file's line number."""

        def rows(handle: IO[str], kind: str) -> Iterator[Mapping[str, Any]]:
            reader = csv.DictReader(handle)
            for row in reader:
                where = f"{kind} line {reader.line_num}"
                if None in row:
                    raise ValidationError(
                        "row", row[None], "no more cells than the header names", where=where
                    )
                yield _Located(row, where)

        return cls.from_records(
            rows(products, "products"),
            categories=None if categories is None else rows(categories, "categories"),
            bundles=None if bundles is None else rows(bundles, "bundles"),
            mapping=mapping,
            category_mapping=category_mapping,
            currency=currency,
            null_values=null_values,
        )

    def write_csv(
        self,
        products: IO[str],
        *,
        categories: IO[str] | None = None,
        bundles: IO[str] | None = None,
    ) -> None:
        """Write the catalog as CSV to files the caller has opened (``newline=""``), with the
        columns :data:`PRODUCT_FIELDS`, :data:`CATEGORY_FIELDS` and :data:`BUNDLE_FIELDS`;
        :meth:`from_csv` reads them back.

        Every cell passes through :func:`salesflow.cells.neutralise_cell`: a text that a
        spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a
        carriage return) is written with a ``'`` before it, which :meth:`from_csv` keeps
        (:func:`salesflow.cells.restore_cell` takes it off)."""

        def cells(row: Mapping[str, Any]) -> dict[str, str]:
            return {k: neutralise_cell(_cell(v)) for k, v in row.items()}

        if self.bundles and bundles is None:
            raise ValidationError("bundles", None, "a file for the catalog's bundles")
        if self.categories and categories is None:
            raise ValidationError("categories", None, "a file for the catalog's categories")
        writer = csv.DictWriter(products, fieldnames=PRODUCT_FIELDS)
        writer.writeheader()
        for product in self.products:
            row = product.to_dict()
            row["tiers"] = ";".join(t.text() for t in product.tiers)
            row["taxes"] = _tax_text(product.taxes)
            row["units"] = ";".join(
                ":".join(
                    [u.code, str(u.factor)] + ([] if u.price is None else [str(u.price.amount)])
                )
                for u in product.units
            )
            row.setdefault("tax_included", False)
            row.setdefault("allow_surcharge", False)
            writer.writerow(cells(row))
        if categories is not None:
            writer = csv.DictWriter(categories, fieldnames=CATEGORY_FIELDS)
            writer.writeheader()
            for category in self.categories:
                row = category.to_dict()
                row["taxes"] = _tax_text(category.taxes)
                writer.writerow(cells(row))
        if bundles is not None:
            writer = csv.DictWriter(bundles, fieldnames=BUNDLE_FIELDS)
            writer.writeheader()
            for bundle in self.bundles:
                row = bundle.to_dict()
                row["components"] = ";".join(f"{c.sku}:{c.quantity}" for c in bundle.components)
                writer.writerow(cells(row))


# -- parsing helpers ----------------------------------------------------------------------------------


class _Located(dict[str, Any]):
    """A row that knows where it came from (a CSV line), for error messages."""

    def __init__(self, row: Mapping[str, Any], where: str) -> None:
        super().__init__(row)
        self.where = where


def _map_rows(
    rows: Iterable[Mapping[str, Any]],
    mapping: Mapping[str, Column] | None,
    fields: tuple[str, ...],
    nulls: frozenset[str],
    kind: str,
) -> Iterator[tuple[str, dict[str, Any]]]:
    columns = dict(mapping or {})
    unknown = sorted(set(columns) - set(fields))
    if unknown:
        raise ValidationError("mapping", unknown, f"keys among the fields {list(fields)}")
    for field, column in columns.items():
        if not isinstance(column, str) and not callable(column):
            raise InvalidTypeError(f"mapping[{field!r}]", column, "a column name or a function")
    if isinstance(rows, str | bytes) or not isinstance(rows, Iterable):
        raise InvalidTypeError(kind, rows, "an iterable of rows (mappings)")
    for i, row in enumerate(rows):
        where = getattr(row, "where", f"{kind} row {i + 1}")
        if not isinstance(row, Mapping):
            raise InvalidTypeError("row", row, "a mapping of column to value", where=where)
        record: dict[str, Any] = {}
        for field in fields:
            column = columns.get(field, field)
            if isinstance(column, str):
                if column not in row:
                    if field in columns:
                        raise ValidationError(
                            f"mapping[{field!r}]", column, "a column of the row", where=where
                        )
                    continue
                value = row[column]
            else:
                try:
                    value = column(row)
                except Exception as exc:
                    raise ValidationError(
                        field, dict(row), f"a row the mapping accepts ({exc!r})", where=where
                    ) from exc
            if isinstance(value, str):
                value = value.strip()
                if value in nulls:
                    value = None
            record[field] = value
        yield where, record


def _clean(
    data: Mapping[str, Any], fields: tuple[str, ...], kind: str, where: str | None
) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidTypeError(kind, data, f"a mapping with the fields {list(fields)}", where=where)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValidationError(kind, unknown, f"only the fields {list(fields)}", where=where)
    record: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, str):
            value = value.strip() or None
        record[key] = value
    return record


def _as_text(value: object, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidTypeError(field, value, "text")
    return str(value)


def _amount(value: object, field: str) -> Decimal:
    return to_amount(value, field)


_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})


def _to_bool(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return True
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().casefold()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValidationError(field, value, "true or false (also yes/no, 1/0)")


def _pairs(text: str, field: str, shape: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition(":")
        if not sep or not key.strip() or not value.strip():
            raise ValidationError(field, text, shape)
        pairs.append((key.strip(), value.strip()))
    return pairs


def _parse_tiers(value: object, currency: str) -> tuple[PriceTier, ...]:
    if value is None:
        return ()
    shape = "tiers like '10:9.00;50:8.50' or bands like '5-7:82.50' (quantities:unit price)"
    if isinstance(value, str):
        tiers = []
        for q, p in _pairs(value, "tiers", shape):
            low, dash, high = q.partition("-")
            tiers.append(
                PriceTier(
                    low.strip(),
                    Money.of(to_amount(p, "tiers"), currency),
                    high.strip() if dash else None,
                )
            )
        return tuple(tiers)
    if not isinstance(value, list | tuple):
        raise InvalidTypeError("tiers", value, shape + " or a list of dicts")
    tiers = []
    for i, entry in enumerate(value):
        if isinstance(entry, PriceTier):
            tiers.append(entry)
            continue
        keys = {"min_quantity", "unit_price"}
        if not isinstance(entry, Mapping) or not keys <= set(entry) <= keys | {"max_quantity"}:
            raise ValidationError(
                f"tiers[{i}]", entry, "a dict with min_quantity, unit_price (and max_quantity)"
            )
        tiers.append(
            PriceTier(
                entry["min_quantity"],
                Money.of(to_amount(entry["unit_price"], f"tiers[{i}].unit_price"), currency),
                entry.get("max_quantity"),
            )
        )
    return tuple(tiers)


def _parse_components(value: object) -> tuple[BundleComponent, ...]:
    shape = "components like 'A-1:1;B-2:3' (SKU:quantity)"
    if isinstance(value, str):
        return tuple(BundleComponent(s, q) for s, q in _pairs(value, "components", shape))
    if not isinstance(value, list | tuple):
        raise InvalidTypeError("components", value, shape + " or a list of dicts")
    components = []
    for i, entry in enumerate(value):
        if isinstance(entry, BundleComponent):
            components.append(entry)
            continue
        if not isinstance(entry, Mapping) or set(entry) != {"sku", "quantity"}:
            raise ValidationError(f"components[{i}]", entry, "a dict with sku and quantity")
        components.append(BundleComponent(entry["sku"], entry["quantity"]))
    return tuple(components)


def _tax_text(rates: tuple[TaxRate, ...]) -> str:
    return ";".join(f"{r.code}:{r.rate}" + ("" if r.name is None else f":{r.name}") for r in rates)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
