"""SalesDesk commands and reads for the call centre (R6-R8): contacts, follow-up tasks, call
imports from telephony sources, recordings, the best-call library and call statistics.

Calls always count right: the desk's call statistics equal the pure
:func:`~salesflow.analytics.calls.call_stats` over the same raw calls with a directory of the
current contacts. So the links follow the contacts:

* A contact's numbers are normalised once, when it is stored
  (:class:`~salesflow.domain.contacts.ContactNumber`, ``uow.contact_numbers``); an import reads the
  directory from them and parses only the numbers it has not seen. Contacts stored before (or under
  another default region) are normalised on the first import that meets them, and stored.
* Adding a contact, or giving one a new number, links that contact's earlier uncounted calls (those
  with no contact whose number is one of its numbers) in the same unit of work.
* Removing a number from a contact re-resolves the calls linked to it through that number: to
  another contact that lists the number (the directory's rule for shared numbers), else they are
  unlinked (uncounted again), with the task and opportunity their link brought.
* Each batch is audited: one ``calls_relinked`` event naming the calls linked, moved and unlinked.

A call whose contact came from the source itself (a contact id on the record) is re-resolved like
any other when its number is removed from that contact: salesflow does not store how a link was
made.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

import attrs

from salesflow.analytics.calls import CallStats, call_stats
from salesflow.commands.core import CommandResult, DeskCore
from salesflow.domain.actors import Actor
from salesflow.domain.calls import CallRecord, CallSource, MalformedRow, unique_calls
from salesflow.domain.contacts import Contact, ContactNumber, contact_numbers
from salesflow.domain.events import Event
from salesflow.domain.library import LibraryEntry, feature_call, search_library, unfeature_entry
from salesflow.domain.linking import CallLinker, link_call
from salesflow.domain.periods import Period, PeriodKind
from salesflow.domain.phones import PhoneDirectory
from salesflow.domain.tasks import FollowUpMode, FollowUpTask, TaskStatus, check_follow_up_mode
from salesflow.errors import (
    BackendNotFoundError,
    ConcurrencyError,
    InvalidTypeError,
    NotFoundError,
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
    """Follow-up tasks created: for missed inbound calls from known contacts, and for answered
    calls with no open task (as the desk's ``call_follow_up`` says)."""
    unassigned: tuple[str, ...]
    """Missed calls from known contacts that nobody owns: no task could be made for them."""
    errors: tuple[MalformedRow, ...]
    """Malformed rows the source skipped (with ``on_error="skip"``), with their line numbers."""


@attrs.frozen(kw_only=True)
class _Relink:
    """What a contact change did to the stored calls (audited as a ``calls_relinked`` event)."""

    contact_id: str
    """The contact added or changed."""
    linked: tuple[str, ...] = ()
    """Calls that were uncounted and are now linked to the contact."""
    moved: tuple[tuple[str, str], ...] = ()
    """``(call id, contact id)``: calls linked through a removed number, now linked to another
    contact that lists it."""
    unlinked: tuple[str, ...] = ()
    """Calls linked through a removed number that no contact lists any more: uncounted again."""

    def __bool__(self) -> bool:
        return bool(self.linked or self.moved or self.unlinked)


class CallCommands(DeskCore):
    """The call centre on the desk."""

    # -- contacts and tasks ------------------------------------------------------------------------

    def add_contact(self, actor: Actor, contact: Contact) -> CommandResult[Contact]:
        """Store a new contact (``version`` 0) at version 1 (the actor must be allowed to act for
        its owner), with its numbers normalised, and link its earlier uncounted calls (see the
        module documentation)."""
        if not isinstance(contact, Contact):
            raise InvalidTypeError("contact", contact, "a Contact")
        self.refuse_lifecycle(contact, "contact", version=0)
        self.authorize(actor, "contact.create", contact)

        def work(uow: UnitOfWork, events: list[Event]) -> Contact:
            stored: Contact = uow.contacts.add(attrs.evolve(contact, version=1))
            before = self._store_numbers(uow, stored)
            events.append(self.event("contact_created", "contact", contact.id, actor))
            self._relink(uow, stored, before, actor, events)
            return stored

        return self.run(work)

    def update_contact(self, actor: Actor, contact: Contact) -> CommandResult[Contact]:
        """Store a changed contact (numbers, owner...) read at ``contact.version``; it is stored
        at the next version. A stale copy raises :class:`~salesflow.errors.ConcurrencyError`.

        A changed list of numbers re-links the calls in the same unit of work (see the module
        documentation): calls to a new number count, calls linked through a removed one move to
        another contact listing it or are uncounted again."""
        if not isinstance(contact, Contact):
            raise InvalidTypeError("contact", contact, "a Contact")

        def work(uow: UnitOfWork, events: list[Event]) -> Contact:
            stored: Contact = uow.contacts.get(contact.id)
            self.authorize(actor, "contact.update", stored, after=contact)
            if contact.version != stored.version:
                raise ConcurrencyError("contact", contact.id, contact.version, stored.version)
            saved: Contact = uow.contacts.save(attrs.evolve(contact, version=stored.version + 1))
            before = self._store_numbers(uow, saved, stored)
            events.append(self.event("contact_updated", "contact", contact.id, actor))
            self._relink(uow, saved, before, actor, events)
            return saved

        return self.run(work)

    # -- the stored phone directory ------------------------------------------------------------------

    def _countable(self, numbers: Iterable[str | None]) -> set[str]:
        company = self.phone_settings.company_numbers
        return {n for n in numbers if n is not None and n not in company}

    def _store_numbers(
        self, uow: UnitOfWork, contact: Contact, previous: Contact | None = None
    ) -> set[str]:
        """Write ``contact``'s :class:`ContactNumber` entries (only those that changed); return
        the numbers (E.164) it listed before."""
        old = {entry.id: entry for entry in uow.contact_numbers.query(contact_id=contact.id)}
        region = self.phone_settings.default_region
        if previous is None:
            before: set[str] = set()
        elif len(old) == len(previous.phones) and all(
            e.region == region and e.given == previous.phones[e.position] for e in old.values()
        ):
            before = self._countable(e.number for e in old.values())
        else:  # stored before numbers were kept, or under another default region
            before = self._countable(map(self.phone_settings.normalise, previous.phones))
        self._write_numbers(uow, contact_numbers(contact, self.phone_settings), old)
        return before

    @staticmethod
    def _write_numbers(
        uow: UnitOfWork, entries: list[ContactNumber], old: dict[str, ContactNumber]
    ) -> None:
        fresh = []
        for entry in entries:
            known = old.pop(entry.id, None)
            if known is None:
                fresh.append(entry)
            elif known != entry:
                uow.contact_numbers.save(entry)
        for gone in old:
            uow.contact_numbers.delete(gone)
        if fresh:
            uow.contact_numbers.add_many(fresh)

    def _directory(self, uow: UnitOfWork, *, fill: bool = True) -> PhoneDirectory:
        """The phone directory of the stored contacts, read from their stored numbers; a contact
        whose numbers were not stored (or under another default region, or changed behind the
        desk's back) is normalised once and, with ``fill``, its numbers are stored in ``uow``."""
        settings = self.phone_settings
        region = settings.default_region
        contacts = list(uow.contacts.query())
        # The keys carry the number and a fingerprint of what it was read from: no document is
        # loaded (decoding 60,000 of them would cost as much as parsing the numbers again).
        known: dict[str, str | None] = {}
        for key in uow.contact_numbers.ids():
            number, fingerprint = ContactNumber.split_key(key)
            known[fingerprint] = number
        fingerprint_of = ContactNumber.fingerprint
        normalised: dict[str, list[str | None]] = {}
        for contact in contacts:
            numbers: list[str | None] = []
            for position, raw in enumerate(contact.phones):
                fingerprint = fingerprint_of(contact.id, position, region, raw)
                if fingerprint not in known:
                    break
                numbers.append(known[fingerprint])
            else:
                normalised[contact.id] = numbers
                continue
            if fill:
                old = {e.id: e for e in uow.contact_numbers.query(contact_id=contact.id)}
                renewed = contact_numbers(contact, settings)
                self._write_numbers(uow, renewed, old)
                normalised[contact.id] = [e.number for e in renewed]
        return PhoneDirectory.build(contacts, settings, normalised=normalised)

    def _relink(
        self,
        uow: UnitOfWork,
        contact: Contact,
        before: set[str],
        actor: Actor,
        events: list[Event],
    ) -> _Relink:
        """Re-link the stored calls after ``contact``'s numbers changed from ``before``."""
        settings = self.phone_settings
        entries = contact_numbers(contact, settings)
        now = self._countable(e.number for e in entries)
        added, removed = now - before, before - now
        linked: list[str] = []
        moved: list[tuple[str, str]] = []
        unlinked: list[str] = []
        changed: list[CallRecord] = []
        if added:
            own = PhoneDirectory.build(
                [contact], settings, normalised={contact.id: [e.number for e in entries]}
            )
            tasks = list(uow.tasks.query(contact_id=contact.id, status=TaskStatus.OPEN.value))
            for call in uow.calls.query(contact_id=None):
                if own.normalise(call.counterpart_number) not in added:
                    continue
                result = link_call(call, own, tasks, tz=self.timezone, create_tasks=False)
                if result.counted:
                    changed.append(result.call)
                    linked.append(call.id)
        if removed:
            directory = self._directory(uow)
            for call in uow.calls.query(contact_id=contact.id):
                if directory.normalise(call.counterpart_number) not in removed:
                    continue
                bare = call.with_links(contact_id=None)
                if call.task_id is not None:
                    task = uow.tasks.find(call.task_id)
                    if task is not None and task.contact_id == contact.id:
                        opportunity = call.opportunity_id
                        if opportunity == task.opportunity_id:
                            opportunity = None
                        bare = bare.with_links(task_id=None, opportunity_id=opportunity)
                other, _reason = directory.classify(call.counterpart_number, owner=call.owner)
                if other is None:
                    changed.append(bare)
                    unlinked.append(call.id)
                else:
                    tasks = list(uow.tasks.query(contact_id=other, status=TaskStatus.OPEN.value))
                    result = link_call(bare, directory, tasks, tz=self.timezone, create_tasks=False)
                    changed.append(result.call)
                    moved.append((call.id, other))
        for call in changed:
            uow.calls.save(attrs.evolve(call, version=call.version + 1))
        report = _Relink(
            contact_id=contact.id,
            linked=tuple(linked),
            moved=tuple(moved),
            unlinked=tuple(unlinked),
        )
        if report:
            events.append(
                self.event(
                    "calls_relinked",
                    "contact",
                    contact.id,
                    actor,
                    linked=list(report.linked),
                    moved=[list(pair) for pair in report.moved],
                    unlinked=list(report.unlinked),
                )
            )
        return report

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
        follow_up: FollowUpMode | None = None,
    ) -> CommandResult[CallImport]:
        """Fetch the calls that started in ``[since, until)`` from ``source``, link each to its
        contact (by number) and follow-up task, and store the new ones in one unit of work.

        Importing is idempotent: a call already stored (same source and external id) is counted as
        a duplicate and left alone. A missed inbound call from a known contact creates a follow-up
        task for the contact's owner (unless ``create_tasks`` is false). An answered call to a
        known contact with no open task leaves a task as ``follow_up`` says (the desk's
        ``call_follow_up`` when ``None``: ``"completed"``, ``"open"`` or ``"off"``). A malformed
        row rejects the whole import (``on_error="raise"``) or is skipped and reported with its
        line number (``"skip"``). A call the source links to a contact, task or opportunity that
        is not stored is refused with :class:`~salesflow.errors.ValidationError` naming it, and
        nothing is imported. The directory is read from the contacts' stored numbers (see
        the module documentation); the source is remembered for :meth:`recording`.
        """
        mode = (
            self.call_follow_up
            if follow_up is None
            else check_follow_up_mode(follow_up, "follow_up")
        )
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
            directory = self._directory(uow)
            self._refuse_unknown_links(uow, new, directory)
            linker = CallLinker(
                directory,
                uow.tasks.query(status=TaskStatus.OPEN.value),
                tz=self.timezone,
                create_tasks=create_tasks,
                follow_up=mode,
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
            # A task someone must act on is announced; a done one only records a conversation,
            # so those are counted in the import's event (one event, not one per answered call).
            done = 0
            for task in linker.created_tasks:
                if not task.is_open:
                    done += 1
                    continue
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
                    completed_follow_ups=done,
                )
            )
            return report

        result = self.run(work)
        self._call_sources()[source.name] = source
        return result

    @staticmethod
    def _refuse_unknown_links(
        uow: UnitOfWork, calls: list[CallRecord], directory: PhoneDirectory
    ) -> None:
        """Refuse a call whose source links it to a contact, task or opportunity that is not
        stored: a call counts only when it reached a contact the desk knows (R7)."""

        def stored(field: str, id: str) -> bool:
            if field == "contact_id":
                return id in directory
            found = uow.tasks.find(id) if field == "task_id" else uow.opportunities.find(id)
            return found is not None

        checked: set[tuple[str, str]] = set()
        for call in calls:
            links = (
                ("contact_id", call.contact_id),
                ("task_id", call.task_id),
                ("opportunity_id", call.opportunity_id),
            )
            for field, value in links:
                if value is None or (field, value) in checked:
                    continue
                if not stored(field, value):
                    raise ValidationError(
                        field,
                        value,
                        f"a stored {field.removesuffix('_id')}, or none (the desk links by number)",
                        where=f"call {call.id!r}",
                    )
                checked.add((field, value))

    def _call_sources(self) -> dict[str, CallSource]:
        # The sources this desk imported from, by name: recordings are fetched through them.
        sources: dict[str, CallSource] = self.__dict__.setdefault("_known_call_sources", {})
        return sources

    def recording(self, actor: Actor, call_id: str, *, source: CallSource | None = None) -> bytes:
        """The recording of the stored call ``call_id``, fetched through its source (only the
        reference is stored: a file in Asterisk's monitor folder, a Twilio recording URL).

        ``source`` is the call source to fetch it with (its name must be the call's source);
        by default the source this desk last imported that call's source name from. The actor
        must be allowed to read the call.

        Raises:
            NotAuthorizedError: the actor may not read the call.
            NotFoundError: no such call, the call has no recording, no source is known for it,
                or the source has no such recording.
            ValidationError: ``source`` is not the call's source, or the reference is refused by
                it (e.g. a path out of the monitor folder).
        """
        if not isinstance(actor, Actor):
            raise InvalidTypeError("actor", actor, "an Actor")
        with self.storage.transaction() as uow:
            call: CallRecord = uow.calls.get(call_id)
        self.readable(actor, "call", call)
        if call.recording is None:
            raise NotFoundError("recording", call_id, "the call has no recording")
        chosen = self._call_sources().get(call.source) if source is None else source
        if chosen is None:
            raise NotFoundError(
                "call source",
                call.source,
                "pass source= (the source the call was imported from) to fetch its recording",
            )
        if getattr(chosen, "name", None) != call.source:
            raise ValidationError(
                "source", getattr(chosen, "name", chosen), f"the call's source {call.source!r}"
            )
        fetch = getattr(chosen, "fetch_recording", None)
        if fetch is None:
            raise NotFoundError(
                "recording", call.recording, f"the source {call.source!r} keeps no recordings"
            )
        audio = fetch(call.recording)
        if not isinstance(audio, bytes):
            raise InvalidTypeError("recording", type(audio).__name__, "bytes from the source")
        return audio

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
