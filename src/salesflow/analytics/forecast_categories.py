"""The forecast by category: pipeline, best case, commit and closed per period and group, beside the
weighted figure.

Rules (pinned by tests):

* Every opportunity has a category on the ``as_of`` day (see
  :mod:`salesflow.analytics.forecast_lines`): its stage's, or an owner's override for an open deal.
* **Open** deals count by the period of their expected close (an expected close before the ``as_of``
  month is ``overdue``, none is ``undated``, as in :func:`~salesflow.analytics.forecast.forecast`).
  **Won** deals count as ``closed`` in the period they were won (the day of the move into the won
  stage; the expected close when history does not say), from the ``as_of`` period on: what was won
  before it is history, not forecast. Lost deals never count.
* The individual figures are the unweighted amounts per category: ``pipeline``, ``best_case``,
  ``commit``, ``closed`` and ``omitted`` (open deals taken out of the forecast by their stage or an
  override). The cumulative ones: ``commit_forecast`` = commit + closed; ``best_case_forecast`` =
  best_case + commit + closed; ``pipeline_forecast`` = pipeline + best_case + commit (every open
  deal that is not omitted).
* ``weighted`` is the forecast's expected signing amount of the same deals (open, at or above the
  threshold, amount x probability rounded per deal): per (period, group) it equals
  :func:`~salesflow.analytics.forecast.forecast`'s figure exactly.
* Amounts are exact ``Decimal`` sums per currency; currencies are never added together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from salesflow.analytics.forecast import OVERDUE, UNDATED
from salesflow.analytics.forecast_lines import forecast_lines
from salesflow.analytics.grouping import group_fields, sort_key, team_fields, to_by
from salesflow.domain.forecasts import CategoryOverride
from salesflow.domain.numbers import EXACT, ZERO
from salesflow.domain.periods import Period, PeriodKind, month_index
from salesflow.domain.stages import ForecastCategory, StagePlan
from salesflow.errors import CurrencyMismatchError, InvalidTypeError, ValidationError
from salesflow.tables import Table, plot_bars

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["CATEGORY_COLUMNS", "CUMULATIVE_COLUMNS", "ForecastCategories", "forecast_categories"]

CATEGORY_COLUMNS = ("pipeline", "best_case", "commit", "closed", "omitted")
"""The individual figures, one per :class:`~salesflow.domain.stages.ForecastCategory`."""
CUMULATIVE_COLUMNS = ("commit_forecast", "best_case_forecast", "pipeline_forecast")
"""The cumulative figures: commit + closed; best case + commit + closed; every open deal."""

_FIGURES = (*CATEGORY_COLUMNS, *CUMULATIVE_COLUMNS, "weighted")
_OVERDUE = (0, 0)
_UNDATED = (2, 0)


def _cumulative(cell: dict[str, Decimal]) -> dict[str, Decimal]:
    add = EXACT.add
    commit = add(cell["commit"], cell["closed"])
    return {
        "commit_forecast": commit,
        "best_case_forecast": add(cell["best_case"], commit),
        "pipeline_forecast": add(add(cell["pipeline"], cell["best_case"]), cell["commit"]),
    }


class ForecastCategories(Table):
    """The result of :func:`forecast_categories`: per (period, group, currency) the individual
    and cumulative category figures, the weighted figure and the number of deals."""

    def __init__(
        self,
        *,
        as_of: date,
        by: tuple[str, ...],
        kind: PeriodKind,
        cells: dict[tuple[Any, Any, str], dict[str, Any]],
    ) -> None:
        self.as_of = as_of
        """The day of the forecast."""
        self.by = by
        """The grouping attributes."""
        self.kind = kind
        """The period kind (``month`` or ``quarter``...)."""
        self._cells = cells

    @staticmethod
    def _order(key: tuple[Any, Any, str]) -> tuple[Any, ...]:
        bucket, group, code = key
        return (bucket[0], bucket[1], sort_key(group), code)

    @staticmethod
    def _label(bucket: tuple[int, Any]) -> str:
        if bucket == _OVERDUE:
            return OVERDUE
        if bucket == _UNDATED:
            return UNDATED
        return str(bucket[1])

    def figure(
        self, name: str, *, bucket: Period | str | None = None, group: Any = None
    ) -> Decimal:
        """The exact sum of figure ``name`` (a column such as ``"commit_forecast"``) over the
        cells of ``bucket`` and ``group`` (``None``: all); one currency only."""
        if name not in _FIGURES:
            raise ValidationError("name", name, f"one of {list(_FIGURES)}")
        codes = {code for (_b, _g, code) in self._cells}
        if len(codes) > 1:
            raise CurrencyMismatchError(*sorted(codes), operation="add a figure across")
        total = ZERO
        for (b, g, _code), cell in self._cells.items():
            if bucket is not None and self._label(b) != str(bucket):
                continue
            if group is not None and g != group:
                continue
            value = cell[name] if name in cell else _cumulative(cell)[name]
            total = EXACT.add(total, value)
        return total

    def to_records(self) -> list[dict[str, Any]]:
        """One record per (period, group, currency): ``bucket``, the group columns,
        ``currency``, the individual figures (:data:`CATEGORY_COLUMNS`), the cumulative ones
        (:data:`CUMULATIVE_COLUMNS`), ``weighted`` and ``count``."""
        records = []
        for key in sorted(self._cells, key=self._order):
            bucket, group, code = key
            cell = self._cells[key]
            records.append(
                {
                    "bucket": self._label(bucket),
                    **group_fields(self.by, group),
                    "currency": code,
                    **{c: cell[c] for c in CATEGORY_COLUMNS},
                    **_cumulative(cell),
                    "weighted": cell["weighted"],
                    "count": cell["count"],
                }
            )
        return records

    def total_records(self) -> list[dict[str, Any]]:
        """Per (period, currency), every group: :data:`~salesflow.analytics.grouping.ALL` in the
        first group column; every figure adds up to the records' exactly."""
        sums: dict[tuple[Any, str], dict[str, Any]] = {}
        for (bucket, _group, code), cell in self._cells.items():
            total = sums.setdefault(
                (bucket, code), {**dict.fromkeys((*CATEGORY_COLUMNS, "weighted"), ZERO), "count": 0}
            )
            for c in (*CATEGORY_COLUMNS, "weighted"):
                total[c] = EXACT.add(total[c], cell[c])
            total["count"] += cell["count"]
        return [
            {
                "bucket": self._label(bucket),
                **team_fields(self.by),
                "currency": code,
                **{c: cell[c] for c in CATEGORY_COLUMNS},
                **_cumulative(cell),
                "weighted": cell["weighted"],
                "count": cell["count"],
            }
            for (bucket, code), cell in sorted(sums.items(), key=lambda kv: (*kv[0][0], kv[0][1]))
        ]

    def record_columns(self) -> list[str]:
        """``bucket``, the group columns, ``currency``, the figures and ``count``."""
        return ["bucket", *self.by, "currency", *_FIGURES, "count"]

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        return f"Forecast by category as of {self.as_of.isoformat()} (per {self.kind})"

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """The cumulative figures and the weighted one per period, every group together (one
        currency)."""
        totals = self.total_records()
        codes = sorted({r["currency"] for r in totals})
        if len(codes) > 1:
            raise CurrencyMismatchError(*codes, operation="plot a forecast across")
        labels = [r["bucket"] for r in totals]
        series = {
            c: [float(r[c]) for r in totals]
            for c in ("commit_forecast", "best_case_forecast", "pipeline_forecast", "weighted")
        }
        title = kw.pop("title", self.caption)
        unit = f"amount ({codes[0]})" if codes else "amount"
        return plot_bars(ax, labels, series, title=title, value_label=unit, **kw)


