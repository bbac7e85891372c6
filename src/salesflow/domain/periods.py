"""Reporting periods: calendar months, and quarters and years of a (possibly fiscal) calendar.

A fiscal year starts on the first day of month ``fiscal_year_start`` (1 = January = the calendar
year) and is named after the calendar year in which it **ends**: with ``fiscal_year_start=4``,
April 2026 to March 2027 is ``FY2027`` and April-June 2026 is ``FY2027-Q1``. Months are always
calendar months.

Calculators bucket by an integer month index (``year * 12 + month - 1``), which is cheap to compute
per row, and turn indexes into :class:`Period` values only for the few buckets they report.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Literal

import attrs

from salesflow.errors import ValidationError

__all__ = ["Period", "PeriodKind", "month_index"]

PeriodKind = Literal["month", "quarter", "year"]
_KINDS = ("month", "quarter", "year")
_MONTHS_PER = {"month": 1, "quarter": 3, "year": 12}


def month_index(day: date) -> int:
    """The month of ``day`` as one integer, ``year * 12 + month - 1`` (consecutive months differ by 1)."""
    return day.year * 12 + day.month - 1


def _check_fiscal_start(_instance: object, _attribute: object, value: int) -> None:
    if type(value) is not int or not 1 <= value <= 12:
        raise ValidationError("fiscal_year_start", value, "a month number from 1 to 12")


@attrs.frozen(order=False, kw_only=True, repr=False)
class Period:
    """A month, quarter or year, as the half-open span of months ``[first, first + length)``.

    Build with :meth:`month`, :meth:`quarter`, :meth:`containing` or :meth:`parse`. Periods of the
    same kind and calendar sort by time.
    """

    kind: PeriodKind = attrs.field(validator=attrs.validators.in_(_KINDS))
    first: int = attrs.field()  # month_index() of the first month
    fiscal_year_start: int = attrs.field(default=1, validator=_check_fiscal_start)

    @first.validator
    def _check_first(self, _attribute: object, value: int) -> None:
        if type(value) is not int:
            raise ValidationError("first", value, "a month index (int)")
        if self.kind != "month" and (value - (self.fiscal_year_start - 1)) % 3:
            raise ValidationError("first", value, f"the first month of a {self.kind}")
        if self.kind == "year" and (value - (self.fiscal_year_start - 1)) % 12:
            raise ValidationError("first", value, "the first month of a fiscal year")

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        """The calendar month ``year``-``month``."""
        if not 1 <= month <= 12:
            raise ValidationError("month", month, "a month number from 1 to 12")
        return cls(kind="month", first=year * 12 + month - 1)

    @classmethod
    def quarter(cls, year: int, quarter: int, *, fiscal_year_start: int = 1) -> Period:
        """Quarter ``quarter`` (1-4) of (fiscal) year ``year``."""
        if not 1 <= quarter <= 4:
            raise ValidationError("quarter", quarter, "a quarter number from 1 to 4")
        start = cls._fiscal_year_first(year, fiscal_year_start)
        return cls(
            kind="quarter", first=start + 3 * (quarter - 1), fiscal_year_start=fiscal_year_start
        )

    @classmethod
    def year(cls, year: int, *, fiscal_year_start: int = 1) -> Period:
        """The (fiscal) year ``year``."""
        start = cls._fiscal_year_first(year, fiscal_year_start)
        return cls(kind="year", first=start, fiscal_year_start=fiscal_year_start)

    @classmethod
    def containing(
        cls, day: date, kind: PeriodKind = "month", *, fiscal_year_start: int = 1
    ) -> Period:
        """The period of ``kind`` that contains ``day``."""
        return cls.from_month_index(month_index(day), kind, fiscal_year_start=fiscal_year_start)

    @classmethod
    def from_month_index(
        cls, index: int, kind: PeriodKind = "month", *, fiscal_year_start: int = 1
    ) -> Period:
        """The period of ``kind`` that contains the month ``index`` (see :func:`month_index`)."""
        if kind not in _MONTHS_PER:
            raise ValidationError("kind", kind, "'month', 'quarter' or 'year'")
        if kind == "month":
            return cls(kind="month", first=index)
        offset = fiscal_year_start - 1
        length = _MONTHS_PER[kind]
        first = (index - offset) // length * length + offset
        return cls(kind=kind, first=first, fiscal_year_start=fiscal_year_start)

    @classmethod
    def parse(cls, text: str, *, fiscal_year_start: int = 1) -> Period:
        """Parse a label as written by :attr:`label`: ``2026-11``, ``2026-Q4``, ``FY2027-Q1``,
        ``2026``, ``FY2027``."""
        match = _LABEL.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ValidationError(
                "period", text, "a label like '2026-11', '2026-Q4' or 'FY2027-Q1'"
            )
        year = int(match["year"])
        if match["month"]:
            return cls.month(year, int(match["month"]))
        if match["quarter"]:
            return cls.quarter(year, int(match["quarter"]), fiscal_year_start=fiscal_year_start)
        return cls.year(year, fiscal_year_start=fiscal_year_start)

    @staticmethod
    def _fiscal_year_first(year: int, fiscal_year_start: int) -> int:
        # FY N ends in calendar year N, so a fiscal year that starts after January began in N - 1.
        starts_in = year if fiscal_year_start == 1 else year - 1
        return starts_in * 12 + fiscal_year_start - 1

    # -- properties --------------------------------------------------------------------------

    @property
    def length(self) -> int:
        """Number of months in the period."""
        return _MONTHS_PER[self.kind]

    @property
    def start(self) -> date:
        """The first day of the period."""
        return _first_day(self.first)

    @property
    def end(self) -> date:
        """The last day of the period (inclusive)."""
        return _first_day(self.first + self.length) - timedelta(days=1)

    @property
    def fiscal_year(self) -> int:
        """The (fiscal) year the period belongs to, named after the calendar year it ends in."""
        offset = self.fiscal_year_start - 1
        starts_in = (self.first - offset) // 12
        return starts_in if offset == 0 else starts_in + 1

    @property
    def label(self) -> str:
        """A short sortable label: ``2026-11``, ``2026-Q4``, ``FY2027-Q1``, ``2026``, ``FY2027``."""
        if self.kind == "month":
            return f"{self.first // 12:04d}-{self.first % 12 + 1:02d}"
        prefix = "" if self.fiscal_year_start == 1 else "FY"
        if self.kind == "year":
            return f"{prefix}{self.fiscal_year:04d}"
        quarter = (self.first - (self.fiscal_year_start - 1)) % 12 // 3 + 1
        return f"{prefix}{self.fiscal_year:04d}-Q{quarter}"

    def contains(self, day: date) -> bool:
        """Whether ``day`` falls in this period."""
        return self.first <= month_index(day) < self.first + self.length

    def month_indexes(self) -> range:
        """The month indexes the period covers."""
        return range(self.first, self.first + self.length)

    def shifted(self, n: int) -> Period:
        """The period ``n`` periods later (earlier when ``n`` is negative)."""
        return attrs.evolve(self, first=self.first + n * self.length)

    def next(self) -> Period:
        """The following period of the same kind."""
        return self.shifted(1)

    def previous(self) -> Period:
        """The preceding period of the same kind."""
        return self.shifted(-1)

    def _key(self) -> tuple[int, int]:
        return (self.first, self.length)

    def __lt__(self, other: Period) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._key() < other._key()

    def __le__(self, other: Period) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._key() <= other._key()

    def __gt__(self, other: Period) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._key() > other._key()

    def __ge__(self, other: Period) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._key() >= other._key()

    def __str__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        fiscal = (
            "" if self.fiscal_year_start == 1 else f", fiscal_year_start={self.fiscal_year_start}"
        )
        return f"Period.parse({self.label!r}{fiscal})"


def _first_day(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


_LABEL = re.compile(r"(?:FY)?(?P<year>\d{4})(?:-(?:(?P<month>\d{2})|Q(?P<quarter>[1-4])))?")
