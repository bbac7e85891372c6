"""What every analytics result shares: it is a table.

A result subclasses :class:`Table` and implements :meth:`Table.to_records`; it then prints as a text
table (``str``), renders in a notebook (``_repr_html_``) and converts to a pandas DataFrame
(:meth:`Table.to_frame`, with the ``pandas`` extra). Records hold plain values (``str``, ``int``,
``Decimal``, ``date``), never floats, so a DataFrame keeps exact ``Decimal`` objects.
"""

from __future__ import annotations

import abc
import html
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from salesflow.domain.money import Money
from salesflow.domain.periods import Period
from salesflow.errors import MissingDependencyError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Table", "render_html", "render_text"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Money | Period):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return " / ".join(_cell(v) for v in value)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal | Money) and not isinstance(value, bool)


def render_text(records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Render ``records`` as an aligned plain-text table (numbers right-aligned)."""
    if columns is None:
        columns = list(records[0]) if records else []
    if not columns:
        return "(empty)"
    cells = [[_cell(r.get(c)) for c in columns] for r in records]
    numeric = [any(_is_number(r.get(c)) for r in records) for c in columns]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(row) for row in cells] or ["(no rows)"]
    return "\n".join([line(list(columns)), rule, *body])


def render_html(
    records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, caption: str = ""
) -> str:
    """Render ``records`` as an HTML ``<table>`` for notebooks (every cell escaped)."""
    if columns is None:
        columns = list(records[0]) if records else []
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for record in records:
        tds = []
        for c in columns:
            value = record.get(c)
            style = ' style="text-align:right"' if _is_number(value) else ""
            tds.append(f"<td{style}>{html.escape(_cell(value))}</td>")
        rows.append(f"<tr>{''.join(tds)}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table class="salesflow">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def to_frame(
    records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """``records`` as a pandas DataFrame (needs the ``pandas`` extra)."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise MissingDependencyError("pandas", "pandas", "to_frame()") from exc
    return pd.DataFrame.from_records(list(records), columns=list(columns) if columns else None)


class Table(abc.ABC):
    """Base of analytics results: ``str``, ``_repr_html_``, ``to_records`` and ``to_frame``.

    Subclasses implement :meth:`to_records`; they may override :meth:`display_records` (and
    :attr:`caption`) to show a wider, more readable layout than the long records.
    """

    @property
    def caption(self) -> str:
        """A title printed above the table (none by default)."""
        return ""

    @abc.abstractmethod
    def to_records(self) -> list[dict[str, Any]]:
        """The result as a list of flat dicts (one per row), with exact values."""

    def display_records(self) -> list[dict[str, Any]]:
        """The rows shown by ``str`` and in notebooks (the records unless a subclass pivots)."""
        return self.to_records()

    def to_frame(self) -> pd.DataFrame:
        """The records as a pandas DataFrame (install the ``pandas`` extra)."""
        return to_frame(self.to_records())

    def __str__(self) -> str:
        text = render_text(self.display_records())
        return f"{self.caption}\n{text}" if self.caption else text

    def _repr_html_(self) -> str:
        return render_html(self.display_records(), caption=self.caption)
