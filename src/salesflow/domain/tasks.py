"""Follow-up tasks (跟进任务, R7): a rep must get back to a contact by a date.

Rules (pinned by tests):

* Follow-up tasks have business **dates** as due dates (a ``datetime.date``, like every business
  date in salesflow). A task is created open and ends once, as done or cancelled.
* A missed inbound call (not answered) makes a follow-up task
  (:func:`follow_up_for_missed_call`) due on the call's date: its id is deterministic
  (:func:`followup_task_id`), so importing the same call again cannot make a second one.
* An answered call to a known contact that found no open task leaves a trace, as the desk is
  configured (:data:`FollowUpMode`): nothing (``"off"``), a task already done at the end of the
  call (``"completed"``, the desk's default) or an open task for the next step due on the call's
  date (``"open"``); :func:`follow_up_for_answered_call` makes it, with the same deterministic id.
* :class:`OpenTasks` indexes tasks for linking: the open task of a rep for a contact whose due date
  is nearest to a call's date (ties: the earlier due date, then the smaller id).

Everything here is pure: no I/O, no clock. "Now" is always a parameter (``at=``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, tzinfo
from typing import Any, Literal

import attrs

from salesflow.domain.calls import CallRecord
from salesflow.domain.checks import (
    MAX_TEXT_LENGTH,
    as_date,
    as_enum,
    as_optional_datetime,
    as_optional_id,
    as_optional_text,
    check_count,
    check_id,
    optional_text,
)
from salesflow.domain.dates import to_aware_datetime
from salesflow.errors import InvalidTypeError, TransitionNotAllowedError, ValidationError

__all__ = [
    "FOLLOW_UP_MODES",
    "FollowUpMode",
    "FollowUpTask",
    "OpenTasks",
    "TaskStatus",
    "check_follow_up_mode",
    "follow_up_for_answered_call",
    "follow_up_for_missed_call",
    "followup_task_id",
]


FollowUpMode = Literal["off", "completed", "open"]
"""What an answered call to a known contact with no open task leaves: nothing (``"off"``), a
completed task recording the conversation (``"completed"``), or an open task for the next step
(``"open"``)."""

FOLLOW_UP_MODES: tuple[FollowUpMode, ...] = ("off", "completed", "open")
"""Every :data:`FollowUpMode`, in order."""


def check_follow_up_mode(value: object, field: str = "call_follow_up") -> FollowUpMode:
    """``value`` if it is a :data:`FollowUpMode`, else :class:`~salesflow.errors.ValidationError`
    naming ``field``."""
    if not isinstance(value, str) or value not in FOLLOW_UP_MODES:
        raise ValidationError(field, value, "one of 'off', 'completed', 'open'")
    mode: FollowUpMode = value
    return mode


class TaskStatus(enum.StrEnum):
    """A follow-up task is open until it is done or cancelled (both final)."""

    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


@attrs.frozen(kw_only=True)
class FollowUpTask:
    """A follow-up task (跟进任务): a rep (``owner``) must get back to a contact by ``due``.

    ``due`` is a business date (``datetime.date``). A task is created open (:meth:`create`, or
    :func:`follow_up_for_missed_call`) and ends once, as done (:meth:`complete`) or cancelled
    (:meth:`cancel`); ``closed_at`` says when. ``call_id`` names the missed call that created it.
    """

    id: str = attrs.field(validator=check_id)
    owner: str = attrs.field(validator=check_id)
    contact_id: str = attrs.field(validator=check_id)
    due: date = attrs.field(converter=as_date)
    status: TaskStatus = attrs.field(
        default=TaskStatus.OPEN, converter=as_enum, metadata={"enum": TaskStatus}
    )
    opportunity_id: str | None = attrs.field(default=None, converter=as_optional_id)
    subject: str | None = attrs.field(default=None, converter=as_optional_text)
    note: str | None = attrs.field(default=None, converter=as_optional_text)
    created_at: datetime | None = attrs.field(default=None, converter=as_optional_datetime)
    closed_at: datetime | None = attrs.field(default=None, converter=as_optional_datetime)
    call_id: str | None = attrs.field(default=None, converter=as_optional_id)
    version: int = attrs.field(default=0, validator=check_count)

    def __attrs_post_init__(self) -> None:
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
            self,
            status=status,
            closed_at=moment,
            note=optional_text(note, "note", MAX_TEXT_LENGTH) or self.note,
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


def follow_up_for_answered_call(
    call: CallRecord,
    *,
    contact_id: str,
    owner: str,
    mode: FollowUpMode = "completed",
    task_id: str | None = None,
    tz: tzinfo | None = None,
) -> FollowUpTask:
    """The task an answered call with no open task leaves (see :data:`FollowUpMode`).

    ``"completed"``: done at the end of the call (created at its start), so the conversation shows
    in ``owner``'s follow-up work; ``"open"``: an open task for the next step, due on the call's
    date (in ``tz``, else the call's own offset). Both name the call and carry its opportunity;
    ``task_id`` defaults to :func:`followup_task_id`. Raises
    :class:`~salesflow.errors.ValidationError` when the call was not answered or ``mode`` is not
    ``"completed"`` or ``"open"``.
    """
    if not isinstance(call, CallRecord):
        raise InvalidTypeError("call", call, "a CallRecord")
    if not call.answered:
        raise ValidationError("call", call.id, f"an answered call (this one is {call.disposition})")
    if check_follow_up_mode(mode, "mode") == "off":
        raise ValidationError("mode", mode, "'completed' or 'open'")
    number = call.counterpart_number or "a withheld number"
    day = call.local_date(tz)
    subject = (
        f"Call with {number} on {day.isoformat()}"
        if mode == "completed"
        else f"Next step after the call with {number} on {day.isoformat()}"
    )
    done = mode == "completed"
    # One construction, not create() then complete(): an import makes one per answered call.
    return FollowUpTask(
        id=followup_task_id(call) if task_id is None else task_id,
        owner=owner,
        contact_id=contact_id,
        due=day,
        status=TaskStatus.DONE if done else TaskStatus.OPEN,
        opportunity_id=call.opportunity_id,
        subject=subject,
        created_at=call.started_at,
        closed_at=call.ended_at if done else None,
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
