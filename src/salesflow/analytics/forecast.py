"""The weighted forecast (R2, R3): what the team will sign this month, next month, and after.

Rules (pinned by tests):

* Only **open** opportunities whose stage probability is **at least** the threshold count (70 % by
  default); won and lost opportunities never count (won ones are already signed).
* Each opportunity contributes ``amount x probability / 100``, rounded to its currency's minor unit
  with ``ROUND_HALF_UP``. Every total is the exact sum of these per-opportunity amounts, so a
  drill-down always adds up to its total.
* Amounts are bucketed by the calendar month of the expected close date. An opportunity expected to
  close before the ``as_of`` month is **overdue** and reported in its own bucket; one without an
  expected close date is **undated**. Neither is ever dropped.
* Currencies are never mixed: totals are kept per currency unless ``rates`` converts every
  contribution (after rounding it in its own currency) into ``currency`` at the ``as_of`` date.
* The arithmetic is exact: products and sums run in :data:`~salesflow.domain.numbers.EXACT`, so
  an amount with 25 significant digits times a probability, or a total over millions of
  opportunities, is never cut to the default context's 28 digits before it is rounded. A ``Decimal``
  amount read from a row is held to the bounds of an amount
  (:func:`~salesflow.domain.numbers.check_bounds`).

The calculator makes one pass over its input and keeps memory proportional to the number of
(month, group, currency) buckets, never a copy of the input.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from salesflow.analytics.frames import is_frame
from salesflow.analytics.grouping import ALL, group_fields, sort_key, team_fields
from salesflow.analytics.inputs import (
    Fields,
    StageNames,
    check_fields,
    is_reiterable,
    mapped,
    row_of,
)
from salesflow.domain.money import Money, RateSource, currency_exponent
from salesflow.domain.numbers import EXACT, HUNDRED, ZERO, check_bounds, exact_sum, to_percent
from salesflow.domain.periods import Period, PeriodKind, month_index
from salesflow.domain.stages import StagePlan
from salesflow.errors import (
    CurrencyMismatchError,
    InvalidTypeError,
    SalesflowError,
    StageError,
    ValidationError,
)
from salesflow.tables import WARNING, Table, plot_bars

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "OVERDUE",
    "UNDATED",
    "Bucket",
    "Forecast",
    "ForecastItem",
    "ForecastLine",
    "forecast",
    "forecast_from_totals",
]

OVERDUE = "overdue"
"""Bucket of open opportunities expected to close before the ``as_of`` month."""
UNDATED = "undated"
"""Bucket of open opportunities without an expected close date."""

Bucket = Period | str
"""A forecast bucket: a month :class:`Period`, or :data:`OVERDUE` / :data:`UNDATED`."""

# Buckets are month indexes internally; the two sentinels sort before and after every real month.
_OVERDUE = -1
_UNDATED = 1 << 30

_EXCLUSIONS = ("won", "lost", "below_threshold")


class ForecastItem(Protocol):
    """What the forecast reads from each input object (an Opportunity, an ORM row, a namedtuple).

    ``amount`` is a :class:`Money`, or a ``Decimal`` with the currency in a ``currency`` attribute
    (or given as ``forecast(currency=...)``). The attributes named in ``by=`` are read too.
    """

    @property
    def id(self) -> str:
        """The opportunity id."""
        ...

    @property
    def stage(self) -> str:
        """The stage key."""
        ...

    @property
    def amount(self) -> Money | Decimal:
        """The unweighted amount."""
        ...

    @property
    def expected_close(self) -> date | None:
        """The expected signing date."""
        ...


@attrs.frozen(kw_only=True)
class ForecastLine:
    """One opportunity's contribution: the drill-down behind every forecast figure."""

    opportunity: Any
    """The input object itself (not a copy)."""
    group: Any
    """The group key: a value, or a tuple when grouping by several attributes."""
    bucket: Bucket
    """The month :class:`Period` of the expected close, or :data:`OVERDUE` / :data:`UNDATED`."""
    probability: Decimal
    """The stage probability applied (percent)."""
    amount: Money
    """The unweighted amount, in the opportunity's own currency."""
    expected: Money
    """The weighted, rounded amount that the totals add up (converted when rates were given)."""


def _where(item: Any) -> str:
    return f"opportunity {getattr(item, 'id', item)!r}"


