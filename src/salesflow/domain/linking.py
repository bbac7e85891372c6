"""Linking calls (R7): each imported call to its contact, its follow-up task and its opportunity.

Rules (pinned by tests):

* Linking (:func:`link_call`) resolves the contact of a call by an explicit contact id, else by the
  counterpart number (any of the contact's numbers, see
  :class:`~salesflow.domain.phones.PhoneDirectory`), else from an explicit task.
* The task of a call: an explicit ``task_id`` wins; otherwise the open task of the call's owner (the
  contact's owner when the call has none) for that contact whose due date is nearest to the call's
  date (ties: the earlier due date, then the smaller id).
* A missed inbound call (not answered) from a known contact that found no task makes a follow-up
  task for the contact's owner (the call's owner when the contact has none), due on the call's date,
  unless that person already has an open task for the contact, which the call then links to.
* An answered call to a known contact that found no task leaves a follow-up task when the linker
  is asked to (``follow_up``, see :data:`~salesflow.domain.tasks.FollowUpMode`; ``"off"`` by
  default here, ``"completed"`` on the desk), for the call's owner (the contact's owner when the
  call has none); with neither, no task is made.
* A call's date is the date of ``started_at`` in its own offset, or in ``tz`` when the linker is
  given one.

Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import tzinfo
from typing import Literal

import attrs

from salesflow.domain.calls import CallRecord, Direction, Disposition
from salesflow.domain.phones import PhoneDirectory
from salesflow.domain.tasks import (
    FollowUpMode,
    FollowUpTask,
    OpenTasks,
    check_follow_up_mode,
    follow_up_for_answered_call,
    follow_up_for_missed_call,
    followup_task_id,
)
from salesflow.errors import InvalidTypeError

__all__ = ["CallLinker", "ContactMatch", "LinkedCall", "link_call"]


ContactMatch = Literal[
    "contact_id",
    "number",
    "task",
    "unknown_number",
    "unparseable_number",
    "company_number",
]
"""How :func:`link_call` found the contact (the first three) or why it found none."""


@attrs.frozen(kw_only=True)
class LinkedCall:
    """What linking made of a call: the call with its links, and the task it created (if any)."""

    call: CallRecord
    """The call with ``contact_id``, ``task_id`` and ``opportunity_id`` filled in where found."""
    contact_match: ContactMatch
    """How the contact was found, or why none was."""
    new_task: FollowUpTask | None = None
    """The follow-up task created for a missed inbound call, or for an answered call with no
    task (``follow_up``): store it with the call."""
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
    follow_up: FollowUpMode = "off",
) -> LinkedCall:
    """Link ``call`` to its contact, task and opportunity (see the module rules). Pure.

    Args:
        call: the call as imported.
        directory: the contacts' numbers.
        tasks: the follow-up tasks to search (an :class:`~salesflow.domain.tasks.OpenTasks`
            index, or any iterable).
        new_task_id: the id of a task created for a missed call (deterministic by default).
        tz: the zone that decides a call's date (the call's own offset when ``None``).
        create_tasks: whether a missed inbound call may create a task.
        follow_up: what an answered call with no task leaves (see
            :data:`~salesflow.domain.tasks.FollowUpMode`).

    Returns the linked call and the new task, if one was created. Nothing passed in is changed; use
    :class:`CallLinker` to link a batch in which a task created for one call serves the next.
    """
    if not isinstance(call, CallRecord):
        raise InvalidTypeError("call", call, "a CallRecord")
    if not isinstance(directory, PhoneDirectory):
        raise InvalidTypeError("directory", directory, "a PhoneDirectory")
    index = tasks if isinstance(tasks, OpenTasks) else OpenTasks(() if tasks is None else tasks)
    mode = check_follow_up_mode(follow_up, "follow_up")
    return _link(call, directory, index, new_task_id, tz, create_tasks, mode)


def _link(
    call: CallRecord,
    directory: PhoneDirectory,
    tasks: OpenTasks,
    new_task_id: Callable[[CallRecord], str],
    tz: tzinfo | None,
    create_tasks: bool,
    follow_up: FollowUpMode = "off",
) -> LinkedCall:
    # The call's properties (counterpart_number, local_date, missed) are inlined: this runs once
    # per imported call.
    contact_id = call.contact_id
    inbound = call.direction is Direction.INBOUND
    match: ContactMatch
    if contact_id is not None:
        match = "contact_id"
    else:
        counterpart = call.from_number if inbound else call.to_number
        contact_id, reason = directory.classify(counterpart, owner=call.owner)
        match = "number" if reason == "matched" else reason
    task: FollowUpTask | None = None
    new_task: FollowUpTask | None = None
    unassigned = False
    if call.task_id is not None:
        task = tasks.get(call.task_id)
        if contact_id is None and task is not None:
            contact_id, match = task.contact_id, "task"
    elif contact_id is not None:
        started = call.started_at
        day = (started if tz is None else started.astimezone(tz)).date()
        contact_owner = directory.owner_of(contact_id) if contact_id in directory else None
        searcher = call.owner or contact_owner
        task = tasks.nearest(searcher, contact_id, day)
        answered = call.disposition is Disposition.ANSWERED
        if task is None and inbound and not answered and create_tasks:
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
        elif task is None and follow_up != "off" and answered and searcher is not None:
            new_task = follow_up_for_answered_call(
                call,
                contact_id=contact_id,
                owner=searcher,
                mode=follow_up,
                task_id=new_task_id(call),
                tz=tz,
            )
            task = new_task
    task_id = call.task_id if call.task_id is not None else (None if task is None else task.id)
    opportunity_id = call.opportunity_id
    if opportunity_id is None and task is not None:
        opportunity_id = task.opportunity_id
    if (
        contact_id == call.contact_id
        and task_id == call.task_id
        and opportunity_id == call.opportunity_id
    ):
        linked = call  # nothing found (an unknown number): no copy to make
    else:
        linked = call.with_links(
            contact_id=contact_id, task_id=task_id, opportunity_id=opportunity_id
        )
    return LinkedCall(call=linked, contact_match=match, new_task=new_task, unassigned=unassigned)


class CallLinker:
    """Links a batch of calls: :func:`link_call` with a task index that learns as it goes.

    A task created for one missed call is found by the next missed call of the same contact, so a
    contact who calls three times while nobody answers gets one follow-up task, not three (an
    open follow-up of an answered call serves the next calls too; a completed one does not). The
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
        follow_up: FollowUpMode = "off",
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
        self._follow_up = check_follow_up_mode(follow_up, "follow_up")

    def link(self, call: CallRecord) -> LinkedCall:
        """Link one call (see :func:`link_call`)."""
        if not isinstance(call, CallRecord):
            raise InvalidTypeError("call", call, "a CallRecord")
        result = _link(
            call,
            self.directory,
            self.tasks,
            self._new_task_id,
            self._tz,
            self._create,
            self._follow_up,
        )
        if result.new_task is not None:
            self.tasks.add(result.new_task)
            self.created_tasks.append(result.new_task)
        return result

    def link_all(self, calls: Iterable[CallRecord]) -> Iterator[LinkedCall]:
        """Link ``calls`` lazily, in order."""
        for call in calls:
            yield self.link(call)
