"""SalesDesk commands and reads for the call centre (R6-R8): contacts, follow-up tasks, call
imports from telephony sources, the best-call library and call statistics."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

import attrs

from salesflow.analytics.calls import CallStats, call_stats
from salesflow.commands.core import CommandResult, DeskCore
from salesflow.domain.actors import Actor
from salesflow.domain.calls import CallRecord, CallSource, MalformedRow, unique_calls
from salesflow.domain.contacts import Contact
from salesflow.domain.events import Event
from salesflow.domain.library import LibraryEntry, feature_call, search_library, unfeature_entry
from salesflow.domain.linking import CallLinker
from salesflow.domain.periods import Period, PeriodKind
from salesflow.domain.phones import PhoneDirectory
from salesflow.domain.tasks import FollowUpTask, TaskStatus
from salesflow.errors import (
    BackendNotFoundError,
    ConcurrencyError,
    InvalidTypeError,
    ValidationError,
)
from salesflow.plugins.manager import call_source_types
from salesflow.ports import Between, UnitOfWork

__all__ = ["CallCommands", "CallImport"]


@attrs.frozen(kw_only=True)
class CallImport:
    """What an import of calls did. Nothing fetched is unaccounted for:
    ``fetched == imported + duplicates`` and ``imported == counted + uncounted``."""

    source: str
    """The source's name."""
    fetched: int
    """Calls the source yielded in the window."""
    imported: int
    """New calls stored."""
    duplicates: int
    """Calls already stored (same source and external id): imported before, left as they were."""
    counted: int
    """New calls linked to a known contact (they count in the statistics, R7)."""
    uncounted: int
    """New calls to or from numbers no contact has."""
    tasks_created: tuple[str, ...]
    """Follow-up tasks created for missed inbound calls from known contacts."""
    unassigned: tuple[str, ...]
    """Missed calls from known contacts that nobody owns: no task could be made for them."""
    errors: tuple[MalformedRow, ...]
    """Malformed rows the source skipped (with ``on_error="skip"``), with their line numbers."""


