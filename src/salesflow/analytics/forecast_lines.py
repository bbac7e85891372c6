"""The forecast lines of a day: each opportunity's stage, category, amount and weighted amount as of
that day, from the opportunities and their stage history (reconstruction).

Rules (pinned by tests):

* The stage **as of a day** is the ``to_stage`` of the last history change on or before that day
  (the change's UTC date), else the ``from_stage`` of the first change (the stage the deal was in
  before any recorded move), else the current stage (no history: it never moved).
* An opportunity **did not exist yet** on a day before its ``created`` date, or before its first
  change when that change created it (``from_stage`` ``None``); it has no line.
* ``closed_on`` is the day of the change into a won or lost stage; ``lost_reason`` its reason.
* The category is the stage's (:meth:`~salesflow.domain.stages.StagePlan.category`), unless the
  deal is open and a :class:`~salesflow.domain.forecasts.CategoryOverride` in force on that day
  says otherwise.
* ``weighted`` follows the forecast's rule: open and at or above the threshold: amount x
  probability / 100 rounded half up to the minor unit; zero otherwise.

What reconstruction **cannot** know: stage history is kept, but changes to the amount, the expected
close date, the owner or the team are not. A reconstructed line carries today's values of those;
only a stored :class:`~salesflow.domain.forecasts.ForecastSnapshot` knows what they were. For a day
after which only stages moved, reconstruction equals that day's snapshot exactly (a test proves it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from salesflow.analytics.forecast import plan_and_threshold
from salesflow.analytics.inputs import StageNames
from salesflow.domain.forecasts import CategoryOverride, SnapshotLine
from salesflow.domain.money import Money, currency_exponent
from salesflow.domain.numbers import EXACT, HUNDRED
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError

__all__ = ["forecast_lines", "stage_on"]


def _day(moment: Any) -> date:
    day: date = moment.astimezone(UTC).date() if moment.utcoffset() is not None else moment.date()
    return day


def stage_on(item: Any, day: date) -> tuple[str, Any] | None:
    """``(stage, change)`` of ``item`` at the end of ``day``: the stage and the history change that
    put it there (``None`` when not known), or ``None`` when the opportunity did not exist yet."""
    created = getattr(item, "created", None)
    if created is not None and created > day:
        return None
    history = getattr(item, "history", None) or ()
    if not history:
        return item.stage, None
    last = None
    for change in history:
        if _day(change.at) <= day:
            last = change
        else:
            break
    if last is not None:
        return last.to_stage, last
    first = history[0]
    if first.from_stage is None:
        return None
    return first.from_stage, None


def forecast_lines(
    opportunities: Iterable[Any],
    plan: StagePlan | None = None,
    *,
    as_of: date,
    overrides: Mapping[str, CategoryOverride] | None = None,
    threshold: Decimal | int | str | None = None,
) -> Iterator[SnapshotLine]:
    """The :class:`~salesflow.domain.forecasts.SnapshotLine` of every opportunity that existed at
    the end of ``as_of`` (see the module docs), lazily, in input order.

    Args:
        opportunities: objects with ``id``, ``owner``, ``stage``, ``amount`` (Money),
            ``expected_close`` and optionally ``team``, ``created`` and ``history``.
        plan: the stage plan (``StagePlan.default()`` when omitted).
        as_of: the day.
        overrides: opportunity id -> its category overrides.
        threshold: the forecast threshold (the plan's when omitted).
    """
    plan, limit = plan_and_threshold(plan, as_of, threshold)
    names = StageNames(plan, defaulted=False)
    overrides = overrides or {}
    categories = plan.categories
    for item in opportunities:
        found = stage_on(item, as_of)
        if found is None:
            continue
        raw, change = found
        key = names.key(raw, where=f"opportunity {item.id!r}")
        stage = plan[key]
        amount = item.amount
        if not isinstance(amount, Money):
            raise InvalidTypeError("amount", amount, "Money", where=f"opportunity {item.id!r}")
        category = categories[key]
        override = overrides.get(item.id)
        if override is not None and stage.is_open:
            chosen = override.category_on(as_of)
            if chosen is not None:
                category = chosen
        if stage.is_open and stage.probability >= limit:
            weighted = EXACT.multiply(amount.amount, EXACT.divide(stage.probability, HUNDRED))
            value = weighted.quantize(currency_exponent(amount.currency), ROUND_HALF_UP, EXACT)
        else:
            value = currency_exponent(amount.currency) * 0
        closed = not stage.is_open and change is not None
        yield SnapshotLine(
            id=item.id,
            owner=item.owner,
            team=getattr(item, "team", None),
            stage=key,
            category=category,
            amount=amount,
            probability=stage.probability,
            expected_close=item.expected_close,
            weighted=Money._trusted(value, amount.currency),
            closed_on=_day(change.at) if closed else None,
            lost_reason=getattr(change, "reason", None) if closed and stage.is_lost else None,
        )
