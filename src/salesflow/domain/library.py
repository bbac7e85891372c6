"""The best-call library (优秀话术, R8): answered, recorded calls filed as training material.

Rules (pinned by tests):

* The library holds answered calls with a recording only.
* Featuring and unfeaturing both append an audit record (:class:`LibraryAuditRecord`); an
  unfeatured entry is never edited or deleted from the audit.
* Tags are lower-case words with single spaces, so that the same tag is written once.

Everything here is pure: no I/O, no clock. "Now" is always a parameter (``at=``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from salesflow.domain.actors import Actor
from salesflow.domain.calls import CallRecord
from salesflow.domain.checks import (
    MAX_NAME_LENGTH,
    MAX_TEXT_LENGTH,
    as_datetime,
    as_optional_id,
    as_optional_text,
    check_choice,
    check_count,
    check_id,
    check_instance,
    check_string,
    check_text,
    require_text,
)
from salesflow.domain.contacts import Contact
from salesflow.domain.dates import to_aware_datetime
from salesflow.errors import (
    InvalidTypeError,
    NotFoundError,
    TransitionNotAllowedError,
    ValidationError,
)

__all__ = [
    "BestCallLibrary",
    "LibraryAuditRecord",
    "LibraryEntry",
    "feature_call",
    "normalise_tags",
    "search_library",
    "unfeature_entry",
]


def _actor_id(value: object, field: str) -> str:
    if isinstance(value, Actor):
        return value.id
    return require_text(value, field)


def normalise_tags(tags: Iterable[str] | str) -> frozenset[str]:
    """Tags as a set of lower-case words with single spaces (``" Objection  Handling"`` ->
    ``"objection handling"``), so that the same tag is written once."""
    if isinstance(tags, str):
        tags = (tags,)
    if not isinstance(tags, Iterable):
        raise InvalidTypeError("tags", tags, "an iterable of strings")
    result = set()
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not tag.strip():
            raise ValidationError(f"tags[{i}]", tag, "a non-empty string")
        check_string(tag, f"tags[{i}]", MAX_NAME_LENGTH)
        result.add(" ".join(tag.split()).casefold())
    return frozenset(result)


def _check_filter(industry: object, region: object) -> None:
    for field, value in (("industry", industry), ("region", region)):
        if value is not None and not isinstance(value, str):
            raise InvalidTypeError(field, value, "a string or None")


@attrs.frozen(kw_only=True)
class LibraryEntry:
    """A call filed in the best-call library (优秀话术) as training material.

    ``recording`` is copied from the call so the library plays it without loading the call;
    ``industry`` and ``region`` say which customers it teaches about; ``curated_by`` and
    ``curated_at`` say who filed it and when.
    """

    call_id: str = attrs.field(validator=check_id)
    recording: str = attrs.field(validator=check_text)
    curated_by: str = attrs.field(validator=check_id)
    curated_at: datetime = attrs.field(converter=as_datetime)
    industry: str | None = attrs.field(default=None, converter=as_optional_id)
    region: str | None = attrs.field(default=None, converter=as_optional_id)
    tags: frozenset[str] = attrs.field(default=frozenset(), converter=normalise_tags)
    note: str | None = attrs.field(default=None, converter=as_optional_text)
    owner: str | None = attrs.field(default=None, converter=as_optional_id)
    version: int = attrs.field(default=0, validator=check_count)

    def matches(
        self, *, industry: str | None = None, region: str | None = None, tags: Iterable[str] = ()
    ) -> bool:
        """Whether this entry is in ``industry`` and ``region`` (case-insensitive; ``None`` = any)
        and carries every tag in ``tags``."""
        _check_filter(industry, region)
        if industry is not None and (self.industry or "").casefold() != industry.casefold():
            return False
        if region is not None and (self.region or "").casefold() != region.casefold():
            return False
        return normalise_tags(tags) <= self.tags

    def to_record(self) -> dict[str, Any]:
        """This entry as a dict of plain values (``tags`` sorted, ``curated_at`` in ISO 8601)."""
        return {
            "call_id": self.call_id,
            "recording": self.recording,
            "curated_by": self.curated_by,
            "curated_at": self.curated_at.isoformat(),
            "industry": self.industry,
            "region": self.region,
            "tags": tuple(sorted(self.tags)),
            "note": self.note,
            "owner": self.owner,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> LibraryEntry:
        """The inverse of :meth:`to_record`."""
        if not isinstance(record, Mapping):
            raise InvalidTypeError("record", record, "a mapping of field name to value")
        return cls(**{f.name: record[f.name] for f in attrs.fields(cls) if f.name in record})


def feature_call(
    call: CallRecord,
    *,
    curated_by: Actor | str,
    at: datetime,
    industry: str | None = None,
    region: str | None = None,
    tags: Iterable[str] = (),
    note: str | None = None,
    contact: Contact | None = None,
) -> LibraryEntry:
    """File ``call`` in the best-call library, curated by ``curated_by`` at ``at``. Pure.

    The call must be answered and have a recording
    (:class:`~salesflow.errors.ValidationError` otherwise). ``industry`` and ``region`` default to
    the ``contact``'s (which must be the call's contact). Who may feature calls (the manager, R8) is
    the application's permission model's decision, not this function's.
    """
    if not isinstance(call, CallRecord):
        raise InvalidTypeError("call", call, "a CallRecord")
    where = f"call {call.id!r}"
    if not call.answered:
        raise ValidationError(
            "disposition", str(call.disposition), "an answered call to feature", where=where
        )
    if call.recording is None:
        raise ValidationError("recording", None, "a call with a recording to feature", where=where)
    moment = to_aware_datetime(at, "at")
    if moment < call.started_at:
        raise ValidationError(
            "at", at, f"a time after the call started ({call.started_at.isoformat()})", where=where
        )
    if contact is not None:
        if not isinstance(contact, Contact):
            raise InvalidTypeError("contact", contact, "a Contact or None")
        if contact.id != call.contact_id:
            raise ValidationError(
                "contact", contact.id, f"the call's contact {call.contact_id!r}", where=where
            )
        industry = contact.industry if industry is None else industry
        region = contact.region if region is None else region
    return LibraryEntry(
        call_id=call.id,
        recording=call.recording,
        curated_by=_actor_id(curated_by, "curated_by"),
        curated_at=moment,
        industry=industry,
        region=region,
        tags=normalise_tags(tags),
        note=note,
        owner=call.owner,
    )


@attrs.frozen(kw_only=True)
class LibraryAuditRecord:
    """One line of the library's audit trail: who featured or unfeatured which entry, when, why.

    ``entry`` is the entry as it was, so the trail alone shows what was removed.
    """

    action: Literal["featured", "unfeatured"] = attrs.field(
        validator=check_choice, metadata={"choices": ("featured", "unfeatured")}
    )
    entry: LibraryEntry = attrs.field(validator=check_instance, metadata={"type": LibraryEntry})
    actor: str = attrs.field(validator=check_id)
    at: datetime = attrs.field(converter=as_datetime)
    reason: str | None = attrs.field(default=None, converter=as_optional_text)

    @property
    def call_id(self) -> str:
        """The call the entry is about."""
        return self.entry.call_id

    def to_record(self) -> dict[str, Any]:
        """This audit record as a dict of plain values (the entry flattened under ``entry``)."""
        return {
            "action": self.action,
            "call_id": self.call_id,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "entry": self.entry.to_record(),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> LibraryAuditRecord:
        """The inverse of :meth:`to_record`."""
        if not isinstance(record, Mapping):
            raise InvalidTypeError("record", record, "a mapping of field name to value")
        entry = record.get("entry")
        if not isinstance(entry, Mapping | LibraryEntry):
            raise InvalidTypeError("entry", entry, "the entry's record")
        action: Any = record.get("action")
        actor: Any = record.get("actor")
        return cls(
            action=action,
            entry=entry if isinstance(entry, LibraryEntry) else LibraryEntry.from_record(entry),
            actor=actor,
            at=record.get("at"),
            reason=record.get("reason"),
        )


def unfeature_entry(
    entry: LibraryEntry, *, by: Actor | str, at: datetime, reason: str
) -> LibraryAuditRecord:
    """The audit record of taking ``entry`` out of the library: by whom, when (not before it was
    curated) and why (``reason`` is required). Pure."""
    if not isinstance(entry, LibraryEntry):
        raise InvalidTypeError("entry", entry, "a LibraryEntry")
    moment = to_aware_datetime(at, "at")
    if moment < entry.curated_at:
        raise ValidationError(
            "at", at, f"a time at or after the entry was curated ({entry.curated_at.isoformat()})"
        )
    return LibraryAuditRecord(
        action="unfeatured",
        entry=entry,
        actor=_actor_id(by, "by"),
        at=moment,
        reason=require_text(reason, "reason", MAX_TEXT_LENGTH),
    )


def search_library(
    entries: Iterable[LibraryEntry],
    *,
    industry: str | None = None,
    region: str | None = None,
    tags: Iterable[str] = (),
) -> list[LibraryEntry]:
    """The entries in ``industry`` and ``region`` (case-insensitive; ``None`` = any) that carry
    every tag in ``tags``, newest first (then by call id)."""
    _check_filter(industry, region)
    wanted = normalise_tags(tags)
    found = [e for e in entries if e.matches(industry=industry, region=region) and wanted <= e.tags]
    found.sort(key=lambda e: e.call_id)
    found.sort(key=lambda e: e.curated_at, reverse=True)
    return found


@attrs.frozen
class BestCallLibrary:
    """The library as one value: its entries and its append-only audit trail.

    :meth:`feature` and :meth:`unfeature` return a new library; the audit trail only grows. An
    embedding CRM that stores entries itself can use :func:`feature_call`,
    :func:`unfeature_entry` and :func:`search_library` directly instead.
    """

    entries: tuple[LibraryEntry, ...] = ()
    audit: tuple[LibraryAuditRecord, ...] = ()

    def get(self, call_id: str) -> LibraryEntry | None:
        """The entry of ``call_id``, or ``None``."""
        for entry in self.entries:
            if entry.call_id == call_id:
                return entry
        return None

    def __contains__(self, call_id: object) -> bool:
        return any(entry.call_id == call_id for entry in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def feature(
        self,
        call: CallRecord,
        *,
        curated_by: Actor | str,
        at: datetime,
        industry: str | None = None,
        region: str | None = None,
        tags: Iterable[str] = (),
        note: str | None = None,
        contact: Contact | None = None,
    ) -> BestCallLibrary:
        """This library with ``call`` featured (see :func:`feature_call`).

        A call that is already featured raises
        :class:`~salesflow.errors.TransitionNotAllowedError`: unfeature it first.
        """
        if isinstance(call, CallRecord) and call.id in self:
            raise TransitionNotAllowedError(
                "feature", "featured", f"call {call.id!r}", "unfeature it first to refile it"
            )
        entry = feature_call(
            call,
            curated_by=curated_by,
            at=at,
            industry=industry,
            region=region,
            tags=tags,
            note=note,
            contact=contact,
        )
        record = LibraryAuditRecord(
            action="featured", entry=entry, actor=entry.curated_by, at=entry.curated_at
        )
        return BestCallLibrary((*self.entries, entry), (*self.audit, record))

    def unfeature(
        self, call_id: str, *, by: Actor | str, at: datetime, reason: str
    ) -> BestCallLibrary:
        """This library without the entry of ``call_id``, with the removal audited
        (:class:`~salesflow.errors.NotFoundError` when it is not featured)."""
        entry = self.get(call_id)
        if entry is None:
            raise NotFoundError("library entry", call_id)
        record = unfeature_entry(entry, by=by, at=at, reason=reason)
        remaining = tuple(e for e in self.entries if e.call_id != call_id)
        return BestCallLibrary(remaining, (*self.audit, record))

    def search(
        self,
        *,
        industry: str | None = None,
        region: str | None = None,
        tags: Iterable[str] = (),
    ) -> list[LibraryEntry]:
        """See :func:`search_library`."""
        return search_library(self.entries, industry=industry, region=region, tags=tags)
