"""The in-memory backend (``memory://``): the reference model every other backend is checked against.

It keeps aggregates in dicts and makes transactions real with an undo journal: every write records
how to undo itself, a failed unit of work replays the journal backwards, and a nested unit of work
is a savepoint (a position in the journal). One lock serialises units of work across threads.
Nothing survives the process.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import attrs

from salesflow.adapters.kinds import DocumentKind, kind_of
from salesflow.analytics.forecast import Forecast, forecast
from salesflow.domain.events import Event
from salesflow.domain.money import RateSource
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import StagePlan
from salesflow.errors import ConcurrencyError, InvalidTypeError, NotFoundError, ValidationError
from salesflow.plugins.hookspecs import StorageBackend, hookimpl
from salesflow.ports import Between

__all__ = ["MemoryStorage", "salesflow_register_storage_backends"]

_MISSING: Any = object()
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _matches(value: str | None, wanted: str | Sequence[str] | None) -> bool:
    if wanted is None:
        return True
    if isinstance(wanted, str):
        return value == wanted
    return value in wanted


def check_new(kind: str, aggregate: Any) -> None:
    """Refuse to add an aggregate that claims to be stored already (version other than 0)."""
    if aggregate.version != 0:
        raise ValidationError(
            "version", aggregate.version, f"0 for a new {kind} (use save() to change a stored one)"
        )


def check_history(stored: Opportunity, new: Opportunity) -> None:
    """Refuse a save that rewrites an opportunity's stored stage history (it may only grow)."""
    kept = new.history[: len(stored.history)]
    if len(new.history) < len(stored.history) or kept != stored.history:
        raise ValidationError(
            "history",
            len(new.history),
            f"the stored {len(stored.history)} stage changes of {new.id!r}, unchanged, plus new ones",
        )


def check_forward(record: str, field: str, now: datetime, last: datetime | None) -> None:
    """Refuse a write stamped ``now`` on ``record`` (``"opportunity 'op-1'"``) if ``now`` is before
    ``last``, the latest time stored for that record: its ``updated_at`` and its events never go
    back (see :mod:`salesflow.ports`). Raises :class:`~salesflow.errors.ValidationError` on
    ``field`` (``"clock"`` for ``updated_at``, ``"at"`` for an event)."""
    if last is not None and now < last:
        raise ValidationError(
            field,
            now,
            f"a time at or after {last.isoformat()}, the latest time stored for {record}: the "
            f"clock reads {now.isoformat()}, behind the record, so nothing was changed (a "
            "record's time only moves forward; set the clock right and try again)",
            where=record,
        )


def opportunity_filter(
    owner: str | Sequence[str] | None,
    team: str | Sequence[str] | None,
    stage: str | Sequence[str] | None,
    close_from: date | None,
    close_until: date | None,
    updated_since: datetime | None,
) -> None:
    """Validate the filters of an opportunity query."""
    for name, value in (("close_from", close_from), ("close_until", close_until)):
        if value is not None and type(value) is not date:
            raise InvalidTypeError(name, value, "a date")
    if updated_since is not None and (
        not isinstance(updated_since, datetime) or updated_since.utcoffset() is None
    ):
        raise InvalidTypeError("updated_since", updated_since, "a timezone-aware datetime")
    for name, wanted in (("owner", owner), ("team", team), ("stage", stage)):
        if wanted is not None and not isinstance(wanted, str | list | tuple | set | frozenset):
            raise InvalidTypeError(name, wanted, "a string or a sequence of strings")


class _Journal:
    """Undo records: (undo function) in the order the writes happened."""

    def __init__(self) -> None:
        self.undo: list[Callable[[], None]] = []
        self.callbacks: list[Callable[[], None]] = []

    def rollback_to(self, mark: int) -> None:
        while len(self.undo) > mark:
            self.undo.pop()()


