"""Stage velocity and conversion, learned from the opportunities' stage history.

Rules (pinned by tests):

* Every :class:`~salesflow.domain.opportunities.StageChange` into a stage is one **visit** of that
  stage. A visit ends with the next change: it **advanced** (to a later stage of the plan, the won
  stage included), **moved back** (to an earlier open stage) or was **lost** there (to a lost
  stage: the stage where the deal died). A visit without a next change is **current**.
* **Days** spent are measured on ended visits only, from the move in to the move out (exact
  times, so half a day counts as 0.5), shown as mean and median rounded half up to 2 decimals.
* **Conversion** of a stage is ``advanced / ended visits``, a percentage: of the deals that left
  the stage, how many moved forward. **Transitions** count every (from, to) move.
* :func:`learned_probabilities` measures, per open stage, how many **closed** opportunities
  (won or lost) reached the stage or a later open stage, and how many of those were won: that is
  the win probability the history shows, beside the one the plan configures.
* ``as_of`` cuts the history: changes after it are ignored, as if the report had been run then.
  A ``date`` means the end of that day in UTC.
* Opportunities without history are counted apart (:attr:`without_history`), never guessed at.

Both calculators make one pass over their input. Memory grows with the number of (group, stage)
cells and, for the medians, with the number of distinct visit durations (a few thousand when
moves are recorded by the day), never with the number of opportunities.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from salesflow.analytics.grouping import (
    check_places,
    getter,
    group_fields,
    label,
    percent_of,
    sort_key,
    team_fields,
    to_by,
)
from salesflow.analytics.inputs import Fields, StageNames, check_fields, mapped, stage_names
from salesflow.analytics.windows import WindowLike, within
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, StageError, ValidationError
from salesflow.tables import NEGATIVE, POSITIVE, Table, plot_bars

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "HistoryItem",
    "LearnedProbabilities",
    "LearnedProbability",
    "StageVelocity",
    "StageVisits",
    "learned_probabilities",
    "stage_velocity",
]

_DAY = timedelta(days=1)
_DAY_PLACES = 2
_MISSING_GROUP = "unknown"


class HistoryItem(Protocol):
    """What the velocity calculators read from each input object (an Opportunity, a row...):
    ``history``, the stage changes oldest first, each with ``at`` (an aware ``datetime``),
    ``from_stage`` and ``to_stage``. The attributes named in ``by`` are read too."""

    @property
    def history(self) -> Sequence[Any]:
        """The stage changes, oldest first."""
        ...


def _cutoff(as_of: datetime | date | None) -> datetime | None:
    if as_of is None:
        return None
    if isinstance(as_of, datetime):
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise ValidationError("as_of", as_of, "a timezone-aware datetime, or a date")
        return as_of
    if isinstance(as_of, date):
        return datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC) + _DAY
    raise InvalidTypeError("as_of", as_of, "a date, an aware datetime or None")


class _History:
    """Reads and checks one opportunity's history against the plan, up to the cutoff."""

    def __init__(self, plan: StagePlan, cutoff: datetime | None, names: StageNames) -> None:
        self.names = names
        self.order = {s.key: i for i, s in enumerate(plan)}
        self.lost = {s.key for s in plan if s.is_lost}
        self.won = plan.won_stage.key
        self.open_order = {s.key: i for i, s in enumerate(plan.open_stages)}
        self.keys = list(plan.keys)
        self.cutoff = cutoff

    def moves(self, item: Any) -> list[tuple[datetime, str | None, str]]:
        """The changes of ``item`` up to the cutoff, as (at, from, to), checked."""
        where = f"opportunity {getattr(item, 'id', item)!r}"
        history = item.history
        if history is None:
            return []
        if isinstance(history, str) or not isinstance(history, Iterable):
            raise InvalidTypeError("history", history, "a sequence of stage changes", where=where)
        moves: list[tuple[datetime, str | None, str]] = []
        previous: tuple[datetime, str | None, str] | None = None
        for i, change in enumerate(history):
            try:
                at, source, target = change.at, change.from_stage, change.to_stage
            except AttributeError as exc:
                raise InvalidTypeError(
                    f"history[{i}]", change, "a StageChange (at, from_stage, to_stage)", where=where
                ) from exc
            if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
                raise ValidationError(
                    f"history[{i}].at", at, "a timezone-aware datetime", where=where
                )
            if target not in self.order:  # a display name, or a stage the plan does not know
                target = self.names.key(target, f"history[{i}].to_stage", where)
            if source is not None and source not in self.order:
                source = self.names.key(source, f"history[{i}].from_stage", where)
            if previous is not None:
                if at < previous[0]:
                    raise ValidationError(
                        f"history[{i}].at", at, "changes in time order", where=where
                    )
                if source != previous[2]:
                    raise ValidationError(
                        f"history[{i}].from_stage",
                        source,
                        f"{previous[2]!r}, where the previous change ended",
                        where=where,
                    )
            if self.cutoff is not None and at > self.cutoff:
                break
            previous = (at, source, target)
            moves.append(previous)
        return moves


