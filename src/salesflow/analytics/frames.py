"""Reading a DataFrame's columns exactly: which inputs are frames, where each field is, amounts in
integer minor units.

A calculator given a pandas, polars or pyarrow table, or a DuckDB relation, computes on its columns
through `narwhals <https://narwhals-dev.github.io/narwhals/>`_ (the ``frames`` extra), written once
for every library. This module holds what every columnar calculator shares:

* :func:`is_frame` tells a frame from an iterable of rows without importing any frame library.
* :class:`FrameInput` finds each field's column (the calculator's own name, or where ``fields=``
  points) and names the column and the row of a bad value in its errors.
* :meth:`FrameInput.minor_units` reads an amount column as whole minor units of its currency in
  ``int64`` (``12.34`` USD is ``1234``). Decimal and integer columns are read exactly; a float
  column is read as the decimal its value stands for (within two units in its last place, which
  is what its 15 significant digits show), and accepted only when that is a whole number of minor
  units (``12.34`` is, ``12.345`` USD is not). An amount with more decimals than its currency has, or one too large for
  ``int64`` minor units or for :data:`~salesflow.domain.numbers.MAX_AMOUNT`, is refused: nothing is
  ever rounded through a float.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from salesflow.analytics.inputs import Fields, view_type
from salesflow.domain.money import currency_precision
from salesflow.domain.numbers import MAX_AMOUNT
from salesflow.errors import InvalidTypeError, MissingDependencyError, ValidationError

__all__ = ["INT64_MAX", "Amounts", "FrameInput", "FrameRows", "is_frame", "narwhals"]

INT64_MAX = (1 << 63) - 1
"""The largest ``int64``: minor units and their sums are kept below it."""

# Top-level packages whose tables and relations narwhals reads; checked by name so that a list of
# rows never imports pandas.
_FRAME_PACKAGES = frozenset(
    {"pandas", "polars", "pyarrow", "duckdb", "modin", "cudf", "dask", "ibis", "narwhals"}
)
# Float columns are exact only below 2**53 minor units.
_FLOAT_EXACT = 1 << 53
_FLOAT_SLACK = 2.0**-51


def is_frame(rows: object) -> bool:
    """Whether ``rows`` is a DataFrame-like input (pandas, polars, pyarrow, DuckDB...)."""
    module = type(rows).__module__.partition(".")[0]
    return module in _FRAME_PACKAGES


def narwhals() -> Any:
    """The narwhals module, or :class:`~salesflow.errors.MissingDependencyError`."""
    try:
        import narwhals as nw
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise MissingDependencyError("narwhals", "frames", "computing on a DataFrame") from exc
    return nw


class FrameInput:
    """A DataFrame-like input seen through a field mapping.

    ``frame`` is the narwhals frame (eager, or lazy for a DuckDB relation); :meth:`column` gives
    the column behind a calculator field.
    """

    def __init__(self, native: Any, fields: Fields | None, what: str = "opportunities") -> None:
        nw = narwhals()
        try:
            frame = nw.from_native(native)
        except TypeError as exc:
            raise InvalidTypeError(
                what, native, "a DataFrame (pandas, polars, pyarrow) or a DuckDB relation"
            ) from exc
        if isinstance(frame, nw.Series):
            raise InvalidTypeError(what, native, "a DataFrame, not a Series")
        self.nw = nw
        self.native = native
        self.frame: Any = frame
        self.lazy = isinstance(frame, nw.LazyFrame)
        self.fields: dict[str, Any] = dict(fields or {})
        self.schema: dict[str, Any] = dict(frame.collect_schema())
        # Engines with a 128-bit integer compute the rounding in one step and sum without
        # splitting; the others stay in int64 with overflow-safe formulas.
        self.wide = frame.implementation in (nw.Implementation.POLARS, nw.Implementation.DUCKDB)

    def has(self, field: str) -> bool:
        """Whether the frame has a column for ``field``."""
        spec = self.fields.get(field, field)
        return isinstance(spec, str) and spec in self.schema

    def column(self, field: str) -> str:
        """The name of the column that holds ``field``."""
        spec = self.fields.get(field, field)
        where = f"fields[{field!r}]" if field in self.fields else field
        if not isinstance(spec, str):
            raise InvalidTypeError(
                where, spec, "a column name (a function of the row needs a list of rows)"
            )
        if spec not in self.schema:
            raise ValidationError(
                where, spec, f"a column of the frame (it has {list(self.schema)})"
            )
        return spec

    def where(self, mask: Any, column: str) -> str:
        """Where the first row matching ``mask`` is: its position (0-based) and id if known."""
        nw = self.nw
        frame = self.frame
        ident = self.column("id") if self.has("id") and self.column("id") != column else None
        if self.lazy:
            picked = frame.filter(mask).select(*(c for c in (ident, column) if c)).head(1)
            rows = picked.collect().rows(named=True)
            if not rows:
                return f"column {column!r}"
            row = rows[0]
            shown = f", id {row[ident]!r}" if ident else ""
            return f"column {column!r}{shown}"
        indexed = frame.with_row_index("__salesflow_row")
        picked = indexed.filter(mask).select(
            nw.col("__salesflow_row"), *(nw.col(c) for c in (ident,) if c)
        )
        rows = picked.head(1).rows(named=True)
        if not rows:
            return f"column {column!r}"
        row = rows[0]
        shown = f" (id {row[ident]!r})" if ident else ""
        return f"column {column!r}, row {row['__salesflow_row']}{shown}"

    def first_value(self, mask: Any, column: str) -> Any:
        """The value of ``column`` in the first row matching ``mask``."""
        rows = self.frame.filter(mask).select(self.nw.col(column)).head(1)
        collected = rows.collect() if self.lazy else rows
        values = collected.get_column(column).to_list()
        return values[0] if values else None

    def last_value(self, mask: Any, column: str) -> Any:
        """The value of ``column`` in the last row matching ``mask`` (any such row for a lazy
        frame, which has no order)."""
        rows = self.frame.filter(mask).select(self.nw.col(column))
        values = (rows.head(1).collect() if self.lazy else rows.tail(1)).get_column(column)
        found = values.to_list()
        return _python(found[0]) if found else None

    def refuse_nulls(self, frame: Any, column: str, expected: str) -> None:
        """Raise naming the first row whose ``column`` is null."""
        nw = self.nw
        nulls = _scalar(frame.select(nw.col(column).is_null().sum()), self.lazy)
        if nulls:
            mask = nw.col(column).is_null()
            raise ValidationError(column, None, expected, where=self.where(mask, column))

    def minor_units(
        self, frame: Any, column: str, exponent: int | Mapping[str, int], currency: str | None
    ) -> tuple[Any, int, bool]:
        """The expression of ``column`` in whole minor units (``int64``), the largest magnitude
        in minor units, and whether any amount is negative.

        ``exponent`` is the currency's number of decimals, or a mapping of currency code to it
        with ``currency`` the column holding each row's code. ``frame`` must have no null
        amount (see :meth:`refuse_nulls`).
        """
        nw = self.nw
        dtype = self.schema[column]
        col = nw.col(column)
        largest_scale = 10 ** (
            max(exponent.values(), default=0) if isinstance(exponent, Mapping) else exponent
        )
        if dtype.is_integer():
            stats = frame.select(col.abs().max().alias("hi"), col.min().alias("lo"))
            high, low = _row(stats, self.lazy)
            self._check_bound(frame, column, Decimal(high or 0), largest_scale)
            units = scaled(nw, col.cast(nw.Int64), exponent, currency)
            return units, int(high or 0) * largest_scale, (low or 0) < 0
        if dtype.is_float():
            stats = frame.select(col.abs().max().alias("hi"), col.min().alias("lo"))
            high, low = _row(stats, self.lazy)
            if high is not None and high != high:  # NaN
                mask = col.is_nan()
                raise ValidationError(
                    column, float("nan"), "a number", where=self.where(mask, column)
                )
            bound = Decimal(repr(high or 0.0))
            self._check_bound(frame, column, bound, largest_scale)
            if bound * largest_scale >= _FLOAT_EXACT:
                raise ValidationError(
                    column,
                    high,
                    f"float amounts below {_FLOAT_EXACT:,} minor units (read larger ones as "
                    "Decimal: a float cannot hold them exactly)",
                    where=self.where(col.abs() == high, column),
                )
            times = scaled(nw, col, exponent, currency)
            minor = times.round(0).cast(nw.Int64)
            # Within two units in the last place of a whole number of minor units: the float
            # stands for that decimal (no division: some engines divide by a reciprocal).
            inexact = (times - minor).abs() > minor.abs() * _FLOAT_SLACK
            self._refuse(frame, inexact, column, "amounts in whole minor units of their currency")
            return minor, int(bound * largest_scale), (low or 0) < 0
        if isinstance(dtype, nw.Decimal):
            stats = frame.select(col.abs().max().alias("hi"), col.min().alias("lo"))
            high, low = _row(stats, self.lazy)
            bound = Decimal(high or 0)
            self._check_bound(frame, column, bound, largest_scale)
            times = scaled(nw, col, exponent, currency, decimal=True)
            whole = times.round(0)  # a cast of a fraction fails in some engines
            minor = whole.cast(nw.Int64)
            self._refuse(
                frame, times != whole, column, "amounts in whole minor units of their currency"
            )
            return minor, int(bound * largest_scale), (low or 0) < 0
        raise InvalidTypeError(
            column,
            dtype,
            "a Decimal, integer or float column of amounts (a column of Python objects or of "
            "text: convert it first, e.g. pyarrow decimal128 or pandas' numeric types)",
        )

    def amounts(
        self, column: str, exponent: int | Mapping[str, int], currency: str | None
    ) -> Amounts:
        """The amounts of ``column`` read in the calculator's own pass (see :class:`Amounts`)."""
        return Amounts(self, column, exponent, currency)

    def _check_bound(self, frame: Any, column: str, high: Decimal, scale: int) -> None:
        if high >= MAX_AMOUNT or high * scale > INT64_MAX:
            limit = min(MAX_AMOUNT, Decimal(INT64_MAX) / scale)
            raise ValidationError(
                column,
                high,
                f"amounts below {limit:,.0f} (larger ones do not fit int64 minor units)",
                where=self.where(self.nw.col(column).abs() >= high, column),
            )

    def _refuse(self, frame: Any, mask: Any, column: str, expected: str) -> None:
        bad = _scalar(frame.select(mask.sum()), self.lazy)
        if bad:
            value = self.first_value(mask, column)
            raise ValidationError(column, value, expected, where=self.where(mask, column))

    def collect(self, frame: Any) -> Any:
        """``frame`` as an eager narwhals frame."""
        return frame.collect() if self.lazy else frame