class _Rules:
    """The forecast rules, compiled once per call (per-stage factors, quanta, conversion rates)."""

    def __init__(
        self,
        plan: StagePlan,
        threshold: Decimal,
        by: tuple[str, ...],
        as_of: date,
        rates: RateSource | None,
        currency: str | None,
        names: StageNames | None = None,
    ) -> None:
        counted = plan.forecast_stages(threshold)
        self.names = StageNames(plan, defaulted=False) if names is None else names
        self.threshold = threshold
        self.probabilities = {s.key: s.probability for s in counted}
        self.factors = {s.key: EXACT.divide(s.probability, HUNDRED) for s in counted}
        self.excluded = {
            s.key: "won" if s.is_won else "lost" if s.is_lost else "below_threshold"
            for s in plan
            if s.key not in self.factors
        }
        self.group_of: Callable[[Any], Any] = operator.attrgetter(*by) if by else (lambda _item: ())
        self.as_of = as_of
        self.as_of_month = month_index(as_of)
        self.rates = rates
        self.currency = currency
        self.quanta: dict[str, Decimal] = {}
        self._rate_cache: dict[str, Decimal] = {}

    def quantum(self, code: str) -> Decimal:
        if type(code) is not str:
            raise InvalidTypeError("currency", code, "an ISO 4217 code")
        quantum = self.quanta.get(code)
        if quantum is None:
            quantum = self.quanta[code] = currency_exponent(code)
        return quantum

    def rate(self, code: str) -> Decimal:
        rate = self._rate_cache.get(code)
        if rate is None:
            assert self.rates is not None
            assert self.currency is not None
            rate = (
                Decimal(1)
                if code == self.currency
                else self.rates.rate(code, self.currency, self.as_of)
            )
            if type(rate) is not Decimal or not rate.is_finite() or rate <= 0:
                raise ValidationError("rate", rate, f"a positive Decimal rate from {code}")
            self._rate_cache[code] = rate
        return rate

    def money_of(self, item: Any) -> tuple[Decimal, str]:
        """The amount and currency of ``item``: a Money, or a Decimal plus a currency."""
        amount = item.amount
        if isinstance(amount, Money):
            return amount.amount, amount.currency
        if type(amount) is Decimal and amount.is_finite():
            code = getattr(item, "currency", None) or self.currency
            if code is None:
                raise ValidationError(
                    "currency", None, "a currency attribute or currency=...", where=_where(item)
                )
            return check_bounds(amount, "amount", where=_where(item)), code
        raise InvalidTypeError("amount", amount, "Money or a finite Decimal", where=_where(item))

    def key_of(self, item: Any) -> str:
        """The key of ``item``'s stage (given by key or display name)."""
        return self.names.key(item.stage, where=_where(item))

    def exclusion(self, item: Any) -> str:
        """Why ``item`` does not count (its stage is closed or below the threshold)."""
        return self.excluded[self.key_of(item)]

    def unknown_stage(self, item: Any) -> StageError:
        return self.names.error(item.stage, where=_where(item))

    def bucket_index(self, item: Any) -> int:
        close = item.expected_close
        if close is None:
            return _UNDATED
        if not isinstance(close, date):
            raise InvalidTypeError("expected_close", close, "a date or None", where=_where(item))
        month = close.year * 12 + close.month - 1
        return _OVERDUE if month < self.as_of_month else month

    def evaluate(self, item: Any) -> tuple[int, str, Decimal] | str:
        """The contribution of ``item`` as (bucket, currency, expected), or why it is excluded.

        This is the definition of the forecast rules; ``forecast()`` inlines its common case.
        """
        factor = self.factors.get(item.stage)
        if factor is None:
            key = self.key_of(item)
            factor = self.factors.get(key)
            if factor is None:
                return self.excluded[key]
        return self.contribution(item, factor)

    def contribution(self, item: Any, factor: Decimal) -> tuple[int, str, Decimal]:
        """(bucket, currency, expected) of an item whose stage counts with ``factor``."""
        value, code = self.money_of(item)
        expected = EXACT.multiply(value, factor).quantize(self.quantum(code), ROUND_HALF_UP, EXACT)
        if self.rates is not None:
            assert self.currency is not None
            expected = EXACT.multiply(expected, self.rate(code)).quantize(
                self.quantum(self.currency), ROUND_HALF_UP, EXACT
            )
            code = self.currency
        return self.bucket_index(item), code, expected


def _bucket(index: int) -> Bucket:
    if index == _OVERDUE:
        return OVERDUE
    if index == _UNDATED:
        return UNDATED
    return Period.from_month_index(index)