# -- velocity ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class StageVisits:
    """What happened to the visits of one stage (by one group, or by the team)."""

    stage: str
    """The stage key."""
    entered: int
    """Visits of the stage (moves into it)."""
    advanced: int
    """Visits that ended with a move to a later stage (the won stage included)."""
    moved_back: int
    """Visits that ended with a move to an earlier open stage."""
    lost: int
    """Visits that ended with a move to a lost stage: the deal died here."""
    current: int
    """Visits still going on (the opportunity's current stage)."""
    mean_days: Decimal | None
    """Mean days of the ended visits (``None`` when none ended)."""
    median_days: Decimal | None
    """Median days of the ended visits (``None`` when none ended)."""
    conversion: Decimal | None
    """``advanced / ended visits`` in percent (``None`` when none ended)."""

    @property
    def ended(self) -> int:
        """Visits that ended (advanced, moved back or lost)."""
        return self.advanced + self.moved_back + self.lost


class _Cell:
    """Running counts of one (group, stage): outcomes and a histogram of durations."""

    __slots__ = ("advanced", "current", "durations", "entered", "lost", "moved_back")

    def __init__(self) -> None:
        self.entered = 0
        self.advanced = 0
        self.moved_back = 0
        self.lost = 0
        self.current = 0
        self.durations: dict[timedelta, int] = {}

    def add(self, other: _Cell) -> None:
        self.entered += other.entered
        self.advanced += other.advanced
        self.moved_back += other.moved_back
        self.lost += other.lost
        self.current += other.current
        for spent, n in other.durations.items():
            self.durations[spent] = self.durations.get(spent, 0) + n


