"""What the desk keeps about forecasts: category overrides and daily snapshots.

* A :class:`CategoryOverride` is one opportunity's forecast category set by a person rather than by
  its stage (a rep calls a 50 % deal *commit*), with the reason. It is an audit trail: every
  change (and the removal, ``category=None``) is a new :class:`OverrideEntry` appended to
  :attr:`CategoryOverride.entries`; nothing is ever edited or deleted there. The last entry rules.
* A :class:`ForecastSnapshot` holds the :class:`SnapshotLine` of every opportunity as the desk saw
  it on one day (stage, category, amount, expected close, weighted amount), so that the forecast of
  a past day is known exactly, not only reconstructed from stage history.

Both are stored as documents (kinds ``category_overrides`` keyed by opportunity id and
``forecast_snapshots`` keyed by the ISO date); see :mod:`salesflow.storage.kinds`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

import attrs

from salesflow.domain.checks import (
    as_datetime,
    as_optional_enum,
    check_id,
    check_optional_id,
    check_string,
)
from salesflow.domain.money import Money
from salesflow.domain.stages import ForecastCategory
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = [
    "OVERRIDE_REASON_MAX",
    "CategoryOverride",
    "ForecastSnapshot",
    "OverrideEntry",
    "SnapshotLine",
    "check_override_save",
    "check_snapshot_delete",
    "check_snapshot_save",
]

OVERRIDE_REASON_MAX = 500
"""The longest reason for a category override (characters)."""


def _to_reason(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidTypeError("reason", value, "the reason for the override as text")
    text = value.strip()
    if not text:
        raise ValidationError("reason", value, "a non-blank reason for the override")
    if len(text) > OVERRIDE_REASON_MAX:
        raise ValidationError("reason", f"{text[:40]}...", f"at most {OVERRIDE_REASON_MAX} chars")
    check_string(text, "reason", OVERRIDE_REASON_MAX)
    return text


def _check_open_category(
    _instance: object, _attribute: attrs.Attribute[ForecastCategory | None], value: object
) -> None:
    if value is ForecastCategory.CLOSED:
        raise ValidationError(
            "category", "closed", "pipeline, best_case, commit or omitted (closed means won)"
        )


@attrs.frozen(kw_only=True)
class OverrideEntry:
    """One change of an opportunity's forecast category: the new category (``None`` gives the
    deal back to its stage's category), why, who and when."""

    category: ForecastCategory | None = attrs.field(
        converter=as_optional_enum,
        validator=_check_open_category,
        metadata={"enum": ForecastCategory},
    )
    reason: str = attrs.field(converter=_to_reason)
    actor: str = attrs.field(validator=check_id)
    at: datetime = attrs.field(converter=as_datetime)


