"""How good the forecast has been: error, APE and bias per rep at chosen lead times; Brier score and
calibration of the stage probabilities; win rate per cohort.

**Accuracy** (:func:`forecast_accuracy`), for closed periods. Rules (pinned by tests):

* The forecast of period ``P`` at lead time ``L`` days is read from the lines of the day
  ``P.end - L`` (a snapshot or a reconstruction, given by ``lines_at(day)``): the weighted amount
  of the open, not omitted deals expected to close in ``P``, plus the deals already won in ``P`` by
  that day (they are signed, not forecast). ``measure="commit"`` takes the commit forecast
  (unweighted commit + closed) instead.
* The actual is what was signed in ``P``: the amounts of ``signed`` (formal contracts: objects with
  ``owner``, ``team``, ``amount`` and ``signed_on``) by signing date.
* ``error`` = forecast - actual (positive: optimistic); ``ape`` = the absolute error over the
  actual, in percent (none when nothing was signed); per (group, lead time) over the periods: ``mape`` (mean of the APEs)
  and ``bias`` = sum of errors / sum of actuals in percent. A bias above ``tolerance`` points reads
  ``optimistic``, below minus it ``sandbagging``.

**Calibration** (:func:`forecast_calibration`): each deal closed (won or lost) by ``as_of`` whose
history shows the open stage it closed from is one prediction: that stage's probability, against
won (1) or lost (0). The **Brier score** is the mean of ``(p - outcome)^2``; the calibration table
counts predictions per probability bucket with the mean predicted probability and the observed win
rate, for the configured plan and for probabilities learned from the same history (in-sample,
:func:`~salesflow.analytics.velocity.learned_probabilities`) side by side. Deals closed without a
known open stage are counted in ``unscored``, so the table's counts plus ``unscored`` are the
closed deals.

**Cohorts** (:func:`cohort_win_rates`): closed deals per month of their ``created`` date (the
engage date of an import), won, and the win rate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from salesflow.analytics.forecast_lines import stage_on
from salesflow.analytics.grouping import group_fields, percent_of, sort_key, team_fields, to_by
from salesflow.analytics.velocity import learned_probabilities
from salesflow.domain.forecasts import SnapshotLine
from salesflow.domain.money import Money
from salesflow.domain.numbers import EXACT, ZERO
from salesflow.domain.periods import Period, month_index
from salesflow.domain.stages import ForecastCategory, StagePlan
from salesflow.errors import CurrencyMismatchError, InvalidTypeError, ValidationError
from salesflow.tables import NEGATIVE, WARNING, Table, plot_bars

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "CohortWinRates",
    "ForecastAccuracy",
    "ForecastCalibration",
    "cohort_win_rates",
    "forecast_accuracy",
    "forecast_calibration",
]

OPTIMISTIC = "optimistic"
SANDBAGGING = "sandbagging"


def _add(a: Decimal, b: Decimal) -> Decimal:
    return EXACT.add(a, b)


def _signed_percent(rate: Fraction, places: int = 1) -> Decimal:
    value = percent_of(abs(rate), places)
    return -value if rate < 0 else value


class ForecastAccuracy(Table):
    """The result of :func:`forecast_accuracy`: per (period, lead time, group) the forecast, the
    actual, the error and the APE; :meth:`summary_records` per (group, lead time)."""

    def __init__(
        self,
        *,
        by: tuple[str, ...],
        currency: str,
        cells: dict[tuple[Period, int, Any], list[Decimal]],
        tolerance: Decimal,
    ) -> None:
        self.by = by
        self.currency = currency
        self.tolerance = tolerance
        self._cells = cells  # (period, lead, group) -> [forecast, actual]

    @staticmethod
    def _ape(forecast: Decimal, actual: Decimal) -> Decimal | None:
        if actual == ZERO:
            return None
        return percent_of(Fraction(abs(EXACT.subtract(forecast, actual))) / Fraction(actual), 1)

    def _tendency(self, bias: Decimal | None) -> str:
        if bias is None:
            return ""
        if bias > self.tolerance:
            return OPTIMISTIC
        if bias < -self.tolerance:
            return SANDBAGGING
        return ""

    def _row(self, period: Period, lead: int, fields: dict[str, Any], fc: Decimal, actual: Decimal):  # type: ignore[no-untyped-def]
        error = EXACT.subtract(fc, actual)
        bias = None if actual == ZERO else _signed_percent(Fraction(error) / Fraction(actual))
        return {
            "period": str(period),
            "lead_days": lead,
            **fields,
            "currency": self.currency,
            "forecast": fc,
            "actual": actual,
            "error": error,
            "ape": self._ape(fc, actual),
            "tendency": self._tendency(bias),
        }

    def to_records(self) -> list[dict[str, Any]]:
        """One record per (period, lead time, group): ``period``, ``lead_days``, the group
        columns, ``currency``, ``forecast``, ``actual``, ``error``, ``ape`` (percent) and
        ``tendency``."""
        return [
            self._row(p, lead, group_fields(self.by, g), v[0], v[1])
            for (p, lead, g), v in sorted(
                self._cells.items(), key=lambda kv: (kv[0][0], kv[0][1], sort_key(kv[0][2]))
            )
        ]

    def total_records(self) -> list[dict[str, Any]]:
        """Per (period, lead time), every group together."""
        sums: dict[tuple[Period, int], list[Decimal]] = {}
        for (p, lead, _g), (fc, actual) in self._cells.items():
            cell = sums.setdefault((p, lead), [ZERO, ZERO])
            cell[0], cell[1] = _add(cell[0], fc), _add(cell[1], actual)
        return [
            self._row(p, lead, team_fields(self.by), v[0], v[1])
            for (p, lead), v in sorted(sums.items(), key=lambda kv: kv[0])
        ]

    def record_columns(self) -> list[str]:
        """The columns of :meth:`to_records`."""
        return [
            "period",
            "lead_days",
            *self.by,
            "currency",
            "forecast",
            "actual",
            "error",
            "ape",
            "tendency",
        ]

    def summary_records(self) -> list[dict[str, Any]]:
        """Per (group, lead time) over the periods: ``periods``, ``forecast``, ``actual``,
        ``mape`` (mean APE of the periods with an actual), ``bias`` (percent) and ``tendency``."""
        cells: dict[tuple[Any, int], list[Any]] = {}
        for (_p, lead, g), (fc, actual) in self._cells.items():
            cell = cells.setdefault((g, lead), [0, ZERO, ZERO, []])
            cell[0] += 1
            cell[1], cell[2] = _add(cell[1], fc), _add(cell[2], actual)
            ape = self._ape(fc, actual)
            if ape is not None:
                cell[3].append(ape)
        out = []
        for (g, lead), (n, fc, actual, apes) in sorted(
            cells.items(), key=lambda kv: (sort_key(kv[0][0]), kv[0][1])
        ):
            error = EXACT.subtract(fc, actual)
            bias = None if actual == ZERO else _signed_percent(Fraction(error) / Fraction(actual))
            mape = percent_of(Fraction(sum(apes, ZERO)) / len(apes) / 100, 1) if apes else None
            out.append(
                {
                    **group_fields(self.by, g),
                    "lead_days": lead,
                    "periods": n,
                    "forecast": fc,
                    "actual": actual,
                    "mape": mape,
                    "bias": bias,
                    "tendency": self._tendency(bias),
                }
            )
        return out

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        return "Forecast accuracy: forecast at each lead time vs signed"

    def _tone(self, column: str, value: Any, record: dict[str, Any]) -> str | None:
        if column == "tendency" and value:
            return WARNING if value == OPTIMISTIC else NEGATIVE
        return None

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Bias (percent) per group and lead time: above zero optimistic, below sandbagging."""
        rows = self.summary_records()
        groups = sorted({tuple(r[c] for c in self.by) for r in rows}, key=sort_key)
        leads = sorted({r["lead_days"] for r in rows})
        series = {
            f"{lead} days": [
                float(
                    next(
                        (
                            r["bias"] or 0
                            for r in rows
                            if r["lead_days"] == lead and tuple(r[c] for c in self.by) == g
                        ),
                        0,
                    )
                )
                for g in groups
            ]
            for lead in leads
        }
        labels = [" / ".join(map(str, g)) or "(all)" for g in groups]
        title = kw.pop("title", "Forecast bias per rep (percent; > 0 optimistic)")
        return plot_bars(ax, labels, series, title=title, value_label="bias (%)", **kw)


