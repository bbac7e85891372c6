"""The discount policy (R10): who may give which discount, and where a quote must go for approval.

A :class:`DiscountPolicy` is a **role ladder**, lowest role first, e.g. ``sales_rep`` 10 % /
``sales_manager`` 20 % / ``sales_director`` 25 %. Each rung gives a role a maximum **line discount**
and a maximum **average discount** for the whole quote, optionally overridden per category.
:meth:`DiscountPolicy.evaluate` returns a :class:`DiscountVerdict`; :func:`route_quote` turns it
into what submitting the quote does.

How the figures are measured (pinned by tests):

* A line's **reference amount** is its catalog amount: list price x quantity with the product's
  volume tier applied, or, for a bundle component, its share of the bundle price. Tiers and bundle
  prices are prices the catalog grants, not discounts a rep gives. With
  ``measure_from="list"`` the reference is list price x quantity instead, so tiers and bundle
  savings count as discount too.
* A line's **discount** is ``100 - discounted x 100 / reference``: the line discount together
  with any unit price set on the quote, before the document discount.
* The **average discount** is ``100 - net x 100 / reference``, summed over all lines, **after** the
  document discount (a rep cannot get round a 10 % limit with a 0 % line discount and a 20 %
  document discount). A category's average covers the lines of that category and its
  subcategories.
* Percentages use the exact amounts of the waterfall, before the rounding to the minor unit (for
  the net: ``discounted x (100 - document discount) / 100``), so rounding, which no one chooses,
  never decides an approval: a 10 % discount is 10 % for any price.
* **Every kind of discount counts by its effect.** A percentage, a fixed amount off, a negotiated
  unit price or a surcharge (a negative discount) all show in ``discounted``; a fixed document
  amount off counts in the average as ``amount / subtotal`` of every line. For a product whose
  prices include tax, the average weighs the line without its taxes.
* **Margins.** A rung may set ``min_margin``: the quote's margin (net - cost over the lines whose
  products have a cost, percent of their net, see :attr:`Quote.margin_percent
  <salesflow.domain.quotes.Quote.margin_percent>`) must be at least that much for the role to let
  it through; minimum margins never rise going up the ladder, and a quote below every role's is
  forbidden.
* **Floors** always hold, on the rounded net the customer pays: a product line's net must be at
  least floor price x quantity; a bundle's nets together at least its components' floors
  together. No role may approve a quote below a floor.
* A role's **line limit** for a line is the override of the nearest category on the line's category
  path that the role overrides, else the role's own limit.

The verdict's ``required_role`` is the lowest role on the ladder whose limits all cover the quote;
the quote is ``forbidden`` when a floor breaks or no role covers it; it is ``within_authority``
of an actor who holds the required role or one above it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import attrs

from salesflow.domain.actors import Actor
from salesflow.domain.checks import as_optional_percent, as_percent, check_choice, check_id
from salesflow.domain.numbers import EXACT, HUNDRED, ZERO, exact_sum
from salesflow.domain.quotes import Quote, QuoteLine
from salesflow.errors import ForbiddenDiscountError, InvalidTypeError, ValidationError

__all__ = [
    "CategoryLimit",
    "DiscountPolicy",
    "DiscountReason",
    "DiscountVerdict",
    "QuoteRouting",
    "ReasonKind",
    "RoleLimits",
    "RouteDecision",
    "route_quote",
]

MeasureFrom = Literal["catalog", "list"]
_CENT = Decimal("0.01")


def _show(value: Decimal) -> str:
    return str(value.quantize(_CENT, ROUND_HALF_UP, EXACT)) if value.is_finite() else str(value)


# -- limits ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CategoryLimit:
    """A role's limits for the lines of one category (and its subcategories); ``None`` keeps the
    role's own limit."""

    category: str = attrs.field(validator=check_id)
    max_line_discount: Decimal | None = attrs.field(default=None, converter=as_optional_percent)
    max_average_discount: Decimal | None = attrs.field(default=None, converter=as_optional_percent)

    def __attrs_post_init__(self) -> None:
        if self.max_line_discount is None and self.max_average_discount is None:
            raise ValidationError(
                f"categories[{self.category!r}]",
                None,
                "a max_line_discount, a max_average_discount or both",
            )

    def to_dict(self) -> dict[str, Any]:
        """This limit as a plain dict (percentages as strings)."""
        data: dict[str, Any] = {}
        if self.max_line_discount is not None:
            data["max_line_discount"] = str(self.max_line_discount)
        if self.max_average_discount is not None:
            data["max_average_discount"] = str(self.max_average_discount)
        return data


