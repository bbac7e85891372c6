"""The calculators on a DataFrame's columns: forecast, tallies (funnel, distribution) and signed
sums (attainment), without one Python object per row.

:func:`~salesflow.analytics.forecast.forecast`, :func:`~salesflow.analytics.funnel.funnel`,
:func:`~salesflow.analytics.distribution.distribution` and
:func:`~salesflow.analytics.performance.attainment` hand a DataFrame-like input (see
:func:`~salesflow.analytics.frames.is_frame`) to this module. It computes the same rules in the
frame's own engine (pandas, polars, pyarrow, DuckDB, through narwhals) on integer minor units:

* an amount is read as ``int64`` minor units (:meth:`FrameInput.minor_units
  <salesflow.analytics.frames.FrameInput.minor_units>`);
* a stage probability ``p`` percent is the exact fraction ``pnum / pden`` (``pden`` a power of
  ten), and ``amount x p / 100`` rounded half up (away from zero) is
  ``(2 x |units| x pnum + D) // (2 x D)`` with ``D = 100 x pden``: integer arithmetic only. When
  that product could leave ``int64``, ``units`` is split as ``q x D + r`` first (``q x pnum +
  round(r x pnum / D)``), which never can;
* sums are ``int64`` too, split into two sums when ``int64`` could overflow;
* only the small aggregated result is brought into Python and turned into ``Decimal`` and
  :class:`~salesflow.domain.money.Money`.

The results are the object path's own classes, equal to the cent; their drill-down reads the frame
again, row by row, only when it is asked for (:class:`~salesflow.analytics.frames.FrameRows`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from salesflow.analytics.frames import (
    INT64_MAX,
    Amounts,
    FrameInput,
    FrameRows,
    _python,
    exponents,
)
from salesflow.errors import (
    CurrencyMismatchError,
    InvalidTypeError,
    SalesflowError,
    StageError,
    ValidationError,
)

if TYPE_CHECKING:
    from salesflow.analytics.distribution import Cells, Others
    from salesflow.analytics.forecast import Forecast, _Rules
    from salesflow.analytics.inputs import Fields, StageNames
    from salesflow.domain.periods import Period
    from salesflow.domain.stages import StagePlan

__all__ = ["forecast_frame", "signed_frame", "tally_frame"]

# Sums that could leave int64 are taken as two sums of the parts above and below this.
_SPLIT = 10**9
# Exact floats below this (see _times), and the bound of minor units a lazy or polars frame is
# first summed for (its amounts are checked in the same query; a larger one is summed again).
_FLOAT = 1 << 51
_OPTIMISTIC = _FLOAT // 40_000
_MONTH = "__salesflow_month"
_UNITS = "__salesflow_units"
_SUM = "__salesflow_sum"
_HIGH = "__salesflow_billions"
_COUNT = "__salesflow_count"


def _stage_keys(
    source: FrameInput, column: str, names: StageNames
) -> list[tuple[Any, str, Any, int]]:
    """(stage value as in the frame, stage key, currency or None, count) per stage value and
    currency of the frame: one small ``GROUP BY`` that also gives the currencies."""
    nw = source.nw
    keys = [column]
    code_column = source.column("currency") if source.has("currency") else None
    # A lazy frame reads the table again for every query: its currencies come in this one.
    # An eager one groups faster by one column, and finds the currencies of the counted rows
    # alone (see _codes).
    if not source.lazy:
        code_column = None
    if code_column is not None and code_column != column:
        keys.append(code_column)
    counted = source.collect(
        source.frame.group_by(*keys, drop_null_keys=False).agg(nw.len().alias(_COUNT))
    )
    found = []
    known: dict[Any, str] = {}
    for row in counted.rows(named=True):
        value = _python(row[column])
        if value is None:
            raise ValidationError(
                column, None, "a stage", where=source.where(nw.col(column).is_null(), column)
            )
        key = known.get(value)
        if key is None:
            try:
                key = known[value] = names.key(value)
            except StageError:
                raise names.error(
                    value, field=column, where=source.where(nw.col(column) == value, column)
                ) from None
        code = None if code_column is None else _python(row[code_column])
        found.append((value, key, code, int(row[_COUNT])))
    return found


def _codes(
    source: FrameInput, frame: Any, found: list[Any], currency: str | None
) -> tuple[Any, dict[str, int] | int, str | None, str | None]:
    """(frame with no null currency, exponent(s), currency column or None, the one code) of the
    rows whose values are ``found`` (``(value, code)`` pairs)."""
    nw = source.nw
    if not source.has("currency"):
        if currency is None:
            raise ValidationError("currency", None, "a currency column or currency=...")
        return frame, _exponent(currency), None, currency
    column = source.column("currency")
    codes = {code for _value, code in found}
    if not source.lazy:
        codes = {_python(v) for v in frame.get_column(column).unique().to_list()}
    if None in codes:
        if currency is None:
            source.refuse_nulls(frame, column, "a currency code (or give currency=...)")
        frame = frame.with_columns(nw.col(column).fill_null(currency))
        codes = (codes - {None}) | {currency}
    exponent = exponents(sorted(codes), column)
    if len(exponent) == 1:
        ((code, places),) = exponent.items()
        return frame, places, column, code
    return frame, exponent, column, None


def _aggregate(
    source: FrameInput,
    frame: Any,
    amounts: Amounts,
    keys: list[str],
    value_of: Callable[[int | None], Any],
    columns: dict[str, Any],
    *,
    optimistic: bool = True,
) -> list[dict[str, Any]]:
    """Sum ``value_of(largest)`` (minor units; ``largest`` bounds the magnitude of the amounts'
    minor units, ``None`` when the engine computes in int128) and count rows per ``keys``,
    after checking the amounts; the rows of the (small) result as dicts.

    A lazy frame (DuckDB), and a polars one, is checked in the same query as the sums: a lazy
    query reads the table again, and an engine with int128 sums needs no bound on them. That
    query first assumes ordinary amounts (at most ``_OPTIMISTIC`` minor units and none negative,
    where the cheapest formulas are exact) and is run again with the exact formulas when its
    checks show a larger or a negative amount. Any other eager frame (pandas, pyarrow) is checked
    first (one pass of reductions), so that its sums use the cheapest formulas that cannot
    overflow int64.
    """
    nw = source.nw
    start = frame
    in_query = source.lazy or source.wide  # checked in the query of the sums
    try:
        if in_query:
            # Unsigned amounts are assumed until this query's checks say otherwise.
            amounts.negative = not optimistic
            value = value_of(_OPTIMISTIC if optimistic else None if source.wide else amounts.limit)
            checks = amounts.reductions if source.wide else amounts.aggregations
            if not source.wide:
                frame = frame.with_columns(*amounts.columns)
            split = not source.wide
        else:
            stats = frame.select(*amounts.reductions).rows(named=True)
            amounts.verify(frame, stats)
            largest = amounts.largest(stats)
            value = value_of(largest)
            checks = []
            split = largest * len(frame) > INT64_MAX
        if source.wide:
            # Grouped by expressions, in one step: each step of a lazy frame is another
            # relation for the engine to bind, which can cost as much as reading the column.
            grouped = frame.group_by(
                *(columns[k].alias(k) if k in columns else k for k in dict.fromkeys(keys)),
                drop_null_keys=False,
            ).agg(value.cast(nw.Int128).sum().alias(_SUM), nw.len().alias(_COUNT), *checks)
        else:
            frame = frame.with_columns(**columns, **{_UNITS: value})
            if split:
                # Each value as high x 10**9 + low: sums of either part stay far inside int64.
                frame = frame.with_columns((nw.col(_UNITS) // _SPLIT).alias(_HIGH)).with_columns(
                    (nw.col(_UNITS) - nw.col(_HIGH) * _SPLIT).alias(_UNITS)
                )
                checks = [nw.col(_HIGH).sum().alias(_HIGH), *checks]
            grouped = frame.group_by(*dict.fromkeys(keys), drop_null_keys=False).agg(
                nw.col(_UNITS).sum().alias(_SUM), nw.len().alias(_COUNT), *checks
            )
        rows: list[dict[str, Any]] = source.collect(grouped).rows(named=True)
    except SalesflowError:
        raise
    except Exception:
        # A null or out-of-range amount can make the engine itself fail (a cast): name it.
        amounts.diagnose(start)
        if in_query and optimistic:  # a large amount overflowed the cheap formulas
            return _aggregate(source, start, amounts, keys, value_of, columns, optimistic=False)
        raise
    if in_query:
        amounts.verify(start, rows)
        if optimistic and (amounts.negative or amounts.largest(rows) > _OPTIMISTIC):
            # The optimistic formulas assumed small, unsigned amounts: exact ones now.
            return _aggregate(source, start, amounts, keys, value_of, columns, optimistic=False)
    return rows


def forecast_frame(
    native: Any,
    *,
    rules: _Rules,
    plan: StagePlan,
    by: tuple[str, ...],
    fiscal_year_start: int,
    currency: str | None,
    keep_lines: bool | None,
    fields: Fields | None,
) -> Forecast:
    """:func:`~salesflow.analytics.forecast.forecast` of a DataFrame-like input."""
    from salesflow.analytics.forecast import _EXCLUSIONS, _OVERDUE, _UNDATED, Forecast

    source = FrameInput(native, fields)
    nw = source.nw
    stage = source.column("stage")
    amount = source.column("amount")
    found = _stage_keys(source, stage, rules.names)
    excluded = dict.fromkeys(_EXCLUSIONS, 0)
    counted: dict[Any, Decimal] = {}
    total_counted = 0
    for value, key, _code, count in found:
        if key in rules.factors:
            counted[value] = rules.probabilities[key]
            total_counted += count
        else:
            excluded[rules.excluded[key]] += count
    group_columns = tuple(source.column(name) for name in by)
    sums: dict[tuple[int, Any, str], Decimal] = {}
    counts: dict[tuple[int, Any, str], int] = {}
    fallback = currency
    if counted:
        frame = source.frame.filter(nw.col(stage).is_in(list(counted)))
        pairs = [(value, code) for value, _key, code, _n in found if value in counted]
        frame, exponent, code_column, code = _codes(source, frame, pairs, currency)
        amounts = source.amounts(amount, exponent, code_column)
        close = source.column("expected_close")
        if not isinstance(source.schema[close], nw.Date | nw.Datetime):
            raise InvalidTypeError(
                close, source.schema[close], "a date column (pandas: pd.to_datetime(df[column]))"
            )
        # No cast: pandas gives a float year (NaN) for a missing date.
        month = nw.col(close).dt.year() * 12 + nw.col(close).dt.month() - 1
        rates_from = (exponent, code_column, code)

        def expected(largest: int | None) -> Any:
            weighted = _weighted(nw, amounts.units, stage, counted, largest, amounts.negative)
            if rules.rates is None:
                return weighted
            return _converted(nw, weighted, largest, amounts.limit, *rates_from, rules)

        if rules.rates is not None:
            assert currency is not None
            exponent, code_column, code = _exponent(currency), None, currency
        keys = [_MONTH, *group_columns, *([code_column] if code_column else [])]
        rows = _aggregate(source, frame, amounts, keys, expected, {_MONTH: month})
        as_of_month = rules.as_of_month
        for row in rows:
            month_index = _python(row[_MONTH])
            if month_index is None:
                index = _UNDATED
            else:
                index = int(month_index)
                if index < as_of_month:
                    index = _OVERDUE
            row_code = _code_of(row, code_column, code)
            places = exponent if isinstance(exponent, int) else exponent[row_code]
            cell = (index, _key(row, group_columns) if by else (), row_code)
            value = Decimal(_total(row)).scaleb(-places)
            sums[cell] = sums[cell] + value if cell in sums else value
            counts[cell] = counts.get(cell, 0) + int(row[_COUNT])
    elif fallback is None and any(excluded.values()) and source.has("currency"):
        column = source.column("currency")
        fallback = source.last_value(~nw.col(column).is_null(), column)
    result = Forecast(
        rules=rules,
        plan=plan,
        by=by,
        fiscal_year_start=fiscal_year_start,
        sums=sums,
        counts=counts,
        excluded=excluded,
        fallback_currency=fallback,
        source=FrameRows(source, (amount,)),
        lines=None,
    )
    if keep_lines:
        result._lines = list(result.lines)
    return result


def _exponent(code: str) -> int:
    return exponents([code], "currency")[code]


def _code_of(row: Mapping[str, Any], column: str | None, code: str | None) -> str:
    found = code if column is None else _python(row[column])
    assert isinstance(found, str)
    return found


def _total(row: Mapping[str, Any]) -> int:
    total = int(_python(row[_SUM]) or 0)
    if _HIGH in row:
        total += int(_python(row[_HIGH]) or 0) * _SPLIT
    return total


def _key(row: Mapping[str, Any], columns: tuple[str, ...]) -> Any:
    if len(columns) == 1:
        return _python(row[columns[0]])
    return tuple(_python(row[c]) for c in columns)


def _weighted(
    nw: Any,
    units: Any,
    stage: str,
    counted: dict[Any, Decimal],
    largest: int | None,
    signed: bool,
) -> Any:
    """``units x p / 100`` rounded half up (away from zero), per row, exactly."""
    places = max(max(-int(p.as_tuple().exponent) for p in counted.values()), 0)
    scale = 10**places
    numerators = {value: int(p * scale) for value, p in counted.items()}
    if len(set(numerators.values())) == 1:
        factor: Any = next(iter(numerators.values()))
    else:
        values = list(numerators)
        factor = nw.col(stage).replace_strict(
            values, [numerators[v] for v in values], return_dtype=nw.Int64, default=0
        )
    return _times(nw, units, factor, max(numerators.values()), 100 * scale, largest, signed)


def _times(
    nw: Any,
    units: Any,
    numerator: Any,
    biggest: int,
    denominator: Any,
    largest: int | None,
    signed: bool = True,
) -> Any:
    """``units x numerator / denominator`` rounded half up (away from zero), exactly.

    ``largest`` bounds ``|units|`` and ``biggest`` the numerator; ``None``: compute in int128.
    In int64, ``units`` is split as ``whole x denominator + rest`` when the plain product could
    overflow, so that no product ever does.
    """
    size = units.abs() if signed else units
    if largest is None:
        # Back to int64 (the result is at most |units|): some engines cannot negate int128.
        size = size.cast(nw.Int128)
        rounded = ((size * (2 * numerator) + denominator) // (2 * denominator)).cast(nw.Int64)
    elif isinstance(denominator, int) and 4 * largest * biggest + 2 * denominator < _FLOAT:
        # With n = 2|units|p + D: floor(n / 2D) is floor((2n + 1) / 4D), an odd numerator over
        # an even denominator, never within 1 / 4D of a whole number; below 2**51 a float
        # quotient (even one computed with a reciprocal) is off by far less, so its floor is
        # exact. One division of floats, where engines emulate integer floor division.
        odd = size * (4 * numerator) + (2 * denominator + 1)
        rounded = (odd.cast(nw.Float64) / (4 * denominator)).floor().cast(nw.Int64)
    elif 2 * largest * biggest + (denominator if isinstance(denominator, int) else 0) <= (
        INT64_MAX if isinstance(denominator, int) else 0
    ):
        rounded = (size * (2 * numerator) + denominator) // (2 * denominator)
    else:
        whole = size // denominator
        rest = size - whole * denominator
        rounded = whole * numerator + (rest * (2 * numerator) + denominator) // (2 * denominator)
    if not signed:
        return rounded
    return nw.when(units < 0).then(-rounded).otherwise(rounded)


def _converted(
    nw: Any,
    expected: Any,
    largest: int | None,
    limit: int,
    exponent: int | dict[str, int],
    code_column: str | None,
    code: str | None,
    rules: _Rules,
) -> Any:
    """Each row's expected minor units converted at its currency's rate into ``rules.currency``
    minor units, rounded half up, exactly (or refused when the rate has too many digits).
    ``largest`` bounds the expected minor units (``None``: compute in int128), ``limit`` is the
    bound of any accepted amount."""
    assert rules.currency is not None
    target = _exponent(rules.currency)
    codes = dict(exponent) if isinstance(exponent, dict) else {code: exponent}
    factors: dict[str, tuple[int, int]] = {}
    bound = limit if largest is None else largest
    for each, places in codes.items():
        assert each is not None
        rate = rules.rate(each)
        numerator, denominator = rate.as_integer_ratio()
        numerator *= 10 ** max(target - places, 0)
        denominator *= 10 ** max(places - target, 0)
        if 2 * denominator * numerator > INT64_MAX or bound * numerator // denominator > INT64_MAX:
            raise ValidationError(
                "rate", rate, f"a rate from {each} that int64 minor units can apply exactly"
            )
        factors[each] = (numerator, denominator)
    biggest = max(n for n, _d in factors.values())
    if len(factors) == 1:
        ((numerator, denominator),) = factors.values()
        return _times(nw, expected, numerator, biggest, denominator, largest)
    assert code_column is not None
    order = list(factors)
    num = nw.col(code_column).replace_strict(
        order, [factors[c][0] for c in order], return_dtype=nw.Int64, default=0
    )
    den = nw.col(code_column).replace_strict(
        order, [factors[c][1] for c in order], return_dtype=nw.Int64, default=1
    )
    # Per-row denominators: always split (a bound on the product needs the smallest one).
    return _times(nw, expected, num, INT64_MAX, den, INT64_MAX if largest is None else largest)


def tally_frame(
    native: Any,
    group: tuple[str, ...],
    value: str,
    currency: str | None,
    fields: Fields | None,
) -> tuple[Cells, Others]:
    """:func:`~salesflow.analytics.distribution.tally` of a DataFrame-like input."""
    source = FrameInput(native, fields)
    group_columns = tuple(source.column(name) for name in group)
    value_column = source.column(value)
    amount = source.column("amount")
    cells: Cells = {}
    others: Others = {}
    found = _codes_of(source)
    if not found:
        return cells, others
    frame, exponent, code_column, code = _codes(source, source.frame, found, currency)
    amounts = source.amounts(amount, exponent, code_column)
    keys = [*group_columns, value_column, *([code_column] if code_column else [])]
    for row in _aggregate(source, frame, amounts, keys, lambda _largest: amounts.units, {}):
        row_code = _code_of(row, code_column, code)
        places = exponent if isinstance(exponent, int) else exponent[row_code]
        key = (_key(row, group_columns) if group else (), _python(row[value_column]))
        money = Decimal(_total(row)).scaleb(-places)
        count = int(row[_COUNT])
        cell = cells.get(key)
        if cell is None:
            cells[key] = [count, money, row_code]
        elif cell[2] == row_code:
            cell[0] += count
            cell[1] += money
        else:
            cell[0] += count
            other = (key[0], key[1], row_code)
            others[other] = others.get(other, Decimal(0)) + money
    return cells, others


def _codes_of(source: FrameInput, frame: Any = None) -> list[tuple[None, Any]]:
    """``(None, code)`` per currency of ``frame`` (``[(None, None)]`` without a currency
    column), or ``[]`` when it has no row."""
    nw = source.nw
    frame = source.frame if frame is None else frame
    if source.has("currency"):
        column = source.column("currency")
        counted = source.collect(
            frame.group_by(column, drop_null_keys=False).agg(nw.len().alias(_COUNT))
        )
        return [(None, _python(code)) for code in counted.get_column(column).to_list()]
    size = source.collect(frame.select(nw.len().alias(_COUNT))).get_column(_COUNT).to_list()
    return [(None, None)] if size and size[0] else []


def signed_frame(
    native: Any, period: Period, currency: str | None, fields: Fields | None
) -> dict[str, tuple[Decimal, str]]:
    """Per owner, the signed amount in ``period`` and its currency (for
    :func:`~salesflow.analytics.performance.attainment`)."""
    source = FrameInput(native, fields, what="signed")
    nw = source.nw
    owner = source.column("owner")
    amount = source.column("amount")
    day = source.column("signed_on")
    if not isinstance(source.schema[day], nw.Date | nw.Datetime):
        raise InvalidTypeError(
            day, source.schema[day], "a date column (pandas: pd.to_datetime(df[column]))"
        )
    source.refuse_nulls(source.frame, day, "a signing date")
    month = nw.col(day).dt.year() * 12 + nw.col(day).dt.month() - 1
    frame = source.frame.filter((month >= period.first) & (month < period.first + period.length))
    found = _codes_of(source, frame)
    if not found:
        return {}
    source.refuse_nulls(frame, owner, "a rep's name")
    frame, exponent, code_column, code = _codes(source, frame, found, currency)
    amounts = source.amounts(amount, exponent, code_column)
    keys = [owner, *([code_column] if code_column else [])]
    rows = _aggregate(source, frame, amounts, keys, lambda _largest: amounts.units, {})
    signed: dict[str, tuple[Decimal, str]] = {}
    for row in rows:
        row_code = _code_of(row, code_column, code)
        places = exponent if isinstance(exponent, int) else exponent[row_code]
        name = _python(row[owner])
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(owner, name, "a non-empty string", where=f"column {owner!r}")
        total = Decimal(_total(row)).scaleb(-places)
        if amounts.negative:
            raise ValidationError(
                amount,
                total,
                "signed amounts of zero or more",
                where=source.where(nw.col(amount) < 0, amount),
            )
        if name in signed and signed[name][1] != row_code:
            raise CurrencyMismatchError(
                signed[name][1], row_code, operation="measure signed amounts against"
            )
        signed[name] = (total, row_code)
    return signed
