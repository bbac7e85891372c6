"""Call statistics (R7): calls and talk time per rep that count real work only, and nothing hidden.

Rules (pinned by tests):

* A call **counts** when it resolved to a known contact: it has a ``contact_id`` (and, when a
  :class:`~salesflow.domain.phones.PhoneDirectory` is given, that contact is in it), or, when a
  directory is given, its counterpart number (``to`` of an outbound call, ``from`` of an inbound
  one) belongs to a contact there. Every other call is **uncounted** and reported separately, per
  group and by reason, so a rep's calls to unknown numbers are visible but are not "work".
* Per group (``by="owner"`` by default): counted calls, answered counted calls, their talk time and
  ring time (int seconds), and the uncounted calls with their talk time. The team line is the exact
  sum of the groups; counted + uncounted (+ calls outside the requested period) = every call.
* The average talk time is the counted talk time divided by the **answered** counted calls (talk per
  conversation: unanswered calls have none), a ``Decimal`` of seconds rounded half up to one
  decimal place; ``None`` when nothing was answered. The answer rate is answered / counted calls as
  a percentage, rounded half up to one decimal place.
* ``period`` is ``None`` (all calls together), a kind (``"month"``, ``"quarter"``, ``"year"``: one
  line per period and group) or one :class:`~salesflow.domain.periods.Period` (only its calls; the
  others are counted in :attr:`CallStats.outside_period`). A call belongs to the period of its
  ``started_at`` date, in ``tz`` when given, else in the offset it was recorded with.

The calculator makes one pass over its input and keeps memory proportional to the number of
(period, group) cells.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from salesflow.analytics.inputs import Fields, check_fields, mapped
from salesflow.domain.periods import Period, PeriodKind
from salesflow.domain.phones import PhoneDirectory
from salesflow.errors import InvalidTypeError, ValidationError
from salesflow.tables import Table, plot_bars

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "UNCOUNTED_REASONS",
    "CallGroupStats",
    "CallItem",
    "CallStats",
    "call_stats",
]

UNCOUNTED_REASONS = (
    "unlinked",
    "unknown_contact",
    "unknown_number",
    "unparseable_number",
    "company_number",
)
"""Why a call did not count: no contact and no directory to look it up in (``unlinked``); its
contact id is not in the directory (``unknown_contact``); its number belongs to no contact, is not a
phone number, or is the company's own (``unknown_number``, ``unparseable_number``,
``company_number``)."""

_TENTH = Decimal("0.1")
_HUNDRED = Decimal(100)
_KINDS = ("month", "quarter", "year")


class CallItem(Protocol):
    """What :func:`call_stats` reads from each call (a
    :class:`~salesflow.domain.calls.CallRecord`, an ORM row, a namedtuple).

    ``direction``, ``from_number`` and ``to_number`` are read only for calls without a contact
    when a directory is given; the attributes named in ``by=`` are read too.
    """

    @property
    def contact_id(self) -> str | None:
        """The linked contact, if any."""
        ...

    @property
    def disposition(self) -> str:
        """``"answered"``, ``"no_answer"``, ``"busy"`` or ``"failed"``."""
        ...

    @property
    def talk_seconds(self) -> int:
        """Talk time in whole seconds."""
        ...

    @property
    def ring_seconds(self) -> int:
        """Ring time in whole seconds."""
        ...

    @property
    def started_at(self) -> datetime:
        """When the call started (aware)."""
        ...


@attrs.frozen(kw_only=True)
class CallGroupStats:
    """The figures of one group (a rep, a team...) or of the whole team. All counts are ints."""

    calls: int = 0
    """Counted calls: calls to known contacts."""
    answered: int = 0
    """Counted calls that were answered."""
    talk_seconds: int = 0
    """Talk time of the counted calls."""
    ring_seconds: int = 0
    """Ring time of the counted calls."""
    uncounted: int = 0
    """Calls that did not resolve to a known contact."""
    uncounted_talk_seconds: int = 0
    """Talk time of the uncounted calls (shown, never added to :attr:`talk_seconds`)."""

    @property
    def total_calls(self) -> int:
        """Counted plus uncounted calls."""
        return self.calls + self.uncounted

    @property
    def average_talk_seconds(self) -> Decimal | None:
        """Talk time per answered counted call, in seconds rounded half up to 0.1 (``None`` when
        none was answered)."""
        if not self.answered:
            return None
        return (Decimal(self.talk_seconds) / self.answered).quantize(_TENTH, ROUND_HALF_UP)

    @property
    def answer_rate(self) -> Decimal | None:
        """Answered / counted calls in percent, rounded half up to 0.1 (``None`` without calls)."""
        if not self.calls:
            return None
        return (Decimal(self.answered) * _HUNDRED / self.calls).quantize(_TENTH, ROUND_HALF_UP)

    def __add__(self, other: CallGroupStats) -> CallGroupStats:
        if not isinstance(other, CallGroupStats):
            return NotImplemented
        return CallGroupStats(
            calls=self.calls + other.calls,
            answered=self.answered + other.answered,
            talk_seconds=self.talk_seconds + other.talk_seconds,
            ring_seconds=self.ring_seconds + other.ring_seconds,
            uncounted=self.uncounted + other.uncounted,
            uncounted_talk_seconds=self.uncounted_talk_seconds + other.uncounted_talk_seconds,
        )

    def to_record(self) -> dict[str, Any]:
        """The figures as a flat dict (averages as ``Decimal`` or ``None``)."""
        return {
            "calls": self.calls,
            "answered": self.answered,
            "answer_rate": self.answer_rate,
            "talk_seconds": self.talk_seconds,
            "average_talk_seconds": self.average_talk_seconds,
            "ring_seconds": self.ring_seconds,
            "uncounted": self.uncounted,
            "uncounted_talk_seconds": self.uncounted_talk_seconds,
        }


_ZERO_STATS = CallGroupStats()

# A cell is [calls, answered, talk, ring, uncounted, uncounted_talk]; lists are cheaper to bump
# in the hot loop than frozen values.
_CALLS, _ANSWERED, _TALK, _RING, _UNCOUNTED, _UNCOUNTED_TALK = range(6)


def _stats(cell: list[int]) -> CallGroupStats:
    return CallGroupStats(
        calls=cell[_CALLS],
        answered=cell[_ANSWERED],
        talk_seconds=cell[_TALK],
        ring_seconds=cell[_RING],
        uncounted=cell[_UNCOUNTED],
        uncounted_talk_seconds=cell[_UNCOUNTED_TALK],
    )


def _where(item: Any) -> str:
    return f"call {getattr(item, 'id', item)!r}"


def _seconds(item: Any, name: str) -> int:
    value = getattr(item, name)
    if type(value) is not int or value < 0:
        raise ValidationError(
            name, value, "whole seconds as an int of zero or more", where=_where(item)
        )
    return value


def call_stats(
    calls: Iterable[CallItem],
    *,
    by: Sequence[str] | str = ("owner",),
    period: Period | PeriodKind | None = None,
    directory: PhoneDirectory | None = None,
    tz: tzinfo | None = None,
    fiscal_year_start: int = 1,
    fields: Fields | None = None,
) -> CallStats:
    """Count calls and talk time per group, counting only calls to known contacts (R7).

    Args:
        calls: any iterable of objects with ``contact_id``, ``disposition``, ``talk_seconds``,
            ``ring_seconds`` and ``started_at`` (see :class:`CallItem`), plus the ``by``
            attributes. Deduplicate first (:func:`~salesflow.domain.calls.unique_calls`) when the
            input may hold the same call twice.
        by: attribute(s) to group by (``"owner"``, ``("team", "owner")``; ``()`` for the team only).
        period: ``None``, a period kind to split by, or one :class:`Period` to keep.
        directory: the contacts' numbers: calls without a contact are resolved through it, and a
            contact id it does not know does not count.
        tz: the zone that decides a call's period.
        fiscal_year_start: first month of the fiscal year, for quarters and years.
        fields: where each field comes from in your call rows, e.g. ``{"owner": "agent",
            "talk_seconds": "billsec"}`` (see :mod:`salesflow.analytics.inputs`).

    Raises:
        ValidationError: a bad argument, or a call with a naive time or negative seconds.
    """
    group_by = (by,) if isinstance(by, str) else tuple(by)
    if not all(isinstance(name, str) and name.isidentifier() for name in group_by):
        raise ValidationError("by", by, "attribute names such as 'owner' or 'team'")
    if type(fiscal_year_start) is not int or not 1 <= fiscal_year_start <= 12:
        raise ValidationError("fiscal_year_start", fiscal_year_start, "a month from 1 to 12")
    kind: PeriodKind | None = None
    window: range | None = None
    if isinstance(period, Period):
        window = period.month_indexes()
    elif period is not None:
        if period not in _KINDS:
            raise ValidationError("period", period, "None, 'month', 'quarter', 'year' or a Period")
        kind = period
    if directory is not None and not isinstance(directory, PhoneDirectory):
        raise InvalidTypeError("directory", directory, "a PhoneDirectory or None")
    if tz is not None and not isinstance(tz, tzinfo):
        raise InvalidTypeError("tz", tz, "a tzinfo (e.g. ZoneInfo('Asia/Shanghai')) or None")

    group_of: Callable[[Any], Any] = (
        operator.attrgetter(*group_by) if group_by else (lambda _item: ())
    )
    cells: dict[tuple[int | None, Any], list[int]] = {}
    reasons = dict.fromkeys(UNCOUNTED_REASONS, 0)
    outside = 0
    need_month = kind is not None or window is not None
    # direction and numbers are read only when a directory is given
    rows: Iterable[Any] = mapped(calls, check_fields(fields))
    try:
        for item in rows:
            month: int | None = None
            if need_month:
                started = item.started_at
                if not isinstance(started, datetime) or started.utcoffset() is None:
                    raise ValidationError(
                        "started_at", started, "a timezone-aware datetime", where=_where(item)
                    )
                if tz is not None:
                    started = started.astimezone(tz)
                month = started.year * 12 + started.month - 1
                if window is not None:
                    if month not in window:
                        outside += 1
                        continue
                    month = None
                elif kind != "month":
                    assert kind is not None
                    month = Period.from_month_index(
                        month, kind, fiscal_year_start=fiscal_year_start
                    ).first
            contact = item.contact_id
            reason: str | None = None
            if directory is None:
                if contact is None:
                    reason = "unlinked"
            elif contact is None:
                number = item.to_number if item.direction == "outbound" else item.from_number
                contact, found = directory.classify(number, owner=getattr(item, "owner", None))
                if contact is None:
                    reason = found
            elif contact not in directory:
                reason = "unknown_contact"
            key = (month, group_of(item))
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = [0, 0, 0, 0, 0, 0]
            talk = item.talk_seconds
            if type(talk) is not int or talk < 0:
                talk = _seconds(item, "talk_seconds")
            if reason is None:
                ring = item.ring_seconds
                if type(ring) is not int or ring < 0:
                    ring = _seconds(item, "ring_seconds")
                cell[_CALLS] += 1
                cell[_TALK] += talk
                cell[_RING] += ring
                if item.disposition == "answered":
                    cell[_ANSWERED] += 1
            else:
                reasons[reason] += 1
                cell[_UNCOUNTED] += 1
                cell[_UNCOUNTED_TALK] += talk
    except AttributeError as exc:
        raise InvalidTypeError(
            exc.name or "call",
            getattr(exc, "obj", None),
            "an object with the attributes call_stats reads (see CallItem)",
        ) from exc
    return CallStats(
        by=group_by,
        kind=kind,
        period=period if isinstance(period, Period) else None,
        fiscal_year_start=fiscal_year_start,
        cells=cells,
        reasons=reasons,
        outside_period=outside,
    )


class CallStats(Table):
    """The result of :func:`call_stats`: figures per group (and period), the team line, and the
    uncounted calls by reason."""

    def __init__(
        self,
        *,
        by: tuple[str, ...],
        kind: PeriodKind | None,
        period: Period | None,
        fiscal_year_start: int,
        cells: dict[tuple[int | None, Any], list[int]],
        reasons: dict[str, int],
        outside_period: int,
    ) -> None:
        self.by = by
        """The attributes the groups are made of."""
        self.kind = kind
        """The period kind the figures are split by (``None``: not split)."""
        self.period = period
        """The one period kept, when ``call_stats(period=Period...)`` was used."""
        self.fiscal_year_start = fiscal_year_start
        """First month of the fiscal year (for quarters and years)."""
        self._cells = cells
        self._reasons = reasons
        self.outside_period = outside_period
        """Calls left out because they started outside :attr:`period`."""

    # -- totals ----------------------------------------------------------------------------------

    @property
    def team(self) -> CallGroupStats:
        """The whole team: the exact sum of every group."""
        total = _ZERO_STATS
        for cell in self._cells.values():
            total = total + _stats(cell)
        return total

    @property
    def calls(self) -> int:
        """Counted calls of the whole team."""
        return sum(cell[_CALLS] for cell in self._cells.values())

    @property
    def uncounted(self) -> int:
        """Calls that did not count (see :attr:`uncounted_reasons`)."""
        return sum(self._reasons.values())

    @property
    def uncounted_reasons(self) -> dict[str, int]:
        """How many calls did not count, per reason (see :data:`UNCOUNTED_REASONS`); reasons with
        no calls are left out."""
        return {reason: n for reason, n in self._reasons.items() if n}

    @property
    def total_calls(self) -> int:
        """Every call read: counted + uncounted + outside the period."""
        return self.calls + self.uncounted + self.outside_period

    # -- breakdowns ------------------------------------------------------------------------------

    def _period(self, first: int) -> Period:
        assert self.kind is not None
        return Period.from_month_index(first, self.kind, fiscal_year_start=self.fiscal_year_start)

    @property
    def groups(self) -> dict[Any, CallGroupStats]:
        """Figures per group over all periods, sorted by group (``None`` last)."""
        merged: dict[Any, CallGroupStats] = {}
        for (_month, group), cell in self._cells.items():
            merged[group] = merged.get(group, _ZERO_STATS) + _stats(cell)
        return {g: merged[g] for g in sorted(merged, key=_sort_key)}

    def group(self, key: Any) -> CallGroupStats:
        """The figures of one group (all zero when it made no calls)."""
        return self.groups.get(key, _ZERO_STATS)

    @property
    def periods(self) -> list[Period]:
        """The periods that have calls, in time order (empty unless split by a kind)."""
        if self.kind is None:
            return []
        return [self._period(m) for m in sorted({m for (m, _g) in self._cells if m is not None})]

    def by_period(self) -> dict[Period, dict[Any, CallGroupStats]]:
        """``{period: {group: figures}}`` in time order (needs ``period=<kind>``)."""
        if self.kind is None:
            raise ValidationError("period", None, "call_stats(period='month'/'quarter'/'year')")
        result: dict[Period, dict[Any, CallGroupStats]] = {}
        for month, group in sorted(self._cells, key=lambda k: (k[0] or 0, _sort_key(k[1]))):
            assert month is not None
            result.setdefault(self._period(month), {})[group] = _stats(self._cells[(month, group)])
        return result

    # -- tables ----------------------------------------------------------------------------------

    def _group_fields(self, group: Any) -> dict[str, Any]:
        if len(self.by) == 1:
            return {self.by[0]: group}
        return dict(zip(self.by, group, strict=True))

    def to_records(self) -> list[dict[str, Any]]:
        """One record per (period, group): ``period`` (label, only when split by a kind), the group
        attributes, then the figures of :meth:`CallGroupStats.to_record`."""
        records = []
        for month, group in sorted(self._cells, key=lambda k: (k[0] or 0, _sort_key(k[1]))):
            record: dict[str, Any] = {}
            if month is not None:
                record["period"] = self._period(month).label
            record.update(self._group_fields(group))
            record.update(_stats(self._cells[(month, group)]).to_record())
            records.append(record)
        return records

    def total_records(self) -> list[dict[str, Any]]:
        """The team's figures: one record per period when split by a kind (``period``, then
        ``(all)`` in the first group column), else one record; the counts and seconds are the
        sums of :meth:`to_records`' (averages and rates are the team's own)."""
        per_period: dict[int | None, CallGroupStats] = {}
        for (month, _group), cell in self._cells.items():
            per_period[month] = per_period.get(month, _ZERO_STATS) + _stats(cell)
        if not per_period:
            per_period[None] = _ZERO_STATS
        records = []
        for month in sorted(per_period, key=lambda m: m or 0):
            record: dict[str, Any] = {}
            if self.kind is not None:
                record["period"] = self._period(month).label if month is not None else _ALL
            record.update(dict.fromkeys(self.by))
            if self.by:
                record[self.by[0]] = _ALL
            record.update(per_period[month].to_record())
            records.append(record)
        return records

    def record_columns(self) -> list[str]:
        """``period`` (when split by a kind), the group attributes, then the figures."""
        period = ["period"] if self.kind is not None else []
        return [*period, *self.by, *_ZERO_STATS.to_record()]

    def display_records(self) -> list[dict[str, Any]]:
        """The records, with groups without a value shown as ``(none)``; the team's lines are
        :meth:`display_totals`."""
        records = []
        for record in self.to_records():
            for name in self.by:
                if record[name] is None:
                    record[name] = "(none)"
            records.append(record)
        return records

    def display_totals(self) -> list[dict[str, Any]]:
        """The team's line: every period together, ``(all)`` in the first columns."""
        total: dict[str, Any] = {}
        if self.kind is not None:
            total["period"] = _ALL
        total.update(dict.fromkeys(self.by, ""))
        if self.by:
            total[self.by[0]] = _ALL
        total.update(self.team.to_record())
        return [total]

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Per group, counted calls (answered and not) and uncounted calls, stacked."""
        groups = self.groups
        figures = list(groups.values())
        series = {
            "answered": [float(g.answered) for g in figures],
            "not answered": [float(g.calls - g.answered) for g in figures],
            "uncounted": [float(g.uncounted) for g in figures],
        }
        labels = [
            "(none)"
            if g is None
            else " / ".join("(none)" if p is None else str(p) for p in g)
            if isinstance(g, tuple)
            else str(g)
            for g in groups
        ]
        title = kw.pop("title", self.caption)
        return plot_bars(ax, labels, series, stacked=True, title=title, value_label="calls", **kw)

    @property
    def caption(self) -> str:
        """Title of the printed table, with the uncounted calls and their reasons."""
        scope = "" if self.period is None else f" in {self.period.label}"
        text = f"Calls to known contacts{scope}: {self.calls} counted, {self.uncounted} uncounted"
        reasons = self.uncounted_reasons
        if reasons:
            text += " (" + ", ".join(f"{r.replace('_', ' ')} {n}" for r, n in reasons.items()) + ")"
        if self.outside_period:
            text += f"; {self.outside_period} outside the period"
        return text


_ALL = "(all)"


def _sort_key(value: Any) -> tuple[Any, ...]:
    # Groups may hold None (a call without an owner); sort those last without comparing to str.
    if isinstance(value, tuple):
        return tuple(_sort_key(v) for v in value)
    return (value is None, "" if value is None else str(value))
