"""Why deals are lost: lost reasons per rep, team, industry and the stage the deal died in.

Rules (pinned by tests):

* Only opportunities in a **lost stage** of the plan count. Open and won ones are read (their stage
  must be in the plan) and skipped.
* A lost deal's **reason** is the ``reason`` of its last stage change, the move into the lost stage
  (see :meth:`~salesflow.domain.opportunities.Opportunity.move_to`); the stage it **died in** is
  that change's ``from_stage``. A deal without history, or whose move carries no reason (a lost
  deal imported without a ``lost_reason``), is reported under ``missing`` (``"unknown"``), never
  dropped; so is a deal whose died-in stage is not known, and a missing group value.
* Reasons are listed in the plan's order, every one for every group (``0`` where the group has
  none), then any recorded code the plan no longer lists (history keeps what was recorded), then
  ``missing`` when some deal has no reason.
* Per (group, reason) and for all lost deals: the **count**, the **amount** (exact ``Decimal``
  sums, per currency; currencies are never added together) and the **share** of the group's lost
  deals (a ``Decimal`` percentage rounded to ``places`` decimals by the largest-remainder method,
  so the shares of every group add up to exactly 100).
* Groups come from attributes (``by``: ``"owner"``, ``"team"``, ``"industry"``, ``"region"``...)
  and the pseudo-attribute :data:`DIED_IN`. With ``teams`` a deal's team is its owner's team in
  that mapping rather than its own ``team`` attribute.

The calculator makes one pass over its input and keeps memory proportional to the number of
(group, reason) cells.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import tzinfo
from decimal import Decimal
from typing import Any, Protocol

from salesflow.analytics.distribution import Distribution
from salesflow.analytics.grouping import (
    MISSING,
    check_currency,
    check_label,
    check_places,
    label,
    money_of,
    sort_key,
    to_by,
    where,
)
from salesflow.analytics.inputs import Fields, check_fields, mapped, stage_names
from salesflow.analytics.performance import _teams
from salesflow.analytics.windows import WindowLike, within
from salesflow.domain.money import Money
from salesflow.domain.numbers import ZERO
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = ["DIED_IN", "LostReasonItem", "LostReasons", "lost_reasons"]

DIED_IN = "died_in"
"""The name to group by the stage a deal died in (the stage it moved to lost from)."""


class LostReasonItem(Protocol):
    """What :func:`lost_reasons` reads from each input object (an Opportunity, an ORM row...).

    ``amount`` is a :class:`Money`, or a ``Decimal`` with the currency in a ``currency`` attribute
    (or given as ``lost_reasons(currency=...)``). ``history`` holds the stage changes, oldest first;
    of a lost deal only the last one is read (its ``to_stage``, ``from_stage`` and ``reason``; a
    change without a ``reason`` attribute has none). An object without a ``history`` attribute
    counts as a deal without history. The attributes named
    in ``by`` are read too.
    """

    @property
    def stage(self) -> str:
        """The stage key."""
        ...

    @property
    def amount(self) -> Money | Decimal:
        """The opportunity amount."""
        ...


class LostReasons(Distribution):
    """The result of :func:`lost_reasons`: count, amount and share per (group, reason), and for all
    lost deals.

    Figures come from the :class:`~salesflow.analytics.distribution.Distribution` lookups
    (:meth:`counts`, :meth:`shares`, :meth:`amounts`, :meth:`amounts_by_currency`; ``group=None``
    is every lost deal), with every reason listed in :attr:`reasons` order.
    """

    def __init__(self, *, plan: StagePlan, missing: str, **kwargs: Any) -> None:
        super().__init__(dense=True, **kwargs)
        self.plan = plan
        """The stage plan used."""
        self.missing = missing
        """The label of deals without a recorded reason (and of missing groups)."""
        if DIED_IN in self.by:  # stages in plan order, not by name
            order = {key: i for i, key in enumerate(plan.keys)}
            at = self.by.index(DIED_IN)

            def in_plan_order(group: Any) -> tuple[Any, ...]:
                parts = group if len(self.by) > 1 else (group,)
                return tuple(
                    (order.get(part, len(order)), sort_key(part)) if i == at else sort_key(part)
                    for i, part in enumerate(parts)
                )

            self._groups = tuple(sorted(self._groups, key=in_plan_order))

    @property
    def reasons(self) -> tuple[str, ...]:
        """The reason codes, in display order (the plan's, then others recorded, then
        :attr:`missing` when some deal has no reason)."""
        return self.values

    @property
    def unknown(self) -> int:
        """How many lost deals have no recorded reason."""
        return self.count(self.missing)

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        per = f" per {', '.join(self.by)}" if self.by else ""
        unknown = self.unknown
        without = f", {unknown} without a recorded reason" if unknown else ""
        return f"Lost reasons{per} ({self.total()} lost opportunities{without})"

    def to_records(self) -> list[dict[str, Any]]:
        """One record per (group, reason): the group columns, ``reason``, ``count``, ``share``
        (percent) and the amount columns (``amount`` and ``currency``; ``amount_<CODE>`` per
        currency when there are several). The rows of all lost deals are :meth:`total_records`
        (:data:`~salesflow.analytics.grouping.ALL` in the first group column)."""
        return super().to_records()


Cell = list[Any]
"""[count, {currency: amount}] of one (group, reason)."""


def _group_reader(name: str, team_of: Mapping[str, str] | None) -> Callable[[Any, str | None], Any]:
    if name == DIED_IN:
        return lambda _item, died_in: died_in
    if name == "team" and team_of is not None:
        return lambda item, _died_in: team_of.get(item.owner)

    def read(item: Any, _died_in: str | None) -> Any:
        return getattr(item, name)

    return read


def lost_reasons(
    opportunities: Iterable[LostReasonItem],
    plan: StagePlan | None = None,
    *,
    by: Sequence[str] | str = ("owner",),
    teams: Mapping[str, Iterable[str]] | None = None,
    missing: str = MISSING,
    places: int = 1,
    currency: str | None = None,
    fields: Fields | None = None,
    created: WindowLike = None,
    closed: WindowLike = None,
    tz: tzinfo | None = None,
) -> LostReasons:
    """Count, amount and share of the lost ``opportunities`` per reason, per group and for all of
    them ("why do we lose, and who loses what, where?").

    Args:
        opportunities: any iterable of objects with ``stage``, ``amount`` and ``history`` (see
            :class:`LostReasonItem`), plus the attributes named in ``by``.
        plan: the stage plan: which stages are lost, and the reasons in display order
            (``StagePlan.default()`` when omitted).
        by: what to group by: attribute names such as ``"owner"``, ``"team"``, ``"industry"``, and
            :data:`DIED_IN` for the stage the deal died in; several for nested groups
            (``("team", "owner")``); ``()`` for all lost deals only.
        teams: team name -> its reps' names; when given, the ``"team"`` of a deal is its owner's
            team here (a rep in no team: ``missing``), not the deal's ``team`` attribute.
        missing: the label of deals without a recorded reason, of a died-in stage not known and of
            missing group values; it may not be one of the plan's reasons.
        places: decimal places of the shares (0 to 6).
        currency: the currency of ``Decimal`` amounts without a ``currency`` attribute, and of an
            empty result.
        fields: where each field comes from in your rows, e.g. ``{"stage": "phase"}`` (see
            :mod:`salesflow.analytics.inputs`). Stages may be keys or display names.
        created: count only the opportunities created in this window, a
            :class:`~salesflow.domain.periods.Period` or a ``(start, end)`` pair of dates, both
            inclusive (see :mod:`salesflow.analytics.windows`).
        closed: count only the opportunities won or lost in this window (open ones are in
            none).
        tz: the zone that decides the day of a stage change in a window (UTC by default).

    Raises:
        StageError: an opportunity's stage is not in the plan.
        ValidationError: a bad argument or a malformed opportunity (named in the message), e.g. a
            lost deal whose last stage change does not end in its stage.
    """
    plan, names = stage_names(plan)
    group_by = to_by(by)
    members = _teams(teams)
    team_of: dict[str, str] | None = None
    if teams is not None:
        team_of = {rep: team for team, reps in members.items() for rep in reps}
    check_label(missing, "missing")
    if missing in plan.lost_reasons:
        raise ValidationError(
            "missing", missing, "a label that is not one of the plan's lost reasons"
        )
    check_places(places)
    check_currency(currency)
    lost = frozenset(s.key for s in plan.lost_stages)
    known = frozenset(plan.keys)
    readers = [_group_reader(name, team_of) for name in group_by]
    single = len(readers) == 1
    cells: dict[tuple[Any, Any], Cell] = {}
    rows = mapped(opportunities, check_fields(fields))
    for item in within(rows, names, created=created, closed=closed, tz=tz):
        try:
            stage = item.stage
            if stage not in lost:
                if stage in known:
                    continue
                stage = names.key(stage, where=where(item))  # a display name, or raises
                if stage not in lost:
                    continue
            history = getattr(item, "history", None)
            reason: str | None = None
            died_in: str | None = None
            if history:
                last = history[-1]
                if names.find(last.to_stage) != stage:
                    raise ValidationError(
                        "history",
                        last.to_stage,
                        f"a last change that ends in the current stage {stage!r}",
                        where=where(item),
                    )
                reason, died_in = getattr(last, "reason", None), last.from_stage
                died_in = names.find(died_in) or died_in
            if single:
                group: Any = readers[0](item, died_in)
            else:
                group = tuple(read(item, died_in) for read in readers)
        except AttributeError as exc:
            raise InvalidTypeError(
                exc.name or "opportunity",
                getattr(exc, "obj", None),
                "an object with the attributes the calculator reads (stage, amount, history and "
                "the grouping ones)",
            ) from exc
        amount, code = money_of(item, currency)
        key = (label(group, missing), label(reason, missing))
        cell = cells.get(key)
        if cell is None:
            cells[key] = [1, {code: amount}]
        else:
            cell[0] += 1
            per_currency = cell[1]
            per_currency[code] = per_currency.get(code, ZERO) + amount
    counts: dict[Any, dict[Any, int]] = {}
    amounts: dict[Any, dict[Any, dict[str, Decimal]]] = {}
    for (group, reason), (count, per_currency) in cells.items():
        counts.setdefault(group, {})[reason] = count
        amounts.setdefault(group, {})[reason] = per_currency
    found = {reason for _group, reason in cells}
    others = sorted(found - set(plan.lost_reasons) - {missing}, key=sort_key)
    values = [*plan.lost_reasons, *others, *([missing] if missing in found else [])]
    return LostReasons(
        plan=plan,
        missing=missing,
        dimension="reason",
        by=group_by,
        counts=counts,
        amounts=amounts,
        values=values,
        places=places,
        currency=currency,
    )