def forecast_categories(
    opportunities: Iterable[Any],
    plan: StagePlan | None = None,
    *,
    as_of: date,
    overrides: Mapping[str, CategoryOverride] | None = None,
    by: Sequence[str] | str = ("owner",),
    kind: PeriodKind = "month",
    fiscal_year_start: int = 1,
    threshold: Decimal | int | str | None = None,
) -> ForecastCategories:
    """The forecast of ``opportunities`` by category per period and group as of ``as_of`` (see
    the module docs).

    Args:
        opportunities: objects with ``id``, ``owner``, ``stage``, ``amount`` (Money),
            ``expected_close`` and optionally ``team``, ``created`` and ``history``.
        plan: the stage plan with its categories (``StagePlan.default()`` when omitted).
        as_of: "today".
        overrides: opportunity id -> its :class:`~salesflow.domain.forecasts.CategoryOverride`.
        by: what to group by: ``"owner"``, ``"team"``, ``"stage"`` or ``"category"`` (several
            for nested groups, ``()`` for everyone).
        kind: ``"month"``, ``"quarter"`` or ``"year"``.
        fiscal_year_start: first month of the fiscal year, for quarters and years.
        threshold: the weighted figure's threshold (the plan's when omitted).
    """
    if type(as_of) is not date:
        raise InvalidTypeError("as_of", as_of, "a date (not a datetime)")
    plan = StagePlan.default() if plan is None else plan
    group_by = to_by(by)
    allowed = {"owner", "team", "stage", "category"}
    if not set(group_by) <= allowed:
        raise ValidationError("by", by, f"attributes among {sorted(allowed)}")
    if kind not in ("month", "quarter", "year"):
        raise ValidationError("kind", kind, "'month', 'quarter' or 'year'")
    if type(fiscal_year_start) is not int or not 1 <= fiscal_year_start <= 12:
        raise ValidationError("fiscal_year_start", fiscal_year_start, "a month from 1 to 12")
    now = month_index(as_of)
    first = Period.from_month_index(now, kind, fiscal_year_start=fiscal_year_start)
    cells: dict[tuple[Any, Any, str], dict[str, Any]] = {}
    add = EXACT.add
    for line in forecast_lines(
        opportunities, plan, as_of=as_of, overrides=overrides, threshold=threshold
    ):
        stage = plan[line.stage]
        if stage.is_lost:
            continue
        if stage.is_won:
            day = line.closed_on or line.expected_close
            if day is None:
                continue
            period = Period.from_month_index(
                month_index(day), kind, fiscal_year_start=fiscal_year_start
            )
            if period < first:
                continue
            bucket: tuple[int, Any] = (1, period)
        elif line.expected_close is None:
            bucket = _UNDATED
        elif month_index(line.expected_close) < now:
            bucket = _OVERDUE
        else:
            bucket = (
                1,
                Period.from_month_index(
                    month_index(line.expected_close), kind, fiscal_year_start=fiscal_year_start
                ),
            )
        values = {
            "owner": line.owner,
            "team": line.team,
            "stage": line.stage,
            "category": line.category.value,
        }
        group: Any = (
            tuple(values[n] for n in group_by) if len(group_by) != 1 else values[group_by[0]]
        )
        key = (bucket, group, line.amount.currency)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = {
                **dict.fromkeys((*CATEGORY_COLUMNS, "weighted"), ZERO),
                "count": 0,
            }
        category = ForecastCategory.CLOSED if stage.is_won else line.category
        cell[category.value] = add(cell[category.value], line.amount.amount)
        cell["weighted"] = add(cell["weighted"], line.weighted.amount)
        cell["count"] += 1
    return ForecastCategories(as_of=as_of, by=group_by, kind=kind, cells=cells)
