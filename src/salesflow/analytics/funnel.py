"""The stage funnel per rep (R4): "whose funnel is off, and where?".

Rules (pinned by tests):

* A funnel counts a group's opportunities (and sums their amounts) per stage of the plan, for each
  group (``by``, the owner by default) and for the team. Lost opportunities are left out unless
  ``include_lost=True``; how many were left out is kept in :attr:`Funnel.excluded`.
* Shares are ``Decimal`` percentages rounded to ``places`` decimals with the largest-remainder
  method: the shares of every group add up to exactly 100. Every stage of the funnel is listed for
  every group, with ``0`` where the group has none.
* A **deviation** is flagged when a group's actual share of a stage lies outside
  ``target x (1 +- tolerance)`` (strictly; the exact share decides, not the rounded one), and only
  for groups with at least ``min_opportunities`` opportunities. The target maps stage keys to
  percentages that add up to 100; a stage left out of it has a target of 0.
* With ``method="binomial"`` a deviation must also be statistically significant: the exact
  two-sided binomial test of the group's count at that stage against the target probability must
  give a p-value below ``alpha``, so that a small sample that is off by chance stays quiet.

The calculator makes one pass over its input and keeps memory proportional to the number of
(group, stage) cells.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from salesflow.analytics.distribution import Cells, Distribution, Others, merge, tally
from salesflow.analytics.frames import is_frame
from salesflow.analytics.grouping import (
    ALL,
    check_currency,
    check_places,
    group_fields,
    to_by,
)
from salesflow.analytics.inputs import Fields, StageNames, check_fields, mapped, stage_names
from salesflow.domain.money import Money
from salesflow.domain.numbers import EXACT, HUNDRED, ZERO, to_decimal, to_percent
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, ValidationError
from salesflow.tables import NEGATIVE, WARNING, Table, plot_bars

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "ABOVE",
    "BELOW",
    "Funnel",
    "FunnelDeviation",
    "FunnelDeviations",
    "FunnelItem",
    "binomial_p_value",
    "funnel",
]

BELOW = "below"
"""Direction of a deviation whose actual share is under the target's lower bound."""
ABOVE = "above"
"""Direction of a deviation whose actual share is over the target's upper bound."""

_METHODS = ("tolerance", "binomial")
_MISSING_GROUP = "unknown"


class FunnelItem(Protocol):
    """What :func:`funnel` reads from each input object (an Opportunity, an ORM row...).

    ``amount`` is a :class:`Money`, or a ``Decimal`` with the currency in a ``currency`` attribute
    (or given as ``funnel(currency=...)``). The attributes named in ``by`` are read too.
    """

    @property
    def stage(self) -> str:
        """The stage key."""
        ...

    @property
    def amount(self) -> Money | Decimal:
        """The opportunity amount."""
        ...


# -- the exact binomial test ----------------------------------------------------------------------

# Enough digits that the probabilities of outcomes that are equally likely in theory compare equal
# after the relative tolerance below, and an exponent range wide enough that (1 - p) ** n never
# underflows, even for a million trials.
_BINOMIAL = decimal.Context(
    prec=60, Emin=decimal.MIN_EMIN, Emax=decimal.MAX_EMAX, rounding=decimal.ROUND_HALF_EVEN
)
_TIES = Decimal("1e-40")
_RESULT = decimal.Context(prec=20, rounding=decimal.ROUND_HALF_EVEN)


def binomial_p_value(successes: int, trials: int, probability: Decimal | int | str) -> Decimal:
    """Two-sided p-value of the exact binomial test.

    The probability, under a binomial law with ``trials`` draws of success ``probability`` (a
    fraction from 0 to 1), of an outcome at most as likely as ``successes``: the sum of the
    probabilities of every count ``i`` with ``P(X = i) <= P(X = successes)`` (the rule R's
    ``binom.test`` and SciPy's ``binomtest`` use). Computed from the binomial law itself, not a
    normal approximation, in ``Decimal`` with 60 significant digits; returned with 20.

    >>> binomial_p_value(3, 10, Decimal("0.5"))
    Decimal('0.34375')
    """
    for name, value in (("successes", successes), ("trials", trials)):
        if type(value) is not int:
            raise InvalidTypeError(name, value, "an int")
    if trials < 1:
        raise ValidationError("trials", trials, "at least 1")
    if not 0 <= successes <= trials:
        raise ValidationError("successes", successes, f"an int from 0 to {trials}")
    p = to_decimal(probability, "probability")
    if not ZERO <= p <= 1:
        raise ValidationError("probability", probability, "a fraction from 0 to 1")
    if p == 0 or p == 1:
        certain = 0 if p == 0 else trials
        return Decimal(1) if successes == certain else Decimal(0)
    ctx = _BINOMIAL
    q = ctx.subtract(1, p)
    odds = ctx.divide(p, q)
    # P(X = i + 1) = P(X = i) * (n - i) / (i + 1) * p / q, from P(X = 0) = q ** n.
    pmf = ctx.power(q, trials)
    pmfs = [pmf]
    for i in range(trials):
        pmf = ctx.multiply(ctx.divide(ctx.multiply(pmf, trials - i), i + 1), odds)
        pmfs.append(pmf)
    limit = ctx.multiply(pmfs[successes], ctx.add(1, _TIES))
    total = Decimal(0)
    for chance in pmfs:
        if chance <= limit:
            total = ctx.add(total, chance)
    return _RESULT.normalize(min(total, Decimal(1)))