def _days(spent: Fraction) -> Decimal:
    # Durations are in microseconds; percent_of gives hundredths of the value, hence / 100.
    return percent_of(spent / (_DAY // timedelta(microseconds=1)) / 100, _DAY_PLACES)


def _mean_median(durations: dict[timedelta, int]) -> tuple[Decimal | None, Decimal | None]:
    count = sum(durations.values())
    if not count:
        return None, None
    micro = timedelta(microseconds=1)
    total = sum((spent // micro) * n for spent, n in durations.items())
    ordered = sorted(durations)
    # The median is the middle visit, or the mean of the two middle ones for an even count.
    wanted = [(count - 1) // 2, count // 2]
    found: list[int] = []
    seen = 0
    for spent in ordered:
        seen += durations[spent]
        while wanted and wanted[0] < seen:
            found.append(spent // micro)
            wanted.pop(0)
    return _days(Fraction(total, count)), _days(Fraction(sum(found), 2))


def _visits(stage: str, cell: _Cell, places: int) -> StageVisits:
    mean, median = _mean_median(cell.durations)
    ended = cell.advanced + cell.moved_back + cell.lost
    return StageVisits(
        stage=stage,
        entered=cell.entered,
        advanced=cell.advanced,
        moved_back=cell.moved_back,
        lost=cell.lost,
        current=cell.current,
        mean_days=mean,
        median_days=median,
        conversion=percent_of(Fraction(cell.advanced, ended), places) if ended else None,
    )


class StageVelocity(Table):
    """The result of :func:`stage_velocity`: per stage (and group), visits, outcomes, days spent
    and conversion; plus every (from, to) transition."""

    def __init__(
        self,
        *,
        plan: StagePlan,
        by: tuple[str, ...],
        cells: dict[Any, dict[str, _Cell]],
        transitions: dict[Any, dict[tuple[str | None, str], int]],
        without_history: int,
        places: int,
    ) -> None:
        self.plan = plan
        """The stage plan used."""
        self.by = by
        """The attributes the groups are made of (``()``: the team only)."""
        self.without_history = without_history
        """Opportunities skipped because they had no stage history."""
        self.places = places
        """Decimal places of the conversion rates."""
        self._groups = tuple(sorted(cells, key=sort_key)) if by else ()
        team: dict[str, _Cell] = {key: _Cell() for key in plan.keys}
        team_moves: dict[tuple[str | None, str], int] = {}
        for group, row in cells.items():
            for key, cell in row.items():
                team[key].add(cell)
            for move, n in transitions[group].items():
                team_moves[move] = team_moves.get(move, 0) + n
        self._rows = {
            group: {key: _visits(key, row.get(key, _Cell()), places) for key in plan.keys}
            for group, row in cells.items()
        }
        self._team = {key: _visits(key, team[key], places) for key in plan.keys}
        self._transitions = transitions
        self._team_transitions = team_moves

    @property
    def groups(self) -> tuple[Any, ...]:
        """The group keys, sorted (empty when grouped by nothing)."""
        return self._groups

    def _check(self, group: Any) -> None:
        if group is not None and (not self.by or group not in self._rows):
            raise ValidationError("group", group, f"None (the team) or one of {list(self._groups)}")

    def stages(self, group: Any = None) -> dict[str, StageVisits]:
        """Per stage key, in plan order, the visits of ``group`` (``None``: the team)."""
        self._check(group)
        return dict(self._team if group is None else self._rows[group])

    def stage(self, key: str, group: Any = None) -> StageVisits:
        """The visits of stage ``key`` (a key or a display name) for ``group`` (``None``: the
        team)."""
        return self.stages(group)[self.plan.resolve(key).key]

    def transitions(self, group: Any = None) -> dict[tuple[str | None, str], int]:
        """How many moves went from one stage to another: ``{(from, to): count}``; ``from`` is
        ``None`` for the move that put an opportunity in its first stage."""
        self._check(group)
        moves = self._team_transitions if group is None else self._transitions[group]
        return {m: moves[m] for m in sorted(moves, key=sort_key)}

    def conversion(self, source: str, target: str, group: Any = None) -> Decimal | None:
        """Of the visits of ``source`` that ended, the share (percent) that moved to ``target``."""
        source, target = self.plan.resolve(source).key, self.plan.resolve(target).key
        ended = self.stage(source, group).ended
        if not ended:
            return None
        moved = self.transitions(group).get((source, target), 0)
        return percent_of(Fraction(moved, ended), self.places)

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        skipped = (
            f", {self.without_history} without history skipped" if self.without_history else ""
        )
        return f"Stage velocity and conversion{skipped}"

    def _records(self, totals: bool) -> list[dict[str, Any]]:
        if totals:
            rows = [(team_fields(self.by), self._team)]
        elif not self.by:  # grouped by nothing: the team is the one group
            rows = [({}, self._team)]
        else:
            rows = [(group_fields(self.by, g), self._rows[g]) for g in self._groups]
        records = []
        for fields, row in rows:
            for visits in row.values():
                records.append(
                    {
                        **fields,
                        "stage": visits.stage,
                        "entered": visits.entered,
                        "advanced": visits.advanced,
                        "moved_back": visits.moved_back,
                        "lost": visits.lost,
                        "current": visits.current,
                        "mean_days": visits.mean_days,
                        "median_days": visits.median_days,
                        "conversion": visits.conversion,
                    }
                )
        return records

    def to_records(self) -> list[dict[str, Any]]:
        """One record per (group, stage): the group columns, ``stage``, ``entered``,
        ``advanced``, ``moved_back``, ``lost``, ``current``, ``mean_days``, ``median_days`` and
        ``conversion`` (percent). The team's rows are :meth:`total_records`."""
        return self._records(totals=False)

    def total_records(self) -> list[dict[str, Any]]:
        """The team's record per stage (:data:`~salesflow.analytics.grouping.ALL` in the first
        group column): visit counts are the sums of the groups'; days and conversion are the
        team's own."""
        return self._records(totals=True)

    def record_columns(self) -> list[str]:
        """The group columns, ``stage``, the visit counts, days and ``conversion``."""
        return [*self.by, "stage", *_VISIT_COLUMNS]

    def display_totals(self) -> list[dict[str, Any]]:
        """The team's rows (none when grouped by nothing: the rows are the team's)."""
        return self.total_records() if self.by else []

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """The team's mean and median days per stage (stages in plan order, where visits
        ended), with each stage's conversion in its label."""
        visits = [v for v in self._team.values() if v.ended]
        labels = [
            f"{v.stage} ({v.conversion}%)" if v.conversion is not None else v.stage for v in visits
        ]
        series = {
            "mean days": [_number(v.mean_days) for v in visits],
            "median days": [_number(v.median_days) for v in visits],
        }
        title = kw.pop("title", "Days per stage (conversion in brackets)")
        return plot_bars(ax, labels, series, title=title, value_label="days", **kw)


_VISIT_COLUMNS = (
    "entered",
    "advanced",
    "moved_back",
    "lost",
    "current",
    "mean_days",
    "median_days",
    "conversion",
)


def _number(value: Decimal | None) -> float:
    return float("nan") if value is None else float(value)


def stage_velocity(
    opportunities: Iterable[HistoryItem],
    plan: StagePlan | None = None,
    *,
    by: Sequence[str] | str = (),
    as_of: datetime | date | None = None,
    places: int = 1,
    fields: Fields | None = None,
    created: WindowLike = None,
    closed: WindowLike = None,
    tz: tzinfo | None = None,
) -> StageVelocity:
    """How long opportunities stay in each stage and where they go next, from their history.

    Args:
        opportunities: any iterable of objects with ``history`` (see :class:`HistoryItem`), plus
            the attributes named in ``by``.
        plan: the stage plan (``StagePlan.default()`` when omitted).
        by: attribute(s) to group by, e.g. ``"owner"``; ``()`` (the default) for the team only.
        as_of: ignore the changes after this moment (a date: the end of that day, UTC).
        places: decimal places of the conversion rates (0 to 6).
        fields: where each field comes from in your rows, e.g. ``{"history": history_of}``
            for a function that builds the stage changes from date columns (see
            :mod:`salesflow.analytics.inputs`). Stages may be keys or display names.
        created: count only the opportunities created in this window, a
            :class:`~salesflow.domain.periods.Period` or a ``(start, end)`` pair of dates, both
            inclusive (see :mod:`salesflow.analytics.windows`).
        closed: count only the opportunities won or lost in this window (open ones are in
            none).
        tz: the zone that decides the day of a stage change in a window (UTC by default).

    Raises:
        StageError: a change names a stage the plan does not know.
        ValidationError: a bad argument or a malformed history (named in the message).
    """
    plan, names = stage_names(plan)
    group_by = to_by(by)
    check_places(places)
    reader = _History(plan, _cutoff(as_of), names)
    group_of = getter(group_by)
    order, lost, won = reader.order, reader.lost, reader.won
    cells: dict[Any, dict[str, _Cell]] = {}
    transitions: dict[Any, dict[tuple[str | None, str], int]] = {}
    without = 0
    rows = within(
        mapped(opportunities, check_fields(fields)), names, created=created, closed=closed, tz=tz
    )
    try:
        for item in rows:
            moves = reader.moves(item)
            if not moves:
                without += 1
                continue
            group = label(group_of(item), _MISSING_GROUP)
            row = cells.get(group)
            if row is None:
                row = cells[group] = {}
                transitions[group] = {}
            moved = transitions[group]
            for i, (at, source, target) in enumerate(moves):
                moved[(source, target)] = moved.get((source, target), 0) + 1
                cell = row.get(target)
                if cell is None:
                    cell = row[target] = _Cell()
                cell.entered += 1
                if i + 1 == len(moves):
                    cell.current += 1
                    continue
                left_at, _source, going = moves[i + 1]
                if going in lost:
                    cell.lost += 1
                elif going == won or order[going] > order[target]:
                    cell.advanced += 1
                else:
                    cell.moved_back += 1
                spent = left_at - at
                cell.durations[spent] = cell.durations.get(spent, 0) + 1
    except AttributeError as exc:
        raise InvalidTypeError(
            exc.name or "opportunity",
            getattr(exc, "obj", None),
            "an object with history and the attributes named in by=",
        ) from exc
    return StageVelocity(
        plan=plan,
        by=group_by,
        cells=cells,
        transitions=transitions,
        without_history=without,
        places=places,
    )


# -- learned probabilities -----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LearnedProbability:
    """What history says about one open stage's win probability."""

    stage: str
    """The stage key."""
    configured: Decimal
    """The probability the plan configures (percent)."""
    reached: int
    """Closed opportunities that reached this stage or a later open one."""
    won: int
    """Of those, how many were won."""
    learned: Decimal | None
    """``won / reached`` in percent (``None`` when none reached the stage)."""

    @property
    def difference(self) -> Decimal | None:
        """``learned - configured`` in percentage points (``None`` without history)."""
        return None if self.learned is None else self.learned - self.configured


class LearnedProbabilities(Table):
    """The result of :func:`learned_probabilities`: per open stage, configured versus learned."""

    def __init__(
        self,
        *,
        rows: Sequence[LearnedProbability],
        closed: int,
        without_history: int,
        plan: StagePlan | None = None,
    ) -> None:
        self.plan = plan
        """The stage plan used."""
        self.rows = tuple(rows)
        """One row per open stage, in plan order."""
        self.closed = closed
        """Closed opportunities with history that were measured."""
        self.without_history = without_history
        """Opportunities skipped because they had no stage history."""

    def __getitem__(self, stage: str) -> LearnedProbability:
        """The row of open stage ``stage`` (a key, or a display name)."""
        if self.plan is not None and isinstance(stage, str):
            found = self.plan.resolve(stage) if stage not in self.plan else None
            stage = stage if found is None else found.key
        for row in self.rows:
            if row.stage == stage:
                return row
        raise StageError("stage", stage, f"one of the open stages {[r.stage for r in self.rows]}")

    def probabilities(self) -> dict[str, Decimal | None]:
        """The learned probability (percent) per open stage."""
        return {row.stage: row.learned for row in self.rows}

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        return f"Win probability per stage: configured vs learned from {self.closed} closed deals"

    def to_records(self) -> list[dict[str, Any]]:
        """One record per open stage: ``stage``, ``configured``, ``reached``, ``won``,
        ``learned`` and ``difference`` (percent, percentage points)."""
        return [
            {
                "stage": row.stage,
                "configured": row.configured,
                "reached": row.reached,
                "won": row.won,
                "learned": row.learned,
                "difference": row.difference,
            }
            for row in self.rows
        ]

    def record_columns(self) -> list[str]:
        """``stage``, ``configured``, ``reached``, ``won``, ``learned``, ``difference``."""
        return ["stage", "configured", "reached", "won", "learned", "difference"]

    def _tone(self, column: str, value: Any, record: dict[str, Any]) -> str | None:
        if column == "difference" and value:
            return POSITIVE if value > 0 else NEGATIVE
        return None

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """Configured against learned win probability, per open stage."""
        series = {
            "configured": [float(row.configured) for row in self.rows],
            "learned": [_number(row.learned) for row in self.rows],
        }
        title = kw.pop("title", self.caption)
        return plot_bars(
            ax,
            [row.stage for row in self.rows],
            series,
            title=title,
            value_label="win probability (%)",
            **kw,
        )


def learned_probabilities(
    opportunities: Iterable[HistoryItem],
    plan: StagePlan | None = None,
    *,
    as_of: datetime | date | None = None,
    places: int = 1,
    fields: Fields | None = None,
    created: WindowLike = None,
    closed: WindowLike = None,
    tz: tzinfo | None = None,
) -> LearnedProbabilities:
    """The win probability of each open stage as history shows it, beside the configured one.

    Only opportunities closed (won or lost) by ``as_of`` count: for each open stage, the share
    of those that reached it (or a later open stage) that were won. ``fields`` maps the fields
    read (``history`` and the stages of its changes) as for :func:`stage_velocity`.
    ``created=`` and ``closed=`` count only the opportunities created, or won or lost, in those
    windows (``tz`` decides the day of a change; see :mod:`salesflow.analytics.windows`):
    ``closed=`` learns from the deals closed in a recent span only.

    Raises:
        StageError: a change names a stage the plan does not know.
        ValidationError: a bad argument or a malformed history (named in the message).
    """
    plan, names = stage_names(plan)
    check_places(places)
    reader = _History(plan, _cutoff(as_of), names)
    open_order, lost, won_key = reader.open_order, reader.lost, reader.won
    n_open = len(open_order)
    # lost_at[i] counts the lost deals whose furthest open stage was the i-th.
    lost_at = [0] * n_open
    won_total = 0
    without = 0
    counted = 0
    rows = within(
        mapped(opportunities, check_fields(fields)), names, created=created, closed=closed, tz=tz
    )
    try:
        for item in rows:
            moves = reader.moves(item)
            if not moves:
                without += 1
                continue
            final = moves[-1][2]
            if final != won_key and final not in lost:
                continue
            counted += 1
            if final == won_key:
                won_total += 1
                continue
            furthest = max(open_order.get(move[2], -1) for move in moves)
            if furthest >= 0:  # a deal lost before any open stage reached none of them
                lost_at[furthest] += 1
    except AttributeError as exc:
        raise InvalidTypeError(
            exc.name or "opportunity", getattr(exc, "obj", None), "an object with history"
        ) from exc
    rows = []
    for i, stage in enumerate(plan.open_stages):
        # A deal reached stage i when its furthest stage is i or later; a won deal reached all.
        won = won_total
        reached = won + sum(lost_at[i:])
        rows.append(
            LearnedProbability(
                stage=stage.key,
                configured=stage.probability,
                reached=reached,
                won=won,
                learned=percent_of(Fraction(won, reached), places) if reached else None,
            )
        )
    return LearnedProbabilities(rows=rows, closed=counted, without_history=without, plan=plan)
