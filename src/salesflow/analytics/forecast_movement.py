"""What moved between two forecasts: the waterfall from the first total to the second.

Input: the forecast lines of two days (:class:`~salesflow.domain.forecasts.SnapshotLine`, from a
stored snapshot or :func:`~salesflow.analytics.forecast_lines.forecast_lines`). Rules (pinned by
tests):

* The **total** of a day is the ``measure`` of its open, not omitted deals expected to close in
  ``period`` (every open deal when ``period`` is ``None``): ``"weighted"`` (the forecast's expected
  amount) or ``"pipeline"`` (the unweighted amount).
* Every deal's change is put on exactly one step per cause, in this order, so that the steps add up
  to the second total minus the first **exactly** (per group and overall):

  - ``new``: not in the first forecast, counted in the second;
  - ``won`` / ``lost`` (with the lost reasons) / ``removed`` (gone from the second, or omitted):
    counted in the first, not in the second: minus its first value;
  - ``reopened``: closed in the first, counted in the second;
  - ``slipped`` / ``pulled_in``: the expected close moved later / earlier, in or out of the
    period: the whole value that entered or left (a date move within the period counts nothing);
  - ``amount_up`` / ``amount_down``: the amount changed (valued at the first stage);
  - ``stage_up`` / ``stage_down``: the stage moved forward / back in the plan (the rest of the
    change, including a category override that took a deal in or out of ``omitted``... which
    counts as ``removed`` / ``new``);
  - ``reassigned``: the deal changed group (owner or team): minus its first value in the old
    group, plus it in the new one (nothing overall).
* Groups are the ``by`` attributes of the second line (of the first, for a deal that is gone).
* One currency (mixed currencies raise).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

import attrs

from salesflow.analytics.grouping import group_fields, sort_key, team_fields, to_by
from salesflow.domain.forecasts import SnapshotLine
from salesflow.domain.money import currency_exponent
from salesflow.domain.numbers import EXACT, HUNDRED, ZERO
from salesflow.domain.periods import Period
from salesflow.domain.stages import ForecastCategory, StagePlan
from salesflow.errors import CurrencyMismatchError, InvalidTypeError, ValidationError
from salesflow.tables import Table, matplotlib_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["STEPS", "ForecastMovement", "MovementItem", "forecast_movement"]

STEPS = (
    "new",
    "won",
    "lost",
    "removed",
    "reopened",
    "slipped",
    "pulled_in",
    "amount_up",
    "amount_down",
    "stage_up",
    "stage_down",
    "reassigned",
)
"""The waterfall's steps, in display order."""

Measure = Literal["weighted", "pipeline"]


@attrs.frozen(kw_only=True)
class MovementItem:
    """One deal's share of one step."""

    id: str
    group: Any
    step: str
    amount: Decimal
    reason: str | None = None
    """The lost reason (``lost`` steps)."""