def _to_category_limits(value: object) -> tuple[CategoryLimit, ...]:
    if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
        raise InvalidTypeError("categories", value, "a sequence of CategoryLimit")
    limits = tuple(value)
    seen: set[str] = set()
    for i, limit in enumerate(limits):
        if not isinstance(limit, CategoryLimit):
            raise InvalidTypeError(f"categories[{i}]", limit, "a CategoryLimit")
        if limit.category in seen:
            raise ValidationError(f"categories[{i}]", limit.category, "each category once")
        seen.add(limit.category)
    return limits


@attrs.frozen(kw_only=True)
class RoleLimits:
    """One rung of the ladder: a role's maximum line and average discounts (percent), with
    optional per-category overrides."""

    role: str = attrs.field(validator=check_id)
    max_line_discount: Decimal = attrs.field(converter=as_percent)
    max_average_discount: Decimal = attrs.field(converter=as_percent)
    categories: tuple[CategoryLimit, ...] = attrs.field(default=(), converter=_to_category_limits)
    min_margin: Decimal | None = attrs.field(default=None, converter=as_optional_percent)
    """The lowest margin (percent of net) the role may let through (``None``: no minimum)."""
    _line_overrides: Mapping[str, Decimal] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        overrides = {
            c.category: c.max_line_discount
            for c in self.categories
            if c.max_line_discount is not None
        }
        object.__setattr__(self, "_line_overrides", overrides)

    def line_limit(self, category_path: Sequence[str]) -> tuple[Decimal, str | None]:
        """The line limit for a line in ``category_path`` and the category that set it (``None``
        for the role's own limit)."""
        if self._line_overrides:
            for category in category_path:
                found = self._line_overrides.get(category)
                if found is not None:
                    return found, category
        return self.max_line_discount, None

    def limit_for(self, category: str | None, kind: Literal["line", "average"]) -> Decimal:
        """The limit of ``kind`` (``"line"`` or ``"average"``) set for ``category`` itself (not
        inherited), else the role's own."""
        if kind not in ("line", "average"):
            raise ValidationError("kind", kind, "'line' or 'average'")
        for limit in self.categories:
            if limit.category == category:
                value = limit.max_line_discount if kind == "line" else limit.max_average_discount
                if value is not None:
                    return value
        return self.max_line_discount if kind == "line" else self.max_average_discount

    def to_dict(self) -> dict[str, Any]:
        """This rung as a plain dict that :meth:`DiscountPolicy.from_dict` reads back."""
        data: dict[str, Any] = {
            "role": self.role,
            "max_line_discount": str(self.max_line_discount),
            "max_average_discount": str(self.max_average_discount),
        }
        if self.categories:
            data["categories"] = {c.category: c.to_dict() for c in self.categories}
        if self.min_margin is not None:
            data["min_margin"] = str(self.min_margin)
        return data


def _to_ladder(value: object) -> tuple[RoleLimits, ...]:
    if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
        raise InvalidTypeError("ladder", value, "a sequence of RoleLimits, lowest role first")
    ladder = tuple(value)
    if not ladder:
        raise ValidationError("ladder", ladder, "at least one role")
    for i, rung in enumerate(ladder):
        if not isinstance(rung, RoleLimits):
            raise InvalidTypeError(f"ladder[{i}]", rung, "a RoleLimits")
    return ladder


# -- verdicts --------------------------------------------------------------------------------------


class ReasonKind(enum.StrEnum):
    """What a :class:`DiscountReason` is about."""

    LINE_DISCOUNT = "line_discount"
    AVERAGE_DISCOUNT = "average_discount"
    CATEGORY_AVERAGE_DISCOUNT = "category_average_discount"
    BELOW_FLOOR = "below_floor"
    NO_ROLE = "no_role"
    MARGIN = "margin"


