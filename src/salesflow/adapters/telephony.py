"""What every call source shares: the fetch window, ``on_error``, duplicate keys and row reports.

A call source implements the :class:`~salesflow.domain.calls.CallSource` protocol. Subclassing
:class:`CallSourceBase` gives that protocol's common rules for free: implement
:meth:`CallSourceBase.read_calls`, call :meth:`CallSourceBase.report` for each row that cannot
become a :class:`~salesflow.domain.calls.CallRecord`, and the base class

* checks the window (``None`` or aware datetimes, ``since <= until``) and keeps only calls that
  started in ``[since, until)``;
* yields each ``(source, external_id)`` once per fetch: a repeat equal to the first is counted in
  :attr:`CallSourceBase.duplicates` and skipped (the same call listed twice is still one call), a
  repeat that differs is reported as a malformed row;
* offers :data:`MAX_CALL_SECONDS` and :func:`check_seconds`, the bound every builtin source puts
  on a duration (a row beyond it is malformed, like an end before the start);
* with ``on_error="raise"`` reads the whole window first and raises the first problem as a
  :class:`~salesflow.errors.ValidationError` before yielding anything, so an importer that streams
  the records into storage never imports half a batch; with ``on_error="skip"`` streams the good
  records and lists the bad rows in :attr:`CallSourceBase.errors`;
* answers :meth:`CallSourceBase.fetch_recording` (the
  :class:`~salesflow.domain.calls.RecordingSource` protocol) with "no recording" unless the
  subclass can fetch them (Asterisk from its monitor folder, Twilio from its recording URLs).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Final

from salesflow.domain.calls import CallKey, CallRecord, MalformedRow, OnError
from salesflow.errors import InvalidTypeError, NotFoundError, ValidationError

__all__ = ["MAX_CALL_SECONDS", "CallListSource", "CallSourceBase", "check_seconds", "check_window"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._:-]*")

MAX_CALL_SECONDS: Final = 86_400
"""The longest call a source accepts, in seconds (a day). A longer duration, ring time or talk
time is an absurd value (a unit mix-up, a corrupt row), reported as a malformed row."""


def check_seconds(value: object, field: str) -> int:
    """``value`` as whole seconds from 0 to :data:`MAX_CALL_SECONDS`: an ``int``, or a string of
    ASCII digits (surrounding blanks ignored). Anything else (a sign, a fraction, more than a day)
    raises :class:`~salesflow.errors.ValidationError` naming ``field``."""
    expected = f"whole seconds from 0 to {MAX_CALL_SECONDS:,} (a day)"
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise ValidationError(field, value, expected)
        if len(text) > len(str(MAX_CALL_SECONDS)):
            long = f"{text[:20]}... ({len(text)} digits)"
            raise ValidationError(field, text if len(text) <= 40 else long, expected)
        seconds = int(text)
    elif type(value) is int:
        seconds = value
    else:
        raise InvalidTypeError(field, value, expected)
    if not 0 <= seconds <= MAX_CALL_SECONDS:
        # repr() of a huge int is slow, and refused beyond 4,300 digits.
        big = f"an integer of {seconds.bit_length()} bits"
        raise ValidationError(field, value if abs(seconds) < 10**40 else big, expected)
    return seconds


def check_window(since: object, until: object) -> tuple[datetime | None, datetime | None]:
    """Validate a fetch window: each end ``None`` or an aware datetime, and ``since <= until``."""
    for field, value in (("since", since), ("until", until)):
        if value is None:
            continue
        if not isinstance(value, datetime):
            raise InvalidTypeError(field, value, "a timezone-aware datetime or None")
        if value.utcoffset() is None:
            raise ValidationError(
                field, value, "a timezone-aware datetime (naive times are refused)"
            )
    assert since is None or isinstance(since, datetime)
    assert until is None or isinstance(until, datetime)
    if since is not None and until is not None and until < since:
        raise ValidationError("until", until, f"a time at or after since ({since.isoformat()})")
    return since, until


class CallSourceBase(abc.ABC):
    """Base class of call sources (see the module documentation for what it does).

    Subclasses set the class attribute :attr:`name` (a lower-case plugin name) and implement
    :meth:`read_calls`. ``name=`` on the constructor overrides it for one instance, e.g. to tell two
    PBXs apart (``"asterisk-csv:beijing"``), since the name is half of every call's key.
    """

    name: str = ""
    """The source's name: the ``source`` of every record, and half of each call's key."""

    def __init__(self, *, name: str | None = None) -> None:
        chosen = type(self).name if name is None else name
        if not isinstance(chosen, str) or not _NAME.fullmatch(chosen):
            raise ValidationError(
                "name", chosen, "a lower-case name such as 'asterisk-csv' (letters, digits, -._:)"
            )
        self.name = chosen
        self._errors: list[MalformedRow] = []
        self._duplicates = 0

    # -- for subclasses ----------------------------------------------------------------------------

    @abc.abstractmethod
    def read_calls(self, since: datetime | None, until: datetime | None) -> Iterator[CallRecord]:
        """Yield the records of the source, ideally only those that started in ``[since, until)``
        (the base class filters again), and :meth:`report` every row that cannot be read."""

    def report(self, location: str, error: ValidationError, line: int | None = None) -> None:
        """Record a malformed row: where it is (``"Master.csv line 17"``) and what is wrong."""
        self._errors.append(MalformedRow.from_error(self.name, location, error, line))

    def fetch_recording(self, reference: str) -> bytes:
        """The recording ``reference`` names (see
        :class:`~salesflow.domain.calls.RecordingSource`). This default has none: it raises
        :class:`~salesflow.errors.NotFoundError`; sources with recordings override it."""
        raise NotFoundError("recording", reference, f"the source {self.name!r} keeps no recordings")

    # -- the CallSource protocol ---------------------------------------------------------------------

    @property
    def errors(self) -> tuple[MalformedRow, ...]:
        """The malformed rows met by the last fetch, in the order they were met."""
        return tuple(self._errors)

    @property
    def duplicates(self) -> int:
        """How many repeats of an already yielded call (equal records) the last fetch skipped."""
        return self._duplicates

    def fetch(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        on_error: OnError = "raise",
    ) -> Iterator[CallRecord]:
        """The calls that started in ``[since, until)`` (see the module documentation).

        The arguments are checked at once; the source is read when the iterator is first advanced.
        """
        window = check_window(since, until)
        if on_error not in ("raise", "skip"):
            raise ValidationError("on_error", on_error, "'raise' or 'skip'")
        return self._fetch(*window, on_error)

    def _fetch(
        self, since: datetime | None, until: datetime | None, on_error: OnError
    ) -> Iterator[CallRecord]:
        self._errors = []
        self._duplicates = 0
        records = self._checked(since, until, keep=on_error == "raise")
        if on_error == "skip":
            yield from records
            return
        batch = list(records)
        if self._errors:
            first = self._errors[0].to_error()
            count = len(self._errors)
            if count > 1:
                error = ValidationError(
                    first.field,
                    first.value,
                    first.expected,
                    message=(
                        f"{first} (and {count - 1} more malformed rows; none of the batch was "
                        "returned: fix them, or fetch with on_error='skip' and read .errors)"
                    ),
                )
                error.where = first.where
                raise error
            raise first
        yield from batch

    def _checked(
        self, since: datetime | None, until: datetime | None, *, keep: bool = False
    ) -> Iterator[CallRecord]:
        name = self.name
        # A repeated key is told apart from its first record by equality. With ``keep`` (the batch
        # is held in memory anyway) the first record itself is kept, which costs nothing per call;
        # otherwise its hash, so that memory stays one int per call while streaming.
        seen: dict[CallKey, object] = {}
        for record in self.read_calls(since, until):
            if not isinstance(record, CallRecord):
                raise InvalidTypeError("record", record, f"CallRecord values from {name!r}")
            if record.source != name:
                raise ValidationError(
                    "source", record.source, f"{name!r}, the name of the source that read it"
                )
            started = record.started_at
            if (since is not None and started < since) or (until is not None and started >= until):
                continue
            key = (record.source, record.external_id)
            first = seen.get(key)
            if first is None:
                seen[key] = record if keep else hash(record)
                yield record
            elif first == (record if keep else hash(record)):
                self._duplicates += 1
            else:
                self.report(
                    f"call {record.external_id!r}",
                    ValidationError(
                        "external_id",
                        record.external_id,
                        "one record per external id in a fetch (this repeat differs from the first)",
                    ),
                )


class CallListSource(CallSourceBase):
    """A call source over records already built: by a host's own telephony integration, a job that
    reads a format salesflow has no source for, a test.
    ``desk.import_calls(manager, CallListSource(records, name="pbx"))``.

    Every record's ``source`` must be ``name`` (the base class refuses another, as for any
    source); the window, the duplicate rules and ``on_error`` are the base class's. The records
    are kept as given, so every fetch reads the same calls.
    """

    name = "calls"

    def __init__(self, calls: Iterable[CallRecord], *, name: str | None = None) -> None:
        super().__init__(name=name)
        if isinstance(calls, CallRecord) or not isinstance(calls, Iterable):
            raise InvalidTypeError("calls", calls, "an iterable of CallRecord")
        self._calls = tuple(calls)

    def read_calls(self, since: datetime | None, until: datetime | None) -> Iterator[CallRecord]:
        """The records as given (the base class keeps those in the window)."""
        return iter(self._calls)