class ForecastMovement(Table):
    """The result of :func:`forecast_movement`: start, every step and end per group."""

    def __init__(
        self,
        *,
        start: date | None,
        end: date | None,
        by: tuple[str, ...],
        currency: str,
        measure: str,
        period: Period | None,
        items: list[MovementItem],
        totals: dict[Any, list[Decimal]],
    ) -> None:
        self.start = start
        """The first day."""
        self.end = end
        """The second day."""
        self.by = by
        self.currency = currency
        self.measure = measure
        self.period = period
        self.items = items
        """Every deal's contribution to a step (the drill-down)."""
        self._totals = totals  # group -> [first total, second total]

    def groups(self) -> list[Any]:
        """The groups, in order."""
        return sorted(self._totals, key=sort_key)

    def step(self, name: str, group: Any = None) -> Decimal:
        """The exact sum of step ``name`` for ``group`` (``None``: everyone)."""
        if name not in STEPS:
            raise ValidationError("name", name, f"one of {list(STEPS)}")
        total = ZERO
        for item in self.items:
            if item.step == name and (group is None or item.group == group):
                total = EXACT.add(total, item.amount)
        return total

    def total(self, which: Literal["start", "end"], group: Any = None) -> Decimal:
        """The first (``"start"``) or second (``"end"``) total of ``group`` (``None``: all)."""
        at = 0 if which == "start" else 1
        values = [v[at] for g, v in self._totals.items() if group is None or g == group]
        total = ZERO
        for value in values:
            total = EXACT.add(total, value)
        return total

    def lost_reasons(self, group: Any = None) -> dict[str | None, tuple[int, Decimal]]:
        """Lost reason -> (deals, amount) of the ``lost`` step."""
        found: dict[str | None, tuple[int, Decimal]] = {}
        for item in self.items:
            if item.step == "lost" and (group is None or item.group == group):
                count, amount = found.get(item.reason, (0, ZERO))
                found[item.reason] = (count + 1, EXACT.add(amount, item.amount))
        return dict(sorted(found.items(), key=lambda kv: sort_key(kv[0])))

    def _record(self, fields: dict[str, Any], group: Any) -> dict[str, Any]:
        record = {**fields, "currency": self.currency, "start": self.total("start", group)}
        for name in STEPS:
            record[name] = self.step(name, group)
        record["end"] = self.total("end", group)
        return record

    def to_records(self) -> list[dict[str, Any]]:
        """One record per group: the group columns, ``currency``, ``start``, every step of
        :data:`STEPS` and ``end`` (``start`` + the steps == ``end``, exactly)."""
        return [self._record(group_fields(self.by, g), g) for g in self.groups()]

    def total_records(self) -> list[dict[str, Any]]:
        """Everyone's waterfall (:data:`~salesflow.analytics.grouping.ALL`)."""
        return [self._record(team_fields(self.by), None)]

    def record_columns(self) -> list[str]:
        """The group columns, ``currency``, ``start``, the steps, ``end``."""
        return [*self.by, "currency", "start", *STEPS, "end"]

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        span = f" closing in {self.period}" if self.period is not None else ""
        return f"Forecast movement ({self.measure}{span}) from {self.start} to {self.end}"

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """The waterfall of everyone: the first total, each step floating, the second total."""
        title = kw.pop("title", self.caption)  # before kw reaches the bars, which refuse it
        axes = matplotlib_axes(ax)
        labels = ["start", *STEPS, "end"]
        level = float(self.total("start"))
        axes.bar(0, level, color="#555", **kw)
        for i, name in enumerate(STEPS, start=1):
            change = float(self.step(name))
            axes.bar(i, change, bottom=level, color="#14632d" if change >= 0 else "#9f1c1c", **kw)
            level += change
        axes.bar(len(labels) - 1, float(self.total("end")), color="#555", **kw)
        axes.set_xticks(range(len(labels)), labels)
        axes.tick_params(axis="x", labelrotation=45)
        axes.set_title(title)
        return axes


def _value(line: SnapshotLine, measure: str) -> Decimal:
    return line.weighted.amount if measure == "weighted" else line.amount.amount


def _weighted(amount: Decimal, line: SnapshotLine, measure: str, threshold: Decimal) -> Decimal:
    """``amount`` valued at ``line``'s stage (what the first forecast would say of it)."""
    if measure == "pipeline":
        return amount
    probability = line.probability
    if probability < threshold:
        return ZERO
    product = EXACT.multiply(amount, EXACT.divide(probability, HUNDRED))
    return product.quantize(currency_exponent(line.amount.currency), ROUND_HALF_UP, EXACT)