@attrs.frozen(kw_only=True)
class DiscountReason:
    """Why a quote is beyond a role's authority, or forbidden.

    For discounts, ``limit``, ``actual`` and ``excess`` are percentages (``unit == "%"``); for a
    floor they are amounts in ``unit`` (the currency) and ``excess`` is the shortfall. ``line`` is
    the quote line id (``None`` for quote-wide reasons); ``category`` the category whose limit
    applied; ``role`` the role whose limit was exceeded.
    """

    kind: ReasonKind
    role: str | None
    line: str | None
    category: str | None
    limit: Decimal | None
    actual: Decimal | None
    excess: Decimal | None
    unit: str

    @property
    def message(self) -> str:
        """The reason in words."""
        limit, actual, excess = self.limit, self.actual, self.excess
        if self.kind is ReasonKind.NO_ROLE or limit is None or actual is None or excess is None:
            return "the actor holds no role of the discount policy"
        if self.kind is ReasonKind.MARGIN:
            return (
                f"margin {_show(actual)}% is below the {self.role} minimum of {_show(limit)}% "
                f"by {_show(excess)} points"
            )
        if self.kind is ReasonKind.BELOW_FLOOR:
            return (
                f"line {self.line} nets {actual} {self.unit}, {excess} below its floor "
                f"of {limit} {self.unit}"
            )
        where = {
            ReasonKind.LINE_DISCOUNT: f"line {self.line} discount",
            ReasonKind.AVERAGE_DISCOUNT: "average discount",
            ReasonKind.CATEGORY_AVERAGE_DISCOUNT: f"average discount in {self.category}",
        }[self.kind]
        scope = f" (category {self.category})" if self.category and self.line else ""
        return (
            f"{where} {_show(actual)}% exceeds the {self.role} limit of "
            f"{_show(limit)}%{scope} by {_show(excess)} points"
        )

    def to_dict(self) -> dict[str, Any]:
        """This reason as a plain dict (numbers as strings)."""
        return {
            "kind": self.kind.value,
            "role": self.role,
            "line": self.line,
            "category": self.category,
            "limit": None if self.limit is None else str(self.limit),
            "actual": None if self.actual is None else str(self.actual),
            "excess": None if self.excess is None else str(self.excess),
            "unit": self.unit,
            "message": self.message,
        }


@attrs.frozen(kw_only=True)
class DiscountVerdict:
    """What the policy says about a quote for an actor.

    Attributes are documented below; ``reasons`` lists, for an actor not within authority, the
    limits of the actor's highest role on the ladder that the quote exceeds (or that the actor holds
    none), and, for a forbidden quote, the broken floors or the top role's exceeded limits.
    """

    within_authority: bool
    """Whether the actor may let the quote through without anyone's approval."""
    required_role: str | None
    """The lowest role on the ladder whose limits cover the quote (``None`` when forbidden)."""
    forbidden: bool
    """No role may approve it: below a floor, or beyond the top role's limits."""
    reasons: tuple[DiscountReason, ...]
    """Structured reasons: which line, which limit, by how much."""
    actor: str
    """The actor's id."""
    actor_role: str | None
    """The actor's highest role on the ladder, if any."""
    average_discount: Decimal
    """The quote's average discount, percent (see the module docs)."""
    max_line_discount: Decimal
    """The largest line discount on the quote, percent."""

    def to_dict(self) -> dict[str, Any]:
        """This verdict as a plain dict, e.g. for an audit record."""
        return {
            "within_authority": self.within_authority,
            "required_role": self.required_role,
            "forbidden": self.forbidden,
            "actor": self.actor,
            "actor_role": self.actor_role,
            "average_discount": str(self.average_discount),
            "max_line_discount": str(self.max_line_discount),
            "reasons": [r.to_dict() for r in self.reasons],
        }


