"""The report's charts: matplotlib figures written as inline SVG (the ``plot`` extra).

matplotlib is imported when the first chart is drawn, never by ``import salesflow``. Figures are
built with :class:`matplotlib.figure.Figure` (no pyplot, so no global backend or state changes) under
an ``rc_context`` that writes text as SVG text (``svg.fonttype = 'none'``: small, sharp, selectable)
and fixes ``svg.hashsalt`` so the same figures give the same bytes. Values arrive as ``Decimal``
and become floats only here, for drawing; every figure a reader sees in a table stays exact.

The SVG's RDF metadata block is left out. Each SVG's ids are prefixed with the chart's name, so that several charts inline in one page never
share an id (a clip path of one chart must not clip another).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from salesflow.errors import MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "bar_chart",
    "grouped_bars",
    "stacked_bars",
]

PALETTE = (
    "#1f4e79",
    "#2e86c1",
    "#85c1e9",
    "#f0b27a",
    "#c0392b",
    "#7d3c98",
    "#27ae60",
    "#95a5a6",
    "#d4ac0d",
    "#5d6d7e",
)
"""Series colours, in order."""

_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "salesflow",
    "font.family": ["DejaVu Sans", "sans-serif"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9aa5b1",
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "xtick.color": "#4a5568",
    "ytick.color": "#1a202c",
    "legend.frameon": False,
}


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependencyError("matplotlib", "plot", "the report's charts") from exc
    return matplotlib


def _figure(width: float, height: float) -> Figure:
    _matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(figure: Figure, name: str) -> str:
    """``figure`` as an ``<svg>`` element to inline in HTML (no XML prolog, ids prefixed)."""
    matplotlib = _matplotlib()
    buffer = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"salesflow-{name}"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "salesflow"})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)
    prefix = re.sub(r"[^a-z0-9]", "-", name.lower())
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", text)
    text = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{prefix}-\1"', text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{name}" class="chart" ', 1)


def _amount_axis(axes: Axes, horizontal: bool) -> None:
    from matplotlib.ticker import FuncFormatter

    def short(value: float, _position: int) -> str:
        size = abs(value)
        if size >= 1_000_000:
            return f"{value / 1_000_000:g}M"
        if size >= 1_000:
            return f"{value / 1_000:g}k"
        return f"{value:g}"

    axis = axes.xaxis if horizontal else axes.yaxis
    axis.set_major_formatter(FuncFormatter(short))
    axes.grid(axis="x" if horizontal else "y", color="#e2e8f0", linewidth=0.8)
    axes.set_axisbelow(True)


def _height(rows: int) -> float:
    return max(2.0, 0.9 + 0.34 * rows)


def _number(value: Decimal | int | None) -> float:
    return 0.0 if value is None else float(value)


def _with(rc: Mapping[str, Any], draw: Any) -> str:
    matplotlib = _matplotlib()
    with matplotlib.rc_context(dict(rc)):
        return str(draw())


def stacked_bars(
    name: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[Decimal | int]],
    *,
    colors: Sequence[str] = PALETTE,
    title: str = "",
    percent: bool = False,
    width: float = 7.5,
    markers: Mapping[str, Sequence[Decimal | None]] | None = None,
) -> str:
    """Horizontal bars, one per label (top to bottom), each stacked from ``series`` (name ->
    one value per label). ``percent`` labels the axis in percent; ``markers`` (name -> one value
    per label) are drawn as ticks across the bars (a target, for instance)."""

    def draw() -> str:
        figure = _figure(width, _height(len(labels)))
        axes = figure.add_subplot()
        positions = list(range(len(labels)))
        left = [0.0] * len(labels)
        for index, (label, values) in enumerate(series.items()):
            numbers = [_number(v) for v in values]
            axes.barh(
                positions,
                numbers,
                left=left,
                color=colors[index % len(colors)],
                label=label,
                height=0.62,
                edgecolor="white",
                linewidth=0.6,
            )
            left = [a + b for a, b in zip(left, numbers, strict=True)]
        for index, (label, marks) in enumerate((markers or {}).items()):
            xs = [_number(v) for v in marks]
            axes.scatter(
                xs,
                positions,
                marker="|",
                s=260,
                linewidths=2.2,
                color="#111827" if index == 0 else "#b7950b",
                label=label,
                zorder=3,
            )
        axes.set_yticks(positions, list(labels))
        axes.invert_yaxis()
        if percent:
            axes.set_xlim(0, 100)
            axes.xaxis.set_major_formatter("{x:.0f}%")
            axes.grid(axis="x", color="#e2e8f0", linewidth=0.8)
            axes.set_axisbelow(True)
        else:
            _amount_axis(axes, horizontal=True)
        if title:
            axes.set_title(title, loc="left")
        columns = min(len(series) + len(markers or {}), 6)
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=columns, fontsize=8)
        return _svg(figure, name)

    return _with(_RC, draw)


def grouped_bars(
    name: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[Decimal | int]],
    *,
    colors: Sequence[str] = PALETTE,
    title: str = "",
    width: float = 7.5,
    amounts: bool = True,
) -> str:
    """Horizontal bars side by side: for each label, one bar per series."""

    def draw() -> str:
        figure = _figure(width, _height(len(labels) * max(1, len(series)) // 2 + 1))
        axes = figure.add_subplot()
        count = max(1, len(series))
        thickness = 0.8 / count
        for index, (label, values) in enumerate(series.items()):
            positions = [i - 0.4 + thickness * (index + 0.5) for i in range(len(labels))]
            axes.barh(
                positions,
                [_number(v) for v in values],
                height=thickness * 0.92,
                color=colors[index % len(colors)],
                label=label,
            )
        axes.set_yticks(list(range(len(labels))), list(labels))
        axes.invert_yaxis()
        if amounts:
            _amount_axis(axes, horizontal=True)
        else:
            axes.grid(axis="x", color="#e2e8f0", linewidth=0.8)
            axes.set_axisbelow(True)
        if title:
            axes.set_title(title, loc="left")
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=min(count, 6), fontsize=8)
        return _svg(figure, name)

    return _with(_RC, draw)


def bar_chart(
    name: str,
    labels: Sequence[str],
    values: Sequence[Decimal | int],
    *,
    color: str = PALETTE[1],
    title: str = "",
    width: float = 5.5,
    amounts: bool = True,
) -> str:
    """One horizontal bar per label, its value printed at the bar's end."""

    def draw() -> str:
        figure = _figure(width, _height(len(labels)))
        axes = figure.add_subplot()
        numbers = [_number(v) for v in values]
        bars = axes.barh(range(len(labels)), numbers, color=color, height=0.62)
        axes.set_yticks(list(range(len(labels))), list(labels))
        axes.invert_yaxis()
        texts = [f"{v:,.0f}" if amounts else f"{v:g}" for v in numbers]
        axes.bar_label(bars, labels=texts, padding=3, fontsize=8, color="#1a202c")
        if amounts:
            _amount_axis(axes, horizontal=True)
        axes.margins(x=0.18)
        if title:
            axes.set_title(title, loc="left")
        return _svg(figure, name)

    return _with(_RC, draw)