class MemoryOpportunities:
    """The opportunity repository of :class:`MemoryStorage`."""

    def __init__(self, storage: MemoryStorage) -> None:
        self._storage = storage

    def _write(self, opportunity: Opportunity, now: datetime | None = None) -> None:
        storage = self._storage
        previous = storage._opportunities.get(opportunity.id, _MISSING)
        previous_time = storage._updated.get(opportunity.id, _MISSING)
        storage._opportunities[opportunity.id] = opportunity
        storage._updated[opportunity.id] = storage._clock() if now is None else now

        def undo() -> None:
            for table, value in (
                (storage._opportunities, previous),
                (storage._updated, previous_time),
            ):
                if value is _MISSING:
                    table.pop(opportunity.id, None)
                else:
                    table[opportunity.id] = value

        storage._journal().undo.append(undo)

    def get(self, id: str) -> Opportunity:
        """The opportunity ``id``; :class:`~salesflow.errors.NotFoundError` if there is none."""
        found = self.find(id)
        if found is None:
            raise NotFoundError("opportunity", id)
        return found

    def find(self, id: str) -> Opportunity | None:
        """The opportunity ``id``, or ``None``."""
        return self._storage._opportunities.get(id)

    def add(self, opportunity: Opportunity) -> Opportunity:
        """Store a new opportunity at version 1."""
        if not isinstance(opportunity, Opportunity):
            raise InvalidTypeError("opportunity", opportunity, "an Opportunity")
        check_new("opportunity", opportunity)
        stored = self._storage._opportunities.get(opportunity.id)
        if stored is not None:
            raise ConcurrencyError("opportunity", opportunity.id, 0, stored.version)
        new = attrs.evolve(opportunity, version=1)
        self._write(new)
        return new

    def add_many(self, opportunities: Iterable[Opportunity], *, batch_size: int = 10_000) -> int:
        """Store many new opportunities; return how many."""
        count = 0
        for opportunity in opportunities:
            self.add(opportunity)
            count += 1
        return count

    def save(self, opportunity: Opportunity) -> Opportunity:
        """Store a change if the stored version is still ``opportunity.version``."""
        if not isinstance(opportunity, Opportunity):
            raise InvalidTypeError("opportunity", opportunity, "an Opportunity")
        stored = self._storage._opportunities.get(opportunity.id)
        if stored is None or stored.version != opportunity.version:
            raise ConcurrencyError(
                "opportunity",
                opportunity.id,
                opportunity.version,
                None if stored is None else stored.version,
            )
        check_history(stored, opportunity)
        now = self._storage._clock()
        record = f"opportunity {opportunity.id!r}"
        check_forward(record, "clock", now, self._storage._updated.get(opportunity.id))
        new = attrs.evolve(opportunity, version=opportunity.version + 1)
        self._write(new, now)
        return new

    def delete(self, id: str, *, version: int) -> None:
        """Delete opportunity ``id`` if it is still at ``version``."""
        storage = self._storage
        stored = storage._opportunities.get(id)
        if stored is None or stored.version != version:
            raise ConcurrencyError(
                "opportunity", id, version, None if stored is None else stored.version
            )
        previous_time = storage._updated.pop(id)
        del storage._opportunities[id]

        def undo() -> None:
            storage._opportunities[id] = stored
            storage._updated[id] = previous_time

        storage._journal().undo.append(undo)

    def query(
        self,
        *,
        owner: str | Sequence[str] | None = None,
        team: str | Sequence[str] | None = None,
        stage: str | Sequence[str] | None = None,
        close_from: date | None = None,
        close_until: date | None = None,
        updated_since: datetime | None = None,
    ) -> Iterator[Opportunity]:
        """Stream matching opportunities, ordered by id."""
        opportunity_filter(owner, team, stage, close_from, close_until, updated_since)
        updated = self._storage._updated
        for id in sorted(self._storage._opportunities):
            o = self._storage._opportunities[id]
            if not (
                _matches(o.owner, owner) and _matches(o.team, team) and _matches(o.stage, stage)
            ):
                continue
            if close_from is not None and (
                o.expected_close is None or o.expected_close < close_from
            ):
                continue
            if close_until is not None and (
                o.expected_close is None or o.expected_close > close_until
            ):
                continue
            if updated_since is not None and not updated[id] > updated_since:
                continue
            yield o

    def count(self, **filters: Any) -> int:
        """How many opportunities match the filters of :meth:`query`."""
        return sum(1 for _ in self.query(**filters))

    def forecast(
        self,
        plan: StagePlan,
        *,
        as_of: date,
        threshold: Decimal | int | str | None = None,
        by: Sequence[str] | str = ("owner",),
        fiscal_year_start: int = 1,
        rates: RateSource | None = None,
        currency: str | None = None,
    ) -> Forecast:
        """The pure calculator over every stored opportunity (the reference result)."""
        return forecast(
            list(self.query()),
            plan,
            as_of=as_of,
            threshold=threshold,
            by=by,
            fiscal_year_start=fiscal_year_start,
            rates=rates,
            currency=currency,
        )