def _to_entries(value: Iterable[OverrideEntry]) -> tuple[OverrideEntry, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class CategoryOverride:
    """The category overrides of one opportunity, oldest first (an audit trail that only grows).

    ``owner`` and ``team`` are the opportunity's when last overridden, so that reads are scoped
    like the opportunity's own."""

    opportunity_id: str = attrs.field(validator=check_id)
    owner: str = attrs.field(validator=check_id)
    team: str | None = attrs.field(default=None, validator=check_optional_id)
    entries: tuple[OverrideEntry, ...] = attrs.field(default=(), converter=_to_entries)

    def __attrs_post_init__(self) -> None:
        if not self.entries:
            raise ValidationError("entries", (), "at least one override entry")
        for i in range(1, len(self.entries)):
            if self.entries[i].at < self.entries[i - 1].at:
                raise ValidationError(f"entries[{i}].at", self.entries[i].at, "time order")

    @property
    def current(self) -> OverrideEntry:
        """The entry in force (the last one)."""
        return self.entries[-1]

    @property
    def category(self) -> ForecastCategory | None:
        """The overriding category (``None``: the stage's category applies again)."""
        return self.current.category

    def category_on(self, day: date) -> ForecastCategory | None:
        """The overriding category in force at the end of ``day`` (UTC dates of the entries)."""
        found: ForecastCategory | None = None
        for entry in self.entries:
            if entry.at.date() <= day:
                found = entry.category
        return found

    def append(self, entry: OverrideEntry, *, owner: str, team: str | None) -> CategoryOverride:
        """This trail with ``entry`` appended (and the opportunity's current owner and team)."""
        return CategoryOverride(
            opportunity_id=self.opportunity_id,
            owner=owner,
            team=team,
            entries=(*self.entries, entry),
        )


@attrs.frozen(kw_only=True)
class SnapshotLine:
    """One opportunity in a forecast as of a day: what movement and accuracy compare.

    ``closed_on`` is the day it moved into a won or lost stage (``None`` while open, or when the
    history does not say); ``lost_reason`` the reason of that move into a lost stage. ``weighted``
    is the forecast's expected amount (zero unless open at or above the threshold)."""

    id: str
    owner: str
    team: str | None = None
    stage: str
    category: ForecastCategory = attrs.field(converter=ForecastCategory)
    amount: Money
    probability: Decimal
    expected_close: date | None = None
    weighted: Money
    closed_on: date | None = None
    lost_reason: str | None = None


def _to_lines(value: Iterable[SnapshotLine]) -> tuple[SnapshotLine, ...]:
    return tuple(value)


def _check_lines(_instance: object, _attribute: object, value: tuple[SnapshotLine, ...]) -> None:
    seen: set[str] = set()
    for i, line in enumerate(value):
        if not isinstance(line, SnapshotLine):
            raise InvalidTypeError(f"lines[{i}]", line, "a SnapshotLine")
        if line.id in seen:
            raise ValidationError(f"lines[{i}].id", line.id, "one line per opportunity")
        seen.add(line.id)


@attrs.frozen(kw_only=True)
class ForecastSnapshot:
    """The forecast lines of every opportunity as of ``as_of``, taken at ``taken_at`` by
    ``actor`` under the plan's ``threshold`` (one per day; the key is the ISO date)."""

    as_of: date
    taken_at: datetime = attrs.field(converter=as_datetime)
    actor: str = attrs.field(validator=check_id)
    threshold: Decimal
    rules_version: int | None = None
    """The version of the stored sales rules in force when taken (``None``: none stored)."""
    lines: tuple[SnapshotLine, ...] = attrs.field(converter=_to_lines, validator=_check_lines)

    @property
    def id(self) -> str:
        """The storage key: the ISO date."""
        return self.as_of.isoformat()


def check_override_save(stored: CategoryOverride, new: CategoryOverride) -> None:
    """The port's rule for a saved :class:`CategoryOverride`: its audit trail only grows (the
    stored entries come first, unchanged).

    Raises:
        ValidationError: on field ``"entries"``.
    """
    if new.entries[: len(stored.entries)] != stored.entries:
        raise ValidationError(
            "entries",
            len(new.entries),
            "the stored entries unchanged, followed by new ones (the audit trail only grows)",
            where=f"category override {stored.opportunity_id!r}",
        )


def check_snapshot_save(stored: ForecastSnapshot, new: ForecastSnapshot) -> None:
    """The port's rule for a saved :class:`ForecastSnapshot`: a day's snapshot never changes.

    Raises:
        ValidationError: on field ``"as_of"``.
    """
    if new != stored:
        raise ValidationError(
            "as_of", stored.as_of, "unchanged: a day's forecast snapshot is kept as it was taken"
        )


def check_snapshot_delete(stored: ForecastSnapshot) -> None:
    """The port's rule for deleting a :class:`ForecastSnapshot`: never.

    Raises:
        ValidationError: on field ``"as_of"``.
    """
    raise ValidationError("as_of", stored.as_of, "kept forever: a snapshot is never deleted")
