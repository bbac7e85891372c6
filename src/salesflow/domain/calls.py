"""The call centre (R6-R8): contacts, calls, follow-up tasks and the best-call library.

Rules (pinned by tests):

* A :class:`CallRecord` is one call leg as a telephony source reported it. Its identity for imports
  is its **key**, ``(source, external_id)``: importing the same key twice stores it once. Its ``id``
  defaults to ``"<source>:<external_id>"``, so a re-fetch yields equal records.
* Times are timezone-aware (``started_at``); durations are ``int`` seconds: ``ring_seconds`` before
  the answer (or until the caller gave up), ``talk_seconds`` after it. Only an answered call talks.
* The counterpart of a call is the ``to`` number of an outbound call and the ``from`` number of an
  inbound one. Linking (:func:`link_call`) resolves the contact by an explicit contact id, else by
  the counterpart number (any of the contact's numbers, see
  :class:`~salesflow.domain.phones.PhoneDirectory`), else from an explicit task.
* The task of a call: an explicit ``task_id`` wins; otherwise the open task of the call's owner (the
  contact's owner when the call has none) for that contact whose due date is nearest to the call's
  date (ties: the earlier due date, then the smaller id).
* A missed inbound call (not answered) from a known contact that found no task makes a follow-up
  task for the contact's owner (the call's owner when the contact has none), due on the call's date,
  unless that person already has an open task for the contact, which the call then links to.
* Follow-up tasks have business **dates** as due dates (a ``datetime.date``, like every business
  date in salesflow); a call's date is the date of ``started_at`` in its own offset, or in ``tz``
  when the linker is given one.
* The best-call library (R8) holds answered calls with a recording only. Featuring and unfeaturing
  both append an audit record; an unfeatured entry is never edited or deleted from the audit.

Everything here is pure: no I/O, no clock. "Now" is always a parameter (``at=``).
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from salesflow.domain.actors import Actor
from salesflow.domain.dates import to_aware_datetime, to_date
from salesflow.domain.money import Money
from salesflow.domain.numbers import to_amount
from salesflow.domain.phones import PhoneDirectory
from salesflow.errors import (
    InvalidTypeError,
    NotFoundError,
    TransitionNotAllowedError,
    ValidationError,
)

__all__ = [
    "BestCallLibrary",
    "CallKey",
    "CallLinker",
    "CallRecord",
    "CallSource",
    "Contact",
    "ContactMatch",
    "Direction",
    "Disposition",
    "FollowUpTask",
    "LibraryAuditRecord",
    "LibraryEntry",
    "LinkedCall",
    "MalformedRow",
    "OnError",
    "OpenTasks",
    "TaskStatus",
    "call_id_for",
    "feature_call",
    "follow_up_for_missed_call",
    "followup_task_id",
    "link_call",
    "normalise_tags",
    "search_library",
    "unfeature_entry",
    "unique_calls",
]

_UNSET: Any = object()


class Direction(enum.StrEnum):
    """Who dialled: the contact (``inbound``) or the company (``outbound``)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Disposition(enum.StrEnum):
    """How a call ended: answered, or not (no answer, busy, failed)."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"


class TaskStatus(enum.StrEnum):
    """A follow-up task is open until it is done or cancelled (both final)."""

    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


CallKey = tuple[str, str]
"""The idempotency key of a call: ``(source, external_id)``."""

ContactMatch = Literal[
    "contact_id",
    "number",
    "task",
    "unknown_number",
    "unparseable_number",
    "company_number",
]
"""How :func:`link_call` found the contact (the first three) or why it found none."""

OnError = Literal["raise", "skip"]
"""What a call source does with a malformed row: reject the batch, or skip it and report it."""


# -- field helpers ---------------------------------------------------------------------------------


def _text(value: object, field: str, where: str | None = None) -> str:
    if not isinstance(value, str):
        raise InvalidTypeError(field, value, "a non-empty string", where=where)
    if not value.strip():
        raise ValidationError(field, value, "a non-empty string", where=where)
    return value


def _optional_text(value: object, field: str, where: str | None = None) -> str | None:
    """``None`` and blank strings are "missing"; anything else must be a string."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidTypeError(field, value, "a string or None", where=where)
    return value if value.strip() else None


def _version(value: object, where: str | None = None) -> int:
    if type(value) is not int or value < 0:
        raise ValidationError("version", value, "an int of zero or more", where=where)
    return value


def _seconds(value: object, field: str, where: str | None = None) -> int:
    if type(value) is not int:
        raise InvalidTypeError(field, value, "whole seconds as an int", where=where)
    if value < 0:
        raise ValidationError(field, value, "zero or more seconds", where=where)
    return value