def forecast_movement(
    first: Iterable[SnapshotLine],
    second: Iterable[SnapshotLine],
    plan: StagePlan | None = None,
    *,
    start: date | None = None,
    end: date | None = None,
    period: Period | str | None = None,
    by: Sequence[str] | str = ("owner",),
    measure: Measure = "weighted",
    currency: str | None = None,
) -> ForecastMovement:
    """The waterfall from the forecast lines ``first`` to ``second`` (see the module docs).

    Args:
        first, second: the lines of the two days (snapshots or reconstructions).
        plan: the stage plan (stage order for up/down; ``StagePlan.default()`` when omitted).
        start, end: the two days (labels only).
        period: only deals expected to close in this period count (``None``: all open deals).
        by: ``"owner"`` and/or ``"team"``; ``()`` for everyone.
        measure: ``"weighted"`` or ``"pipeline"``.
        currency: the currency of an empty result.
    """
    plan = StagePlan.default() if plan is None else plan
    if isinstance(period, str):
        period = Period.parse(period)
    if period is not None and not isinstance(period, Period):
        raise InvalidTypeError("period", period, "a Period, a label or None")
    group_by = to_by(by)
    if not set(group_by) <= {"owner", "team"}:
        raise ValidationError("by", by, "'owner' and/or 'team'")
    if measure not in ("weighted", "pipeline"):
        raise ValidationError("measure", measure, "'weighted' or 'pipeline'")
    threshold = plan.threshold
    order = {key: i for i, key in enumerate(plan.keys)}
    before = {line.id: line for line in first}
    after = {line.id: line for line in second}
    codes = {line.amount.currency for line in (*before.values(), *after.values())}
    if len(codes) > 1:
        raise CurrencyMismatchError(*sorted(codes), operation="compare forecasts across")
    code = next(iter(codes)) if codes else currency
    if code is None:
        raise ValidationError("currency", None, "a currency for an empty movement")

    def group_of(line: SnapshotLine) -> Any:
        values = tuple(getattr(line, n) for n in group_by)
        return values[0] if len(group_by) == 1 else values

    def in_period(line: SnapshotLine) -> bool:
        if period is None:
            return True
        return line.expected_close is not None and period.contains(line.expected_close)

    def counted(line: SnapshotLine | None) -> bool:
        return (
            line is not None
            and plan[line.stage].is_open
            and line.category is not ForecastCategory.OMITTED
            and in_period(line)
        )

    def open_(line: SnapshotLine | None) -> bool:
        return (
            line is not None
            and plan[line.stage].is_open
            and line.category is not ForecastCategory.OMITTED
        )

    items: list[MovementItem] = []
    totals: dict[Any, list[Decimal]] = {}

    def put(id_: str, group: Any, step: str, amount: Decimal, reason: str | None = None) -> None:
        totals.setdefault(group, [ZERO, ZERO])
        if amount != ZERO or step in ("won", "lost", "new", "removed"):
            items.append(MovementItem(id=id_, group=group, step=step, amount=amount, reason=reason))

    for id_ in sorted(before.keys() | after.keys()):
        old, new = before.get(id_), after.get(id_)
        was, now = counted(old), counted(new)
        if was:
            assert old is not None
            cell = totals.setdefault(group_of(old), [ZERO, ZERO])
            cell[0] = EXACT.add(cell[0], _value(old, measure))
        if now:
            assert new is not None
            cell = totals.setdefault(group_of(new), [ZERO, ZERO])
            cell[1] = EXACT.add(cell[1], _value(new, measure))
        if not was and not now:
            continue
        if was and not now:
            assert old is not None
            value = EXACT.minus(_value(old, measure))
            if new is None or not plan[new.stage].is_open:
                if new is not None and plan[new.stage].is_won:
                    put(id_, group_of(old), "won", value)
                elif new is not None and plan[new.stage].is_lost:
                    put(id_, group_of(old), "lost", value, new.lost_reason)
                else:
                    put(id_, group_of(old), "removed", value)
            elif new.category is ForecastCategory.OMITTED:
                put(id_, group_of(old), "removed", value)
            else:  # still open, out of the period: its close date moved
                later = new.expected_close is None or (
                    old.expected_close is not None and new.expected_close > old.expected_close
                )
                put(id_, group_of(old), "slipped" if later else "pulled_in", value)
            continue
        assert new is not None
        value = _value(new, measure)
        if not was:
            if old is not None and not plan[old.stage].is_open:
                put(id_, group_of(new), "reopened", value)
            elif old is None or not open_(old):
                put(id_, group_of(new), "new", value)
            else:
                earlier = old.expected_close is None or (
                    new.expected_close is not None and new.expected_close < old.expected_close
                )
                put(id_, group_of(new), "pulled_in" if earlier else "slipped", value)
            continue
        assert old is not None
        group = group_of(new)
        previous = _value(old, measure)
        if group_of(old) != group:
            put(id_, group_of(old), "reassigned", EXACT.minus(previous))
            put(id_, group, "reassigned", previous)
        at_old_stage = _weighted(new.amount.amount, old, measure, threshold)
        amount_change = EXACT.subtract(at_old_stage, previous)
        if amount_change:
            put(id_, group, "amount_up" if amount_change > 0 else "amount_down", amount_change)
        stage_change = EXACT.subtract(value, at_old_stage)
        if stage_change:
            up = order[new.stage] > order[old.stage] or (
                order[new.stage] == order[old.stage] and stage_change > 0
            )
            put(id_, group, "stage_up" if up else "stage_down", stage_change)
    return ForecastMovement(
        start=start,
        end=end,
        by=group_by,
        currency=code,
        measure=measure,
        period=period,
        items=items,
        totals=totals,
    )