def scaled(
    nw: Any,
    amount: Any,
    exponent: int | Mapping[str, int],
    currency: str | None,
    decimal: bool = False,
) -> Any:
    """``amount x 10**exponent``, the exponent of each row's currency when it is a mapping.

    Each currency multiplies by a literal (a ``Decimal`` one for a decimal column): a decimal
    column times a column of scales, or an ``int64`` literal, would widen its precision past
    the 38 digits the engines hold.
    """
    factor: Callable[[int], Any] = (lambda e: Decimal(10**e)) if decimal else (lambda e: 10**e)
    if not isinstance(exponent, Mapping):
        return amount * factor(exponent)
    assert currency is not None
    codes = sorted(exponent)
    chain: Any = nw.when(nw.col(currency) == codes[0]).then(amount * factor(exponent[codes[0]]))
    for code in codes[1:-1]:
        chain = chain.when(nw.col(currency) == code).then(amount * factor(exponent[code]))
    return chain.otherwise(amount * factor(exponent[codes[-1]]))


def exponents(codes: list[Any], column: str) -> dict[str, int]:
    """Each currency code's number of decimals (a bad code raises naming ``column``)."""
    found: dict[str, int] = {}
    for code in codes:
        if not isinstance(code, str):
            raise InvalidTypeError(column, code, "ISO 4217 currency codes as text")
        found[code] = currency_precision(code)
    return found


