"""Business dates and event times from user input.

Business dates (expected close, signing, due dates) are ``datetime.date``; event times (audit, stage
changes, calls) are timezone-aware ``datetime``. Naive datetimes are refused: a time without a zone
cannot be ordered against one with a zone, and guessing the zone silently is how reports drift by a
day.

Dates written as text are read without guessing:

* ISO 8601 (``2026-12-31``, ``20261231``) always works.
* An all-numeric date with the year last (``12/31/2026``, ``31.12.2026``, ``31-12-2026``) is read
  month first, or day first with ``dayfirst=True``. A value that is only a date in the other order
  (``31/12/2026`` month first) is refused, never swapped silently. With the year first
  (``2026/12/31``) it is year, month, day.
* A year must have four digits. A two-digit year (``1/2/26``) is refused unless ``year_pivot`` is
  given: the year is then the one ending in those digits among the hundred years from
  ``year_pivot`` (with ``year_pivot=1970``, ``70``-``99`` are 1970-1999 and ``00``-``69`` are
  2000-2069). A year of one or three digits (``1/2/3``) is always refused.
* A date with a month name (``26 Nov 2026``, ``Nov 26, 2026``) goes through dateutil; it must give
  a day, a month and a four-digit year (nothing is filled in from today), and no time of day other
  than midnight. Numbers in any other layout (``26 11 2026``) are refused.

:class:`DateReader` reads every date of one file in one order, and decides that order from the file
itself when it is not given (see there).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Final, Literal

from salesflow.errors import InvalidTypeError, ValidationError

__all__ = ["DateReader", "to_aware_datetime", "to_date"]

_EXAMPLE: Final = "a date such as 2026-11-26"
# Day, month and year as numbers with one separator, then perhaps a time (only midnight is kept).
_NUMERIC: Final = re.compile(r"(\d{1,4})([/.-])(\d{1,2})\2(\d{1,4})(?:[ T]+(.*))?")
_MIDNIGHTS: Final = re.compile(r"0?0:00(?::00(?:\.0+)?)?|12:00(?::00)? ?AM", re.IGNORECASE)
_MIDNIGHT: Final = datetime.min.time()

_Order = Literal["month", "day", "same", "both"]
# How a numeric date reads: only month first, only day first, the same date either way
# (05/05/2026, or year first), or two different dates.


def _check_pivot(year_pivot: object) -> int | None:
    if year_pivot is None:
        return None
    if type(year_pivot) is not int:
        raise InvalidTypeError("year_pivot", year_pivot, "a year such as 1970, or None")
    if not 1 <= year_pivot <= 9900:
        raise ValidationError("year_pivot", year_pivot, "a year from 1 to 9900")
    return year_pivot


def _year(text: str, value: object, field: str, pivot: int | None, where: str | None) -> int:
    if len(text) == 4:
        return int(text)
    if len(text) == 2:
        if pivot is None:
            raise ValidationError(
                field,
                value,
                "a four-digit year (a two-digit year is read only with year_pivot=, e.g. 1970)",
                where=where,
            )
        two = int(text)
        return pivot + (two - pivot) % 100
    raise ValidationError(field, value, "a date with a four-digit year", where=where)


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _numeric(
    match: re.Match[str], value: object, field: str, pivot: int | None, where: str | None
) -> tuple[date | None, date | None]:
    """The (month-first, day-first) readings of a numeric date; ``None`` where a reading is not a
    date. A year-first date has one reading, returned as both."""
    first, _sep, second, third, time = match.groups()
    if time is not None and not _MIDNIGHTS.fullmatch(time.strip()):
        raise ValidationError(field, value, "a date without a time of day", where=where)
    if len(first) == 4:
        day = _make(int(first), int(second), int(third)) if len(third) <= 2 else None
        if day is None:
            raise ValidationError(field, value, _EXAMPLE, where=where)
        return day, day
    if len(first) > 2:
        raise ValidationError(field, value, _EXAMPLE, where=where)
    year = _year(third, value, field, pivot, where)
    a, b = int(first), int(second)
    return _make(year, a, b), _make(year, b, a)


def _order(month_first: date | None, day_first: date | None) -> _Order | None:
    if month_first is None:
        return None if day_first is None else "day"
    if day_first is None:
        return "month"
    return "same" if month_first == day_first else "both"


def _other(text: str, value: object, field: str, where: str | None) -> date:
    """A date written with a month name (``26 Nov 2026``)."""
    if not any(c.isalpha() for c in text):
        # Numbers in another layout (``26 11 2026``): their order is anybody's guess.
        raise ValidationError(field, value, _EXAMPLE, where=where)
    # dateutil costs ~80 ms to import: only text that is neither ISO nor numeric pays for it.
    from dateutil.parser import ParserError, parse

    if not any(len(run) == 4 for run in re.findall(r"\d+", text)):
        raise ValidationError(field, value, "a date with a four-digit year", where=where)
    try:
        # Two defaults tell a part the text gives from one dateutil would fill in from them.
        one = parse(text, default=datetime(2000, 1, 1))
        two = parse(text, default=datetime(2004, 2, 2))
    except (ParserError, OverflowError, ValueError):
        raise ValidationError(field, value, _EXAMPLE, where=where) from None
    if one.date() != two.date():
        raise ValidationError(field, value, "a date with a day, a month and a year", where=where)
    if one.time() != _MIDNIGHT:
        raise ValidationError(field, value, "a date without a time of day", where=where)
    return one.date()


def _text(value: object, field: str, where: str | None) -> date | str:
    """``value`` as a date when it is one (or ISO text), else its stripped text."""
    if type(value) is date:
        return value
    if isinstance(value, datetime):
        raise InvalidTypeError(field, value, "a date, not a datetime", where=where)
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    if not isinstance(value, str):
        raise InvalidTypeError(field, value, "a date or a date string", where=where)
    text = value.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        return text


def to_date(
    value: object,
    field: str,
    *,
    dayfirst: bool = False,
    year_pivot: int | None = None,
    where: str | None = None,
) -> date:
    """Return ``value`` as a ``date``.

    Accepts a ``date`` (a ``datetime`` is refused: pass ``.date()`` if that is meant), or a string
    read by the rules of this module: ISO 8601; a numeric date month first, or day first with
    ``dayfirst=True`` (a value that is a date only in the other order is refused); a four-digit
    year, or a two-digit one with ``year_pivot``. Raises
    :class:`~salesflow.errors.ValidationError` naming ``field`` (and ``where``) otherwise.
    """
    pivot = _check_pivot(year_pivot)
    found = _text(value, field, where)
    if isinstance(found, date):
        return found
    match = _NUMERIC.fullmatch(found)
    if match is None:
        return _other(found, value, field, where)
    month_first, day_first = _numeric(match, value, field, pivot, where)
    chosen, other = (day_first, month_first) if dayfirst else (month_first, day_first)
    if chosen is not None:
        return chosen
    if other is not None:
        wanted, only, flag = ("day", "month", "False") if dayfirst else ("month", "day", "True")
        raise ValidationError(
            field,
            value,
            f"a {wanted}-first date (this one is only a date {only} first: pass "
            f"dayfirst={flag} if the file is written that way)",
            where=where,
        )
    raise ValidationError(field, value, _EXAMPLE, where=where)


class DateReader:
    """Reads the dates of one file (a CSV import) in one day/month order.

    ``dayfirst=True`` or ``False`` names the order, and every value is read as :func:`to_date`
    reads it: a date that is only valid in the other order is refused.

    With ``dayfirst=None`` the file decides. A numeric date whose order is plain from the date
    itself (``12/31/2026`` can only be month first, ``31/12/2026`` only day first) is read that
    way. One that reads both ways (``01/12/2026``: 12 January or 1 December) is read month first,
    the common convention, as long as the file shows no day-first date. So:

    * a file whose numeric dates all fit one order, day first or month first, is read in that
      order;
    * a file with a day-first-only date and an ambiguous date is refused with a
      :class:`~salesflow.errors.ValidationError` located at the **ambiguous** line, naming its
      value and the day-first line that makes it ambiguous (pass ``dayfirst=`` to say which);
    * a file with a day-first-only date and a month-first-only date mixes two formats and is
      refused at the second of them, naming both.

    The error is raised when the second of the two dates is read: a streaming reader has already
    handed over the rows before it (import in a transaction), a reading that collects the whole
    file returns nothing. ISO dates, dates that read the same both ways (``05/05/2026``) and
    textual months never decide anything. ``year_pivot`` is as for :func:`to_date`.
    """

    def __init__(self, *, dayfirst: bool | None = None, year_pivot: int | None = None) -> None:
        if dayfirst is not None and type(dayfirst) is not bool:
            raise InvalidTypeError("dayfirst", dayfirst, "True, False or None")
        self.dayfirst = dayfirst
        """The order given, or ``None`` when the file decides."""
        self.year_pivot = _check_pivot(year_pivot)
        """The first year of the hundred that two-digit years are read in (``None``: refused)."""
        # (where, field, value) of the first date of each kind the file showed, for the messages.
        self._ambiguous: tuple[str | None, str, object] | None = None
        self._month: tuple[str | None, str, object] | None = None
        self._day: tuple[str | None, str, object] | None = None

    @property
    def order(self) -> Literal["month", "day"] | None:
        """The order the file has shown so far (``"month"`` or ``"day"`` first), or ``None``."""
        if self.dayfirst is not None:
            return "day" if self.dayfirst else "month"
        if self._day is not None:
            return "day"
        if self._month is not None or self._ambiguous is not None:
            return "month"
        return None

    def read(self, value: object, field: str, where: str | None = None) -> date:
        """Return ``value`` (a cell of the file at ``where``) as a ``date``, or raise
        :class:`~salesflow.errors.ValidationError` (see the class documentation)."""
        if self.dayfirst is not None:
            return to_date(
                value, field, dayfirst=self.dayfirst, year_pivot=self.year_pivot, where=where
            )
        found = _text(value, field, where)
        if isinstance(found, date):
            return found
        match = _NUMERIC.fullmatch(found)
        if match is None:
            return _other(found, value, field, where)
        month_first, day_first = _numeric(match, value, field, self.year_pivot, where)
        order = _order(month_first, day_first)
        if order is None:
            raise ValidationError(field, value, _EXAMPLE, where=where)
        here = (where, field, value)
        if order == "same":
            assert month_first is not None
            return month_first
        if order == "month":
            if self._day is not None:
                raise _mixed(here, self._day, "day")
            self._month = self._month or here
            assert month_first is not None
            return month_first
        if order == "day":
            if self._month is not None:
                raise _mixed(here, self._month, "month")
            if self._ambiguous is not None:
                raise _ambiguous(self._ambiguous, here)
            self._day = self._day or here
            assert day_first is not None
            return day_first
        # Both readings are dates, and different ones.
        if self._day is not None:
            raise _ambiguous(here, self._day)
        self._ambiguous = self._ambiguous or here
        assert month_first is not None
        return month_first


def _at(place: tuple[str | None, str, object]) -> str:
    where, field, value = place
    return f"{value!r} ({field}{', ' + where if where else ''})"


def _ambiguous(
    ambiguous: tuple[str | None, str, object], day: tuple[str | None, str, object]
) -> ValidationError:
    where, field, value = ambiguous
    return ValidationError(
        field,
        value,
        f"a date whose day and month cannot be swapped: {_at(day)} is only a date day first, "
        "so this one may be day first too; pass dayfirst=True or dayfirst=False",
        where=where,
    )


def _mixed(
    here: tuple[str | None, str, object], earlier: tuple[str | None, str, object], order: str
) -> ValidationError:
    where, field, value = here
    other = "month" if order == "day" else "day"
    return ValidationError(
        field,
        value,
        f"dates in one order: this one is only a date {other} first, {_at(earlier)} only "
        f"{order} first; the file mixes two formats",
        where=where,
    )


def to_aware_datetime(value: object, field: str, *, where: str | None = None) -> datetime:
    """Return ``value`` as a timezone-aware ``datetime``.

    Accepts an aware ``datetime``, a ``date`` (taken as midnight UTC) or an ISO 8601 string with an
    offset. Naive datetimes and strings without an offset are refused.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                field, value, "an ISO 8601 time with an offset", where=where
            ) from None
    else:
        raise InvalidTypeError(field, value, "a timezone-aware datetime", where=where)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(
            field, value, "a timezone-aware datetime (naive times are refused)", where=where
        )
    return moment