def plan_and_threshold(
    plan: StagePlan | None, as_of: date, threshold: Decimal | int | str | None
) -> tuple[StagePlan, Decimal]:
    """The plan (the default when ``None``) and the threshold (the plan's when ``None``) of a
    forecast on ``as_of``, checked: what every forecast-shaped calculator takes first."""
    if type(as_of) is not date:
        raise InvalidTypeError("as_of", as_of, "a date (not a datetime)")
    plan = StagePlan.default() if plan is None else plan
    if not isinstance(plan, StagePlan):
        raise InvalidTypeError("plan", plan, "a StagePlan")
    return plan, plan.threshold if threshold is None else to_percent(threshold, "threshold")


def _arguments(
    plan: StagePlan | None,
    as_of: date,
    threshold: Decimal | int | str | None,
    by: Sequence[str] | str,
    fiscal_year_start: int,
    rates: RateSource | None,
    currency: str | None,
) -> tuple[StagePlan, Decimal, tuple[str, ...]]:
    """Validate the arguments shared by :func:`forecast` and :func:`forecast_from_totals`."""
    plan, limit = plan_and_threshold(plan, as_of, threshold)
    group_by = (by,) if isinstance(by, str) else tuple(by)
    if not all(isinstance(name, str) and name.isidentifier() for name in group_by):
        raise ValidationError("by", by, "attribute names such as 'owner' or 'team'")
    if type(fiscal_year_start) is not int or not 1 <= fiscal_year_start <= 12:
        raise ValidationError("fiscal_year_start", fiscal_year_start, "a month from 1 to 12")
    if currency is not None:
        currency_exponent(currency)  # validates the code
    elif rates is not None:
        raise ValidationError("currency", None, "the target currency when rates are given")
    return plan, limit, group_by


def forecast(
    opportunities: Iterable[ForecastItem],
    plan: StagePlan | None = None,
    *,
    as_of: date,
    threshold: Decimal | int | str | None = None,
    by: Sequence[str] | str = ("owner",),
    fiscal_year_start: int = 1,
    rates: RateSource | None = None,
    currency: str | None = None,
    keep_lines: bool | None = None,
    fields: Fields | None = None,
) -> Forecast:
    """Compute the weighted forecast of ``opportunities`` as of the date ``as_of``.

    Args:
        opportunities: any iterable of objects with ``id``, ``stage``, ``amount`` and
            ``expected_close`` (see :class:`ForecastItem`), plus the attributes named in ``by``;
            a stage may be given by its key or its display name.
        plan: the stage plan (``StagePlan.default()`` when omitted: pass yours whenever your
            stages are not the default ones).
        as_of: "today": decides this month, next month and what is overdue.
        threshold: minimum stage probability (percent, inclusive); the plan's own when omitted.
        by: attribute(s) to group by, e.g. ``"owner"`` or ``("team", "owner")``; ``()`` for the
            team total only.
        fiscal_year_start: first month of the fiscal year, for quarters (1 = calendar year).
        rates: converts every contribution into ``currency`` at ``as_of``; without it totals are
            kept per currency. ``currency`` alone names the currency of ``Decimal`` amounts and of
            an empty forecast.
        keep_lines: keep the drill-down lines in memory. By default (``None``) they are kept
            when ``opportunities`` can be read only once (a generator, a cursor, a SQLAlchemy
            ``Result``: anything that is not a collection), and a collection is re-read lazily
            by :attr:`Forecast.lines`. ``True`` always keeps them; ``False`` never does (then
            :attr:`Forecast.lines` raises for a one-shot input instead of coming back empty).
        fields: where each field comes from in your rows, e.g. ``{"amount": "value",
            "stage": lambda row: row.phase.name}`` (see :mod:`salesflow.analytics.inputs`).

    Raises:
        StageError: an opportunity's stage is not in the plan.
        ValidationError: a bad argument or a malformed opportunity (named in the message).
    """
    given = plan
    plan, limit, group_by = _arguments(
        plan, as_of, threshold, by, fiscal_year_start, rates, currency
    )
    mapping = check_fields(fields)
    if keep_lines is not None and type(keep_lines) is not bool:
        raise InvalidTypeError("keep_lines", keep_lines, "True, False or None")
    names = StageNames(plan, defaulted=given is None)
    rules = _Rules(plan, limit, group_by, as_of, rates, currency, names)
    if is_frame(opportunities):  # a DataFrame: computed on its columns (analytics.columnar)
        from salesflow.analytics.columnar import forecast_frame

        return forecast_frame(
            opportunities,
            rules=rules,
            plan=plan,
            by=group_by,
            fiscal_year_start=fiscal_year_start,
            currency=currency,
            keep_lines=keep_lines,
            fields=mapping,
        )
    reiterable = is_reiterable(opportunities)
    keep = not reiterable if keep_lines is None else keep_lines
    items = mapped(opportunities, mapping)
    kept: list[ForecastLine] | None = [] if keep else None
    cells: dict[tuple[int, Any, str], list[Any]] = {}  # key -> [sum, count]
    skipped = dict.fromkeys(rules.excluded, 0)  # excluded stage -> count
    last_skipped: Any = None

    # The hot loop runs once per opportunity over pipelines of millions, so the common case
    # (a Money amount, a plain date or None, no conversion) is inlined; everything else goes
    # through _Rules.contribution, the one definition of the rules. Tests pin that both agree.
    # Products and sums use EXACT's methods, never the current context (28 digits by default).
    multiply, add = EXACT.multiply, EXACT.add
    factors = rules.factors
    group_of = rules.group_of
    as_of_month = rules.as_of_month
    simple = rates is None
    last_code: str | None = None
    quantum = Decimal(1)
    try:
        for item in items:
            stage = item.stage
            factor = factors.get(stage)
            if factor is None:
                try:
                    skipped[stage] += 1
                except (KeyError, TypeError):
                    stage_key = rules.key_of(item)  # a display name, or an unknown stage (raises)
                    factor = factors.get(stage_key)
                    if factor is None:
                        skipped[stage_key] += 1
                if factor is None:
                    last_skipped = item
                    continue
            money = item.amount
            close = item.expected_close
            if simple and type(money) is Money and (close is None or type(close) is date):
                code = money.currency
                if code != last_code:
                    quantum, last_code = rules.quantum(code), code
                expected = multiply(money.amount, factor).quantize(quantum, ROUND_HALF_UP, EXACT)
                if close is None:
                    index = _UNDATED
                else:
                    index = close.year * 12 + close.month - 1
                    if index < as_of_month:
                        index = _OVERDUE
            else:
                index, code, expected = rules.contribution(item, factor)
            key = (index, group_of(item), code)
            cell = cells.get(key)
            if cell is None:
                cells[key] = [expected, 1]
            else:
                cell[0] = add(cell[0], expected)
                cell[1] += 1
            if kept is not None:
                kept.append(_line(rules, item, index, code, expected))
    except AttributeError as exc:
        raise InvalidTypeError(
            exc.name or "opportunity",
            getattr(exc, "obj", None),
            "an object with the attributes the forecast reads (see ForecastItem)",
        ) from exc

    excluded = dict.fromkeys(_EXCLUSIONS, 0)
    for stage_key, count in skipped.items():
        excluded[rules.excluded[stage_key]] += count
    fallback = currency
    if fallback is None and last_skipped is not None:
        fallback = rules.money_of(last_skipped)[1]
    sums = {key: cell[0] for key, cell in cells.items()}
    counts = {key: cell[1] for key, cell in cells.items()}
    return Forecast(
        rules=rules,
        plan=plan,
        by=group_by,
        fiscal_year_start=fiscal_year_start,
        sums=sums,
        counts=counts,
        excluded=excluded,
        fallback_currency=fallback,
        source=items if reiterable else None,
        lines=kept,
    )