def _enum(kind: type[enum.StrEnum], value: object, field: str, where: str | None = None) -> Any:
    if isinstance(value, kind):
        return value
    if not isinstance(value, str):
        choices = ", ".join(repr(str(m)) for m in kind)
        raise InvalidTypeError(field, value, f"one of {choices}", where=where)
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(str(m)) for m in kind)
        raise ValidationError(field, value, f"one of {choices}", where=where) from None


def _actor_id(value: object, field: str) -> str:
    if isinstance(value, Actor):
        return value.id
    return _text(value, field)


def _local_date(moment: datetime, tz: tzinfo | None) -> date:
    return (moment if tz is None else moment.astimezone(tz)).date()


# -- contacts --------------------------------------------------------------------------------------


def _to_phones(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise InvalidTypeError("phones", value, "an iterable of phone numbers (strings)")
    phones = tuple(value)
    for i, raw in enumerate(phones):
        if not isinstance(raw, str) or not raw.strip():
            raise ValidationError(f"phones[{i}]", raw, "a phone number as a non-empty string")
    return phones


def _check_text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _text(value, attribute.name)


def _check_optional_text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidTypeError(attribute.name, value, "a string or None")


def _check_version(_instance: object, _attribute: object, value: object) -> None:
    _version(value)


def _get(record: Mapping[str, Any], name: str, default: Any = None) -> Any:
    return record.get(name, default)


def _blank_to_none(instance: object, names: Iterable[str]) -> None:
    """Blank optional strings mean "missing": store them as ``None``."""
    for name in names:
        value = getattr(instance, name)
        if value is not None and not value.strip():
            object.__setattr__(instance, name, None)


@attrs.frozen(kw_only=True)
class Contact:
    """A person the company talks to (联系人): id, name, account, owner, industry, region, phones.

    ``phones`` holds any number of numbers as entered (any format); they are normalised where they
    are looked up (:class:`~salesflow.domain.phones.PhoneDirectory`), so the record keeps what the
    user typed. ``owner`` is the rep responsible for the contact (missed calls become their tasks).
    """

    id: str = attrs.field(validator=_check_text)
    name: str | None = attrs.field(default=None, validator=_check_optional_text)
    account: str | None = attrs.field(default=None, validator=_check_optional_text)
    owner: str | None = attrs.field(default=None, validator=_check_optional_text)
    industry: str | None = attrs.field(default=None, validator=_check_optional_text)
    region: str | None = attrs.field(default=None, validator=_check_optional_text)
    phones: tuple[str, ...] = attrs.field(default=(), converter=_to_phones)
    version: int = attrs.field(default=0, validator=_check_version)

    def __attrs_post_init__(self) -> None:
        _blank_to_none(self, ("name", "account", "owner", "industry", "region"))

    def to_record(self) -> dict[str, Any]:
        """This contact as a dict of plain values (``phones`` as a tuple of strings)."""
        return {
            "id": self.id,
            "name": self.name,
            "account": self.account,
            "owner": self.owner,
            "industry": self.industry,
            "region": self.region,
            "phones": self.phones,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Contact:
        """The inverse of :meth:`to_record` (``phones`` may also be one ``;``-separated string)."""
        if not isinstance(record, Mapping):
            raise InvalidTypeError("record", record, "a mapping of field name to value")
        phones = record.get("phones") or ()
        if isinstance(phones, str):
            phones = tuple(p.strip() for p in phones.split(";") if p.strip())
        return cls(
            id=_get(record, "id"),
            name=record.get("name"),
            account=record.get("account"),
            owner=record.get("owner"),
            industry=record.get("industry"),
            region=record.get("region"),
            phones=phones,
            version=record.get("version", 0),
        )


# -- calls -----------------------------------------------------------------------------------------


def call_id_for(source: str, external_id: str) -> str:
    """The default id of a call: ``"<source>:<external_id>"`` (stable across re-fetches)."""
    return f"{source}:{external_id}"


def _default_call_id(call: CallRecord) -> str:
    return call_id_for(call.source, call.external_id)


_OPTIONAL_CALL_TEXT = ("owner", "recording", "contact_id", "task_id", "opportunity_id")


@attrs.frozen(kw_only=True)
class CallRecord:
    """One call as a telephony source reported it, plus the links made when it was imported.

    Required: ``source`` (the source's name), ``external_id`` (the source's id for the call),
    ``direction``, ``from_number``, ``to_number`` (as given by the source, any format; empty when
    withheld), ``started_at`` (aware) and ``disposition``. ``ring_seconds`` and ``talk_seconds`` are
    whole seconds (a call that was not answered has no talk time). ``owner`` is the rep on the call,
    ``recording`` a reference the CRM can play (a URL, a file name), ``price`` what the carrier
    charged as reported (Twilio reports charges as negative amounts). ``contact_id``, ``task_id`` and
    ``opportunity_id`` are the links; :func:`link_call` fills them in.

    Strings are accepted for ``direction``, ``disposition`` (their values) and ``started_at``
    (ISO 8601 with an offset); blank optional strings mean ``None``.
    """

    source: str
    external_id: str
    id: str = attrs.field(default=attrs.Factory(_default_call_id, takes_self=True))
    direction: Direction
    from_number: str
    to_number: str
    started_at: datetime
    disposition: Disposition
    owner: str | None = None
    ring_seconds: int = 0
    talk_seconds: int = 0
    recording: str | None = None
    contact_id: str | None = None
    task_id: str | None = None
    opportunity_id: str | None = None
    price: Money | None = None
    version: int = 0

    def __attrs_post_init__(self) -> None:
        # Sources build these by the hundred thousand: one cheap test for the valid case, and
        # _validate() (which converts and names the culprit) only when it fails.
        started = self.started_at
        if not (
            type(self.source) is str
            and self.source
            and type(self.external_id) is str
            and self.external_id
            and type(self.id) is str
            and self.id
            and type(self.direction) is Direction
            and type(self.disposition) is Disposition
            and type(self.from_number) is str
            and type(self.to_number) is str
            and type(started) is datetime
            and started.tzinfo is not None
            and started.utcoffset() is not None
            and type(self.ring_seconds) is int
            and self.ring_seconds >= 0
            and type(self.talk_seconds) is int
            and (
                self.talk_seconds == 0
                or (self.talk_seconds > 0 and self.disposition is Disposition.ANSWERED)
            )
            and (self.owner is None or (type(self.owner) is str and self.owner))
            and (self.recording is None or (type(self.recording) is str and self.recording))
            and (self.contact_id is None or (type(self.contact_id) is str and self.contact_id))
            and (self.task_id is None or (type(self.task_id) is str and self.task_id))
            and (
                self.opportunity_id is None
                or (type(self.opportunity_id) is str and self.opportunity_id)
            )
            and (self.price is None or type(self.price) is Money)
            and type(self.version) is int
            and self.version >= 0
        ):
            self._validate()

    def _validate(self) -> None:
        where = (
            f"call {self.source}:{self.external_id}"
            if isinstance(self.source, str) and isinstance(self.external_id, str)
            else None
        )

        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        _text(self.source, "source", where)
        _text(self.external_id, "external_id", where)
        _text(self.id, "id", where)
        put("direction", _enum(Direction, self.direction, "direction", where))
        put("disposition", _enum(Disposition, self.disposition, "disposition", where))
        for name in ("from_number", "to_number"):
            if not isinstance(getattr(self, name), str):
                raise InvalidTypeError(name, getattr(self, name), "a string", where=where)
        put("started_at", to_aware_datetime(self.started_at, "started_at", where=where))
        if not isinstance(self.started_at, datetime) or type(self.started_at) is date:
            raise InvalidTypeError("started_at", self.started_at, "an aware datetime", where=where)
        _seconds(self.ring_seconds, "ring_seconds", where)
        _seconds(self.talk_seconds, "talk_seconds", where)
        if self.talk_seconds and self.disposition is not Disposition.ANSWERED:
            raise ValidationError(
                "talk_seconds",
                self.talk_seconds,
                f"0 for a call that was not answered ({self.disposition})",
                where=where,
            )
        for name in _OPTIONAL_CALL_TEXT:
            put(name, _optional_text(getattr(self, name), name, where))
        if self.price is not None and not isinstance(self.price, Money):
            raise InvalidTypeError("price", self.price, "Money or None", where=where)
        _version(self.version, where)

    # -- derived values --------------------------------------------------------------------------

    @property
    def key(self) -> CallKey:
        """The idempotency key ``(source, external_id)``."""
        return (self.source, self.external_id)

    @property
    def counterpart_number(self) -> str:
        """The contact's side of the call: ``to_number`` when outbound, ``from_number`` when
        inbound."""
        return self.to_number if self.direction is Direction.OUTBOUND else self.from_number

    @property
    def company_side_number(self) -> str:
        """The company's side of the call (the rep's line or the switchboard)."""
        return self.from_number if self.direction is Direction.OUTBOUND else self.to_number

    @property
    def answered(self) -> bool:
        """Whether the call was answered."""
        return self.disposition is Disposition.ANSWERED

    @property
    def missed(self) -> bool:
        """Whether this is an inbound call nobody answered."""
        return self.direction is Direction.INBOUND and self.disposition is not Disposition.ANSWERED

    @property
    def duration_seconds(self) -> int:
        """Ring plus talk time."""
        return self.ring_seconds + self.talk_seconds

    @property
    def ended_at(self) -> datetime:
        """When the call ended (``started_at`` plus ring and talk time)."""
        return self.started_at + timedelta(seconds=self.ring_seconds + self.talk_seconds)

    def local_date(self, tz: tzinfo | None = None) -> date:
        """The call's date in ``tz`` (in the offset of ``started_at`` when ``None``)."""
        return _local_date(self.started_at, tz)

    # -- changes ---------------------------------------------------------------------------------

    def with_links(
        self,
        *,
        contact_id: str | None = _UNSET,
        task_id: str | None = _UNSET,
        opportunity_id: str | None = _UNSET,
    ) -> CallRecord:
        """A copy with the given links set (arguments left out keep their value; blank means
        ``None``)."""
        # Linking runs once per imported call: copying the slots is several times cheaper than
        # attrs.evolve, and only the links need checking.
        links: dict[str, str | None] = {}
        for name, value in (
            ("contact_id", contact_id),
            ("task_id", task_id),
            ("opportunity_id", opportunity_id),
        ):
            if value is _UNSET:
                continue
            if value is not None and (type(value) is not str or not value or value.isspace()):
                value = _optional_text(value, name, f"call {self.id}")
            links[name] = value
        if not links:
            return self
        copy = object.__new__(CallRecord)
        for slot, value in zip(_CALL_SLOTS, _CALL_VALUES(self), strict=True):
            slot.__set__(copy, value)
        for name, value in links.items():
            object.__setattr__(copy, name, value)
        return copy

    # -- records ---------------------------------------------------------------------------------

    def to_record(self) -> dict[str, Any]:
        """This call as a dict of plain values: ``started_at`` in ISO 8601, ``price`` as a decimal
        string plus ``price_currency``."""
        return {
            "id": self.id,
            "source": self.source,
            "external_id": self.external_id,
            "owner": self.owner,
            "direction": str(self.direction),
            "from_number": self.from_number,
            "to_number": self.to_number,
            "started_at": self.started_at.isoformat(),
            "ring_seconds": self.ring_seconds,
            "talk_seconds": self.talk_seconds,
            "disposition": str(self.disposition),
            "recording": self.recording,
            "contact_id": self.contact_id,
            "task_id": self.task_id,
            "opportunity_id": self.opportunity_id,
            "price": None if self.price is None else str(self.price.amount),
            "price_currency": None if self.price is None else self.price.currency,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CallRecord:
        """The inverse of :meth:`to_record` (a missing ``id`` gets the default)."""
        if not isinstance(record, Mapping):
            raise InvalidTypeError("record", record, "a mapping of field name to value")
        price = record.get("price")
        money = None
        if price is not None and price != "":
            currency = record.get("price_currency")
            if not isinstance(currency, str):
                raise ValidationError("price_currency", currency, "the currency of the price")
            money = Money(to_amount(price, "price"), currency)
        fields: dict[str, Any] = {
            name: record.get(name)
            for name in (
                "source",
                "external_id",
                "owner",
                "direction",
                "from_number",
                "to_number",
                "started_at",
                "disposition",
                "recording",
                "contact_id",
                "task_id",
                "opportunity_id",
            )
        }
        if record.get("id") is not None:
            fields["id"] = record["id"]
        return cls(
            **fields,
            ring_seconds=record.get("ring_seconds", 0),
            talk_seconds=record.get("talk_seconds", 0),
            price=money,
            version=record.get("version", 0),
        )


_CALL_FIELDS = tuple(f.name for f in attrs.fields(CallRecord))
# The slot descriptors and a C-level getter of every field, for CallRecord.with_links.
_CALL_SLOTS = tuple(CallRecord.__dict__[name] for name in _CALL_FIELDS)
_CALL_VALUES = operator.attrgetter(*_CALL_FIELDS)


def unique_calls(calls: Iterable[CallRecord]) -> Iterator[CallRecord]:
    """``calls`` with each key ``(source, external_id)`` kept once, the first one seen.

    This is the import rule: the same call imported twice is stored once. Memory grows with the
    number of distinct keys, not with the records.
    """
    seen: set[CallKey] = set()
    for call in calls:
        key = (call.source, call.external_id)
        if key not in seen:
            seen.add(key)
            yield call


# -- follow-up tasks -------------------------------------------------------------------------------


def _to_due(value: object) -> date:
    return to_date(value, "due")


def _to_created_at(value: object) -> datetime | None:
    return None if value is None else to_aware_datetime(value, "created_at")


def _to_closed_at(value: object) -> datetime | None:
    return None if value is None else to_aware_datetime(value, "closed_at")


def _to_status(value: object) -> TaskStatus:
    result: TaskStatus = _enum(TaskStatus, value, "status")
    return result


@attrs.frozen(kw_only=True)
class FollowUpTask:
    """A follow-up task (跟进任务): a rep (``owner``) must get back to a contact by ``due``.

    ``due`` is a business date (``datetime.date``). A task is created open (:meth:`create`, or
    :func:`follow_up_for_missed_call`) and ends once, as done (:meth:`complete`) or cancelled
    (:meth:`cancel`); ``closed_at`` says when. ``call_id`` names the missed call that created it.
    """

    id: str = attrs.field(validator=_check_text)
    owner: str = attrs.field(validator=_check_text)
    contact_id: str = attrs.field(validator=_check_text)
    due: date = attrs.field(converter=_to_due)
    status: TaskStatus = attrs.field(default=TaskStatus.OPEN, converter=_to_status)
    opportunity_id: str | None = attrs.field(default=None, validator=_check_optional_text)
    subject: str | None = attrs.field(default=None, validator=_check_optional_text)
    note: str | None = attrs.field(default=None, validator=_check_optional_text)
    created_at: datetime | None = attrs.field(default=None, converter=_to_created_at)
    closed_at: datetime | None = attrs.field(default=None, converter=_to_closed_at)
    call_id: str | None = attrs.field(default=None, validator=_check_optional_text)
    version: int = attrs.field(default=0, validator=_check_version)

    def __attrs_post_init__(self) -> None:
        _blank_to_none(self, ("opportunity_id", "subject", "note", "call_id"))
        where = f"task {self.id!r}"
        if (self.status is TaskStatus.OPEN) != (self.closed_at is None):
            expected = "None while open" if self.is_open else "the time the task was closed"
            raise ValidationError("closed_at", self.closed_at, expected, where=where)
        if (
            self.created_at is not None
            and self.closed_at is not None
            and self.closed_at < self.created_at
        ):
            raise ValidationError(
                "closed_at", self.closed_at, "a time at or after created_at", where=where
            )

    @classmethod
    def create(
        cls,
        *,
        id: str,
        owner: str,
        contact_id: str,
        due: date,
        at: datetime,
        opportunity_id: str | None = None,
        subject: str | None = None,
        call_id: str | None = None,
    ) -> FollowUpTask:
        """A new open task, created at ``at`` (an aware datetime)."""
        return cls(
            id=id,
            owner=owner,
            contact_id=contact_id,
            due=due,
            opportunity_id=opportunity_id,
            subject=subject,
            created_at=to_aware_datetime(at, "at"),
            call_id=call_id,
        )

    @property
    def is_open(self) -> bool:
        """Whether the task still waits for its owner."""
        return self.status is TaskStatus.OPEN

    def _close(self, status: TaskStatus, action: str, at: datetime, note: str | None) -> Any:
        if not self.is_open:
            raise TransitionNotAllowedError(action, str(self.status), f"task {self.id!r}")
        moment = to_aware_datetime(at, "at")
        if self.created_at is not None and moment < self.created_at:
            raise ValidationError(
                "at", at, f"a time at or after the task was created ({self.created_at.isoformat()})"
            )
        return attrs.evolve(
            self, status=status, closed_at=moment, note=_optional_text(note, "note") or self.note
        )

    def complete(self, at: datetime, *, note: str | None = None) -> FollowUpTask:
        """This task done at ``at`` (aware), with an optional ``note`` on the outcome.

        Raises :class:`~salesflow.errors.TransitionNotAllowedError` unless the task is open.
        """
        result: FollowUpTask = self._close(TaskStatus.DONE, "complete", at, note)
        return result

    def cancel(self, at: datetime, *, note: str | None = None) -> FollowUpTask:
        """This task cancelled at ``at`` (aware); see :meth:`complete`."""
        result: FollowUpTask = self._close(TaskStatus.CANCELLED, "cancel", at, note)
        return result

    def to_record(self) -> dict[str, Any]:
        """This task as a dict of plain values (dates and times in ISO 8601)."""
        return {
            "id": self.id,
            "owner": self.owner,
            "contact_id": self.contact_id,
            "opportunity_id": self.opportunity_id,
            "due": self.due.isoformat(),
            "status": str(self.status),
            "subject": self.subject,
            "note": self.note,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
            "closed_at": None if self.closed_at is None else self.closed_at.isoformat(),
            "call_id": self.call_id,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> FollowUpTask:
        """The inverse of :meth:`to_record`."""
        if not isinstance(record, Mapping):
            raise InvalidTypeError("record", record, "a mapping of field name to value")
        return cls(**{f.name: record[f.name] for f in attrs.fields(cls) if f.name in record})


def followup_task_id(call: CallRecord) -> str:
    """The default id of the task made for a missed call: ``"followup:<call id>"``.

    Deterministic, so importing the same missed call again cannot make a second task.
    """
    return f"followup:{call.id}"


def follow_up_for_missed_call(
    call: CallRecord,
    *,
    contact_id: str,
    owner: str,
    task_id: str | None = None,
    due: date | None = None,
    tz: tzinfo | None = None,
) -> FollowUpTask:
    """The follow-up task a missed inbound call creates: open, for ``owner``, about ``contact_id``.

    It is due on the call's date (in ``tz``, else in the call's own offset) unless ``due`` is given,
    was created at the moment of the call, names the call (``call_id``) and carries the call's
    opportunity. ``task_id`` defaults to :func:`followup_task_id`. Raises
    :class:`~salesflow.errors.ValidationError` when the call is not a missed inbound call.
    """
    if not isinstance(call, CallRecord):
        raise InvalidTypeError("call", call, "a CallRecord")
    if not call.missed:
        raise ValidationError(
            "call",
            call.id,
            f"a missed inbound call (this one is {call.direction} and {call.disposition})",
        )
    number = call.counterpart_number or "a withheld number"
    return FollowUpTask.create(
        id=followup_task_id(call) if task_id is None else task_id,
        owner=owner,
        contact_id=contact_id,
        due=call.local_date(tz) if due is None else due,
        at=call.started_at,
        opportunity_id=call.opportunity_id,
        subject=f"Call back: missed call from {number}",
        call_id=call.id,
    )


class OpenTasks:
    """The follow-up tasks a linker searches, indexed by id and by (owner, contact).

    Only open tasks are candidates for :meth:`nearest`; every task added can be found by id (an
    explicit ``task_id`` on a call may name a closed task).
    """

    def __init__(self, tasks: Iterable[FollowUpTask] = ()) -> None:
        self._by_id: dict[str, FollowUpTask] = {}
        self._open: dict[tuple[str, str], list[FollowUpTask]] = {}
        for task in tasks:
            self.add(task)

    def add(self, task: FollowUpTask) -> None:
        """Add ``task``, replacing a task with the same id."""
        if not isinstance(task, FollowUpTask):
            raise InvalidTypeError("task", task, "a FollowUpTask")
        old = self._by_id.get(task.id)
        if old is not None and old.is_open:
            bucket = self._open[(old.owner, old.contact_id)]
            bucket[:] = [t for t in bucket if t.id != old.id]
        self._by_id[task.id] = task
        if task.is_open:
            self._open.setdefault((task.owner, task.contact_id), []).append(task)

    def get(self, task_id: str) -> FollowUpTask | None:
        """The task with ``task_id``, or ``None``."""
        return self._by_id.get(task_id)

    def open_for(self, owner: str, contact_id: str) -> list[FollowUpTask]:
        """The open tasks of ``owner`` for ``contact_id``."""
        return list(self._open.get((owner, contact_id), ()))

    def nearest(self, owner: str | None, contact_id: str, day: date) -> FollowUpTask | None:
        """The open task of ``owner`` for ``contact_id`` due nearest to ``day`` (ties: the earlier
        due date, then the smaller id), or ``None``."""
        if owner is None:
            return None
        bucket = self._open.get((owner, contact_id))
        if not bucket:
            return None
        return min(bucket, key=lambda t: (abs((t.due - day).days), t.due, t.id))

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[FollowUpTask]:
        return iter(self._by_id.values())


@attrs.frozen(kw_only=True)
class LinkedCall:
    """What linking made of a call: the call with its links, and the task it created (if any)."""

    call: CallRecord
    """The call with ``contact_id``, ``task_id`` and ``opportunity_id`` filled in where found."""
    contact_match: ContactMatch
    """How the contact was found, or why none was."""
    new_task: FollowUpTask | None = None
    """The follow-up task created for a missed inbound call (store it with the call)."""
    unassigned: bool = False
    """A missed inbound call from a known contact that no task could be made for: neither the
    contact nor the call has an owner. Reported so that the call is not quietly forgotten."""

    @property
    def counted(self) -> bool:
        """Whether the call resolved to a known contact (and so counts in the statistics)."""
        return self.call.contact_id is not None


def link_call(
    call: CallRecord,
    directory: PhoneDirectory,
    tasks: OpenTasks | Iterable[FollowUpTask] | None = None,
    *,
    new_task_id: Callable[[CallRecord], str] = followup_task_id,
    tz: tzinfo | None = None,
    create_tasks: bool = True,
) -> LinkedCall:
    """Link ``call`` to its contact, task and opportunity (see the module rules). Pure.

    Args:
        call: the call as imported.
        directory: the contacts' numbers.
        tasks: the follow-up tasks to search (an :class:`OpenTasks` index, or any iterable).
        new_task_id: the id of a task created for a missed call (deterministic by default).
        tz: the zone that decides a call's date (the call's own offset when ``None``).
        create_tasks: whether a missed inbound call may create a task.

    Returns the linked call and the new task, if one was created. Nothing passed in is changed; use
    :class:`CallLinker` to link a batch in which a task created for one call serves the next.
    """
    if not isinstance(call, CallRecord):
        raise InvalidTypeError("call", call, "a CallRecord")
    if not isinstance(directory, PhoneDirectory):
        raise InvalidTypeError("directory", directory, "a PhoneDirectory")
    index = tasks if isinstance(tasks, OpenTasks) else OpenTasks(() if tasks is None else tasks)
    return _link(call, directory, index, new_task_id, tz, create_tasks)


def _link(
    call: CallRecord,
    directory: PhoneDirectory,
    tasks: OpenTasks,
    new_task_id: Callable[[CallRecord], str],
    tz: tzinfo | None,
    create_tasks: bool,
) -> LinkedCall:
    contact_id = call.contact_id
    match: ContactMatch
    if contact_id is not None:
        match = "contact_id"
    else:
        contact_id, reason = directory.classify(call.counterpart_number, owner=call.owner)
        match = "number" if reason == "matched" else reason
    task: FollowUpTask | None = None
    new_task: FollowUpTask | None = None
    unassigned = False
    if call.task_id is not None:
        task = tasks.get(call.task_id)
        if contact_id is None and task is not None:
            contact_id, match = task.contact_id, "task"
    elif contact_id is not None:
        day = call.local_date(tz)
        contact_owner = directory.owner_of(contact_id) if contact_id in directory else None
        searcher = call.owner or contact_owner
        task = tasks.nearest(searcher, contact_id, day)
        if task is None and call.missed and create_tasks:
            assignee = contact_owner or call.owner
            if assignee is None:
                unassigned = True
            else:
                if assignee != searcher:
                    task = tasks.nearest(assignee, contact_id, day)
                if task is None:
                    new_task = follow_up_for_missed_call(
                        call,
                        contact_id=contact_id,
                        owner=assignee,
                        task_id=new_task_id(call),
                        due=day,
                    )
                    task = new_task
    task_id = call.task_id if call.task_id is not None else (None if task is None else task.id)
    opportunity_id = call.opportunity_id
    if opportunity_id is None and task is not None:
        opportunity_id = task.opportunity_id
    linked = call.with_links(contact_id=contact_id, task_id=task_id, opportunity_id=opportunity_id)
    return LinkedCall(call=linked, contact_match=match, new_task=new_task, unassigned=unassigned)


class CallLinker:
    """Links a batch of calls: :func:`link_call` with a task index that learns as it goes.

    A task created for one missed call is found by the next missed call of the same contact, so a
    contact who calls three times while nobody answers gets one follow-up task, not three. The
    created tasks are in :attr:`created_tasks`; nothing outside the linker is changed.
    """

    def __init__(
        self,
        directory: PhoneDirectory,
        tasks: Iterable[FollowUpTask] = (),
        *,
        new_task_id: Callable[[CallRecord], str] = followup_task_id,
        tz: tzinfo | None = None,
        create_tasks: bool = True,
    ) -> None:
        if not isinstance(directory, PhoneDirectory):
            raise InvalidTypeError("directory", directory, "a PhoneDirectory")
        if not callable(new_task_id):
            raise InvalidTypeError("new_task_id", new_task_id, "a callable call -> task id")
        self.directory = directory
        """The contacts' numbers."""
        self.tasks = tasks if isinstance(tasks, OpenTasks) else OpenTasks(tasks)
        """The task index (grows with the created tasks)."""
        self.created_tasks: list[FollowUpTask] = []
        """The tasks created so far, in order."""
        self._new_task_id = new_task_id
        self._tz = tz
        self._create = create_tasks

    def link(self, call: CallRecord) -> LinkedCall:
        """Link one call (see :func:`link_call`)."""
        if not isinstance(call, CallRecord):
            raise InvalidTypeError("call", call, "a CallRecord")
        result = _link(call, self.directory, self.tasks, self._new_task_id, self._tz, self._create)
        if result.new_task is not None:
            self.tasks.add(result.new_task)
            self.created_tasks.append(result.new_task)
        return result

    def link_all(self, calls: Iterable[CallRecord]) -> Iterator[LinkedCall]:
        """Link ``calls`` lazily, in order."""
        for call in calls:
            yield self.link(call)


# -- best-call library -----------------------------------------------------------------------------


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
        result.add(" ".join(tag.split()).casefold())
    return frozenset(result)


def _check_filter(industry: object, region: object) -> None:
    for field, value in (("industry", industry), ("region", region)):
        if value is not None and not isinstance(value, str):
            raise InvalidTypeError(field, value, "a string or None")


def _to_curated_at(value: object) -> datetime:
    return to_aware_datetime(value, "curated_at")


@attrs.frozen(kw_only=True)
class LibraryEntry:
    """A call filed in the best-call library (优秀话术) as training material.

    ``recording`` is copied from the call so the library plays it without loading the call;
    ``industry`` and ``region`` say which customers it teaches about; ``curated_by`` and
    ``curated_at`` say who filed it and when.
    """

    call_id: str = attrs.field(validator=_check_text)
    recording: str = attrs.field(validator=_check_text)
    curated_by: str = attrs.field(validator=_check_text)
    curated_at: datetime = attrs.field(converter=_to_curated_at)
    industry: str | None = attrs.field(default=None, validator=_check_optional_text)
    region: str | None = attrs.field(default=None, validator=_check_optional_text)
    tags: frozenset[str] = attrs.field(default=frozenset(), converter=normalise_tags)
    note: str | None = attrs.field(default=None, validator=_check_optional_text)
    owner: str | None = attrs.field(default=None, validator=_check_optional_text)
    version: int = attrs.field(default=0, validator=_check_version)

    def __attrs_post_init__(self) -> None:
        _blank_to_none(self, ("industry", "region", "note", "owner"))

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


def _to_action(value: object) -> str:
    if value not in ("featured", "unfeatured"):
        raise ValidationError("action", value, "'featured' or 'unfeatured'")
    return str(value)


def _to_audit_at(value: object) -> datetime:
    return to_aware_datetime(value, "at")


def _check_entry(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, LibraryEntry):
        raise InvalidTypeError("entry", value, "a LibraryEntry")


@attrs.frozen(kw_only=True)
class LibraryAuditRecord:
    """One line of the library's audit trail: who featured or unfeatured which entry, when, why.

    ``entry`` is the entry as it was, so the trail alone shows what was removed.
    """

    action: Literal["featured", "unfeatured"] = attrs.field(converter=_to_action)
    entry: LibraryEntry = attrs.field(validator=_check_entry)
    actor: str = attrs.field(validator=_check_text)
    at: datetime = attrs.field(converter=_to_audit_at)
    reason: str | None = attrs.field(default=None, validator=_check_optional_text)

    def __attrs_post_init__(self) -> None:
        _blank_to_none(self, ("reason",))

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
        return cls(
            action=record.get("action"),
            entry=entry if isinstance(entry, LibraryEntry) else LibraryEntry.from_record(entry),
            actor=_get(record, "actor"),
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
        reason=_text(reason, "reason"),
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


# -- call sources ----------------------------------------------------------------------------------


def _to_shown(value: object) -> str | None:
    return value if value is None or isinstance(value, str) else repr(value)


@attrs.frozen(kw_only=True)
class MalformedRow:
    """A row (a CSV line, a JSON object) a call source could not turn into a :class:`CallRecord`.

    ``location`` says where in words (``"Master.csv line 17"``, ``"page 2, calls[1]"``); ``line`` is
    the 1-based line number when the input has lines.
    """

    source: str
    """The source's name."""
    location: str
    """Where the row is, for people."""
    field: str
    """The field that was wrong."""
    value: str | None = attrs.field(default=None, converter=_to_shown)
    """The offending value as text (``None`` when missing)."""
    expected: str = ""
    """What would have been accepted."""
    line: int | None = None
    """The 1-based line number, when the input has lines."""

    @property
    def message(self) -> str:
        """The problem in one sentence."""
        shown = "missing" if self.value is None else repr(self.value)
        text = f"{self.location}: invalid {self.field}: {shown}"
        return f"{text} (expected {self.expected})" if self.expected else text

    def to_error(self) -> ValidationError:
        """This problem as a :class:`~salesflow.errors.ValidationError` located at the row."""
        return ValidationError(self.field, self.value, self.expected, where=self.location)

    @classmethod
    def from_error(
        cls, source: str, location: str, error: ValidationError, line: int | None = None
    ) -> MalformedRow:
        """The row problem behind a :class:`~salesflow.errors.ValidationError`."""
        return cls(
            source=source,
            location=location,
            field=error.field,
            value=error.value,
            expected=error.expected,
            line=line,
        )


@runtime_checkable
class CallSource(Protocol):
    """Where calls come from: a PBX log, a telephony provider's API, a CRM's own call table.

    A source has a ``name`` (the ``source`` of every record it yields, and its plugin name) and
    ``fetch(since, until)``, which yields the calls that **started** in ``[since, until)`` (aware
    datetimes; ``None`` is unbounded) as raw :class:`CallRecord` values: links unset unless the
    source knows them. A source must:

    * yield each ``(source, external_id)`` at most once per fetch, and equal records when fetched
      again (so that importing twice changes nothing);
    * never drop a malformed row silently: with ``on_error="raise"`` it raises
      :class:`~salesflow.errors.ValidationError` before yielding anything (the batch is rejected);
      with ``on_error="skip"`` it yields the good rows and lists the bad ones in :attr:`errors`
      (reset by each fetch).

    :class:`salesflow.testing.telephony.CallSourceContract` checks all of this;
    :class:`salesflow.adapters.telephony.CallSourceBase` implements the common part.
    """

    @property
    def name(self) -> str:
        """The source's name, e.g. ``"asterisk-csv"``."""
        ...

    @property
    def errors(self) -> Sequence[MalformedRow]:
        """The malformed rows met by the last fetch."""
        ...

    def fetch(
        self, since: datetime | None, until: datetime | None, *, on_error: OnError = "raise"
    ) -> Iterator[CallRecord]:
        """The calls that started in ``[since, until)``."""
        ...
