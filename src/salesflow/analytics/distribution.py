"""The mix of opportunities over the values of one attribute (R5): industries, regions, anything.

Rules (pinned by tests):

* Every opportunity counts once, in its group (``by``, the owner by default) and for the team.
* A missing value (``None`` or a blank string) is grouped under an explicit key, ``"unknown"`` by
  default, never dropped; a missing group value (a rep without a team) likewise.
* Shares are ``Decimal`` percentages of the group's opportunities, rounded to ``places`` decimals
  with the largest-remainder method, so the shares of every group add up to exactly 100.
* Amounts are summed exactly, per currency; currencies are never mixed.

The calculator makes one pass over its input and keeps memory proportional to the number of
(group, value) cells. A :class:`~salesflow.analytics.funnel.Funnel` is the same table over stages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from salesflow.analytics.frames import is_frame
from salesflow.analytics.grouping import (
    ALL,
    MISSING,
    amount_fields,
    as_money,
    check_currency,
    check_label,
    check_places,
    compile_loop,
    group_fields,
    is_attribute_name,
    label,
    money_of,
    sort_key,
    team_fields,
    to_by,
)
from salesflow.analytics.inputs import Fields, check_fields, mapped, stage_names
from salesflow.analytics.windows import WindowLike, within
from salesflow.domain.money import Money
from salesflow.domain.numbers import EXACT, ZERO
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, ValidationError
from salesflow.tables import Table, plot_bars

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "ALL",
    "MISSING",
    "Distribution",
    "DistributionItem",
    "distribution",
    "largest_remainder_shares",
]


class DistributionItem(Protocol):
    """What :func:`distribution` reads from each input object (an Opportunity, an ORM row...).

    ``amount`` is a :class:`Money`, or a ``Decimal`` with the currency in a ``currency`` attribute
    (or given as ``distribution(currency=...)``). The attributes named by ``dimension`` and ``by``
    are read too.
    """

    @property
    def amount(self) -> Money | Decimal:
        """The opportunity amount."""
        ...


# -- shares -------------------------------------------------------------------------------------


def largest_remainder_shares(counts: Sequence[int], *, places: int = 1) -> list[Decimal]:
    """Percentages of ``counts`` in their total, rounded to ``places`` decimals, adding up to 100.

    Each share is first rounded down to a whole number of units of ``10**-places`` percent; the
    units still missing from 100 go one each to the largest remainders (the earliest count wins a
    tie). A zero count always gets ``0``. When every count is zero, every share is ``0``.

    >>> largest_remainder_shares([1, 1, 1], places=1)
    [Decimal('33.4'), Decimal('33.3'), Decimal('33.3')]
    """
    check_places(places)
    values = list(counts)
    for i, count in enumerate(values):
        if type(count) is not int or count < 0:
            raise ValidationError(f"counts[{i}]", count, "an int of zero or more")
    total = sum(values)
    if not total:
        return [Decimal(0).scaleb(-places) for _ in values]
    units = 100 * 10**places
    split = [divmod(count * units, total) for count in values]
    floors = [whole for whole, _rest in split]
    left = units - sum(floors)
    for i in sorted(range(len(values)), key=lambda i: (-split[i][1], i))[:left]:
        floors[i] += 1
    return [Decimal(units_).scaleb(-places) for units_ in floors]


# -- input helpers shared by the calculators ---------------------------------------------------


# -- the one-pass tally -------------------------------------------------------------------------

Cells = dict[tuple[Any, Any], list[Any]]
"""(group, value) -> [count, amount in the cell's first currency, that currency]."""
Others = dict[tuple[Any, Any, str], Decimal]
"""(group, value, currency) -> amount, for the rare cells that hold a second currency."""


_TALLY = """
def loop(items, cells, slowly, add):
    for item in items:
        key = ({group}, item.{value})
        money = item.amount
        cell = cells.get(key)
        if cell is not None:
            try:
                if money.currency == cell[2]:
                    cell[1] = add(cell[1], money.amount)
                    cell[0] += 1
                    continue
            except (AttributeError, TypeError):
                pass
        slowly(key, cell, item)
"""
# A new cell, a second currency and any amount that is not Money-like go through slowly(), which
# validates; the first amount of every cell is validated there, and a later one that is not a
# number Decimal can add (a float) fails the addition (before anything is stored) and goes there
# too. The amount is added before the count for that reason. ``add`` is EXACT.add: a sum of
# amounts with 25 significant digits outgrows the default context's 28 digits.


def tally(
    items: Iterable[Any],
    group: tuple[str, ...],
    value: str,
    currency: str | None,
) -> tuple[Cells, Others]:
    """Count and sum the amounts of ``items`` per (group, value) in one pass.

    ``group`` names the grouping attributes (the key is the value for one name, a tuple for
    several, ``()`` for none) and ``value`` the attribute counted over.
    """
    loop = compile_loop(_TALLY, group, value)
    cells: Cells = {}
    others: Others = {}

    def slowly(key: tuple[Any, Any], cell: list[Any] | None, item: Any) -> None:
        amount, code = money_of(item, currency)
        if cell is None:
            cells[key] = [1, amount, code]
            return
        cell[0] += 1
        if code == cell[2]:
            cell[1] = EXACT.add(cell[1], amount)
        else:
            other = (key[0], key[1], code)
            others[other] = EXACT.add(others.get(other, ZERO), amount)

    try:
        loop(items, cells, slowly, EXACT.add)
    except AttributeError as exc:
        raise InvalidTypeError(
            exc.name or "opportunity",
            getattr(exc, "obj", None),
            "an object with the attributes the calculator reads (amount and the grouping ones)",
        ) from exc
    for (group_key, value_key), cell in cells.items():
        if not cell[1].is_finite():
            raise ValidationError(
                "amount", cell[1], "finite amounts", where=f"{group_key!r} / {value_key!r}"
            )
    return cells, others


def merge(
    cells: Cells, others: Others, missing: str
) -> tuple[dict[Any, dict[Any, int]], dict[Any, dict[Any, dict[str, Decimal]]]]:
    """Cells as ``{group: {value: count}}`` and ``{group: {value: {currency: amount}}}``, with
    missing groups and values labelled ``missing``."""
    counts: dict[Any, dict[Any, int]] = {}
    amounts: dict[Any, dict[Any, dict[str, Decimal]]] = {}

    def add(group: Any, value: Any, code: str, amount: Decimal) -> None:
        per_currency = amounts.setdefault(group, {}).setdefault(value, {})
        per_currency[code] = EXACT.add(per_currency.get(code, ZERO), amount)

    for (group, value), (count, amount, code) in cells.items():
        group, value = label(group, missing), label(value, missing)
        row = counts.setdefault(group, {})
        row[value] = row.get(value, 0) + count
        add(group, value, code, amount)
    for (group, value, code), amount in others.items():
        add(label(group, missing), label(value, missing), code, amount)
    return counts, amounts


# -- the result ---------------------------------------------------------------------------------


class Distribution(Table):
    """The result of :func:`distribution`: count, amount and share per (group, value), and for the
    team.

    Look figures up with :meth:`counts`, :meth:`shares` and :meth:`amounts` (``group=None`` is the
    team). Shares are ``Decimal`` percentages with :attr:`places` decimals that add up to exactly
    100 per group (largest remainder).
    """

    def __init__(
        self,
        *,
        dimension: str,
        by: tuple[str, ...],
        counts: dict[Any, dict[Any, int]],
        amounts: dict[Any, dict[Any, dict[str, Decimal]]],
        values: Sequence[Any],
        places: int,
        currency: str | None,
        dense: bool = False,
    ) -> None:
        self.dimension = dimension
        """The attribute the opportunities are distributed over (``"industry"``...)."""
        self.by = by
        """The attributes the groups are made of (``()``: the team only)."""
        self.places = places
        """Decimal places of the shares."""
        self._counts = counts
        self._amounts = amounts
        self._values = tuple(values)
        self._dense = dense
        self._currency = currency
        self._groups = tuple(sorted(counts, key=sort_key)) if by else ()
        team_counts: dict[Any, int] = {}
        team_amounts: dict[Any, dict[str, Decimal]] = {}
        for group, row in counts.items():
            for value, count in row.items():
                team_counts[value] = team_counts.get(value, 0) + count
                per_team = team_amounts.setdefault(value, {})
                for code, amount in amounts[group][value].items():
                    per_team[code] = EXACT.add(per_team.get(code, ZERO), amount)
        self._team_counts = team_counts
        self._team_amounts = team_amounts
        self._shares: dict[Any, dict[Any, Decimal]] = {}

    # -- lookups ------------------------------------------------------------------------------

    @property
    def groups(self) -> tuple[Any, ...]:
        """The group keys, sorted (a value, or a tuple when grouping by several attributes)."""
        return self._groups

    @property
    def values(self) -> tuple[Any, ...]:
        """The values of the dimension, in display order."""
        return self._values

    @property
    def currencies(self) -> tuple[str, ...]:
        """The currencies of the amounts, sorted."""
        codes = {code for row in self._team_amounts.values() for code in row}
        if not codes and self._currency is not None:
            codes.add(self._currency)
        return tuple(sorted(codes))

    def _row(self, group: Any) -> tuple[dict[Any, int], dict[Any, dict[str, Decimal]]]:
        if group is None:
            return self._team_counts, self._team_amounts
        if group not in self._counts or not self.by:
            raise ValidationError("group", group, f"None (the team) or one of {list(self._groups)}")
        return self._counts[group], self._amounts[group]

    def _listed(self, row: dict[Any, int]) -> list[Any]:
        return list(self._values) if self._dense else [v for v in self._values if v in row]

    def total(self, group: Any = None) -> int:
        """How many opportunities the group holds (``None``: the team)."""
        return sum(self._row(group)[0].values())

    def counts(self, group: Any = None) -> dict[Any, int]:
        """Opportunities per value, in display order, for ``group`` (``None``: the team)."""
        row = self._row(group)[0]
        return {value: row.get(value, 0) for value in self._listed(row)}

    def count(self, value: Any, group: Any = None) -> int:
        """Opportunities with ``value`` in ``group`` (``None``: the team)."""
        return self._row(group)[0].get(value, 0)

    def shares(self, group: Any = None) -> dict[Any, Decimal]:
        """Share of the group's opportunities per value (percent; they add up to exactly 100)."""
        cached = self._shares.get(group)
        if cached is None:
            counts = self.counts(group)
            rounded = largest_remainder_shares(list(counts.values()), places=self.places)
            cached = self._shares[group] = dict(zip(counts, rounded, strict=True))
        return dict(cached)

    def share(self, value: Any, group: Any = None) -> Decimal:
        """Share of ``value`` in ``group`` (percent; ``0`` when the value does not occur)."""
        return self.shares(group).get(value, Decimal(0).scaleb(-self.places))

    def amounts(self, group: Any = None) -> dict[Any, Money]:
        """Amount per value for ``group`` (``None``: the team). A value whose opportunities are
        in several currencies raises :class:`~salesflow.errors.CurrencyMismatchError`; use
        :meth:`amounts_by_currency` then."""
        counts, amounts = self._row(group)
        fallback = self.currencies[0] if len(self.currencies) == 1 else self._currency
        return {
            value: as_money(amounts.get(value, {}), fallback, f"the amount of {value!r}")
            for value in self._listed(counts)
        }

    def amounts_by_currency(self, group: Any = None) -> dict[Any, dict[str, Money]]:
        """Amount per value and currency for ``group`` (``None``: the team)."""
        counts, amounts = self._row(group)
        return {
            value: {
                code: Money._trusted(v, code) for code, v in sorted(amounts.get(value, {}).items())
            }
            for value in self._listed(counts)
        }

    # -- tables -------------------------------------------------------------------------------

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        per = f" per {', '.join(self.by)}" if self.by else ""
        return f"Opportunities by {self.dimension}{per} ({self.total()} opportunities)"

    def _record_rows(self, totals: bool) -> list[tuple[dict[str, Any], Any]]:
        if totals:
            return [(team_fields(self.by), None)]
        if not self.by:  # grouped by nothing: the team is the one group
            return [({}, None)]
        return [(group_fields(self.by, g), g) for g in self._groups]

    def _records(self, totals: bool) -> list[dict[str, Any]]:
        currencies = self.currencies
        records = []
        for fields, group in self._record_rows(totals):
            counts, amounts = self._row(group)
            shares = self.shares(group)
            for value in self._listed(counts):
                records.append(
                    {
                        **fields,
                        self.dimension: value,
                        "count": counts.get(value, 0),
                        "share": shares[value],
                        **amount_fields(amounts.get(value, {}), currencies),
                    }
                )
        return records

    def to_records(self) -> list[dict[str, Any]]:
        """One record per (group, value): the group columns, the dimension, ``count``, ``share``
        (percent of the group) and the amount columns (``amount`` and ``currency``;
        ``amount_<CODE>`` per currency when there are several). The team's rows are
        :meth:`total_records` (grouped by nothing, the team's rows are the data rows too)."""
        return self._records(totals=False)

    def total_records(self) -> list[dict[str, Any]]:
        """The team's record per value (:data:`ALL` in the first group column): counts and
        amounts are the sums of the groups', shares are of the team's opportunities."""
        return self._records(totals=True)

    def record_columns(self) -> list[str]:
        """The group columns, the dimension, ``count``, ``share`` and the amount columns."""
        codes = self.currencies
        amounts = ["amount", "currency"] if len(codes) <= 1 else [f"amount_{c}" for c in codes]
        return [*self.by, self.dimension, "count", "share", *amounts]

    def _display(self, totals: bool) -> list[dict[str, Any]]:
        records = []
        for fields, group in self._record_rows(totals):
            counts = self._row(group)[0]
            shares = self.shares(group)
            record: dict[str, Any] = {**fields, "opportunities": self.total(group)}
            for value in self._values:
                listed = value in shares
                record[f"{value}\t%"] = shares[value] if listed else None
                record[f"{value}\tn"] = counts.get(value, 0) if listed else None
            records.append(record)
        return records

    def display_columns(self) -> list[str]:
        """The group columns, ``opportunities``, then share and count of each value."""
        return [
            *self.by,
            "opportunities",
            *(f"{value}\t{part}" for value in self._values for part in ("%", "n")),
        ]

    def _header(self, column: str) -> tuple[str, str]:
        value, tab, part = column.rpartition("\t")
        return (value, part) if tab else ("", column)

    def display_records(self) -> list[dict[str, Any]]:
        """Groups as rows and values as columns: each value's share (percent) and count in
        cells of their own."""
        return self._display(totals=False)

    def display_totals(self) -> list[dict[str, Any]]:
        """The team's row (none when grouped by nothing: the one row is the team)."""
        return self._display(totals=True) if self.by else []

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Each group's mix as a 100 % stacked bar (the team's first), one colour per value."""
        rows = [(ALL, None)] if self.by else [("", None)]
        rows += [(_label(g), g) for g in self._groups]
        shares = [self.shares(group) for _name, group in rows]
        series = {str(value): [float(s.get(value, 0)) for s in shares] for value in self._values}
        title = kw.pop("title", self.caption)
        return plot_bars(
            ax,
            [name for name, _group in rows],
            series,
            stacked=True,
            horizontal=True,
            title=title,
            value_label=f"share of opportunities (%) by {self.dimension}",
            **kw,
        )


def _label(group: Any) -> str:
    if isinstance(group, tuple):
        return " / ".join(str(part) for part in group)
    return str(group)


def distribution(
    opportunities: Iterable[DistributionItem],
    *,
    dimension: str = "industry",
    by: Sequence[str] | str = "owner",
    missing: str = MISSING,
    places: int = 1,
    currency: str | None = None,
    fields: Fields | None = None,
    plan: StagePlan | None = None,
    created: WindowLike = None,
    closed: WindowLike = None,
    tz: tzinfo | None = None,
) -> Distribution:
    """Count, amount and share of ``opportunities`` per value of ``dimension``, per group and for
    the team (R5: "which industries does my team work?").

    Args:
        opportunities: any iterable of objects with ``amount`` and the attributes named by
            ``dimension`` and ``by`` (see :class:`DistributionItem`).
        dimension: the attribute to distribute over: ``"industry"``, ``"region"``, ``"stage"``...
        by: attribute(s) to group by, e.g. ``"owner"`` or ``("team", "owner")``; ``()`` for the
            team only.
        missing: the key under which ``None`` and blank values (and groups) are reported.
        places: decimal places of the shares (0 to 6).
        currency: the currency of ``Decimal`` amounts without a ``currency`` attribute, and of an
            empty result.
        fields: where each field comes from in your rows, e.g. ``{"industry": "sector",
            "amount": lambda row: Decimal(row.value)}`` (see :mod:`salesflow.analytics.inputs`).
        plan: the stage plan that says which stages are closed, for ``closed=``
            (``StagePlan.default()`` when omitted).
        created: count only the opportunities created in this window, a
            :class:`~salesflow.domain.periods.Period` or a ``(start, end)`` pair of dates, both
            inclusive (see :mod:`salesflow.analytics.windows`).
        closed: count only the opportunities won or lost in this window (open ones are in
            none).
        tz: the zone that decides the day of a stage change in a window (UTC by default).

    Values are listed by how many opportunities the team has in each (most first, ties by name),
    with ``missing`` last.

    Raises:
        ValidationError: a bad argument or a malformed opportunity (named in the message).
    """
    if not is_attribute_name(dimension):
        raise ValidationError("dimension", dimension, "an attribute name such as 'industry'")
    group_by = to_by(by)
    check_label(missing, "missing")
    check_places(places)
    check_currency(currency)
    if is_frame(opportunities):  # a DataFrame: counted on its columns (analytics.columnar)
        from salesflow.analytics.columnar import tally_frame

        if created is not None or closed is not None:
            raise ValidationError(
                "created" if created is not None else "closed",
                created if created is not None else closed,
                "no window for a DataFrame (it has no stage history): filter its rows first",
            )
        cells, others = tally_frame(
            opportunities, group_by, dimension, currency, check_fields(fields)
        )
    else:
        rows = within(
            mapped(opportunities, check_fields(fields)),
            stage_names(plan)[1],
            created=created,
            closed=closed,
            tz=tz,
        )
        cells, others = tally(rows, group_by, dimension, currency)
    counts, amounts = merge(cells, others, missing)
    team: dict[Any, int] = {}
    for row in counts.values():
        for value, count in row.items():
            team[value] = team.get(value, 0) + count
    values = sorted(team, key=lambda v: (v == missing, -team[v], sort_key(v)))
    return Distribution(
        dimension=dimension,
        by=group_by,
        counts=counts,
        amounts=amounts,
        values=values,
        places=places,
        currency=currency,
    )