# -- results --------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FunnelDeviation:
    """One (group, stage) whose share is off target."""

    group: Any
    """The group key (an owner, or a tuple when grouping by several attributes)."""
    stage: str
    """The stage key."""
    actual_share: Decimal
    """The group's share of the stage, as shown in the funnel (percent, rounded)."""
    target_share: Decimal
    """The target share (percent)."""
    count: int
    """The group's opportunities in the stage."""
    opportunities: int
    """All of the group's opportunities in the funnel."""
    direction: str
    """:data:`BELOW` or :data:`ABOVE`."""
    p_value: Decimal | None = None
    """The exact binomial test's p-value (``method="binomial"`` only)."""


class FunnelDeviations(Table, list[FunnelDeviation]):
    """The deviations :meth:`Funnel.deviations` found: a list of :class:`FunnelDeviation` that
    also prints as a table."""

    def __init__(self, items: Iterable[FunnelDeviation], by: tuple[str, ...], caption: str) -> None:
        super().__init__(items)
        self._by = by
        self._caption = caption

    @property
    def caption(self) -> str:
        """Title of the printed table (the rule applied)."""
        return self._caption

    def to_records(self) -> list[dict[str, Any]]:
        """One record per deviation: the group columns, ``stage``, ``direction``,
        ``actual_share``, ``target_share``, ``count``, ``opportunities`` and ``p_value``."""
        return [
            {
                **(group_fields(self._by, d.group) if self._by else {"group": ALL}),
                "stage": d.stage,
                "direction": d.direction,
                "actual_share": d.actual_share,
                "target_share": d.target_share,
                "count": d.count,
                "opportunities": d.opportunities,
                "p_value": d.p_value,
            }
            for d in self
        ]

    def display_records(self) -> list[dict[str, Any]]:
        """The records, with p-values shown to three significant digits (and left out when no
        test was run)."""
        records = self.to_records()
        for record in records:
            if record["p_value"] is None:
                del record["p_value"]
            else:
                record["p_value"] = f"{record['p_value']:.3g}"
        return records

    def record_columns(self) -> list[str]:
        """The group columns, ``stage``, ``direction``, the shares, counts and ``p_value``."""
        by = list(self._by) or ["group"]
        shares = ["actual_share", "target_share", "count", "opportunities", "p_value"]
        return [*by, "stage", "direction", *shares]

    def _tone(self, column: str, value: Any, record: dict[str, Any]) -> str | None:
        if column in ("direction", "actual_share"):
            return NEGATIVE if record.get("direction") == BELOW else WARNING
        return None

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Actual against target share for every deviation, one pair of bars each."""
        labels = [
            f"{' / '.join(map(str, d.group)) if isinstance(d.group, tuple) else d.group}: {d.stage}"
            for d in self
        ]
        series = {
            "actual": [float(d.actual_share) for d in self],
            "target": [float(d.target_share) for d in self],
        }
        title = kw.pop("title", self.caption)
        return plot_bars(
            ax, labels, series, horizontal=True, title=title, value_label="share (%)", **kw
        )

    def __str__(self) -> str:
        return Table.__str__(self)

    def __repr__(self) -> str:
        return f"FunnelDeviations({list.__repr__(self)})"


class Funnel(Distribution):
    """The result of :func:`funnel`: count, amount and share per (group, stage), and for the team.

    Figures come from the :class:`~salesflow.analytics.distribution.Distribution` lookups
    (:meth:`counts`, :meth:`shares`, :meth:`amounts`; ``group=None`` is the team), with every stage
    of the funnel listed in plan order. :meth:`deviations` applies the manager's target (R4).
    """

    def __init__(
        self,
        *,
        plan: StagePlan,
        include_lost: bool,
        excluded: dict[Any, int],
        stages: Sequence[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(values=stages, dense=True, **kwargs)
        self.plan = plan
        """The stage plan used."""
        self.include_lost = include_lost
        """Whether lost opportunities are part of the funnel."""
        self.excluded_by_group = excluded
        """Lost opportunities left out, per group (empty with ``include_lost=True``)."""

    @property
    def stages(self) -> tuple[str, ...]:
        """The stage keys of the funnel, in plan order."""
        return self.values

    @property
    def excluded(self) -> int:
        """How many lost opportunities were left out."""
        return sum(self.excluded_by_group.values())

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        per = f" per {', '.join(self.by)}" if self.by else ""
        lost = (
            "lost included" if self.include_lost else f"{self.excluded} lost opportunities left out"
        )
        return f"Stage funnel{per} ({self.total()} opportunities, {lost})"

    def to_records(self) -> list[dict[str, Any]]:
        """One record per (group, stage): the group columns, ``stage``, ``count``, ``share``
        (percent) and the amount columns (``amount`` and ``currency``; ``amount_<CODE>`` per
        currency when there are several). The team's funnel is :meth:`total_records`."""
        return super().to_records()

    def count(self, value: Any, group: Any = None) -> int:
        """Opportunities at stage ``value`` (a key or a display name) in ``group``."""
        return super().count(self.plan.resolve(value).key, group)

    def share(self, value: Any, group: Any = None) -> Decimal:
        """Share of stage ``value`` (a key or a display name) in ``group`` (percent)."""
        return super().share(self.plan.resolve(value).key, group)

    # -- deviations ------------------------------------------------------------------------------

    def _target(self, target: Mapping[str, Decimal | int | str]) -> dict[str, Decimal]:
        if not isinstance(target, Mapping):
            raise InvalidTypeError("target", target, "a mapping of stage key to percent")
        parsed: dict[str, Decimal] = {}
        for given, value in target.items():
            key = self.plan.resolve(given).key  # a key or a display name; raises StageError
            if key not in self.stages:
                raise ValidationError(
                    "target", key, f"a stage of this funnel, one of {list(self.stages)}"
                )
            parsed[key] = to_percent(value, f"target[{key!r}]")
        total = sum(parsed.values(), ZERO)
        if total != HUNDRED:
            raise ValidationError(
                "target", dict(target), f"percentages that add up to 100 (these add up to {total})"
            )
        return {key: parsed.get(key, ZERO) for key in self.stages}

    def deviations(
        self,
        target: Mapping[str, Decimal | int | str],
        *,
        tolerance: Decimal | int | str = Decimal("0.5"),
        min_opportunities: int = 10,
        method: Literal["tolerance", "binomial"] = "tolerance",
        alpha: Decimal | str = Decimal("0.05"),
    ) -> FunnelDeviations:
        """The (group, stage) pairs whose share is off ``target`` (R4), groups sorted, stages in
        plan order.

        Args:
            target: stage key -> target share (percent); the shares must add up to 100. A stage
                of the funnel left out has a target of 0.
            tolerance: the accepted relative deviation, a fraction: ``0.5`` accepts a share from
                half to one and a half times the target. The bounds are excluded from the
                flagged range: with target 10 and tolerance 0.5, exactly 5 % is fine.
            min_opportunities: groups with fewer opportunities in the funnel are not checked.
            method: ``"tolerance"`` (the rule above) or ``"binomial"``: a share outside the
                bounds is flagged only when the exact binomial test also rejects the target at
                ``alpha`` for the group's sample size.
            alpha: significance level for ``method="binomial"`` (a fraction between 0 and 1).

        When grouped by nothing (``by=()``), the team is the one group checked.
        """
        targets = self._target(target)
        tol = to_decimal(tolerance, "tolerance")
        if tol < 0:
            raise ValidationError("tolerance", tolerance, "a fraction of zero or more, e.g. 0.5")
        if type(min_opportunities) is not int or min_opportunities < 0:
            raise ValidationError("min_opportunities", min_opportunities, "an int of zero or more")
        if method not in _METHODS:
            raise ValidationError("method", method, f"one of {list(_METHODS)}")
        level = to_decimal(alpha, "alpha")
        if not ZERO < level < 1:
            raise ValidationError("alpha", alpha, "a fraction between 0 and 1, e.g. 0.05")
        lower = {k: Fraction(t * (1 - tol)) for k, t in targets.items()}
        upper = {k: Fraction(t * (1 + tol)) for k, t in targets.items()}
        found = []
        for group in self.groups if self.by else (None,):
            n = self.total(group)
            if n < min_opportunities or n == 0:
                continue
            counts = self.counts(group)
            shares = self.shares(group)
            for stage in self.stages:
                count = counts[stage]
                actual = Fraction(count * 100, n)
                if actual < lower[stage]:
                    direction = BELOW
                elif actual > upper[stage]:
                    direction = ABOVE
                else:
                    continue
                p_value = None
                if method == "binomial":
                    p_value = binomial_p_value(count, n, targets[stage] / HUNDRED)
                    if p_value >= level:
                        continue
                found.append(
                    FunnelDeviation(
                        group=ALL if group is None else group,
                        stage=stage,
                        actual_share=shares[stage],
                        target_share=targets[stage],
                        count=count,
                        opportunities=n,
                        direction=direction,
                        p_value=p_value,
                    )
                )
        rule = f"outside target x (1 +- {tol})"
        if method == "binomial":
            rule += f" and significant at alpha {level}"
        caption = f"Funnel deviations ({rule}, groups of {min_opportunities}+)"
        return FunnelDeviations(found, self.by, caption)