def _row(frame: Any, lazy: bool) -> tuple[Any, ...]:
    collected = frame.collect() if lazy else frame
    return tuple(_python(v) for v in collected.rows()[0])


def _scalar(frame: Any, lazy: bool) -> Any:
    return _row(frame, lazy)[0]


def _python(value: Any) -> Any:
    """A plain Python value (numpy scalars become int/float; NaN/NaT/NA become ``None``)."""
    item = getattr(value, "item", None)
    if item is not None and not isinstance(value, Decimal):
        with contextlib.suppress(TypeError, ValueError):
            value = item()
    try:
        if value != value:
            return None
    except (TypeError, ValueError):
        return None
    return value


_NULLS = "__salesflow_nulls"
_HIGH = "__salesflow_high"
_LOW = "__salesflow_low"
_BAD = "__salesflow_bad"


class Amounts:
    """An amount column as ``int64`` minor units, checked in the same pass that sums them.

    :attr:`units` is the expression of the minor units, safe to compute once the checks pass:
    :attr:`columns` are helper columns to add before grouping, :attr:`aggregations` their
    per-group aggregates, and :meth:`verify` reads those aggregates of the result and, when any
    amount is null, inexact or out of bounds, finds and names the first bad row (reading the
    frame again only then).
    """

    def __init__(
        self,
        source: FrameInput,
        column: str,
        exponent: int | Mapping[str, int],
        currency: str | None,
    ) -> None:
        nw = source.nw
        self.source = source
        self.column = column
        self.exponent = exponent
        self.currency = currency
        dtype = source.schema[column]
        col = nw.col(column)
        self.scale = 10 ** (
            max(exponent.values(), default=0) if isinstance(exponent, Mapping) else exponent
        )
        self.kind = "integer" if dtype.is_integer() else "float" if dtype.is_float() else ""
        if isinstance(dtype, nw.Decimal):
            self.kind = "decimal"
        if self.kind == "integer":
            self.units: Any = scaled(nw, col.cast(nw.Int64), exponent, currency)
            bad: Any = None
        elif self.kind == "float":
            times = scaled(nw, col, exponent, currency)
            whole = times.round(0)
            self.units = whole.cast(nw.Int64)
            bad = (times - whole).abs() > whole.abs() * _FLOAT_SLACK
        elif self.kind == "decimal":
            times = scaled(nw, col, exponent, currency, decimal=True)
            smallest = min(exponent.values()) if isinstance(exponent, Mapping) else exponent
            if getattr(dtype, "scale", None) is not None and dtype.scale <= smallest:
                # Whole minor units by the column's type: nothing to round or to check.
                self.units = times.cast(nw.Int64)
                bad = None
            else:
                whole = times.round(0)  # a cast of a fraction fails in some engines
                self.units = whole.cast(nw.Int64)
                bad = times != whole
        else:
            raise InvalidTypeError(
                column,
                dtype,
                "a Decimal, integer or float column of amounts (a column of Python objects or "
                "of text: convert it first, e.g. pyarrow decimal128 or pandas' numeric types)",
            )
        self.columns = [col.is_null().alias(_NULLS), col.abs().alias(_HIGH)]
        self.aggregations = [
            nw.col(_NULLS).sum().alias(_NULLS),
            nw.col(_HIGH).max().alias(_HIGH),
            col.min().alias(_LOW),
        ]
        self.low = _LOW
        self.negative = True
        """Whether an amount may be negative (known once :meth:`largest` has read the checks)."""
        self.reductions = [
            col.is_null().sum().alias(_NULLS),
            col.abs().max().alias(_HIGH),
            col.min().alias(_LOW),
            *([] if bad is None else [bad.sum().alias(_BAD)]),
        ]
        """The checks as reductions of the whole frame (one row)."""
        """The name of each group's smallest amount in the aggregated rows."""
        self.limit = min(INT64_MAX, int(MAX_AMOUNT) * self.scale)
        """The largest magnitude of minor units an accepted amount can have."""
        if bad is not None:
            self.columns.append(bad.alias(_BAD))
            self.aggregations.append(nw.col(_BAD).sum().alias(_BAD))
        self.helpers = (_NULLS, _HIGH, _BAD)

    def largest(self, rows: list[dict[str, Any]]) -> int:
        """The largest magnitude of minor units, from verified aggregates."""
        highs = [_python(r[_HIGH]) for r in rows]
        high = max((h for h in highs if h is not None), default=0)
        lows = [_python(r[_LOW]) for r in rows]
        self.negative = any(low < 0 for low in lows if low is not None)
        return int(Decimal(repr(high) if isinstance(high, float) else high) * self.scale) + 1

    def verify(self, frame: Any, rows: list[dict[str, Any]]) -> None:
        """Raise naming the first bad amount of ``frame`` if the aggregates in ``rows`` show
        one (a null, more decimals than the currency has, beyond the bounds)."""
        nulls = sum(int(_python(r[_NULLS]) or 0) for r in rows)
        self.negative = any((_python(r[_LOW]) or 0) < 0 for r in rows)
        bad = sum(int(_python(r.get(_BAD)) or 0) for r in rows)
        highs = [_python(r[_HIGH]) for r in rows]
        high = max((h for h in highs if h is not None), default=0)
        limit = min(MAX_AMOUNT, Decimal(INT64_MAX) / self.scale)
        if self.kind == "float":
            limit = min(limit, Decimal(_FLOAT_EXACT) / self.scale)
        nan = any(h is None for h in highs)  # a float NaN (nulls are counted apart)
        if nulls or bad or nan or Decimal(repr(high) if isinstance(high, float) else high) >= limit:
            self.diagnose(frame)
            raise ValidationError(self.column, high, f"amounts below {limit}")

    def diagnose(self, frame: Any) -> None:
        """Raise naming the first bad amount of ``frame`` if it has one (read again, step by
        step)."""
        source = self.source
        source.refuse_nulls(frame, self.column, "an amount (Decimal, integer or float)")
        source.minor_units(frame, self.column, self.exponent, self.currency)


class FrameRows:
    """The rows of a frame, read lazily as records for a result's drill-down.

    Each pass reads the frame again and yields one row at a time: a ``dict`` of its columns (nulls
    as ``None``, amounts as exact ``Decimal``) seen through the field mapping, so the object
    rules read it as they read any row.
    """

    def __init__(self, source: FrameInput, amounts: tuple[str, ...] = ()) -> None:
        self._source = source
        self._amounts = amounts
        self._view = view_type(source.fields)

    def __iter__(self) -> Iterator[Any]:
        frame = self._source.collect(self._source.frame)
        view = self._view
        amounts = self._amounts
        for row in frame.iter_rows(named=True):
            record = {name: _python(value) for name, value in row.items()}
            for name in amounts:
                value = record[name]
                if isinstance(value, float | int) and not isinstance(value, bool):
                    # A float stands for the decimal of its 15 significant digits (as read above).
                    record[name] = (
                        Decimal(f"{value:.15g}") if isinstance(value, float) else Decimal(value)
                    )
            yield view(record)