# One line's figures: id, category path, reference, discount (percent) and the discounted amount
# (before the document discount), plain tuples since a quote may have 10,000 lines.
_LineFigures = tuple[str, tuple[str, ...], Decimal, Decimal, Decimal]


@attrs.frozen(kw_only=True)
class _Figures:
    lines: list[_LineFigures]
    keep: Decimal
    """The share of every line the document discount leaves (1 - its percentage - amount / subtotal)."""
    average: Decimal
    margin: Decimal | None = None
    max_discount: Decimal = ZERO


def _percent_off(amount: Decimal, reference: Decimal) -> Decimal:
    if not reference:
        return ZERO
    # One rounding only: the quotient, to the current context's 28 significant digits.
    return HUNDRED - EXACT.multiply(amount, HUNDRED) / reference


# -- the policy ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DiscountPolicy:
    """A role ladder of discount limits (lowest role first); see the module docs for the rules.

    Load one from a plain dict::

        DiscountPolicy.from_dict({"ladder": [
            {"role": "sales_rep", "max_line_discount": 10},
            {"role": "sales_manager", "max_line_discount": 20, "max_average_discount": 15,
             "categories": {"hardware": {"max_line_discount": 12}}},
            {"role": "sales_director", "max_line_discount": 25},
        ]})

    Limits never fall going up the ladder, for the role's own limits and for every category any
    rung names.
    """

    ladder: tuple[RoleLimits, ...] = attrs.field(converter=_to_ladder)
    measure_from: MeasureFrom = attrs.field(
        default="catalog", validator=check_choice, metadata={"choices": ("catalog", "list")}
    )

    def __attrs_post_init__(self) -> None:
        roles = [r.role for r in self.ladder]
        if len(set(roles)) != len(roles):
            raise ValidationError("ladder", roles, "each role once")
        categories = {c.category for r in self.ladder for c in r.categories}
        kinds: tuple[Literal["line", "average"], ...] = ("line", "average")
        for kind in kinds:
            for category in (None, *sorted(categories)):
                previous: RoleLimits | None = None
                for rung in self.ladder:
                    if previous is not None:
                        low = previous.limit_for(category, kind)
                        high = rung.limit_for(category, kind)
                        if high < low:
                            scope = "" if category is None else f" for category {category!r}"
                            raise ValidationError(
                                f"ladder[{rung.role!r}].max_{kind}_discount",
                                high,
                                f"at least {low}, the limit of {previous.role!r}{scope}",
                            )
                    previous = rung
        previous = None
        for rung in self.ladder:
            if previous is not None and previous.min_margin is None and rung.min_margin is not None:
                raise ValidationError(
                    f"ladder[{rung.role!r}].min_margin",
                    rung.min_margin,
                    f"None, like {previous.role!r} below it (minimum margins never rise)",
                )
            if (
                previous is not None
                and previous.min_margin is not None
                and rung.min_margin is not None
                and rung.min_margin > previous.min_margin
            ):
                raise ValidationError(
                    f"ladder[{rung.role!r}].min_margin",
                    rung.min_margin,
                    f"at most {previous.min_margin}, the minimum of {previous.role!r}",
                )
            previous = rung

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles of the ladder, lowest first."""
        return tuple(r.role for r in self.ladder)

    def limits(self, role: str) -> RoleLimits:
        """The rung of ``role``; :class:`~salesflow.errors.ValidationError` for a role not on the
        ladder."""
        for rung in self.ladder:
            if rung.role == role:
                return rung
        raise ValidationError("role", role, f"one of the policy's roles {list(self.roles)}")

    # -- plain dicts ------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DiscountPolicy:
        """Build a policy from ``{"ladder": [...], "measure_from": "catalog"}``.

        Each rung is ``{"role", "max_line_discount", "max_average_discount", "categories",
        "min_margin"}``;
        ``max_average_discount`` defaults to ``max_line_discount``, and ``categories`` maps a
        category id to ``{"max_line_discount", "max_average_discount"}`` (either may be left out).
        Percentages are numbers or numeric strings, never floats.
        """
        if not isinstance(data, Mapping):
            raise InvalidTypeError("policy", data, "a mapping with 'ladder'")
        unknown = set(data) - {"ladder", "measure_from"}
        if unknown:
            raise ValidationError("policy", sorted(unknown), "only 'ladder' and 'measure_from'")
        raw = data.get("ladder")
        if not isinstance(raw, list | tuple) or not raw:
            raise InvalidTypeError("ladder", raw, "a non-empty list of role dicts")
        ladder = []
        for i, rung in enumerate(raw):
            try:
                ladder.append(_rung_from_dict(rung))
            except ValidationError as exc:
                raise exc.located(f"ladder[{i}]") from None
        return cls(ladder=ladder, measure_from=data.get("measure_from", "catalog"))

    def to_dict(self) -> dict[str, Any]:
        """This policy as a plain dict that :meth:`from_dict` reads back."""
        return {"ladder": [r.to_dict() for r in self.ladder], "measure_from": self.measure_from}

    # -- evaluation ---------------------------------------------------------------------------------

    def _figures(self, quote: Quote) -> _Figures:
        keep = EXACT.divide(EXACT.subtract(HUNDRED, quote.document_discount), HUNDRED)
        subtotal = quote.subtotal.amount
        if quote.document_amount_off and subtotal:
            # A fixed amount off the document takes the same share off every line.
            keep = keep - quote.document_amount_off / subtotal
        catalog = self.measure_from == "catalog"
        multiply = EXACT.multiply
        lines = []
        # The waterfall's own figures (quote._priced): the policy needs numbers, not line objects.
        priced = quote._priced
        for line_id, row in zip(priced.ids, priced.rows, strict=True):
            _item, part, units, catalog_amount, _gross, discounted, _sub, included = row
            reference = (
                catalog_amount if catalog else multiply(part.product.list_price.amount, units)
            )
            discount = _percent_off(discounted, reference)
            if included is not None:
                # Weigh a tax-included line without its taxes, like every other line.
                untax = HUNDRED / (HUNDRED + exact_sum(r.rate for r in part.taxes))
                reference = reference * untax
                discounted = discounted * untax
            lines.append((line_id, part.category_path, reference, discount, discounted))
        needs_margin = any(r.min_margin is not None for r in self.ladder)
        margin = quote.margin_percent if needs_margin else None
        return _Figures(
            lines=lines,
            keep=keep,
            average=_average(lines, keep),
            margin=margin,
            max_discount=max((f[3] for f in lines), default=ZERO),
        )

    def _exceeded(self, rung: RoleLimits, figures: _Figures) -> list[DiscountReason]:
        reasons = []
        # Most quotes stay within a rung's own limit on every line: one comparison then.
        uniform = not rung.categories
        if uniform and figures.max_discount <= rung.max_line_discount:
            checked: list[_LineFigures] = []
        else:
            checked = figures.lines
        for line_id, path, _reference, discount, _discounted in checked:
            limit, category = rung.line_limit(path)
            if discount > limit:
                reasons.append(
                    _reason(
                        ReasonKind.LINE_DISCOUNT,
                        rung.role,
                        limit,
                        discount,
                        line_id,
                        category=category,
                    )
                )
        margin = figures.margin
        if rung.min_margin is not None and margin is not None and margin < rung.min_margin:
            reasons.append(_reason(ReasonKind.MARGIN, rung.role, rung.min_margin, margin))
            reasons[-1] = attrs.evolve(reasons[-1], excess=rung.min_margin - margin)
        if figures.average > rung.max_average_discount:
            reasons.append(
                _reason(
                    ReasonKind.AVERAGE_DISCOUNT,
                    rung.role,
                    rung.max_average_discount,
                    figures.average,
                )
            )
        for override in rung.categories:
            if override.max_average_discount is None:
                continue
            within = [f for f in figures.lines if override.category in f[1]]
            if not within:
                continue
            average = _average(within, figures.keep)
            if average > override.max_average_discount:
                reasons.append(
                    _reason(
                        ReasonKind.CATEGORY_AVERAGE_DISCOUNT,
                        rung.role,
                        override.max_average_discount,
                        average,
                        category=override.category,
                    )
                )
        return reasons

    def evaluate(self, quote: Quote, actor: Actor) -> DiscountVerdict:
        """The verdict on ``quote`` for ``actor``: see :class:`DiscountVerdict` and the module
        docs. Pure: the quote is not changed."""
        if not isinstance(quote, Quote):
            raise InvalidTypeError("quote", quote, "a Quote")
        if not isinstance(actor, Actor):
            raise InvalidTypeError("actor", actor, "an Actor")
        figures = self._figures(quote)
        floors = _floor_breaches(quote)
        exceeded = [self._exceeded(rung, figures) for rung in self.ladder]
        required = next((i for i, found in enumerate(exceeded) if not found), None)
        forbidden = bool(floors) or required is None
        held = [i for i, rung in enumerate(self.ladder) if actor.has_role(rung.role)]
        actor_index = max(held) if held else None
        within = (
            not forbidden
            and required is not None
            and actor_index is not None
            and actor_index >= required
        )
        reasons = list(floors)
        if not within:
            if actor_index is None:
                reasons.append(
                    DiscountReason(
                        kind=ReasonKind.NO_ROLE,
                        role=None,
                        line=None,
                        category=None,
                        limit=None,
                        actual=None,
                        excess=None,
                        unit="",
                    )
                )
            else:
                reasons.extend(exceeded[actor_index])
            top = len(self.ladder) - 1
            if required is None and actor_index != top:
                reasons.extend(exceeded[top])
        return DiscountVerdict(
            within_authority=within,
            required_role=None if forbidden or required is None else self.ladder[required].role,
            forbidden=forbidden,
            reasons=tuple(reasons),
            actor=actor.id,
            actor_role=None if actor_index is None else self.ladder[actor_index].role,
            average_discount=figures.average,
            max_line_discount=figures.max_discount,
        )


def _rung_from_dict(data: object) -> RoleLimits:
    if not isinstance(data, Mapping):
        raise InvalidTypeError("rung", data, "a dict with role and max_line_discount")
    unknown = set(data) - {
        "role",
        "max_line_discount",
        "max_average_discount",
        "categories",
        "min_margin",
    }
    if unknown:
        raise ValidationError(
            "rung",
            sorted(unknown),
            "only role, max_line_discount, max_average_discount, categories and min_margin",
        )
    if "role" not in data or "max_line_discount" not in data:
        raise ValidationError("rung", dict(data), "a 'role' and a 'max_line_discount'")
    raw = data.get("categories") or {}
    if not isinstance(raw, Mapping):
        raise InvalidTypeError("categories", raw, "a dict of category id to limits")
    categories = []
    for category, limits in raw.items():
        if not isinstance(limits, Mapping) or not limits:
            raise InvalidTypeError(
                f"categories[{category!r}]", limits, "max_line_discount and/or max_average_discount"
            )
        extra = set(limits) - {"max_line_discount", "max_average_discount"}
        if extra:
            raise ValidationError(
                f"categories[{category!r}]",
                sorted(extra),
                "only max_line_discount and max_average_discount",
            )
        categories.append(
            CategoryLimit(
                category=category,
                max_line_discount=limits.get("max_line_discount"),
                max_average_discount=limits.get("max_average_discount"),
            )
        )
    return RoleLimits(
        role=data["role"],
        max_line_discount=data["max_line_discount"],
        max_average_discount=data.get("max_average_discount", data["max_line_discount"]),
        categories=categories,
        min_margin=data.get("min_margin"),
    )


def _average(lines: Sequence[_LineFigures], keep: Decimal) -> Decimal:
    # Every net is discounted x keep, so their sum is keep x the discounted amounts' sum, exactly.
    reference = exact_sum(f[2] for f in lines)
    return _percent_off(EXACT.multiply(exact_sum(f[4] for f in lines), keep), reference)


def _reason(
    kind: ReasonKind,
    role: str,
    limit: Decimal,
    actual: Decimal,
    line: str | None = None,
    *,
    category: str | None = None,
) -> DiscountReason:
    return DiscountReason(
        kind=kind,
        role=role,
        line=line,
        category=category,
        limit=limit,
        actual=actual,
        excess=actual - limit,
        unit="%",
    )


def _floor_breaches(quote: Quote) -> list[DiscountReason]:
    """Lines (or bundles, taken whole) whose rounded net is below their floor amount."""
    if all(row[1].product.floor_price is None for row in quote._priced.rows):
        return []  # no floor to hold: the line objects are not needed
    groups: dict[str, list[QuoteLine]] = {}
    for line in quote.lines:
        if line.product.floor_price is None and line.bundle_sku is None:
            continue  # nothing to hold (a bundle's floor is its components' together)
        groups.setdefault(line.item_id if line.bundle_sku else line.id, []).append(line)
    reasons = []
    for key, lines in groups.items():
        floors = [line.floor_amount.amount for line in lines if line.floor_amount is not None]
        if not floors:
            continue
        floor = exact_sum(floors)
        net = exact_sum(line._net for line in lines)
        if net < floor:
            reasons.append(
                DiscountReason(
                    kind=ReasonKind.BELOW_FLOOR,
                    role=None,
                    line=key,
                    category=None,
                    limit=floor,
                    actual=net,
                    excess=EXACT.subtract(floor, net),
                    unit=quote.currency,
                )
            )
    return reasons


# -- routing -------------------------------------------------------------------------------------------


class RouteDecision(enum.StrEnum):
    """What submitting a quote does."""

    APPROVED = "approved"
    """Within the submitter's authority: approved at once."""
    NEEDS_APPROVAL = "needs_approval"
    """Beyond it: an approval request for the required role."""