class MemoryEvents:
    """The append-only event log of :class:`MemoryStorage`."""

    def __init__(self, storage: MemoryStorage) -> None:
        self._storage = storage

    def append(self, event: Event) -> Event:
        """Store ``event`` with the next sequence number."""
        if not isinstance(event, Event):
            raise InvalidTypeError("event", event, "an Event")
        storage = self._storage
        subject = (event.subject_kind, event.subject_id)
        last = storage._last_event_at.get(subject)
        check_forward(f"{event.subject_kind} {event.subject_id!r}", "at", event.at, last)
        stored = attrs.evolve(event, seq=next(storage._sequence))
        storage._events.append(stored)
        storage._last_event_at[subject] = event.at if last is None else max(last, event.at)

        def undo() -> None:
            storage._events.pop()  # undo runs newest first: this event is the last one
            if last is None:
                del storage._last_event_at[subject]
            else:
                storage._last_event_at[subject] = last

        storage._journal().undo.append(undo)
        return stored

    def query(
        self,
        *,
        subject_kind: str | None = None,
        subject_id: str | None = None,
        name: str | None = None,
        after: int | None = None,
    ) -> Iterator[Event]:
        """Stream stored events in sequence order."""
        for event in list(self._storage._events):
            assert event.seq is not None
            if after is not None and event.seq <= after:
                continue
            if subject_kind is not None and event.subject_kind != subject_kind:
                continue
            if subject_id is not None and event.subject_id != subject_id:
                continue
            if name is not None and event.name != name:
                continue
            yield event


def check_filters(kind: DocumentKind, filters: dict[str, Any], order_by: str | None = None) -> None:
    """Refuse filters (or an order) on fields the kind does not index."""
    names = {index.name for index in kind.indexes}
    unknown = sorted(set(filters) - names)
    if unknown:
        raise ValidationError(
            "filters", unknown, f"fields a {kind.name} is indexed by: {sorted(names)}"
        )
    if order_by is not None and order_by not in names:
        raise ValidationError("order_by", order_by, f"one of {sorted(names)}")


def _wanted(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, Between):
        return wanted.matches(value)
    if isinstance(wanted, list | tuple | set | frozenset):
        return value in wanted
    return bool(value == wanted)


class MemoryDocuments:
    """A document repository of :class:`MemoryStorage` (one kind)."""

    def __init__(
        self, storage: MemoryStorage, kind: DocumentKind, revisions: dict[tuple[str, str], int]
    ) -> None:
        self._storage = storage
        self._kind = kind
        self._table = storage._documents.setdefault(kind.attribute, {})
        self._cls = kind.load_type()
        self._seen = revisions  # (kind, id) -> revision read in this unit of work

    def _check(self, item: Any) -> str:
        if not isinstance(item, self._cls):
            raise InvalidTypeError(self._kind.name, item, f"a {self._cls.__name__}")
        return self._kind.key(item)

    def _write(self, key: str, row: tuple[int, Any, datetime] | None) -> None:
        table = self._table
        previous = table.get(key, _MISSING)
        if row is None:
            del table[key]
        else:
            table[key] = row

        def undo() -> None:
            if previous is _MISSING:
                table.pop(key, None)
            else:
                table[key] = previous

        self._storage._journal().undo.append(undo)

    def _unique_clash(self, item: Any, key: str) -> str | None:
        for names in self._kind.unique:
            values = [self._kind.index(n).value(item) for n in names]
            for other_key, (_rev, other, _at) in self._table.items():
                if other_key != key and [self._kind.index(n).value(other) for n in names] == values:
                    return other_key
        return None

    def find(self, id: str) -> Any:
        """The aggregate ``id``, or ``None``."""
        row = self._table.get(id)
        if row is None:
            return None
        self._seen[(self._kind.attribute, id)] = row[0]
        return row[1]

    def get(self, id: str) -> Any:
        """The aggregate ``id``; :class:`~salesflow.errors.NotFoundError` if there is none."""
        found = self.find(id)
        if found is None:
            raise NotFoundError(self._kind.name, id)
        return found

    def add(self, item: Any) -> Any:
        """Store a new aggregate at revision 1."""
        key = self._check(item)
        stored = self._table.get(key)
        clash = key if stored is not None else self._unique_clash(item, key)
        if clash is not None:
            raise ConcurrencyError(self._kind.name, clash, 0, self._table[clash][0])
        self._write(key, (1, item, self._storage._clock()))
        self._seen[(self._kind.attribute, key)] = 1
        return item

    def add_many(self, items: Iterable[Any], *, batch_size: int = 5_000) -> int:
        """Store many new aggregates; return how many."""
        count = 0
        for item in items:
            self.add(item)
            count += 1
        return count

    def _expected(self, key: str) -> int:
        expected = self._seen.get((self._kind.attribute, key))
        if expected is None:
            raise ValidationError(
                self._kind.name,
                key,
                "an aggregate read in this unit of work (get it before saving)",
            )
        return expected

    def save(self, item: Any) -> Any:
        """Store a change if the stored revision is still the one read."""
        key = self._check(item)
        expected = self._expected(key)
        stored = self._table.get(key)
        if stored is None or stored[0] != expected:
            raise ConcurrencyError(
                self._kind.name, key, expected, None if stored is None else stored[0]
            )
        clash = self._unique_clash(item, key)
        if clash is not None:
            raise ConcurrencyError(self._kind.name, clash, 0, self._table[clash][0])
        self._write(key, (expected + 1, item, self._storage._clock()))
        self._seen[(self._kind.attribute, key)] = expected + 1
        return item

    def delete(self, id: str) -> None:
        """Delete an aggregate read in this unit of work, if nobody saved it since."""
        expected = self._expected(id)
        stored = self._table.get(id)
        if stored is None or stored[0] != expected:
            raise ConcurrencyError(
                self._kind.name, id, expected, None if stored is None else stored[0]
            )
        self._write(id, None)
        del self._seen[(self._kind.attribute, id)]

    def query(self, *, order_by: str | None = None, **filters: Any) -> Iterator[Any]:
        """Stream the aggregates matching ``filters`` (see the port)."""
        check_filters(self._kind, filters, order_by)
        indexes = {name: self._kind.index(name) for name in filters}
        rows = [
            (key, revision, item)
            for key, (revision, item, _at) in self._table.items()
            if all(_wanted(indexes[name].value(item), wanted) for name, wanted in filters.items())
        ]
        if order_by is None:
            rows.sort(key=lambda row: row[0])
        else:
            index = self._kind.index(order_by)
            rows.sort(
                key=lambda row: (index.value(row[2]) is None, index.value(row[2]) or 0, row[0])
            )
        for key, revision, item in rows:
            self._seen[(self._kind.attribute, key)] = revision
            yield item

    def count(self, **filters: Any) -> int:
        """How many aggregates match ``filters``."""
        return sum(1 for _ in self.query(**filters))

    def ids(self, **filters: Any) -> Iterator[str]:
        """The ids of the aggregates matching ``filters``, in id order."""
        for item in self.query(**filters):
            yield self._kind.key(item)