def forecast_accuracy(
    lines_at: Callable[[date], Iterable[SnapshotLine]],
    signed: Iterable[Any],
    plan: StagePlan | None = None,
    *,
    periods: Sequence[Period | str],
    lead_times: Sequence[int] = (30, 60, 90),
    by: Sequence[str] | str = ("owner",),
    measure: Literal["weighted", "commit"] = "weighted",
    currency: str | None = None,
    tolerance: Decimal | int = 10,
) -> ForecastAccuracy:
    """Forecast at each lead time vs signed, for each of ``periods`` (see the module docs).

    Args:
        lines_at: day -> the forecast lines of that day (a snapshot, or
            :func:`~salesflow.analytics.forecast_lines.forecast_lines` over stored history).
        signed: what was signed: objects with ``owner``, ``team`` (optional), ``amount`` (Money)
            and ``signed_on`` (formal contracts).
        plan: the stage plan (``StagePlan.default()`` when omitted).
        periods: closed periods (Periods or labels such as ``2026-Q3``).
        lead_times: days before each period's end.
        by: ``"owner"`` and/or ``"team"``; ``()`` for everyone.
        measure: ``"weighted"`` or ``"commit"``.
        currency: the currency of an empty result.
        tolerance: bias (percent points) beyond which a group reads optimistic / sandbagging.
    """
    plan = StagePlan.default() if plan is None else plan
    group_by = to_by(by)
    if not set(group_by) <= {"owner", "team"}:
        raise ValidationError("by", by, "'owner' and/or 'team'")
    if measure not in ("weighted", "commit"):
        raise ValidationError("measure", measure, "'weighted' or 'commit'")
    chosen = [Period.parse(p) if isinstance(p, str) else p for p in periods]
    if not chosen or not all(isinstance(p, Period) for p in chosen):
        raise ValidationError("periods", periods, "one or more Periods or labels")
    leads = list(lead_times)
    if not leads or not all(type(n) is int and n >= 0 for n in leads):
        raise ValidationError("lead_times", lead_times, "days (ints of zero or more)")

    def group_of(item: Any) -> Any:
        values = tuple(getattr(item, n, None) for n in group_by)
        return values[0] if len(group_by) == 1 else values

    cells: dict[tuple[Period, int, Any], list[Decimal]] = {}
    codes: set[str] = set() if currency is None else {currency}
    signed_items = list(signed)
    for period in chosen:
        actual: dict[Any, Decimal] = {}
        for item in signed_items:
            day = item.signed_on
            if day is None or not period.contains(day):
                continue
            amount = item.amount
            if not isinstance(amount, Money):
                raise InvalidTypeError("amount", amount, "Money")
            codes.add(amount.currency)
            g = group_of(item)
            actual[g] = _add(actual.get(g, ZERO), amount.amount)
        for lead in leads:
            day = period.end - timedelta(days=lead)
            forecast: dict[Any, Decimal] = {}
            for line in lines_at(day):
                stage = plan[line.stage]
                if stage.is_won:
                    if line.closed_on is None or not period.contains(line.closed_on):
                        continue
                    value = line.amount.amount
                elif stage.is_open:
                    if line.expected_close is None or not period.contains(line.expected_close):
                        continue
                    if line.category is ForecastCategory.OMITTED:
                        continue
                    if measure == "commit":
                        if line.category is not ForecastCategory.COMMIT:
                            continue
                        value = line.amount.amount
                    else:
                        value = line.weighted.amount
                else:
                    continue
                codes.add(line.amount.currency)
                g = group_of(line)
                forecast[g] = _add(forecast.get(g, ZERO), value)
            for g in forecast.keys() | actual.keys():
                cells[(period, lead, g)] = [forecast.get(g, ZERO), actual.get(g, ZERO)]
    if len(codes) > 1:
        raise CurrencyMismatchError(*sorted(codes), operation="compare forecasts across")
    if not codes:
        raise ValidationError("currency", None, "a currency for an empty accuracy report")
    return ForecastAccuracy(
        by=group_by, currency=codes.pop(), cells=cells, tolerance=Decimal(tolerance)
    )