@attrs.frozen(kw_only=True)
class QuoteRouting:
    """The answer of :func:`route_quote`: the submitted quote, and what happens to it next.

    When :attr:`decision` is ``approved`` the quote is already approved (record the verdict in the
    audit trail); when it is ``needs_approval`` the quote is pending and an approval request for
    :attr:`required_role` must be opened, remembering :attr:`content_hash` and the quote version.
    """

    decision: RouteDecision
    """Approved at once, or an approval is needed."""
    quote: Quote
    """The quote after submission: approved, or pending approval."""
    verdict: DiscountVerdict
    """The policy's verdict, for the audit trail."""
    content_hash: str
    """The submitted quote's :meth:`Quote.content_hash`."""

    @property
    def required_role(self) -> str | None:
        """The role that must approve (``None`` when approved at once)."""
        return None if self.decision is RouteDecision.APPROVED else self.verdict.required_role

    @property
    def needs_approval(self) -> bool:
        """Whether an approval request must be opened."""
        return self.decision is RouteDecision.NEEDS_APPROVAL


def route_quote(quote: Quote, actor: Actor, policy: DiscountPolicy) -> QuoteRouting:
    """Submit ``quote`` on behalf of ``actor`` under ``policy`` (pure: returns new values).

    * Within the actor's authority: the quote comes back **approved** at once
      (``decision == "approved"``).
    * Beyond it: the quote comes back **pending approval** and :attr:`QuoteRouting.required_role`
      names the lowest role that may approve it.
    * Forbidden (below a floor, beyond the top role): raises :class:`~salesflow.errors.ForbiddenDiscountError` with
      the reasons; nothing changes.

    Only a draft or rejected quote with at least one line can be submitted
    (:class:`~salesflow.errors.TransitionNotAllowedError` /
    :class:`~salesflow.errors.ValidationError` otherwise).
    """
    if not isinstance(policy, DiscountPolicy):
        raise InvalidTypeError("policy", policy, "a DiscountPolicy")
    if not isinstance(quote, Quote):
        raise InvalidTypeError("quote", quote, "a Quote")
    pending = quote.submit_for_approval()
    verdict = policy.evaluate(quote, actor)
    if verdict.forbidden:
        raise ForbiddenDiscountError(quote.id, verdict)
    if verdict.within_authority:
        decision, submitted = RouteDecision.APPROVED, pending.approve()
    else:
        decision, submitted = RouteDecision.NEEDS_APPROVAL, pending
    return QuoteRouting(
        decision=decision, quote=submitted, verdict=verdict, content_hash=quote.content_hash()
    )
