"""A range, not just a point: the distribution of the amount a period's open deals will sign.

Model and rules (pinned by tests):

* Each open deal is signed, for its full amount, independently of the others, with its stage's
  probability (or a learned one, ``probabilities=``). Won and lost deals are not in the range;
  neither is a deal of probability 0.
* ``mean`` is the expected amount, ``sum(amount x probability / 100)`` computed exactly in
  ``Decimal`` (not rounded per deal): the unthresholded weighted sum. ``weighted`` is the same sum
  rounded per deal as the forecast rounds, for comparison.
* ``p10``, ``p50``, ``p90`` are quantiles: the smallest amount ``v`` with ``P(signed <= v) >= q``.
  Every value of the distribution is a sum of deal amounts, so quantiles are exact
  :class:`~salesflow.domain.money.Money` (the sums run in integer minor units).
* ``chance`` is ``P(signed >= target)`` in percent, when a target is given.
* **Exact** (``method="exact"``, or ``"auto"`` when the possible sums number at most ``max_bins``,
  counted as outcomes or as steps of the amounts' greatest common divisor): the distribution by
  dynamic programming over deals, deals of equal amount and probability taken together as a
  binomial (over the sums themselves, or over the grid of steps with FFT convolution, whichever
  is smaller). Outcome probabilities are floats
  (never money): a quantile sits exactly on its level only up to float rounding (~1e-12).
* **Simulated** (``method="simulate"``, or ``"auto"`` beyond ``max_bins``): ``samples`` seeded
  draws (numpy's PCG64 from ``seed``: the same seed gives the same result). The error is bounded by
  the Dvoretzky-Kiefer-Wolfowitz inequality: with probability at least ``1 - alpha`` the sampled
  distribution function is within ``error_bound = sqrt(ln(2 / alpha) / (2 x samples))`` of the
  true one everywhere, so a reported ``p10`` lies between the true quantiles of levels
  ``0.10 - error_bound`` and ``0.10 + error_bound``, and ``chance`` within ``error_bound x 100``
  points of the true chance.

Needs numpy (installed with the ``pandas`` extra).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

import attrs

from salesflow.analytics.grouping import group_fields, sort_key, to_by
from salesflow.domain.money import Money, currency_exponent
from salesflow.domain.numbers import EXACT, HUNDRED, ZERO, to_percent
from salesflow.domain.periods import Period
from salesflow.domain.stages import StagePlan
from salesflow.errors import (
    CurrencyMismatchError,
    InvalidTypeError,
    MissingDependencyError,
    ValidationError,
)
from salesflow.tables import Table, matplotlib_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["QUANTILES", "ForecastRange", "RangeRow", "dkw_bound", "forecast_range"]

QUANTILES = (Fraction(1, 10), Fraction(1, 2), Fraction(9, 10))
"""The levels reported: P10, P50, P90."""

Method = Literal["auto", "exact", "simulate"]


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise MissingDependencyError("numpy", "pandas", "forecast_range()") from exc
    return numpy


def dkw_bound(samples: int, alpha: float) -> float:
    """The Dvoretzky-Kiefer-Wolfowitz bound: with probability ``1 - alpha`` the empirical
    distribution function of ``samples`` draws is within this of the true one everywhere."""
    return math.sqrt(math.log(2 / alpha) / (2 * samples))


@attrs.frozen(kw_only=True)
class RangeRow:
    """The range of one group: its deals, mean, quantiles and the chance of reaching the target."""

    group: Any
    currency: str
    count: int
    mean: Decimal
    """The exact expected amount (unthresholded weighted sum, not rounded)."""
    weighted: Money
    """The weighted sum rounded per deal (the forecast's rounding)."""
    p10: Money
    p50: Money
    p90: Money
    target: Money | None
    chance: Decimal | None
    """P(signed >= target) in percent (two decimals), or None without a target."""
    method: str
    """``exact`` or ``simulate``."""
    samples: int | None
    error_bound: Decimal | None
    """DKW bound (a probability) of a simulation, None for an exact result."""
    support: Any = attrs.field(default=None, repr=False, eq=False)
    """(values in minor units, probabilities): the exact distribution or the sorted samples."""


class ForecastRange(Table):
    """The result of :func:`forecast_range`: one :class:`RangeRow` per group."""

    def __init__(self, rows: list[RangeRow], by: tuple[str, ...], period: Period | None) -> None:
        self.rows = rows
        """The rows, in group order."""
        self.by = by
        """The grouping attributes."""
        self.period = period
        """The period of expected close (None: every open deal)."""

    def row(self, group: Any = ()) -> RangeRow:
        """The row of ``group`` (``()`` when not grouped)."""
        for row in self.rows:
            if row.group == group:
                return row
        raise ValidationError("group", group, f"one of {[r.group for r in self.rows]}")

    def to_records(self) -> list[dict[str, Any]]:
        """One record per group and currency: the group columns, ``currency``, ``count``,
        ``mean``, ``weighted``, ``p10``, ``p50``, ``p90``, ``target``, ``chance`` (percent),
        ``method``, ``samples``, ``error_bound``."""
        return [
            {
                **group_fields(self.by, r.group),
                "currency": r.currency,
                "count": r.count,
                "mean": r.mean,
                "weighted": r.weighted.amount,
                "p10": r.p10.amount,
                "p50": r.p50.amount,
                "p90": r.p90.amount,
                "target": None if r.target is None else r.target.amount,
                "chance": r.chance,
                "method": r.method,
                "samples": r.samples,
                "error_bound": r.error_bound,
            }
            for r in self.rows
        ]

    def record_columns(self) -> list[str]:
        """The columns of :meth:`to_records`."""
        return [
            *self.by,
            "currency",
            "count",
            "mean",
            "weighted",
            "p10",
            "p50",
            "p90",
            "target",
            "chance",
            "method",
            "samples",
            "error_bound",
        ]

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        span = f" closing in {self.period}" if self.period is not None else ""
        return f"Range of the amount signed{span} (P10 / P50 / P90)"

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Per group: a bar from P10 to P90, a tick at P50 and a dot at the mean."""
        title = kw.pop("title", self.caption)  # before kw reaches the bars, which refuse it
        axes = matplotlib_axes(ax)
        labels = [
            " / ".join(map(str, group_fields(self.by, r.group).values())) or "(all)"
            for r in self.rows
        ]
        for i, r in enumerate(self.rows):
            low, high = float(r.p10.amount), float(r.p90.amount)
            axes.bar(i, high - low, bottom=low, width=0.5, alpha=0.4, **kw)
            axes.plot([i - 0.25, i + 0.25], [float(r.p50.amount)] * 2, color="black")
            axes.plot(i, float(r.mean), "o", color="black")
        axes.set_xticks(range(len(labels)), labels)
        axes.set_title(title)
        return axes


def _binomial(np: Any, k: int, p: float) -> Any:
    if p >= 1.0:
        out = np.zeros(k + 1)
        out[k] = 1.0
        return out
    j = np.arange(k + 1)
    logs = np.array(
        [math.lgamma(k + 1) - math.lgamma(i + 1) - math.lgamma(k - i + 1) for i in range(k + 1)]
    )
    return np.exp(logs + j * math.log(p) + (k - j) * math.log1p(-p))


def _convolve(np: Any, a: Any, b: Any) -> Any:
    if min(len(a), len(b)) <= 64:
        return np.convolve(a, b)
    size = len(a) + len(b) - 1
    n = 1 << (size - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(a, n) * np.fft.rfft(b, n), n)[:size]
    return np.clip(out, 0.0, None)


def _exact(np: Any, classes: dict[tuple[int, float], int], step: int) -> tuple[Any, Any]:
    # Shortest first, two at a time: the arrays grow slowly, so the convolutions stay cheap.
    heap: list[tuple[int, int, Any]] = []
    for i, ((units, p), k) in enumerate(sorted(classes.items())):
        stride = units // step
        kernel = np.zeros(stride * k + 1)
        kernel[::stride] = _binomial(np, k, p)
        heapq.heappush(heap, (len(kernel), i, kernel))
    counter = len(heap)
    while len(heap) > 1:
        _n, _i, a = heapq.heappop(heap)
        _m, _j, b = heapq.heappop(heap)
        merged = _convolve(np, a, b)
        counter += 1
        heapq.heappush(heap, (len(merged), counter, merged))
    pmf = heap[0][2] if heap else np.ones(1)
    pmf = pmf / pmf.sum()
    values = np.nonzero(pmf > 0)[0]
    probabilities = pmf[values]
    if len(values) and int(values[-1]) * step >= 2**62:  # beyond int64: Python ints
        values = values.astype(object)
    return values * step, probabilities


def _exact_sparse(np: Any, classes: dict[tuple[int, float], int]) -> tuple[Any, Any]:
    # Few deals of very different amounts: the sums themselves, not a grid between them.
    dist: dict[int, float] = {0: 1.0}
    for (units, p), k in sorted(classes.items()):
        weights = _binomial(np, k, p).tolist()
        spread: dict[int, float] = {}
        for value, q in dist.items():
            for j, w in enumerate(weights):
                key = value + j * units
                spread[key] = spread.get(key, 0.0) + q * w
        dist = spread
    values = sorted(dist)
    pmf = np.array([dist[v] for v in values])
    return np.array(values, dtype=object if values[-1] >= 2**62 else np.int64), pmf / pmf.sum()


def _simulate(np: Any, classes: dict[tuple[int, float], int], samples: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    total = sum(units * k for (units, _p), k in classes.items())
    dtype = np.int64 if total < 2**62 else object
    sums = np.zeros(samples, dtype=dtype)
    for (units, p), k in sorted(classes.items()):
        sums += rng.binomial(k, p, samples).astype(dtype) * units
    return np.sort(sums)


def _quantile(values: Any, cdf: Any, level: Fraction) -> int:
    # The smallest value whose cdf reaches the level (a float tolerance for exact sums).
    target = float(level) - 1e-12
    index = int((cdf >= target).argmax())
    return int(values[index])


def forecast_range(
    opportunities: Iterable[Any],
    plan: StagePlan | None = None,
    *,
    period: Period | str | None = None,
    by: Sequence[str] | str = (),
    probabilities: Mapping[str, Decimal | int | str | None] | None = None,
    target: Money | None = None,
    method: Method = "auto",
    samples: int = 10_000,
    seed: int = 0,
    alpha: float = 1e-6,
    max_bins: int = 2_000_000,
) -> ForecastRange:
    """The distribution of the amount the open ``opportunities`` will sign (see the module docs).

    Args:
        opportunities: objects with ``stage``, ``amount`` (Money) and ``expected_close``, plus
            the attributes named in ``by``.
        plan: the stage plan (``StagePlan.default()`` when omitted).
        period: only deals expected to close in this period (a Period or a label like
            ``2026-Q4``); every open deal when ``None``.
        by: attribute(s) to group by; ``()`` for one range of everything.
        probabilities: stage key -> probability (percent) to use instead of the plan's, e.g.
            the learned ones (``None`` values fall back to the plan's).
        target: the amount whose chance of being reached is reported.
        method: ``"exact"``, ``"simulate"`` or ``"auto"``.
        samples, seed, alpha: the simulation's draws, seed and the DKW bound's confidence.
        max_bins: the largest exact distribution (in steps of the amounts' common divisor).
    """
    np = _numpy()
    plan = StagePlan.default() if plan is None else plan
    if not isinstance(plan, StagePlan):
        raise InvalidTypeError("plan", plan, "a StagePlan")
    if isinstance(period, str):
        period = Period.parse(period)
    if period is not None and not isinstance(period, Period):
        raise InvalidTypeError("period", period, "a Period, a label or None")
    group_by = to_by(by)
    if method not in ("auto", "exact", "simulate"):
        raise ValidationError("method", method, "'auto', 'exact' or 'simulate'")
    if type(samples) is not int or samples < 100:
        raise ValidationError("samples", samples, "an int of at least 100")
    if type(seed) is not int:
        raise InvalidTypeError("seed", seed, "an int")
    if not isinstance(alpha, float) or not 0 < alpha < 1:
        raise ValidationError("alpha", alpha, "a float between 0 and 1")
    if target is not None and not isinstance(target, Money):
        raise InvalidTypeError("target", target, "Money or None")
    chances: dict[str, Decimal] = {}
    for stage in plan.open_stages:
        given = (probabilities or {}).get(stage.key)
        chances[stage.key] = stage.probability if given is None else to_percent(given, stage.key)
    groups: dict[tuple[Any, str], dict[str, Any]] = {}
    for item in opportunities:
        stage = plan.resolve(item.stage)
        if not stage.is_open:
            continue
        close = item.expected_close
        if period is not None and (close is None or not period.contains(close)):
            continue
        chance = chances[stage.key]
        if chance == ZERO:
            continue
        amount = item.amount
        if not isinstance(amount, Money):
            raise InvalidTypeError("amount", amount, "Money", where=f"opportunity {item.id!r}")
        group = tuple(getattr(item, n) for n in group_by)
        if len(group_by) == 1:
            group = group[0]
        cell = groups.setdefault(
            (group, amount.currency), {"mean": ZERO, "weighted": ZERO, "count": 0, "classes": {}}
        )
        quantum = currency_exponent(amount.currency)
        product = EXACT.multiply(amount.amount, chance)
        cell["mean"] = EXACT.add(cell["mean"], EXACT.divide(product, HUNDRED))
        cell["weighted"] = EXACT.add(
            cell["weighted"],
            EXACT.divide(product, HUNDRED).quantize(quantum, ROUND_HALF_UP, EXACT),
        )
        cell["count"] += 1
        # Amounts in minor units (an amount with more decimals than its currency counts in
        # the finer unit of the whole group: see the scale below).
        key = (amount.amount, float(chance / HUNDRED))
        cell["classes"][key] = cell["classes"].get(key, 0) + 1
    rows = []
    for (group, code), cell in sorted(
        groups.items(), key=lambda kv: (sort_key(kv[0][0]), kv[0][1])
    ):
        if target is not None and target.currency != code:
            raise CurrencyMismatchError(code, target.currency, operation="compare a range with")
        places = max(
            [-currency_exponent(code).as_tuple().exponent]  # type: ignore[operator]
            + [max(0, -a.as_tuple().exponent) for (a, _p) in cell["classes"]]
        )
        scale = Decimal(10) ** places
        classes: dict[tuple[int, float], int] = {}
        for (a, p), k in cell["classes"].items():
            units = int(EXACT.multiply(a, scale))
            if units == 0:
                continue
            classes[(units, p)] = classes.get((units, p), 0) + k
        step = 0
        for units, _p in classes:
            step = math.gcd(step, units)
        step = step or 1
        bins = sum(units * k for (units, _p), k in classes.items()) // step + 1
        outcomes = 1
        for k in classes.values():
            outcomes = min(outcomes * (k + 1), max_bins + 1)
        feasible = outcomes <= max_bins or bins <= max_bins
        if method == "exact" and not feasible:
            raise ValidationError(
                "method",
                method,
                f"'simulate' or 'auto': {cell['count']} deals have too many possible sums for an "
                f"exact distribution (more than max_bins={max_bins})",
            )
        exact = method == "exact" or (method == "auto" and feasible)
        if exact:
            if outcomes <= max_bins and outcomes < bins:
                values, pmf = _exact_sparse(np, classes)
            else:
                values, pmf = _exact(np, classes, step)
            cdf = np.cumsum(pmf)
            bound = None
            n = None
        else:
            values = _simulate(np, classes, samples, seed)
            cdf = np.arange(1, samples + 1) / samples
            bound = Decimal(repr(round(dkw_bound(samples, alpha), 6)))
            n = samples

        def money(units: int) -> Money:
            return Money._trusted(Decimal(units).scaleb(-places), code)  # noqa: B023

        chance_pct: Decimal | None = None
        if target is not None:
            wanted = int(EXACT.multiply(target.amount, scale).to_integral_value())
            below = cdf[values < wanted]
            reach = 1.0 - (float(below[-1]) if len(below) else 0.0)
            chance_pct = Decimal(repr(max(0.0, min(1.0, reach)) * 100)).quantize(Decimal("0.01"))
        rows.append(
            RangeRow(
                group=group,
                currency=code,
                count=cell["count"],
                mean=cell["mean"],
                weighted=Money._trusted(cell["weighted"], code),
                p10=money(_quantile(values, cdf, QUANTILES[0])),
                p50=money(_quantile(values, cdf, QUANTILES[1])),
                p90=money(_quantile(values, cdf, QUANTILES[2])),
                target=target,
                chance=chance_pct,
                method="exact" if exact else "simulate",
                samples=n,
                error_bound=bound,
                support=(values, pmf if exact else None),
            )
        )
    return ForecastRange(rows, group_by, period)