# -- the calculator ---------------------------------------------------------------------------------


def funnel(
    opportunities: Iterable[FunnelItem],
    plan: StagePlan | None = None,
    *,
    by: Sequence[str] | str = "owner",
    include_lost: bool = False,
    places: int = 1,
    currency: str | None = None,
    fields: Fields | None = None,
) -> Funnel:
    """Count ``opportunities`` per stage, per group and for the team (R4's stage funnel).

    Args:
        opportunities: any iterable of objects with ``stage`` (a key or a display name) and
            ``amount`` (see :class:`FunnelItem`), plus the attributes named in ``by``.
        plan: the stage plan (``StagePlan.default()`` when omitted: pass yours whenever your
            stages are not the default ones).
        by: attribute(s) to group by, e.g. ``"owner"`` or ``("team", "owner")``; ``()`` for the
            team only. A missing group value (``None``, blank) is reported as ``"unknown"``.
        include_lost: count lost opportunities as a stage of the funnel too.
        places: decimal places of the shares (0 to 6).
        currency: the currency of ``Decimal`` amounts without a ``currency`` attribute, and of an
            empty funnel.
        fields: where each field comes from in your rows, e.g. ``{"stage": "deal_stage",
            "owner": "sales_agent"}`` (see :mod:`salesflow.analytics.inputs`).

    Raises:
        StageError: an opportunity's stage is not in the plan.
        ValidationError: a bad argument or a malformed opportunity (named in the message).
    """
    plan, names = stage_names(plan)
    group_by = to_by(by)
    if type(include_lost) is not bool:
        raise InvalidTypeError("include_lost", include_lost, "True or False")
    check_places(places)
    check_currency(currency)
    if is_frame(opportunities):  # a DataFrame: counted on its columns (analytics.columnar)
        from salesflow.analytics.columnar import tally_frame

        cells, others = tally_frame(
            opportunities, group_by, "stage", currency, check_fields(fields)
        )
    else:
        rows = mapped(opportunities, check_fields(fields))
        cells, others = tally(rows, group_by, "stage", currency)
    cells, others = _by_key(cells, others, names)
    counts, amounts = merge(cells, others, _MISSING_GROUP)
    lost = {s.key for s in plan if s.is_lost}
    excluded: dict[Any, int] = {}
    if not include_lost:
        for group in list(counts):
            row = counts[group]
            for key in lost & row.keys():
                excluded[group] = excluded.get(group, 0) + row.pop(key)
                del amounts[group][key]
            if not row:
                del counts[group], amounts[group]
    stages = [s.key for s in plan if include_lost or not s.is_lost]
    return Funnel(
        plan=plan,
        include_lost=include_lost,
        excluded=excluded,
        stages=stages,
        dimension="stage",
        by=group_by,
        counts=counts,
        amounts=amounts,
        places=places,
        currency=currency,
    )


def _by_key(cells: Cells, others: Others, names: StageNames) -> tuple[Cells, Others]:
    """The tally with every stage under its key (display names merged into their stage)."""
    if all(stage in names.plan for _group, stage in cells) and not others:
        return cells, others
    keyed: Cells = {}
    extra: Others = {}
    for (group, stage), (count, amount, code) in cells.items():
        key = (group, names.key(stage))
        cell = keyed.get(key)
        if cell is None:
            keyed[key] = [count, amount, code]
            continue
        cell[0] += count
        if cell[2] == code:
            cell[1] = EXACT.add(cell[1], amount)
        else:
            other = (key[0], key[1], code)
            extra[other] = EXACT.add(extra.get(other, ZERO), amount)
    for (group, stage, code), amount in others.items():
        other = (group, names.key(stage), code)
        extra[other] = EXACT.add(extra.get(other, ZERO), amount)
    return keyed, extra
