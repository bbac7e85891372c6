"""What every tabular result shares: it is a table, with its totals kept apart.

Analytics results (a forecast, a funnel, receivables...) and domain explanations (a quote's pricing
waterfall, :meth:`~salesflow.domain.quotes.Quote.explain`) subclass :class:`Table`. Each has:

* :meth:`Table.to_records` / :meth:`Table.to_frame`: the **data rows**, none of which is a sum of
  others, so summing a column never counts anything twice;
* :meth:`Table.total_records` / :meth:`Table.totals_frame`: the **totals** (the team's rows, the
  ``(all)`` row), the same accessor on every result; an additive column (a count, an amount)
  sums to the same figure over the data rows and over the total rows, exactly;
* ``str()`` and ``_repr_html_()``: a readable table, numbers right-aligned and grouped by
  thousands in the display locale (:func:`set_locale`, ``"en"`` by default), deviations coloured,
  totals set apart below a rule;
* :meth:`Table.plot`: a matplotlib chart (the ``plot`` extra), the one a manager would draw.

Records hold plain values (``str``, ``int``, ``Decimal``, ``date``), never floats. A DataFrame
holds **float64** money and percentages by default, so that pandas and matplotlib can plot and
aggregate it; ``to_frame(exact=True)`` keeps the exact ``Decimal`` objects (an ``object`` column)
for sums that must be right to the cent.

This module sits below both :mod:`salesflow.domain` and :mod:`salesflow.analytics` (it imports
only the money and period values it formats), so the domain never imports analytics. pandas,
matplotlib and babel's number formats are imported when first used.
"""

from __future__ import annotations

import abc
import functools
import html
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from salesflow.domain.money import Money
from salesflow.domain.periods import Period
from salesflow.errors import MissingDependencyError, ValidationError

if TYPE_CHECKING:
    import pandas as pd
    from babel import Locale
    from matplotlib.axes import Axes

__all__ = [
    "NEGATIVE",
    "POSITIVE",
    "WARNING",
    "Table",
    "format_number",
    "get_locale",
    "group_thousands",
    "matplotlib_axes",
    "outside_legend",
    "plot_bars",
    "records_frame",
    "render_html",
    "render_text",
    "set_locale",
]

NEGATIVE = "negative"
"""Tone of a cell that is off to the bad side (below target, overdue, a gap)."""
POSITIVE = "positive"
"""Tone of a cell that is off to the good side (above target, learned above configured)."""
WARNING = "warning"
"""Tone of a cell that needs a look (above a funnel target, money that slipped)."""

_TONES = {
    NEGATIVE: "color:#9f1c1c;background:#fde8e8",
    POSITIVE: "color:#14632d;background:#e4f5e9",
    WARNING: "color:#7a4b00;background:#fff3d6",
}

Tone = Callable[[str, Any, dict[str, Any]], str | None]
"""``tone(column, value, record)``: :data:`NEGATIVE`, :data:`POSITIVE`, :data:`WARNING` or None."""


# -- the display locale ---------------------------------------------------------------------------

_DEFAULT_LOCALE = "en"
_settings = {"locale": _DEFAULT_LOCALE}


@functools.lru_cache(maxsize=32)
def _parse_locale(name: str) -> Locale:
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(name)
    except (ValueError, TypeError, UnknownLocaleError):
        raise ValidationError(
            "locale", name, "a locale such as 'en', 'de_DE' or 'zh_Hans_CN'"
        ) from None


def set_locale(locale: str) -> None:
    """Set the locale that groups digits in printed tables and HTML (``"en"`` by default:
    ``1,234,567.50``; ``"de"`` prints ``1.234.567,50``). Records and frames are not affected."""
    if not isinstance(locale, str):
        raise ValidationError("locale", locale, "a locale name such as 'en' or 'de_DE'")
    _parse_locale(locale)
    _settings["locale"] = locale


def get_locale() -> str:
    """The locale printed tables use (see :func:`set_locale`)."""
    return _settings["locale"]


@functools.lru_cache(maxsize=16)
def _pattern(places: int) -> str:
    return "#,##0" + ("." + "0" * places if places else "")


def format_number(value: int | Decimal, locale: str | None = None) -> str:
    """``value`` with its digits grouped by thousands in ``locale`` (the display locale when
    ``None``), every decimal place kept: ``Decimal("1234567.50")`` -> ``1,234,567.50``."""
    from babel.numbers import format_decimal

    places = 0
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        exponent = value.as_tuple().exponent
        places = max(0, -exponent) if isinstance(exponent, int) else 0
    parsed = _parse_locale(get_locale() if locale is None else locale)
    return format_decimal(value, format=_pattern(places), locale=parsed)


# -- cells ----------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal | Money) and not isinstance(value, bool)