class CallCommands(DeskCore):
    """The call centre on the desk."""

    # -- contacts and tasks ------------------------------------------------------------------------

    def add_contact(self, actor: Actor, contact: Contact) -> CommandResult[Contact]:
        """Store a new contact (``version`` 0) at version 1 (the actor must be allowed to act for
        its owner)."""
        if not isinstance(contact, Contact):
            raise InvalidTypeError("contact", contact, "a Contact")
        self.refuse_lifecycle(contact, "contact", version=0)
        self.authorize(actor, "contact.create", contact)

        def work(uow: UnitOfWork, events: list[Event]) -> Contact:
            stored: Contact = uow.contacts.add(attrs.evolve(contact, version=1))
            events.append(self.event("contact_created", "contact", contact.id, actor))
            return stored

        return self.run(work)

    def update_contact(self, actor: Actor, contact: Contact) -> CommandResult[Contact]:
        """Store a changed contact (numbers, owner...) read at ``contact.version``; it is stored
        at the next version. A stale copy raises :class:`~salesflow.errors.ConcurrencyError`."""
        if not isinstance(contact, Contact):
            raise InvalidTypeError("contact", contact, "a Contact")

        def work(uow: UnitOfWork, events: list[Event]) -> Contact:
            stored: Contact = uow.contacts.get(contact.id)
            self.authorize(actor, "contact.update", stored, after=contact)
            if contact.version != stored.version:
                raise ConcurrencyError("contact", contact.id, contact.version, stored.version)
            saved: Contact = uow.contacts.save(attrs.evolve(contact, version=stored.version + 1))
            events.append(self.event("contact_updated", "contact", contact.id, actor))
            return saved

        return self.run(work)

    def add_task(self, actor: Actor, task: FollowUpTask) -> CommandResult[FollowUpTask]:
        """Store a new open follow-up task (``version`` 0) at version 1."""
        if not isinstance(task, FollowUpTask):
            raise InvalidTypeError("task", task, "a FollowUpTask")
        self.refuse_lifecycle(task, "task", version=0, status=TaskStatus.OPEN, closed_at=None)
        self.authorize(actor, "task.create", task)

        def work(uow: UnitOfWork, events: list[Event]) -> FollowUpTask:
            uow.contacts.get(task.contact_id)  # the task must follow up a known contact
            stored: FollowUpTask = uow.tasks.add(attrs.evolve(task, version=1))
            events.append(self.event("task_created", "task", task.id, actor, owner=task.owner))
            return stored

        return self.run(work)

    def complete_task(
        self,
        actor: Actor,
        task_id: str,
        *,
        note: str | None = None,
        cancel: bool = False,
        version: int | None = None,
    ) -> CommandResult[FollowUpTask]:
        """Close a follow-up task now: done (or cancelled with ``cancel=True``), with a note. With
        ``version`` the task must still be the version the actor saw."""

        def work(uow: UnitOfWork, events: list[Event]) -> FollowUpTask:
            task: FollowUpTask = uow.tasks.get(task_id)
            self.authorize(actor, "task.complete", task)
            if version is not None and version != task.version:
                raise ConcurrencyError("task", task_id, version, task.version)
            closed = (
                task.cancel(self.now(), note=note)
                if cancel
                else task.complete(self.now(), note=note)
            )
            closed = attrs.evolve(closed, version=task.version + 1)
            uow.tasks.save(closed)
            name = "task_cancelled" if cancel else "task_completed"
            events.append(self.event(name, "task", task_id, actor, owner=task.owner))
            return closed

        return self.run(work)

    # -- calls ----------------------------------------------------------------------------------------

    def call_source(self, name: str, **options: Any) -> CallSource:
        """Build the registered call source ``name`` (``asterisk-csv``, ``twilio-json``, or a
        plugin's) with ``options``."""
        types = call_source_types(self.plugins)
        if name not in types:
            raise BackendNotFoundError(name, list(types), kind="call source")
        source: CallSource = types[name].factory(**options)
        return source

    def import_calls(
        self,
        actor: Actor,
        source: CallSource,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        on_error: Literal["raise", "skip"] = "raise",
        create_tasks: bool = True,
    ) -> CommandResult[CallImport]:
        """Fetch the calls that started in ``[since, until)`` from ``source``, link each to its
        contact (by number) and follow-up task, and store the new ones in one unit of work.

        Importing is idempotent: a call already stored (same source and external id) is counted as
        a duplicate and left alone. A missed inbound call from a known contact creates a follow-up
        task for the contact's owner. A malformed row rejects the whole import
        (``on_error="raise"``) or is skipped and reported with its line number (``"skip"``).
        """
        if not hasattr(source, "fetch") or not isinstance(getattr(source, "name", None), str):
            raise InvalidTypeError(
                "source", source, "a call source (see salesflow.ports.CallSource)"
            )
        self.authorize(actor, "call.import", source)
        fetched = list(unique_calls(source.fetch(since, until, on_error=on_error)))
        errors = tuple(source.errors)

        def work(uow: UnitOfWork, events: list[Event]) -> CallImport:
            # A call already stored started at the same moment: look only from the earliest one on.
            earliest = min((c.started_at for c in fetched), default=None)
            window = Between(earliest, None)
            stored = set(uow.calls.ids(source=source.name, started_at=window)) if fetched else set()
            new = [c for c in fetched if c.id not in stored]
            directory = PhoneDirectory.build(uow.contacts.query(), self.phone_settings)
            linker = CallLinker(
                directory,
                uow.tasks.query(status=TaskStatus.OPEN.value),
                tz=self.timezone,
                create_tasks=create_tasks,
            )
            linked = list(linker.link_all(new))
            uow.calls.add_many(item.call for item in linked)
            uow.tasks.add_many(linker.created_tasks)
            report = CallImport(
                source=source.name,
                fetched=len(fetched),
                imported=len(new),
                duplicates=len(fetched) - len(new),
                counted=sum(1 for item in linked if item.counted),
                uncounted=sum(1 for item in linked if not item.counted),
                tasks_created=tuple(task.id for task in linker.created_tasks),
                unassigned=tuple(item.call.id for item in linked if item.unassigned),
                errors=errors,
            )
            for task in linker.created_tasks:
                events.append(
                    self.event(
                        "task_created", "task", task.id, actor, owner=task.owner, call=task.call_id
                    )
                )
            events.append(
                self.event(
                    "calls_imported",
                    "call",
                    source.name,
                    actor,
                    imported=report.imported,
                    duplicates=report.duplicates,
                    counted=report.counted,
                    uncounted=report.uncounted,
                    skipped_rows=len(errors),
                )
            )
            return report

        return self.run(work)

    # -- the best-call library (R8) --------------------------------------------------------------------

    def feature_call(
        self,
        actor: Actor,
        call_id: str,
        *,
        industry: str | None = None,
        region: str | None = None,
        tags: Iterable[str] = (),
        note: str | None = None,
    ) -> CommandResult[LibraryEntry]:
        """File an answered, recorded call in the best-call library, by industry, region and tags
        (they default to the contact's industry and region)."""

        def work(uow: UnitOfWork, events: list[Event]) -> LibraryEntry:
            call: CallRecord = uow.calls.get(call_id)
            self.authorize(actor, "library.feature", call)
            if uow.library.find(call_id) is not None:
                raise ValidationError("call_id", call_id, "a call not in the library yet")
            contact = None if call.contact_id is None else uow.contacts.find(call.contact_id)
            entry = feature_call(
                call,
                curated_by=actor,
                at=self.now(),
                industry=industry,
                region=region,
                tags=tags,
                note=note,
                contact=contact,
            )
            uow.library.add(entry)
            events.append(
                self.event(
                    "call_featured",
                    "call",
                    call_id,
                    actor,
                    industry=entry.industry,
                    region=entry.region,
                    tags=sorted(entry.tags),
                )
            )
            return entry

        return self.run(work)

    def unfeature_call(
        self, actor: Actor, call_id: str, *, reason: str
    ) -> CommandResult[LibraryEntry]:
        """Take a call out of the library; the event log keeps who, when, why and the entry."""

        def work(uow: UnitOfWork, events: list[Event]) -> LibraryEntry:
            entry: LibraryEntry = uow.library.get(call_id)
            self.authorize(actor, "library.unfeature", entry)
            record = unfeature_entry(entry, by=actor, at=self.now(), reason=reason)
            uow.library.delete(call_id)
            events.append(
                self.event(
                    "call_unfeatured",
                    "call",
                    call_id,
                    actor,
                    reason=record.reason,
                    entry={
                        "curated_by": entry.curated_by,
                        "curated_at": entry.curated_at.isoformat(),
                        "industry": entry.industry,
                        "region": entry.region,
                        "tags": sorted(entry.tags),
                        "note": entry.note,
                    },
                )
            )
            return entry

        return self.run(work)

    # -- reads ------------------------------------------------------------------------------------------

    def contacts(self, *, actor: Actor | None = None, **filters: Any) -> list[Contact]:
        """Stored contacts matching ``filters`` (``owner``, ``account``); with ``actor``, only
        those the actor may read."""
        with self.storage.transaction() as uow:
            return list(self.visible(actor, "contact", uow.contacts.query(**filters)))

    def tasks(self, *, actor: Actor | None = None, **filters: Any) -> list[FollowUpTask]:
        """Stored follow-up tasks matching ``filters`` (``owner``, ``contact_id``, ``status``,
        ``due``), by due date; with ``actor``, only those the actor may read."""
        with self.storage.transaction() as uow:
            return list(self.visible(actor, "task", uow.tasks.query(order_by="due", **filters)))

    def calls(self, *, actor: Actor | None = None, **filters: Any) -> list[CallRecord]:
        """Stored calls matching ``filters`` (``owner``, ``source``, ``contact_id``, ``started_at``
        as a :class:`~salesflow.ports.Between`), oldest first; with ``actor``, only those the
        actor may read."""
        with self.storage.transaction() as uow:
            calls = uow.calls.query(order_by="started_at", **filters)
            return list(self.visible(actor, "call", calls))

    def library(
        self, *, industry: str | None = None, region: str | None = None, tags: Iterable[str] = ()
    ) -> list[LibraryEntry]:
        """Best calls in ``industry`` and ``region`` carrying every tag in ``tags``, newest first."""
        with self.storage.transaction() as uow:
            return search_library(uow.library.query(), industry=industry, region=region, tags=tags)

    def call_stats(
        self,
        *,
        by: str | tuple[str, ...] = ("owner",),
        period: Period | PeriodKind | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: Actor | None = None,
    ) -> CallStats:
        """Call counts and talk time of the stored calls that started in ``[since, until)`` (and
        that ``actor`` may read, if given), counting only calls to known contacts and showing the
        others separately (R7)."""
        with self.storage.transaction() as uow:
            calls = (
                uow.calls.query()
                if since is None and until is None
                else uow.calls.query(started_at=Between(since, until))
            )
            visible = self.visible(actor, "call", calls)
            return call_stats(visible, by=by, period=period, tz=self.timezone)
