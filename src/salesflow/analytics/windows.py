"""Time windows: which opportunities were created, or closed, in a span of days.

Without a window, won deals pile up over the years in every share. The calculators that read
opportunities (:func:`~salesflow.analytics.distribution.distribution`,
:func:`~salesflow.analytics.strengths.rep_industry_matrix`,
:func:`~salesflow.analytics.velocity.stage_velocity`,
:func:`~salesflow.analytics.velocity.learned_probabilities`,
:func:`~salesflow.analytics.lost_reasons.lost_reasons`) and the desk's reads take ``created=``
and ``closed=`` windows, and count only the opportunities in both.

Rules (pinned by tests):

* A window is a :class:`~salesflow.domain.periods.Period` (its first to its last day), a
  ``(start, end)`` pair of dates, both **inclusive** (either may be ``None`` for an open end), or
  a :class:`Window`. ``None`` means no window. The end may not be before the start, and the
  bounds are dates: a ``datetime`` (naive or aware) is refused, since a window is made of days.
* An opportunity's **creation day** is its ``created`` date when it has one, else the day of the
  first change in its ``history`` (the day it entered the pipeline). One with neither is in no
  ``created`` window: nothing says when it began.
* Its **close day** is the day it last moved into a won or lost stage, for an opportunity that is
  won or lost now; without such a move in its history, its ``expected_close``. An open
  opportunity, or a closed one with neither, is in no ``closed`` window.
* The **day of a move** is the date of its time in ``tz`` (UTC by default; a desk passes its own
  ``timezone``), so a window means the same whichever backend stored the time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, tzinfo
from typing import Any

import attrs

from salesflow.analytics.inputs import StageNames, row_of
from salesflow.domain.periods import Period
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = ["Window", "WindowLike", "closed_on", "created_on", "to_window", "within"]

_EXPECTED = "a Period, a (start, end) pair of dates (inclusive; None for an open end) or None"


def _check_bound(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and type(value) is not date:
        raise InvalidTypeError(
            attribute.name,
            value,
            "a date or None (a window is made of whole days; a datetime is not a day)",
        )


@attrs.frozen
class Window:
    """The days from ``start`` to ``end``, both inclusive; ``None`` leaves that end open."""

    start: date | None = attrs.field(default=None, validator=_check_bound)
    end: date | None = attrs.field(default=None, validator=_check_bound)

    def __attrs_post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValidationError(
                "end", self.end, f"a day on or after the start of the window, {self.start}"
            )

    @classmethod
    def of(cls, period: Period) -> Window:
        """The window of ``period``'s days."""
        return cls(period.start, period.end)

    def contains(self, day: date | None) -> bool:
        """Whether ``day`` lies in the window (``None``, an unknown day, never does)."""
        if day is None:
            return False
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)

    @property
    def label(self) -> str:
        """``2026-10-01..2026-12-31`` (``..`` with nothing on an open side)."""
        start = "" if self.start is None else self.start.isoformat()
        end = "" if self.end is None else self.end.isoformat()
        return f"{start}..{end}"


WindowLike = Window | Period | tuple[date | None, date | None] | None
"""What ``created=`` and ``closed=`` accept (see :func:`to_window`)."""


def to_window(value: object, field: str = "window") -> Window | None:
    """``value`` as a :class:`Window` (``None`` stays ``None``).

    Raises:
        InvalidTypeError: ``value`` is not a window, a period or a pair, or a bound is not a
            date (naming ``field``).
        ValidationError: the end is before the start (naming ``field``).
    """
    if value is None or isinstance(value, Window):
        return value
    if isinstance(value, Period):
        return Window.of(value)
    if isinstance(value, tuple | list) and len(value) == 2:
        start, end = value
        for part, bound in (("start", start), ("end", end)):
            if bound is not None and type(bound) is not date:
                naive = isinstance(bound, datetime) and bound.utcoffset() is None
                raise InvalidTypeError(
                    f"{field}.{part}",
                    bound,
                    "a date or None ("
                    + ("a naive datetime names no day anywhere; " if naive else "")
                    + "a window is made of whole days: pass a date)",
                )
        if start is not None and end is not None and end < start:
            raise ValidationError(
                field, value, f"a window whose end ({end}) is on or after its start ({start})"
            )
        return Window(start, end)
    raise InvalidTypeError(field, value, _EXPECTED)


def _check_tz(tz: object) -> tzinfo:
    if tz is None:
        return UTC
    if not isinstance(tz, tzinfo):
        raise InvalidTypeError("tz", tz, "a tzinfo such as ZoneInfo('Asia/Shanghai'), or None")
    return tz


def _day(at: object, tz: tzinfo, field: str, item: Any) -> date:
    if isinstance(at, datetime):
        if at.utcoffset() is None:
            raise InvalidTypeError(
                field, at, "an aware datetime", where=f"opportunity {_name(item)!r}"
            )
        return at.astimezone(tz).date()
    if type(at) is date:
        return at
    raise InvalidTypeError(field, at, "a datetime or a date", where=f"opportunity {_name(item)!r}")


def _name(item: Any) -> Any:
    return getattr(row_of(item), "id", row_of(item))


def created_on(item: Any, tz: tzinfo | None = None) -> date | None:
    """The creation day of ``item``: its ``created`` date, else the day (in ``tz``, UTC by
    default) of the first change in its ``history``, else ``None``."""
    zone = _check_tz(tz)
    created = getattr(item, "created", None)
    if created is not None:
        return _day(created, zone, "created", item)
    history = getattr(item, "history", None)
    if history:
        first = next(iter(history))
        return _day(first.at, zone, "history[0].at", item)
    return None


def closed_on(item: Any, names: StageNames, tz: tzinfo | None = None) -> date | None:
    """The close day of ``item``: the day (in ``tz``, UTC by default) it last moved into a won or
    lost stage when it is won or lost now, else its ``expected_close``; ``None`` for an open one
    (or a closed one with neither).

    Raises:
        StageError: its stage is not in ``names``' plan.
    """
    zone = _check_tz(tz)
    plan = names.plan
    stage = names.key(item.stage, where=f"opportunity {_name(item)!r}")
    if plan.is_open(stage):
        return None
    history = getattr(item, "history", None) or ()
    for change in reversed(tuple(history)):
        moved_to = names.find(change.to_stage)
        if moved_to is not None and not plan.is_open(moved_to):
            return _day(change.at, zone, "history.at", item)
    expected = getattr(item, "expected_close", None)
    if expected is None:
        return None
    return _day(expected, zone, "expected_close", item)


def within(
    items: Iterable[Any],
    names: StageNames,
    *,
    created: WindowLike = None,
    closed: WindowLike = None,
    tz: tzinfo | None = None,
) -> Iterable[Any]:
    """The ``items`` created in ``created`` and closed in ``closed``, lazily (``items`` itself
    when there is no window). The windows are checked at once, before anything is read."""
    created_window = to_window(created, "created")
    closed_window = to_window(closed, "closed")
    zone = _check_tz(tz)
    if created_window is None and closed_window is None:
        return items
    return _within(items, names, created_window, closed_window, zone)


def _within(
    items: Iterable[Any],
    names: StageNames,
    created: Window | None,
    closed: Window | None,
    tz: tzinfo,
) -> Iterator[Any]:
    for item in items:
        if created is not None and not created.contains(created_on(item, tz)):
            continue
        if closed is not None and not closed.contains(closed_on(item, names, tz)):
            continue
        yield item