def forecast_from_totals(
    totals: Iterable[tuple[int | None, Any, str, Decimal, int]],
    plan: StagePlan | None = None,
    *,
    as_of: date,
    threshold: Decimal | int | str | None = None,
    by: Sequence[str] | str = ("owner",),
    fiscal_year_start: int = 1,
    excluded: Mapping[str, int] | None = None,
    unknown_stages: Sequence[str] = (),
    currency: str | None = None,
    source: Iterable[Any] | None = None,
) -> Forecast:
    """Build the :class:`Forecast` of sums computed elsewhere, e.g. by a database ``GROUP BY``.

    This is how a storage backend pushes the forecast down: it sums, per expected-close month,
    group and currency, the rounded per-opportunity contributions of the counted stages, and this
    function applies the rest of the rules (overdue and undated buckets), so that the result equals
    :func:`forecast` over the same opportunities exactly.

    Args:
        totals: rows of ``(month, group, currency, sum, count)``; ``month`` is
            :func:`~salesflow.domain.periods.month_index` of the expected close, ``None`` if
            undated; ``group`` is shaped as ``by`` says (a value, or a tuple for several).
        excluded: how many stored opportunities are in each stage that does not count.
        unknown_stages: stages found in storage that the plan does not know (an error, as in
            :func:`forecast`).
        currency: the currency of an empty forecast.
        source: a re-iterable of the opportunities, for the drill-down.
    """
    plan, limit, group_by = _arguments(
        plan, as_of, threshold, by, fiscal_year_start, None, currency
    )
    rules = _Rules(plan, limit, group_by, as_of, None, currency)
    if unknown_stages:
        raise StageError(
            "stage", unknown_stages[0], f"one of {list(plan.keys)}", where="stored opportunities"
        )
    sums: dict[tuple[int, Any, str], Decimal] = {}
    counts: dict[tuple[int, Any, str], int] = {}
    for month, group, code, total, count in totals:
        index = _UNDATED if month is None else _OVERDUE if month < rules.as_of_month else month
        key = (index, group, code)
        sums[key] = EXACT.add(sums.get(key, ZERO), total)
        counts[key] = counts.get(key, 0) + count
    reasons = dict.fromkeys(_EXCLUSIONS, 0)
    for stage_key, count in (excluded or {}).items():
        if stage_key not in rules.excluded:
            raise ValidationError("excluded", stage_key, "stages of the plan that do not count")
        reasons[rules.excluded[stage_key]] += count
    return Forecast(
        rules=rules,
        plan=plan,
        by=group_by,
        fiscal_year_start=fiscal_year_start,
        sums=sums,
        counts=counts,
        excluded=reasons,
        fallback_currency=currency,
        source=source,
        lines=None,
    )