# -- calibration ------------------------------------------------------------------------------


class ForecastCalibration(Table):
    """The result of :func:`forecast_calibration`: Brier score per probability source and the
    calibration table (bucket, predictions, mean predicted, observed win rate)."""

    def __init__(
        self,
        *,
        buckets: int,
        observations: dict[str, list[tuple[Fraction, int]]],
        closed: int,
        unscored: int,
    ) -> None:
        self.buckets = buckets
        self.closed = closed
        """Deals closed by ``as_of``."""
        self.unscored = unscored
        """Closed deals whose history does not show the open stage they closed from."""
        self._observations = observations  # source -> [(p as a fraction, outcome)]

    @property
    def sources(self) -> tuple[str, ...]:
        """The probability sources (``plan``, ``learned``)."""
        return tuple(self._observations)

    def brier(self, source: str = "plan") -> Decimal | None:
        """The Brier score of ``source`` (six decimals), None without predictions."""
        rows = self._observations[source]
        if not rows:
            return None
        total = sum(((p - o) ** 2 for p, o in rows), Fraction(0))
        value = total / len(rows)
        return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("1e-6"))

    def _bucket(self, p: Fraction) -> int:
        return min(int(p * self.buckets), self.buckets - 1)

    def to_records(self) -> list[dict[str, Any]]:
        """One record per (source, bucket with predictions): ``source``, ``bucket`` (percent
        range), ``count``, ``won``, ``predicted`` (mean, percent), ``observed`` (win rate,
        percent) and ``brier`` (the source's score)."""
        records = []
        width = Fraction(100, self.buckets)
        for source, rows in self._observations.items():
            cells: dict[int, list[Any]] = {}
            for p, o in rows:
                cell = cells.setdefault(self._bucket(p), [0, 0, Fraction(0)])
                cell[0] += 1
                cell[1] += o
                cell[2] += p
            brier = self.brier(source)
            for b in sorted(cells):
                n, won, total = cells[b]
                low, high = b * width, (b + 1) * width
                records.append(
                    {
                        "source": source,
                        "bucket": f"{float(low):g}-{float(high):g}%",
                        "count": n,
                        "won": won,
                        "predicted": percent_of(total / n, 1),
                        "observed": percent_of(Fraction(won, n), 1),
                        "brier": brier,
                    }
                )
        return records

    def record_columns(self) -> list[str]:
        """The columns of :meth:`to_records`."""
        return ["source", "bucket", "count", "won", "predicted", "observed", "brier"]

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        scores = ", ".join(f"{s} {self.brier(s)}" for s in self.sources)
        return (
            f"Calibration of stage probabilities ({self.closed} closed deals, "
            f"{self.unscored} unscored; Brier: {scores})"
        )

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Observed win rate against mean predicted probability per bucket, per source."""
        from salesflow.tables import matplotlib_axes

        title = kw.pop("title", "Calibration")  # before kw reaches the lines, which refuse it
        axes = matplotlib_axes(ax)
        axes.plot([0, 100], [0, 100], color="#999", linestyle="--")
        for source in self.sources:
            rows = [r for r in self.to_records() if r["source"] == source]
            axes.plot(
                [float(r["predicted"]) for r in rows],
                [float(r["observed"]) for r in rows],
                marker="o",
                label=source,
                **kw,
            )
        axes.set_xlabel("predicted (%)")
        axes.set_ylabel("observed win rate (%)")
        axes.legend()
        axes.set_title(title)
        return axes


def forecast_calibration(
    opportunities: Iterable[Any],
    plan: StagePlan | None = None,
    *,
    as_of: date,
    learned: bool = True,
    buckets: int = 10,
) -> ForecastCalibration:
    """Brier score and calibration table of the stage probabilities (see the module docs).

    Args:
        opportunities: objects with ``id``, ``stage`` and ``history``.
        plan: the stage plan (``StagePlan.default()`` when omitted).
        as_of: only deals closed by the end of this day count.
        learned: also score the probabilities learned from the same history.
        buckets: how many equal probability buckets (1 to 100).
    """
    plan = StagePlan.default() if plan is None else plan
    if type(as_of) is not date:
        raise InvalidTypeError("as_of", as_of, "a date")
    if type(buckets) is not int or not 1 <= buckets <= 100:
        raise ValidationError("buckets", buckets, "an int from 1 to 100")
    items = list(opportunities)
    sources: dict[str, dict[str, Fraction]] = {
        "plan": {s.key: Fraction(s.probability) / 100 for s in plan.open_stages}
    }
    if learned:
        found = learned_probabilities(items, plan, as_of=as_of, places=6).probabilities()
        mine: dict[str, Fraction] = {}
        for key, configured in sources["plan"].items():
            value = found.get(key)
            mine[key] = configured if value is None else Fraction(value) / 100
        sources["learned"] = mine
    observations: dict[str, list[tuple[Fraction, int]]] = {name: [] for name in sources}
    closed = unscored = 0
    for item in items:
        state = stage_on(item, as_of)
        if state is None:
            continue
        stage = plan.resolve(state[0])
        if stage.is_open:
            continue
        closed += 1
        change = state[1]
        source_stage = None if change is None else change.from_stage
        if source_stage is None or not plan.resolve(source_stage).is_open:
            unscored += 1
            continue
        key = plan.resolve(source_stage).key
        outcome = 1 if stage.is_won else 0
        for name, probabilities in sources.items():
            observations[name].append((probabilities[key], outcome))
    return ForecastCalibration(
        buckets=buckets, observations=observations, closed=closed, unscored=unscored
    )


# -- cohorts ----------------------------------------------------------------------------------


class CohortWinRates(Table):
    """The result of :func:`cohort_win_rates`: closed, won and win rate per created month."""

    def __init__(self, cells: dict[Period, list[int]], places: int) -> None:
        self._cells = cells
        self.places = places

    def to_records(self) -> list[dict[str, Any]]:
        """One record per cohort month: ``cohort``, ``closed``, ``won``, ``win_rate`` (percent)."""
        return [
            {
                "cohort": str(p),
                "closed": closed,
                "won": won,
                "win_rate": percent_of(Fraction(won, closed), self.places) if closed else None,
            }
            for p, (closed, won) in sorted(self._cells.items())
        ]

    def record_columns(self) -> list[str]:
        """The columns of :meth:`to_records`."""
        return ["cohort", "closed", "won", "win_rate"]

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        return "Win rate per cohort (month created)"

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Win rate per cohort month."""
        rows = self.to_records()
        title = kw.pop("title", self.caption)
        return plot_bars(
            ax,
            [r["cohort"] for r in rows],
            {"win rate (%)": [float(r["win_rate"] or 0) for r in rows]},
            title=title,
            **kw,
        )


def cohort_win_rates(
    opportunities: Iterable[Any],
    plan: StagePlan | None = None,
    *,
    as_of: date | None = None,
    places: int = 1,
) -> CohortWinRates:
    """Closed deals (won or lost; by the end of ``as_of`` when given) per month of ``created``,
    how many were won and the win rate. Deals without ``created`` are left out."""
    plan = StagePlan.default() if plan is None else plan
    cells: dict[Period, list[int]] = {}
    for item in opportunities:
        created = getattr(item, "created", None)
        if created is None:
            continue
        if as_of is not None:
            state = stage_on(item, as_of)
            if state is None:
                continue
            key = state[0]
        else:
            key = item.stage
        stage = plan.resolve(key)
        if stage.is_open:
            continue
        cell = cells.setdefault(Period.from_month_index(month_index(created)), [0, 0])
        cell[0] += 1
        cell[1] += 1 if stage.is_won else 0
    return CohortWinRates(cells, places)