class MemoryUnitOfWork:
    """A unit of work of :class:`MemoryStorage`."""

    def __init__(self, storage: MemoryStorage) -> None:
        self.opportunities = MemoryOpportunities(storage)
        self.events = MemoryEvents(storage)
        self._storage = storage
        self._revisions: dict[tuple[str, str], int] = {}

    def __getattr__(self, name: str) -> MemoryDocuments:
        # One repository per document kind, made on first use.
        repository = MemoryDocuments(self._storage, kind_of(name), self._revisions)
        setattr(self, name, repository)
        return repository

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the outermost commit."""
        self._storage._journal().callbacks.append(callback)


class MemoryStorage:
    """In-process storage for tests, notebooks and the conformance suite's reference model."""

    def __init__(self, url: str = "memory://", *, clock: Clock | None = None) -> None:
        if url.split("://", 1)[0] != "memory" or url.split("://", 1)[1] not in ("", "/"):
            raise ValidationError("url", url, "'memory://'")
        self.url = "memory://"
        self._clock: Clock = clock or _utc_now
        self._lock = threading.RLock()
        self._opportunities: dict[str, Opportunity] = {}
        self._updated: dict[str, datetime] = {}
        self._events: list[Event] = []
        self._last_event_at: dict[tuple[str, str], datetime] = {}
        """The latest event time per subject (kind, id): a subject's events never go back."""
        self._documents: dict[str, dict[str, tuple[int, Any, datetime]]] = {}
        self._sequence = itertools.count(1)
        self._active: _Journal | None = None
        self._uow = MemoryUnitOfWork(self)
        self._closed = False

    def _journal(self) -> _Journal:
        if self._active is None:
            raise ValidationError(
                "transaction", None, "an open unit of work: use storage.transaction()"
            )
        return self._active

    @contextmanager
    def transaction(self) -> Iterator[MemoryUnitOfWork]:
        """Open a unit of work (a savepoint when nested)."""
        if self._closed:
            raise ValidationError("storage", self.url, "an open storage (it was closed)")
        with self._lock:
            outer = self._active is None
            if outer:
                self._active = _Journal()
                self._uow = MemoryUnitOfWork(self)
            journal = self._journal()
            mark, callbacks = len(journal.undo), len(journal.callbacks)
            revisions = dict(self._uow._revisions)
            try:
                yield self._uow  # a nested unit of work is a savepoint of the same one
            except BaseException:
                journal.rollback_to(mark)
                del journal.callbacks[callbacks:]
                self._uow._revisions.clear()
                self._uow._revisions.update(revisions)
                if outer:
                    self._active = None
                raise
            if outer:
                self._active = None
                for callback in journal.callbacks:
                    callback()

    def close(self) -> None:
        """Forget everything."""
        self._closed = True


@hookimpl(trylast=True)
def salesflow_register_storage_backends() -> list[StorageBackend]:
    """The ``memory://`` backend."""
    return [
        StorageBackend(
            name="memory",
            schemes=("memory",),
            factory=MemoryStorage,
            description="in-process, nothing persists; the reference model",
        )
    ]
