"""Call records (R6, R7): one call leg as a telephony source reported it, and where calls come from.

Rules (pinned by tests):

* A :class:`CallRecord` is one call leg as a telephony source reported it. Its identity for imports
  is its **key**, ``(source, external_id)``: importing the same key twice stores it once. Its ``id``
  defaults to ``"<source>:<external_id>"``, so a re-fetch yields equal records.
* Times are timezone-aware (``started_at``); durations are ``int`` seconds: ``ring_seconds`` before
  the answer (or until the caller gave up), ``talk_seconds`` after it. Only an answered call talks.
* The counterpart of a call is the ``to`` number of an outbound call and the ``from`` number of an
  inbound one; :mod:`salesflow.domain.linking` resolves it to a contact and a task.
* A call source (:class:`CallSource`) yields records for a time window and never drops a malformed
  row silently (:class:`MalformedRow`).

Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from salesflow.domain.checks import (
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TEXT_LENGTH,
    check_string,
    optional_text,
    require_text,
)
from salesflow.domain.dates import to_aware_datetime
from salesflow.domain.money import Money
from salesflow.domain.numbers import to_amount
from salesflow.domain.slots import SlotBuilder
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = [
    "CallKey",
    "CallRecord",
    "CallSource",
    "Direction",
    "Disposition",
    "MalformedRow",
    "OnError",
    "RecordingSource",
    "call_id_for",
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


CallKey = tuple[str, str]
"""The idempotency key of a call: ``(source, external_id)``."""

OnError = Literal["raise", "skip"]
"""What a call source does with a malformed row: reject the batch, or skip it and report it."""


# -- field helpers ---------------------------------------------------------------------------------


def _seconds(value: object, field: str, where: str | None = None) -> int:
    if type(value) is not int:
        raise InvalidTypeError(field, value, "whole seconds as an int", where=where)
    if value < 0:
        raise ValidationError(field, value, "zero or more seconds", where=where)
    return value


def _enum(kind: type[enum.StrEnum], value: object, field: str, where: str | None = None) -> Any:
    if isinstance(value, kind):
        return value
    choices = ", ".join(repr(str(m)) for m in kind)
    if not isinstance(value, str):
        raise InvalidTypeError(field, value, f"one of {choices}", where=where)
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(field, value, f"one of {choices}", where=where) from None


def _local_date(moment: datetime, tz: tzinfo | None) -> date:
    return (moment if tz is None else moment.astimezone(tz)).date()


# -- calls -----------------------------------------------------------------------------------------


def call_id_for(source: str, external_id: str) -> str:
    """The default id of a call: ``"<source>:<external_id>"`` (stable across re-fetches)."""
    return f"{source}:{external_id}"


def _default_call_id(call: CallRecord) -> str:
    return call_id_for(call.source, call.external_id)


_ID = MAX_ID_LENGTH
_NAME = MAX_NAME_LENGTH
_TEXT = MAX_TEXT_LENGTH
_OPTIONAL_CALL_TEXT = (
    ("owner", _ID),
    ("recording", _TEXT),
    ("contact_id", _ID),
    ("task_id", _ID),
    ("opportunity_id", _ID),
)


@attrs.frozen(kw_only=True)
class CallRecord:
    """One call as a telephony source reported it, plus the links made when it was imported.

    Required: ``source`` (the source's name), ``external_id`` (the source's id for the call),
    ``direction``, ``from_number``, ``to_number`` (as given by the source, any format; empty when
    withheld), ``started_at`` (aware) and ``disposition``. ``ring_seconds`` and ``talk_seconds`` are
    whole seconds (a call that was not answered has no talk time). ``owner`` is the rep on the call,
    ``recording`` a reference the CRM can play (a URL, a file name), ``price`` what the carrier
    charged as reported (Twilio reports charges as negative amounts). ``contact_id``, ``task_id`` and
    ``opportunity_id`` are the links; :func:`~salesflow.domain.linking.link_call` fills them in.

    Strings are accepted for ``direction``, ``disposition`` (their values) and ``started_at``
    (ISO 8601 with an offset); blank optional strings mean ``None``. Text follows the text rules
    of :mod:`salesflow.domain.checks`: no NUL and no lone surrogate; ``source``, ``external_id``,
    ``id`` (the default one included), ``owner`` and the links at most
    :data:`~salesflow.domain.checks.MAX_ID_LENGTH` characters, the numbers
    :data:`~salesflow.domain.checks.MAX_NAME_LENGTH`, ``recording``
    :data:`~salesflow.domain.checks.MAX_TEXT_LENGTH`.
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
        # _validate() (which converts and names the culprit) only when it fails. Printable text
        # has no NUL and no lone surrogate (checks.check_string is the definition).
        started = self.started_at
        source, external_id, id_ = self.source, self.external_id, self.id
        from_number, to_number = self.from_number, self.to_number
        owner, recording = self.owner, self.recording
        contact_id, task_id, opportunity_id = self.contact_id, self.task_id, self.opportunity_id
        if not (
            type(source) is str
            and source
            and len(source) <= _ID
            and source.isprintable()
            and type(external_id) is str
            and external_id
            and len(external_id) <= _ID
            and external_id.isprintable()
            and type(id_) is str
            and id_
            and len(id_) <= _ID
            and id_.isprintable()
            and type(self.direction) is Direction
            and type(self.disposition) is Disposition
            and type(from_number) is str
            and len(from_number) <= _NAME
            and from_number.isprintable()
            and type(to_number) is str
            and len(to_number) <= _NAME
            and to_number.isprintable()
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
            and (
                owner is None
                or (type(owner) is str and 0 < len(owner) <= _ID and owner.isprintable())
            )
            and (
                recording is None
                or (
                    type(recording) is str
                    and 0 < len(recording) <= _TEXT
                    and recording.isprintable()
                )
            )
            and (
                contact_id is None
                or (
                    type(contact_id) is str
                    and 0 < len(contact_id) <= _ID
                    and contact_id.isprintable()
                )
            )
            and (
                task_id is None
                or (type(task_id) is str and 0 < len(task_id) <= _ID and task_id.isprintable())
            )
            and (
                opportunity_id is None
                or (
                    type(opportunity_id) is str
                    and 0 < len(opportunity_id) <= _ID
                    and opportunity_id.isprintable()
                )
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

        require_text(self.source, "source", _ID, where=where)
        require_text(self.external_id, "external_id", _ID, where=where)
        require_text(self.id, "id", _ID, where=where)
        put("direction", _enum(Direction, self.direction, "direction", where))
        put("disposition", _enum(Disposition, self.disposition, "disposition", where))
        for name in ("from_number", "to_number"):
            check_string(getattr(self, name), name, _NAME, where=where)
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
        for name, limit in _OPTIONAL_CALL_TEXT:
            put(name, optional_text(getattr(self, name), name, limit, where=where))
        if self.price is not None and not isinstance(self.price, Money):
            raise InvalidTypeError("price", self.price, "Money or None", where=where)
        if type(self.version) is not int or self.version < 0:
            raise ValidationError("version", self.version, "an int of zero or more", where=where)

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
        # attrs.evolve, and only the links need checking (a clean id costs one test; anything
        # else goes through optional_text, which converts blanks and words refusals).
        if contact_id is _UNSET and task_id is _UNSET and opportunity_id is _UNSET:
            return self
        values = list(_CALL_VALUES(self))
        if contact_id is not _UNSET:
            if not (contact_id is None or _clean_id(contact_id)):
                contact_id = optional_text(contact_id, "contact_id", _ID, where=f"call {self.id}")
            values[_CONTACT_ID] = contact_id
        if task_id is not _UNSET:
            if not (task_id is None or _clean_id(task_id)):
                task_id = optional_text(task_id, "task_id", _ID, where=f"call {self.id}")
            values[_TASK_ID] = task_id
        if opportunity_id is not _UNSET:
            if not (opportunity_id is None or _clean_id(opportunity_id)):
                opportunity_id = optional_text(
                    opportunity_id, "opportunity_id", _ID, where=f"call {self.id}"
                )
            values[_OPPORTUNITY_ID] = opportunity_id
        return _BUILD_CALL(values)

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
# A builder from checked values and a C-level getter of every field, for CallRecord.with_links.
_BUILD_CALL = SlotBuilder(CallRecord, _CALL_FIELDS)
_CALL_VALUES = operator.attrgetter(*_CALL_FIELDS)
_CONTACT_ID = _CALL_FIELDS.index("contact_id")
_TASK_ID = _CALL_FIELDS.index("task_id")
_OPPORTUNITY_ID = _CALL_FIELDS.index("opportunity_id")


def _clean_id(value: object) -> bool:
    """Whether ``value`` is a link id as stored: a non-blank printable str within the limit."""
    return (
        type(value) is str
        and bool(value)
        and len(value) <= _ID
        and value.isprintable()
        and not value.isspace()
    )


def _source_record(
    source: str,
    external_id: str,
    direction: Direction,
    from_number: str,
    to_number: str,
    started_at: datetime,
    disposition: Disposition,
    owner: str | None,
    ring_seconds: int,
    talk_seconds: int,
    recording: str | None = None,
    contact_id: str | None = None,
    task_id: str | None = None,
    opportunity_id: str | None = None,
) -> CallRecord:
    """``CallRecord(...)`` with these fields and the default id, price and version, for sources
    that build one per row: the same record and the same checks (``__attrs_post_init__``), without
    the generated ``__init__``'s keyword handling and per-field attribute lookups."""
    values = (
        source,
        external_id,
        call_id_for(source, external_id),
        direction,
        from_number,
        to_number,
        started_at,
        disposition,
        owner,
        ring_seconds,
        talk_seconds,
        recording,
        contact_id,
        task_id,
        opportunity_id,
        None,
        0,
    )
    record = _BUILD_CALL(values)
    record.__attrs_post_init__()
    return record


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


@runtime_checkable
class RecordingSource(Protocol):
    """A call source that can fetch the recordings its calls refer to.

    A :class:`CallSource` puts a recording *reference* on each call it knows one for
    (:attr:`CallRecord.recording`: a file in Asterisk's monitor folder, a Twilio recording URL);
    only the reference is stored. :meth:`fetch_recording` turns it back into the audio, through
    the source that wrote it. It is a protocol of its own so that sources written before it
    still are :class:`CallSource` values;
    :class:`~salesflow.adapters.telephony.CallSourceBase` has a default that finds none.
    """

    def fetch_recording(self, reference: str) -> bytes:
        """The recording ``reference`` names, as bytes.

        Raises:
            NotFoundError: the source has no such recording (or no recordings at all).
            ValidationError: ``reference`` is not one this source wrote (e.g. outside its folder).
        """
        ...