def _cell(value: Any, locale: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | Decimal):
        return format_number(value, locale)
    if isinstance(value, Money):
        return f"{format_number(value.amount, locale)} {value.currency}"
    if isinstance(value, Period):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return " / ".join(_cell(v, locale) for v in value)
    return str(value)


def _columns_of(records: Sequence[dict[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    return list(columns)


def _no_header(column: str) -> tuple[str, str]:
    return ("", column)


def _no_tone(_column: str, _value: Any, _record: dict[str, Any]) -> str | None:
    return None


def render_text(
    records: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    totals: Sequence[dict[str, Any]] = (),
    header: Callable[[str], tuple[str, str]] = _no_header,
    locale: str | None = None,
) -> str:
    """Render ``records`` as an aligned plain-text table: numbers right-aligned and grouped by
    thousands, ``totals`` below a second rule."""
    if columns is None:
        columns = _columns_of([*records, *totals])
    if not columns:
        return "(empty)"
    code = get_locale() if locale is None else locale
    names = [" ".join(part for part in header(c) if part) for c in columns]
    body = [[_cell(r.get(c), code) for c in columns] for r in records]
    foot = [[_cell(r.get(c), code) for c in columns] for r in totals]
    every = [*records, *totals]
    numeric = [any(_is_number(r.get(c)) for r in every) for c in columns]
    widths = [
        max([len(name)] + [len(row[i]) for row in (*body, *foot)]) for i, name in enumerate(names)
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(names), rule, *([line(row) for row in body] or ["(no rows)"])]
    if foot:
        lines.append(rule)
        lines.extend(line(row) for row in foot)
    return "\n".join(lines)


_TABLE_STYLE = "border-collapse:collapse;font-variant-numeric:tabular-nums;margin:0.5em 0"
_CAPTION_STYLE = "caption-side:top;text-align:left;font-weight:bold;padding:0 0 0.3em 0"
_CELL = "padding:0.15em 0.6em;border-bottom:1px solid #e5e5e5"
_NUMBER = "text-align:right;white-space:nowrap"
_TEXT = "text-align:left"
_TOTAL = "font-weight:bold;background:#f4f4f4"
_FIRST_TOTAL = "border-top:2px solid #555"


def render_html(
    records: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    caption: str = "",
    *,
    totals: Sequence[dict[str, Any]] = (),
    header: Callable[[str], tuple[str, str]] = _no_header,
    tone: Tone = _no_tone,
    locale: str | None = None,
) -> str:
    """Render ``records`` as a styled HTML ``<table>`` for notebooks: numbers right-aligned and
    grouped, cells coloured by ``tone``, ``totals`` in a ``<tfoot>`` set apart; every text escaped.

    ``header(column)`` gives ``(group, label)``: columns of one group share a spanning header.
    """
    if columns is None:
        columns = _columns_of([*records, *totals])
    code = get_locale() if locale is None else locale
    every = [*records, *totals]
    numeric = {c: any(_is_number(r.get(c)) for r in every) for c in columns}
    heads = [header(c) for c in columns]
    head_rows = []
    if any(group for group, _label in heads):
        spans: list[list[Any]] = []
        for group, _label in heads:
            if spans and spans[-1][0] == group and group:
                spans[-1][1] += 1
            else:
                spans.append([group, 1])
        head_rows.append(
            "".join(
                f'<th colspan="{n}" style="{_CELL};text-align:center">{html.escape(g)}</th>'
                for g, n in spans
            )
        )
    head_rows.append(
        "".join(
            f'<th style="{_CELL};{_NUMBER if numeric[c] else _TEXT}">{html.escape(label)}</th>'
            for c, (_group, label) in zip(columns, heads, strict=True)
        )
    )

    def row(record: dict[str, Any], extra: str = "") -> str:
        cells = []
        for c in columns:
            value = record.get(c)
            style = f"{_CELL};{_NUMBER if _is_number(value) else _TEXT}"
            shade = tone(c, value, record)
            if shade is not None:
                style += ";" + _TONES[shade]
            if extra:
                style += ";" + extra
            cells.append(f'<td style="{style}">{html.escape(_cell(value, code))}</td>')
        return f"<tr>{''.join(cells)}</tr>"

    body = "".join(row(r) for r in records)
    if not records:
        body = f'<tr><td colspan="{max(len(columns), 1)}" style="{_CELL}">(no rows)</td></tr>'
    foot = "".join(
        row(r, _TOTAL + (";" + _FIRST_TOTAL if i == 0 else "")) for i, r in enumerate(totals)
    )
    cap = f'<caption style="{_CAPTION_STYLE}">{html.escape(caption)}</caption>' if caption else ""
    head = "".join(f"<tr>{r}</tr>" for r in head_rows)
    tfoot = f"<tfoot>{foot}</tfoot>" if foot else ""
    return (
        f'<table class="salesflow" style="{_TABLE_STYLE}">{cap}<thead>{head}</thead>'
        f"<tbody>{body}</tbody>{tfoot}</table>"
    )


# -- frames ---------------------------------------------------------------------------------------


def _pandas(feature: str) -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise MissingDependencyError("pandas", "pandas", feature) from exc
    return pandas


def _series(pd: Any, values: list[Any], exact: bool) -> Any:
    values = [v.amount if isinstance(v, Money) else v for v in values]
    present = [v for v in values if v is not None]
    if not present:
        return pd.Series(values, dtype=object)
    numbers = all(isinstance(v, int | Decimal) and not isinstance(v, bool) for v in present)
    if numbers:
        missing = len(present) < len(values)
        if all(isinstance(v, int) for v in present):
            if not missing:
                return pd.Series(values, dtype="int64")
            return pd.Series(values, dtype="Int64" if exact else "float64")
        if exact:
            return pd.Series(values, dtype=object)
        return pd.Series([float("nan") if v is None else float(v) for v in values], dtype="float64")
    if not exact and all(type(v) is date for v in present):
        return pd.to_datetime(pd.Series(values, dtype=object))
    if all(isinstance(v, str) for v in present):
        return pd.Series(values)
    return pd.Series(values, dtype=object)


def records_frame(
    records: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    exact: bool = False,
    feature: str = "to_frame()",
) -> pd.DataFrame:
    """``records`` as a pandas DataFrame (needs the ``pandas`` extra).

    By default ``Decimal`` columns (money, percentages, days) become ``float64``, int columns
    with missing values ``float64`` and dates ``datetime64``, so that the frame plots and
    aggregates; ``exact=True`` keeps ``Decimal`` objects (``object`` columns) and dates, and
    int columns with missing values become pandas' nullable ``Int64``.
    """
    pandas = _pandas(feature)
    names = list(columns) if columns is not None else _columns_of(records)
    data = {name: _series(pandas, [r.get(name) for r in records], exact) for name in names}
    frame: pd.DataFrame = pandas.DataFrame(
        data, columns=names, index=pandas.RangeIndex(len(records))
    )
    return frame


# -- charts ---------------------------------------------------------------------------------------


def matplotlib_axes(ax: Axes | None, feature: str = "plot()") -> Axes:
    """``ax``, or the axes of a new pyplot figure (needs the ``plot`` extra)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependencyError("matplotlib", "plot", feature) from exc
    if ax is not None:
        return ax
    _figure, axes = plt.subplots(figsize=(8, 4.5), layout="constrained")
    return axes


def plot_bars(
    ax: Axes | None,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    stacked: bool = False,
    horizontal: bool = False,
    title: str = "",
    value_label: str = "",
    **kw: Any,
) -> Axes:
    """Bars of ``series`` (name -> one value per label), grouped or stacked, on ``ax``."""
    axes = matplotlib_axes(ax)
    positions: list[float] = [float(p) for p in range(len(labels))]
    count = max(len(series), 1)
    width = 0.8 if stacked else 0.8 / count
    base = [0.0] * len(labels)
    for i, (name, values) in enumerate(series.items()):
        numbers = [0.0 if v is None else float(v) for v in values]
        if stacked:
            where = positions
            offset: dict[str, Any] = {"left" if horizontal else "bottom": list(base)}
            base = [b + v for b, v in zip(base, numbers, strict=True)]
        else:
            where = [p - 0.4 + width * (i + 0.5) for p in positions]
            offset = {}
        if horizontal:
            axes.barh(where, numbers, height=width, label=name, **offset, **kw)
        else:
            axes.bar(where, numbers, width=width, label=name, **offset, **kw)
    if horizontal:
        axes.set_yticks(positions, [str(label) for label in labels])
        axes.invert_yaxis()
        if value_label:
            axes.set_xlabel(value_label)
    else:
        axes.set_xticks(positions, [str(label) for label in labels])
        if len(labels) > 6:
            axes.tick_params(axis="x", labelrotation=45)
        if value_label:
            axes.set_ylabel(value_label)
    group_thousands(axes, "x" if horizontal else "y")
    if len(series) > 1:
        outside_legend(axes)
    if title:
        axes.set_title(title)
    return axes


def group_thousands(axes: Axes, axis: str = "y") -> None:
    """Label the ``axis`` ticks with digits grouped by thousands (no ``1e6`` offset)."""
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _position: Any) -> str:
        return format_number(Decimal(round(value)))

    target = axes.xaxis if axis == "x" else axes.yaxis
    target.set_major_formatter(FuncFormatter(label))


def outside_legend(axes: Axes) -> None:
    """The legend to the right of the plot, where it hides no bar."""
    handles, _labels = axes.get_legend_handles_labels()
    axes.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize="small",
        ncols=1 if len(handles) <= 16 else 2,
        frameon=False,
    )


def _float(value: Any) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, Money):
        return float(value.amount)
    return float(value)


# -- the base class -------------------------------------------------------------------------------


class Table(abc.ABC):
    """Base of tabular results: data rows, total rows, text, HTML, frames and a chart.

    Subclasses implement :meth:`to_records` (and :meth:`total_records` when the result has
    totals) and :meth:`plot`; they may override :meth:`display_records` and
    :meth:`display_totals` (and :attr:`caption`) to show a wider, more readable layout than the
    long records, :meth:`_header` to group display columns, and :meth:`_tone` to colour cells.
    """

    @property
    def caption(self) -> str:
        """A title printed above the table (none by default)."""
        return ""

    # -- data ------------------------------------------------------------------------------------

    @abc.abstractmethod
    def to_records(self) -> list[dict[str, Any]]:
        """The data rows as flat dicts with exact values; no row is a total of others."""

    def total_records(self) -> list[dict[str, Any]]:
        """The totals of the data rows (the team's rows, ``(all)``), with the same column names
        for the same figures; empty when the rows do not add up to anything."""
        return []

    def record_columns(self) -> list[str] | None:
        """The columns of :meth:`to_records`, so that an empty result still has them (``None``:
        taken from the records)."""
        return None

    def total_columns(self) -> list[str] | None:
        """The columns of :meth:`total_records` (``None``: taken from the records)."""
        return self.record_columns()

    def to_frame(self, *, exact: bool = False) -> pd.DataFrame:
        """The data rows as a pandas DataFrame (install the ``pandas`` extra).

        Money, percentages and days are ``float64`` columns, ready for ``.plot`` and
        ``.groupby``; pass ``exact=True`` for the exact ``Decimal`` values (``object``
        columns). Totals are not among the rows: see :meth:`totals_frame`.
        """
        return records_frame(self.to_records(), self.record_columns(), exact=exact)

    def totals_frame(self, *, exact: bool = False) -> pd.DataFrame:
        """The total rows as a pandas DataFrame, typed as :meth:`to_frame`."""
        return records_frame(
            self.total_records(), self.total_columns(), exact=exact, feature="totals_frame()"
        )

    # -- display ---------------------------------------------------------------------------------

    def display_records(self) -> list[dict[str, Any]]:
        """The rows shown by ``str`` and in notebooks (the records unless a subclass pivots)."""
        return self.to_records()

    def display_totals(self) -> list[dict[str, Any]]:
        """The total rows shown below the rows (the total records unless a subclass pivots)."""
        return self.total_records()

    def display_columns(self) -> list[str] | None:
        """The columns shown (``None``: those of the display rows)."""
        return None

    def _header(self, column: str) -> tuple[str, str]:
        """``(group, label)`` of a display column; columns of one group share a header."""
        return ("", column)

    def _tone(self, column: str, value: Any, record: dict[str, Any]) -> str | None:
        """The tone of a cell (:data:`NEGATIVE`, :data:`POSITIVE`, :data:`WARNING` or None)."""
        return None

    def to_text(self, locale: str | None = None) -> str:
        """The table as aligned text, digits grouped in ``locale`` (see :func:`set_locale`)."""
        text = render_text(
            self.display_records(),
            self.display_columns(),
            totals=self.display_totals(),
            header=self._header,
            locale=locale,
        )
        return f"{self.caption}\n{text}" if self.caption else text

    def to_html(self, locale: str | None = None) -> str:
        """The table as styled HTML, digits grouped in ``locale`` (see :func:`set_locale`)."""
        return render_html(
            self.display_records(),
            self.display_columns(),
            self.caption,
            totals=self.display_totals(),
            header=self._header,
            tone=self._tone,
            locale=locale,
        )

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        return self.to_html()

    # -- chart -----------------------------------------------------------------------------------

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Draw the result's chart on ``ax`` (a new figure when ``None``) and return the axes;
        ``kw`` goes to matplotlib's drawing call (``color=``, ``alpha=``...), except ``title=``.

        Needs the ``plot`` extra (``pip install "salesflow[plot]"``). This default draws the
        numeric columns of the display rows against their first text column; results override
        it with the chart that suits them.
        """
        records = self.display_records()
        columns = self.display_columns() or _columns_of(records)
        numeric = [c for c in columns if any(_is_number(r.get(c)) for r in records)]
        text = [c for c in columns if c not in numeric]
        labels = [
            " / ".join(str(r.get(c, "")) for c in text[:1]) or str(i) for i, r in enumerate(records)
        ]
        title = kw.pop("title", self.caption)
        return plot_bars(
            ax,
            labels,
            {c: [_float(r.get(c)) for r in records] for c in numeric},
            title=title,
            **kw,
        )