def _line(rules: _Rules, item: Any, index: int, code: str, expected: Decimal) -> ForecastLine:
    value, original = rules.money_of(item)
    return ForecastLine(
        opportunity=row_of(item),
        group=rules.group_of(item),
        bucket=_bucket(index),
        probability=rules.probabilities[rules.key_of(item)],
        amount=Money._trusted(value, original),
        expected=Money._trusted(expected, code),
    )


class Forecast(Table):
    """The result of :func:`forecast`: totals by month, group and currency, and the drill-down.

    Money-valued accessors (:attr:`total`, :attr:`by_month`...) return :class:`Money` and raise
    :class:`~salesflow.errors.CurrencyMismatchError` when the figure spans several currencies; use
    :attr:`totals` or :meth:`in_currency` then, or pass ``rates`` to :func:`forecast`.
    """

    def __init__(
        self,
        *,
        rules: _Rules,
        plan: StagePlan,
        by: tuple[str, ...],
        fiscal_year_start: int,
        sums: dict[tuple[int, Any, str], Decimal],
        counts: dict[tuple[int, Any, str], int],
        excluded: dict[str, int],
        fallback_currency: str | None,
        source: Iterable[Any] | None,
        lines: list[ForecastLine] | None,
    ) -> None:
        self._rules = rules
        self._sums = sums
        self._counts = counts
        self._source = source
        self._lines = lines
        self._fallback = fallback_currency
        self.plan = plan
        """The stage plan used."""
        self.by = by
        """The attributes the groups are made of."""
        self.fiscal_year_start = fiscal_year_start
        """First month of the fiscal year (for quarters)."""
        self.excluded = excluded
        """How many opportunities did not count, by reason: won, lost, below_threshold."""

    # -- parameters -------------------------------------------------------------------------

    @property
    def as_of(self) -> date:
        """The date the forecast was made for."""
        return self._rules.as_of

    @property
    def threshold(self) -> Decimal:
        """The probability threshold used (percent, inclusive)."""
        return self._rules.threshold

    @property
    def current_month(self) -> Period:
        """The month of :attr:`as_of`."""
        return Period.from_month_index(self._rules.as_of_month)

    # -- internal sums --------------------------------------------------------------------------

    def _collect(self, keep: Callable[[int, Any], bool]) -> dict[str, Decimal]:
        per_currency: dict[str, Decimal] = {}
        for (index, group, code), value in self._sums.items():
            if keep(index, group):
                per_currency[code] = EXACT.add(per_currency.get(code, ZERO), value)
        return per_currency

    def _money(self, per_currency: dict[str, Decimal], what: str) -> Money:
        if len(per_currency) > 1:
            raise CurrencyMismatchError(*sorted(per_currency), operation=f"total {what} across")
        if per_currency:
            ((code, value),) = per_currency.items()
            return Money._trusted(value, code)
        codes = self.currencies
        if len(codes) > 1:
            raise CurrencyMismatchError(*codes, operation=f"total {what} across")
        fallback = codes[0] if codes else self._fallback
        if fallback is None:
            raise ValidationError(
                "currency", None, "forecast(currency=...) to total an empty input"
            )
        return Money.zero(fallback)

    def _grouped(self, key_of: Callable[[int, Any], Any], what: str) -> dict[Any, Money]:
        buckets: dict[Any, dict[str, Decimal]] = {}
        for (index, group, code), value in self._sums.items():
            per_currency = buckets.setdefault(key_of(index, group), {})
            per_currency[code] = EXACT.add(per_currency.get(code, ZERO), value)
        return {k: self._money(v, what) for k, v in buckets.items()}

    # -- totals ---------------------------------------------------------------------------------

    @property
    def currencies(self) -> tuple[str, ...]:
        """The currencies of the contributions, sorted."""
        return tuple(sorted({code for (_i, _g, code) in self._sums}))

    @property
    def totals(self) -> dict[str, Money]:
        """The total per currency."""
        return {
            code: Money._trusted(value, code)
            for code, value in sorted(self._collect(lambda i, g: True).items())
        }

    @property
    def total(self) -> Money:
        """Everything expected: all months, overdue and undated."""
        return self._money(self._collect(lambda i, g: True), "the forecast")

    @property
    def count(self) -> int:
        """How many opportunities contributed."""
        return sum(self._counts.values())

    def month(self, period: Period | date | str) -> Money:
        """The expected amount of one month (a Period, any date in it, or a label like ``2026-12``)."""
        index = _month_of(period)
        return self._money(self._collect(lambda i, g: i == index), f"month {period}")

    @property
    def this_month(self) -> Money:
        """Expected signing amount of the ``as_of`` month."""
        return self.month(self.current_month)

    @property
    def next_month(self) -> Money:
        """Expected signing amount of the month after ``as_of``."""
        return self.month(self.current_month.next())

    @property
    def overdue(self) -> Money:
        """Open opportunities whose expected close lies before the ``as_of`` month (slipped)."""
        return self._money(self._collect(lambda i, g: i == _OVERDUE), "overdue")

    @property
    def undated(self) -> Money:
        """Open opportunities without an expected close date."""
        return self._money(self._collect(lambda i, g: i == _UNDATED), "undated")

    def bucket_count(self, bucket: Bucket) -> int:
        """How many opportunities are in ``bucket`` (a month Period, OVERDUE or UNDATED)."""
        index = _index_of(bucket)
        return sum(n for (i, _g, _c), n in self._counts.items() if i == index)

    # -- breakdowns ------------------------------------------------------------------------------

    @property
    def by_month(self) -> dict[Period, Money]:
        """Expected amount per month from the ``as_of`` month on, in time order (months with
        nothing expected are left out; overdue and undated are separate)."""
        months = self._grouped(lambda i, g: i, "a month")
        return {
            Period.from_month_index(i): months[i]
            for i in sorted(months)
            if i not in (_OVERDUE, _UNDATED)
        }

    def by_period(self, kind: PeriodKind = "month") -> dict[Period, Money]:
        """Expected amount per month, (fiscal) quarter or year, in time order. A period that
        began before ``as_of`` holds only its months from the ``as_of`` month on."""
        fys = self.fiscal_year_start
        periods = self._grouped(
            lambda i, g: (
                i
                if i in (_OVERDUE, _UNDATED)
                else Period.from_month_index(i, kind, fiscal_year_start=fys)
            ),
            "a period",
        )
        return {p: periods[p] for p in sorted(k for k in periods if isinstance(k, Period))}

    @property
    def by_quarter(self) -> dict[Period, Money]:
        """Expected amount per (fiscal) quarter; see :meth:`by_period`."""
        return self.by_period("quarter")

    @property
    def by_group(self) -> dict[Any, Money]:
        """Expected amount per group (all buckets), keyed as ``by`` describes."""
        groups = self._grouped(lambda i, g: g, "a group")
        return {g: groups[g] for g in sorted(groups, key=sort_key)}

    def totals_by(self, attribute: str) -> dict[Any, Money]:
        """Expected amount per value of one of the ``by`` attributes (e.g. per owner when grouped
        by team and owner)."""
        if attribute not in self.by:
            raise ValidationError(
                "attribute", attribute, f"one of the grouping attributes {self.by}"
            )
        if len(self.by) == 1:
            return self.by_group
        position = self.by.index(attribute)
        values = self._grouped(lambda i, g: g[position], attribute)
        return {v: values[v] for v in sorted(values, key=sort_key)}

    @property
    def by_owner(self) -> dict[Any, Money]:
        """Expected amount per owner (needs ``"owner"`` among the ``by`` attributes)."""
        return self.totals_by("owner")

    def table(self, kind: PeriodKind = "month") -> dict[Any, dict[Bucket, Money]]:
        """The per-group x per-period table: ``{group: {bucket: Money}}`` with buckets
        OVERDUE, each period, UNDATED (only non-empty cells)."""
        fys = self.fiscal_year_start
        cells = self._grouped(
            lambda i, g: (
                g,
                i
                if i in (_OVERDUE, _UNDATED)
                else Period.from_month_index(i, kind, fiscal_year_start=fys),
            ),
            "a cell",
        )
        result: dict[Any, dict[Bucket, Money]] = {}
        for group, bucket in sorted(cells, key=lambda k: (sort_key(k[0]), _bucket_sort(k[1]))):
            label = bucket if isinstance(bucket, Period) else _bucket(bucket)
            result.setdefault(group, {})[label] = cells[(group, bucket)]
        return result

    def in_currency(self, currency: str) -> Forecast:
        """The part of this forecast in one currency (no conversion)."""
        sums = {k: v for k, v in self._sums.items() if k[2] == currency}
        counts = {k: v for k, v in self._counts.items() if k[2] == currency}
        lines = (
            None
            if self._lines is None
            else [line for line in self._lines if line.expected.currency == currency]
        )
        view = Forecast(
            rules=self._rules,
            plan=self.plan,
            by=self.by,
            fiscal_year_start=self.fiscal_year_start,
            sums=sums,
            counts=counts,
            excluded=self.excluded,
            fallback_currency=currency,
            source=None
            if self._source is None
            else _InCurrency(self._source, self._rules, currency),
            lines=lines,
        )
        return view

    # -- drill-down -------------------------------------------------------------------------------

    @property
    def lines(self) -> Iterator[ForecastLine]:
        """The contributing opportunities with their expected amounts, in input order.

        Kept during the forecast's one pass when the input could be read only once; otherwise
        re-read lazily from the input (nothing is copied). Never silently empty: an input that
        gives nothing when read again raises :class:`~salesflow.errors.SalesflowError`.
        """
        if self._lines is not None:
            return iter(self._lines)
        if self._source is None:
            raise SalesflowError(
                "the forecast's input could be read only once and its lines were not kept "
                "(keep_lines=False): pass a list, or leave keep_lines at its default"
            )
        return self._iter_lines(self._source)

    def _iter_lines(self, source: Iterable[Any]) -> Iterator[ForecastLine]:
        rules = self._rules
        found = 0
        for item in source:
            result = rules.evaluate(item)
            if not isinstance(result, str):
                index, code, expected = result
                found += 1
                yield _line(rules, item, index, code, expected)
        if not found and self.count:
            raise SalesflowError(
                f"the forecast's input gave nothing when read again for its {self.count} lines: "
                "it can be read only once; pass a list, or forecast(..., keep_lines=True)"
            )

    def lines_for(self, bucket: Bucket | None = None, group: Any = None) -> list[ForecastLine]:
        """The lines of one bucket and/or one group (``None`` = any)."""
        selected = []
        for line in self.lines:
            if bucket is not None and line.bucket != bucket:
                continue
            if group is not None and line.group != group:
                continue
            selected.append(line)
        return selected

    # -- tables -----------------------------------------------------------------------------------

    def to_records(self) -> list[dict[str, Any]]:
        """One record per (bucket, group, currency): ``bucket`` (label), the group attributes,
        ``currency``, ``expected`` (Decimal) and ``count``. The team's totals are
        :meth:`total_records`."""
        records = []
        for key in sorted(self._sums, key=lambda k: (_bucket_sort(k[0]), sort_key(k[1]), k[2])):
            index, group, code = key
            bucket = _bucket(index)
            records.append(
                {
                    "bucket": str(bucket),
                    **group_fields(self.by, group),
                    "currency": code,
                    "expected": self._sums[key],
                    "count": self._counts[key],
                }
            )
        return records

    def total_records(self) -> list[dict[str, Any]]:
        """The team's totals: one record per (bucket, currency), with :data:`ALL
        <salesflow.analytics.grouping.ALL>` in the first group column; ``expected`` and
        ``count`` add up to those of :meth:`to_records`."""
        sums: dict[tuple[int, str], Decimal] = {}
        counts: dict[tuple[int, str], int] = {}
        for (index, _group, code), value in self._sums.items():
            sums[(index, code)] = EXACT.add(sums.get((index, code), ZERO), value)
            counts[(index, code)] = (
                counts.get((index, code), 0) + self._counts[(index, _group, code)]
            )
        return [
            {
                "bucket": str(_bucket(index)),
                **team_fields(self.by),
                "currency": code,
                "expected": sums[(index, code)],
                "count": counts[(index, code)],
            }
            for index, code in sorted(sums, key=lambda k: (_bucket_sort(k[0]), k[1]))
        ]

    def record_columns(self) -> list[str]:
        """``bucket``, the group attributes, ``currency``, ``expected``, ``count``."""
        return ["bucket", *self.by, "currency", "expected", "count"]

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        return (
            f"Expected signing amount as of {self.as_of.isoformat()} "
            f"(threshold {self.threshold}%, {self.count} opportunities)"
        )

    def _pivot_columns(self) -> tuple[list[int], list[str]]:
        indexes = sorted({k[0] for k in self._sums}, key=_bucket_sort)
        return indexes, [str(_bucket(i)) for i in indexes]

    def display_columns(self) -> list[str]:
        """The group attributes, ``currency``, each bucket (overdue, months, undated), total."""
        return [*self.by, "currency", *self._pivot_columns()[1], "total"]

    def display_records(self) -> list[dict[str, Any]]:
        """Groups as rows, buckets as columns (overdue, months, undated, total), one row per group
        and currency; the team's rows are :meth:`display_totals`."""
        indexes, columns = self._pivot_columns()
        rows: dict[tuple[Any, str], dict[int, Decimal]] = {}
        for (index, group, code), value in self._sums.items():
            rows.setdefault((group, code), {})[index] = value
        records = []
        for group, code in sorted(rows, key=lambda k: (k[1], sort_key(k[0]))):
            cells = rows[(group, code)]
            record: dict[str, Any] = {**group_fields(self.by, group), "currency": code}
            for index, label in zip(indexes, columns, strict=True):
                record[label] = cells.get(index)
            record["total"] = exact_sum(cells.values())
            records.append(record)
        return records

    def display_totals(self) -> list[dict[str, Any]]:
        """The team's row per currency: every bucket and the total."""
        indexes, columns = self._pivot_columns()
        records = []
        for code in self.currencies:
            record: dict[str, Any] = {**team_fields(self.by), "currency": code}
            for index, label in zip(indexes, columns, strict=True):
                record[label] = exact_sum(
                    v for (i, _g, c), v in self._sums.items() if i == index and c == code
                )
            record["total"] = exact_sum(v for (_i, _g, c), v in self._sums.items() if c == code)
            records.append(record)
        return records

    def _tone(self, column: str, value: Any, record: dict[str, Any]) -> str | None:
        # Money that slipped past its expected close month needs a look.
        return WARNING if column == OVERDUE and value else None

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Expected amount per bucket (overdue, each month, undated), stacked by group: the bar
        chart of "what will we sign, when, and who brings it". One currency at a time: use
        :meth:`in_currency` (or ``rates=``) for a forecast in several."""
        codes = self.currencies
        if len(codes) > 1:
            raise CurrencyMismatchError(*codes, operation="plot a forecast across")
        indexes, labels = self._pivot_columns()
        groups = sorted({g for (_i, g, _c) in self._sums}, key=sort_key)
        title = kw.pop("title", f"Expected signing amount as of {self.as_of.isoformat()}")
        unit = f"expected ({codes[0]})" if codes else "expected"
        if len(indexes) == 1 and len(groups) > 1:  # one bucket (all undated...): a bar per group
            per_group = {
                labels[0]: [float(self._sums.get((indexes[0], g, codes[0]), ZERO)) for g in groups]
            }
            names = [_group_label(g, self.by) for g in groups]
            return plot_bars(ax, names, per_group, title=title, value_label=unit, **kw)
        series = {
            _group_label(group, self.by): [
                float(self._sums.get((i, group, code), ZERO)) for i in indexes
            ]
            for group in groups
            for code in codes
        }
        return plot_bars(ax, labels, series, stacked=True, title=title, value_label=unit, **kw)


def _group_label(group: Any, by: tuple[str, ...]) -> str:
    if not by:
        return ALL
    if isinstance(group, tuple):
        return " / ".join(str(part) for part in group)
    return str(group)


class _InCurrency:
    """A re-iterable view of a forecast's input, keeping the items of one currency."""

    def __init__(self, source: Iterable[Any], rules: _Rules, currency: str) -> None:
        self._source = source
        self._rules = rules
        self._currency = currency

    def __iter__(self) -> Iterator[Any]:
        for item in self._source:
            result = self._rules.evaluate(item)
            if not isinstance(result, str) and result[1] == self._currency:
                yield item


def _month_of(period: Period | date | str) -> int:
    if isinstance(period, Period):
        if period.kind != "month":
            raise ValidationError("period", period, "a month")
        return period.first
    if isinstance(period, date):
        return month_index(period)
    return Period.parse(period).first


def _index_of(bucket: Bucket) -> int:
    if bucket == OVERDUE:
        return _OVERDUE
    if bucket == UNDATED:
        return _UNDATED
    return _month_of(bucket)


def _bucket_sort(index: Any) -> int:
    return index if isinstance(index, int) else index.first
