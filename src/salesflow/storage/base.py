""":class:`BaseStorage`: the whole storage port from a handful of primitives.

A backend subclasses :class:`BaseStorage` and implements seven primitives on *records*
(:class:`Record`: one stored aggregate, with its key, revision, encoded body, write time and
indexed values) and on the event log:

* :meth:`~BaseStorage._read`: the record of a kind with a key, or ``None``;
* :meth:`~BaseStorage._write`: store a record if the stored revision is the expected one (``None``:
  nothing stored yet), and say whether it did;
* :meth:`~BaseStorage._delete`: remove a record if its revision is the expected one, and say whether
  it did;
* :meth:`~BaseStorage._scan`: every record of a kind (filters are a hint);
* :meth:`~BaseStorage._append_event`: store an event with the next sequence number;
* :meth:`~BaseStorage._scan_events`: the stored events in sequence order;
* :meth:`~BaseStorage._remove_event`: take an event back (only to roll back);

and, if it has real transactions, the hooks :meth:`~BaseStorage._begin`,
:meth:`~BaseStorage._commit` and :meth:`~BaseStorage._rollback` (by default a failed unit of work
is undone from the base's journal, through the primitives). ``kind`` is the unit-of-work attribute
of a document kind (``"quotes"``, see :data:`~salesflow.storage.kinds.KINDS`) or
``"opportunities"`` (:data:`~salesflow.storage.kinds.OPPORTUNITIES`).

From these the base derives the rest of :class:`salesflow.ports.Storage`, the way fsspec's
``AbstractFileSystem`` derives a file system's API from a few methods: :meth:`BaseStorage.transaction`
(units of work, nested ones as savepoints, one unit of work at a time per storage, ``on_commit``
callbacks), the 14 repositories of the unit of work with every method (``get``, ``find``, ``add``,
``add_many``, ``save``, ``delete``, ``query``, ``count``, ``ids``, the forecast) and the event log,
revision and version checks, unique keys, filter checks, the errors of the port, the port's
invariants (:mod:`salesflow.storage.invariants`), :attr:`BaseStorage.capabilities` (none) and
:meth:`BaseStorage.destroy`. A subclass may override any derived method to do it faster (a
database would filter in :meth:`~BaseStorage._scan` and count without decoding).

The base runs one unit of work at a time per storage object (a lock), and checks a revision by
reading before writing; a backend shared by several processes makes its transactions serialisable
(a file lock, a database transaction) or checks ``expected`` atomically in :meth:`~BaseStorage._write`.

The in-memory backend (:class:`salesflow.adapters.storage_memory.MemoryStorage`), the reference
model of the conformance kit, is built on this class, and so is ``examples/storage_plugin_example``,
a JSON-file backend in one small module.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import attrs

from salesflow.analytics.forecast import Forecast, forecast
from salesflow.domain.events import Event
from salesflow.domain.money import RateSource
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import StagePlan
from salesflow.errors import (
    ConcurrencyError,
    InvalidTypeError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from salesflow.ports import FORECAST_PUSHDOWN
from salesflow.storage import codec
from salesflow.storage.invariants import check_forward, check_new
from salesflow.storage.kinds import KINDS, OPPORTUNITIES, DocumentKind
from salesflow.storage.queries import check_filters, opportunity_filter, wanted

__all__ = [
    "FORECAST_PUSHDOWN",
    "BaseDocuments",
    "BaseEventLog",
    "BaseOpportunities",
    "BaseStorage",
    "BaseUnitOfWork",
    "Clock",
    "Record",
]

Clock = Callable[[], datetime]
"""What "now" is: a callable returning an aware datetime."""

_MISSING: Any = object()


def _utc_now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen(kw_only=True)
class Record:
    """One stored aggregate, as the primitives of :class:`BaseStorage` read and write it."""

    key: str
    """The aggregate's key (:attr:`DocumentKind.key <salesflow.storage.kinds.DocumentKind.key>`;
    an opportunity's id)."""
    revision: int
    """The storage revision: 1 when added, + 1 per save (for opportunities, their ``version``)."""
    body: Any
    """The aggregate as :meth:`BaseStorage._encode` made it (JSON text by default)."""
    updated_at: datetime
    """The storage clock's time of the write (opportunities' ``updated_since`` filters by it)."""
    indexes: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    """The indexed values (index name -> value, as :meth:`Index.value
    <salesflow.storage.kinds.Index.value>` gives them) for filters and order. A backend may drop
    them and return ``None``: the base then decodes the body to filter."""


class _Journal:
    """How to undo each write of the open unit of work, newest last, and its commit callbacks."""

    def __init__(self) -> None:
        self.undo: list[Callable[[], None]] = []
        self.callbacks: list[Callable[[], None]] = []


def _undone(done: bool, kind: str, key: object) -> None:
    if not done:
        raise StorageError(f"rolling back {kind} {key!r} failed: it was changed meanwhile")


def _sort_key(value: Any, key: str) -> tuple[bool, Any, str]:
    # Rows with a value in (value, key) order, then those without one by key.
    return (value is None, 0 if value is None else value, key)


class BaseDocuments:
    """The repository of one document kind in a :class:`BaseUnitOfWork`
    (:class:`salesflow.ports.DocumentRepository`), derived from the primitives."""

    def __init__(self, uow: BaseUnitOfWork, kind: DocumentKind) -> None:
        self._uow = uow
        self._storage = uow.storage
        self._kind = kind
        self._cls: type | None = None

    @property
    def kind(self) -> DocumentKind:
        """The document kind this repository stores."""
        return self._kind

    # -- helpers ------------------------------------------------------------------------------------

    def _check(self, item: Any) -> str:
        self._uow._require_open()
        if self._cls is None:
            self._cls = self._kind.load_type()
        if not isinstance(item, self._cls):
            raise InvalidTypeError(self._kind.name, item, f"a {self._cls.__name__}")
        return self._kind.key(item)

    def _record(self, key: str, item: Any, revision: int) -> Record:
        return Record(
            key=key,
            revision=revision,
            body=self._storage._encode(self._kind, item),
            updated_at=self._storage.clock(),
            indexes={index.name: index.value(item) for index in self._kind.indexes},
        )

    def _indexed(self, record: Record) -> tuple[Mapping[str, Any], Any]:
        """The record's indexed values, and its decoded item if that was needed for them."""
        if record.indexes is not None:
            return record.indexes, _MISSING
        item = self._storage._decode(self._kind, record.body)
        return {index.name: index.value(item) for index in self._kind.indexes}, item

    def _matching(self, filters: Mapping[str, Any]) -> list[tuple[Record, Mapping[str, Any], Any]]:
        found = []
        for record in self._storage._scan(self._kind.attribute, filters):
            indexes, item = self._indexed(record)
            if all(wanted(indexes.get(name), f) for name, f in filters.items()):
                found.append((record, indexes, item))
        return found

    def _clash(self, item: Any, key: str) -> Record | None:
        """Another stored aggregate with one of ``item``'s unique keys, if any."""
        for names in self._kind.unique:
            values = {name: self._kind.index(name).value(item) for name in names}
            for record, _indexes, _item in self._matching(values):
                if record.key != key:
                    return record
        return None

    def _expected(self, key: str) -> int:
        expected = self._uow._revisions.get((self._kind.attribute, key))
        if expected is None:
            raise ValidationError(
                self._kind.name,
                key,
                "an aggregate read in this unit of work (get it before saving)",
            )
        return expected

    def _remember(self, key: str, revision: int) -> None:
        self._uow._revisions[(self._kind.attribute, key)] = revision

    # -- reads --------------------------------------------------------------------------------------

    def find(self, id: str) -> Any:
        """The aggregate ``id``, or ``None``. Remembers its revision for :meth:`save`.

        Raises:
            InvalidTypeError: ``id`` is not a string.
            StorageError: the stored document cannot be read back.
        """
        self._uow._require_open()
        if not isinstance(id, str):
            raise InvalidTypeError("id", id, "a string")
        record = self._storage._read(self._kind.attribute, id)
        if record is None:
            return None
        self._remember(id, record.revision)
        return self._storage._decode(self._kind, record.body)

    def get(self, id: str) -> Any:
        """The aggregate ``id``.

        Raises:
            NotFoundError: there is none (``kind`` is the kind's name).
        """
        found = self.find(id)
        if found is None:
            raise NotFoundError(self._kind.name, id)
        return found

    def query(self, *, order_by: str | None = None, **filters: Any) -> Iterator[Any]:
        """The aggregates matching every filter on the kind's indexed fields (a value, a sequence
        of values, or a :class:`~salesflow.ports.Between` range), ordered by ``order_by`` and then
        key (those without a value last), or by key. Remembers their revisions.

        Raises:
            ValidationError: a filter or ``order_by`` on a field the kind does not index.
        """
        self._uow._require_open()
        check_filters(self._kind, filters, order_by)
        rows = self._matching(filters)
        if order_by is None:
            rows.sort(key=lambda row: row[0].key)
        else:
            rows.sort(key=lambda row: _sort_key(row[1].get(order_by), row[0].key))
        for record, _indexes, item in rows:
            self._remember(record.key, record.revision)
            yield self._storage._decode(self._kind, record.body) if item is _MISSING else item

    def count(self, **filters: Any) -> int:
        """How many aggregates match ``filters`` (as for :meth:`query`)."""
        self._uow._require_open()
        check_filters(self._kind, filters)
        return len(self._matching(filters))

    def ids(self, **filters: Any) -> Iterator[str]:
        """The keys of the aggregates matching ``filters``, in key order, without decoding them
        (unless the backend keeps no indexed values)."""
        self._uow._require_open()
        check_filters(self._kind, filters)
        yield from sorted(record.key for record, _indexes, _item in self._matching(filters))

    # -- writes -------------------------------------------------------------------------------------

    def add(self, item: Any) -> Any:
        """Store a new aggregate at revision 1 and return it.

        Raises:
            InvalidTypeError: ``item`` is not of the kind's class.
            ConcurrencyError: its key, or one of its unique keys, is already stored (``expected``
                0, ``actual`` the stored revision).
            ValidationError: the kind's :attr:`~salesflow.storage.kinds.DocumentKind.add_rule`
                refuses it (an approval request that does not replay from its audit).
        """
        key = self._check(item)
        if self._kind.add_rule is not None:
            self._kind.add_rule(item)
        name, attribute, storage = self._kind.name, self._kind.attribute, self._storage
        stored = storage._read(attribute, key)
        clash = stored if stored is not None else self._clash(item, key)
        if clash is not None:
            raise ConcurrencyError(name, clash.key, 0, clash.revision)
        if not storage._write(attribute, self._record(key, item, 1), None):
            raise ConcurrencyError(name, key, 0, None)
        storage._journaled(lambda: _undone(storage._delete(attribute, key, 1), name, key))
        self._remember(key, 1)
        return item

    def add_many(self, items: Iterable[Any], *, batch_size: int = 5_000) -> int:
        """Store many new aggregates (as :meth:`add`, which raises for the first duplicate);
        return how many. ``batch_size`` is a hint (a positive int)."""
        return _add_each(self.add, items, batch_size)

    def save(self, item: Any) -> Any:
        """Store a changed aggregate read in this unit of work, if its stored revision is still
        the one read; return it.

        Raises:
            ValidationError: it was not read in this unit of work (field: the kind's name; the
                message says "read in this unit of work"), or a rule of the kind refuses it
                (``"audit"`` for an approval request).
            ContractLockedError: a signed contract saved changed.
            ConcurrencyError: it was saved or deleted since it was read, or it takes a unique key
                another aggregate holds.
        """
        key = self._check(item)
        expected = self._expected(key)
        name, attribute, storage = self._kind.name, self._kind.attribute, self._storage
        stored = storage._read(attribute, key)
        if stored is None or stored.revision != expected:
            raise ConcurrencyError(name, key, expected, None if stored is None else stored.revision)
        if self._kind.save_rule is not None:
            self._kind.save_rule(storage._decode(self._kind, stored.body), item)
        clash = self._clash(item, key)
        if clash is not None:
            raise ConcurrencyError(name, clash.key, 0, clash.revision)
        if not storage._write(attribute, self._record(key, item, expected + 1), expected):
            raise ConcurrencyError(name, key, expected, None)
        storage._journaled(
            lambda: _undone(storage._write(attribute, stored, expected + 1), name, key)
        )
        self._remember(key, expected + 1)
        return item

    def delete(self, id: str) -> None:
        """Delete an aggregate read in this unit of work, if nobody saved it since.

        Raises:
            ValidationError: it was not read in this unit of work.
            ConcurrencyError: it was saved or deleted since.
        """
        self._uow._require_open()
        expected = self._expected(id)
        name, attribute, storage = self._kind.name, self._kind.attribute, self._storage
        stored = storage._read(attribute, id)
        if stored is not None and stored.revision == expected and self._kind.delete_rule:
            self._kind.delete_rule(storage._decode(self._kind, stored.body))
        if (
            stored is None
            or stored.revision != expected
            or not storage._delete(attribute, id, expected)
        ):
            raise ConcurrencyError(name, id, expected, None if stored is None else stored.revision)
        storage._journaled(lambda: _undone(storage._write(attribute, stored, None), name, id))
        del self._uow._revisions[(attribute, id)]


def _matches(value: str | None, wanted: str | Sequence[str] | None) -> bool:
    if wanted is None:
        return True
    if isinstance(wanted, str):
        return value == wanted
    return value in wanted


class BaseOpportunities:
    """The opportunity repository of a :class:`BaseUnitOfWork`
    (:class:`salesflow.ports.OpportunityRepository`), derived from the primitives: opportunities
    are records of kind ``"opportunities"`` whose revision is their ``version``."""

    _KIND = OPPORTUNITIES

    def __init__(self, uow: BaseUnitOfWork) -> None:
        self._uow = uow
        self._storage = uow.storage

    def _record(self, opportunity: Opportunity, now: datetime) -> Record:
        return Record(
            key=opportunity.id,
            revision=opportunity.version,
            body=self._storage._encode(self._KIND, opportunity),
            updated_at=now,
            indexes={index.name: index.value(opportunity) for index in self._KIND.indexes},
        )

    def _check(self, opportunity: Opportunity) -> None:
        self._uow._require_open()
        if not isinstance(opportunity, Opportunity):
            raise InvalidTypeError("opportunity", opportunity, "an Opportunity")

    # -- reads --------------------------------------------------------------------------------------

    def find(self, id: str) -> Opportunity | None:
        """The opportunity ``id``, or ``None``.

        Raises:
            InvalidTypeError: ``id`` is not a string.
        """
        self._uow._require_open()
        if not isinstance(id, str):
            raise InvalidTypeError("id", id, "a string")
        record = self._storage._read(self._KIND.attribute, id)
        if record is None:
            return None
        found: Opportunity = self._storage._decode(self._KIND, record.body)
        return found

    def get(self, id: str) -> Opportunity:
        """The opportunity ``id``.

        Raises:
            NotFoundError: there is none.
        """
        found = self.find(id)
        if found is None:
            raise NotFoundError("opportunity", id)
        return found

    def _matching(
        self,
        owner: str | Sequence[str] | None,
        team: str | Sequence[str] | None,
        stage: str | Sequence[str] | None,
        close_from: date | None,
        close_until: date | None,
        updated_since: datetime | None,
    ) -> list[tuple[Record, Any]]:
        self._uow._require_open()
        opportunity_filter(owner, team, stage, close_from, close_until, updated_since)
        hints = {
            name: value
            for name, value in (("owner", owner), ("team", team), ("stage", stage))
            if value is not None
        }
        found = []
        for record in self._storage._scan(self._KIND.attribute, hints):
            item = _MISSING
            indexes = record.indexes
            if indexes is None:
                item = self._storage._decode(self._KIND, record.body)
                indexes = {index.name: index.value(item) for index in self._KIND.indexes}
            close = indexes.get("expected_close")
            if not (
                _matches(indexes.get("owner"), owner)
                and _matches(indexes.get("team"), team)
                and _matches(indexes.get("stage"), stage)
                and (close_from is None or (close is not None and close >= close_from))
                and (close_until is None or (close is not None and close <= close_until))
                and (updated_since is None or record.updated_at > updated_since)
            ):
                continue
            found.append((record, item))
        found.sort(key=lambda row: row[0].key)
        return found

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
        """The opportunities matching every given filter, ordered by id (see the port).

        Raises:
            InvalidTypeError: a filter of the wrong type.
        """
        rows = self._matching(owner, team, stage, close_from, close_until, updated_since)
        for record, item in rows:
            yield self._storage._decode(self._KIND, record.body) if item is _MISSING else item

    def count(
        self,
        *,
        owner: str | Sequence[str] | None = None,
        team: str | Sequence[str] | None = None,
        stage: str | Sequence[str] | None = None,
        close_from: date | None = None,
        close_until: date | None = None,
        updated_since: datetime | None = None,
    ) -> int:
        """How many opportunities match (the filters of :meth:`query`)."""
        return len(self._matching(owner, team, stage, close_from, close_until, updated_since))

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
        """:func:`salesflow.forecast` over every stored opportunity (no pushdown)."""
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

    # -- writes -------------------------------------------------------------------------------------

    def add(self, opportunity: Opportunity) -> Opportunity:
        """Store a new opportunity (version 0) and return it at version 1.

        Raises:
            InvalidTypeError: not an :class:`~salesflow.Opportunity`.
            ValidationError: its version is not 0 (field ``"version"``).
            ConcurrencyError: its id is already stored.
        """
        self._check(opportunity)
        check_new("opportunity", opportunity)
        attribute, storage, id = self._KIND.attribute, self._storage, opportunity.id
        stored = storage._read(attribute, id)
        if stored is not None:
            raise ConcurrencyError("opportunity", id, 0, stored.revision)
        new = attrs.evolve(opportunity, version=1)
        if not storage._write(attribute, self._record(new, storage.clock()), None):
            raise ConcurrencyError("opportunity", id, 0, None)
        storage._journaled(lambda: _undone(storage._delete(attribute, id, 1), "opportunity", id))
        return new

    def add_many(self, opportunities: Iterable[Opportunity], *, batch_size: int = 10_000) -> int:
        """Store many new opportunities (as :meth:`add`, which raises for the first duplicate);
        return how many. ``batch_size`` is a hint (a positive int)."""
        return _add_each(self.add, opportunities, batch_size)

    def save(self, opportunity: Opportunity) -> Opportunity:
        """Store a change if the stored version is still ``opportunity.version``; return it at
        the next version, stamped with the storage clock.

        Raises:
            ConcurrencyError: the stored version differs (or it is not stored).
            ValidationError: the stored stage history is rewritten (``"history"``), or the clock
                is behind the stored ``updated_at`` (``"clock"``).
        """
        self._check(opportunity)
        attribute, storage, id = self._KIND.attribute, self._storage, opportunity.id
        version = opportunity.version
        stored = storage._read(attribute, id)
        if stored is None or stored.revision != version:
            raise ConcurrencyError(
                "opportunity", id, version, None if stored is None else stored.revision
            )
        if self._KIND.save_rule is not None:
            self._KIND.save_rule(storage._decode(self._KIND, stored.body), opportunity)
        now = storage.clock()
        check_forward(f"opportunity {id!r}", "clock", now, stored.updated_at)
        new = attrs.evolve(opportunity, version=version + 1)
        if not storage._write(attribute, self._record(new, now), version):
            raise ConcurrencyError("opportunity", id, version, None)
        storage._journaled(
            lambda: _undone(storage._write(attribute, stored, version + 1), "opportunity", id)
        )
        return new

    def delete(self, id: str, *, version: int) -> None:
        """Delete opportunity ``id`` (with its history) if it is still at ``version``.

        Raises:
            ConcurrencyError: it is at another version, or not stored.
        """
        self._uow._require_open()
        attribute, storage = self._KIND.attribute, self._storage
        stored = storage._read(attribute, id)
        if (
            stored is None
            or stored.revision != version
            or not storage._delete(attribute, id, version)
        ):
            raise ConcurrencyError(
                "opportunity", id, version, None if stored is None else stored.revision
            )
        storage._journaled(
            lambda: _undone(storage._write(attribute, stored, None), "opportunity", id)
        )


class BaseEventLog:
    """The event log of a :class:`BaseUnitOfWork` (:class:`salesflow.ports.EventLog`)."""

    def __init__(self, uow: BaseUnitOfWork) -> None:
        self._uow = uow
        self._storage = uow.storage

    def append(self, event: Event) -> Event:
        """Store ``event`` and return it with its sequence number.

        Raises:
            InvalidTypeError: not an :class:`~salesflow.domain.events.Event`.
            ValidationError: dated before the latest stored event of its subject (``"at"``).
        """
        self._uow._require_open()
        if not isinstance(event, Event):
            raise InvalidTypeError("event", event, "an Event")
        storage = self._storage
        last = storage._last_event_at(event.subject_kind, event.subject_id)
        check_forward(f"{event.subject_kind} {event.subject_id!r}", "at", event.at, last)
        stored = storage._append_event(event)
        seq = stored.seq
        if seq is None:
            raise StorageError(f"{type(storage).__name__}._append_event gave no sequence number")
        storage._journaled(lambda: storage._remove_event(seq))
        return stored

    def query(
        self,
        *,
        subject_kind: str | None = None,
        subject_id: str | None = None,
        name: str | None = None,
        after: int | None = None,
    ) -> Iterator[Event]:
        """The stored events matching every given filter, in sequence order (``after``: an
        exclusive sequence number)."""
        self._uow._require_open()
        for event in self._storage._scan_events(
            subject_kind=subject_kind, subject_id=subject_id, name=name, after=after
        ):
            assert event.seq is not None
            if (
                (after is None or event.seq > after)
                and (subject_kind is None or event.subject_kind == subject_kind)
                and (subject_id is None or event.subject_id == subject_id)
                and (name is None or event.name == name)
            ):
                yield event


class BaseUnitOfWork:
    """A unit of work of a :class:`BaseStorage` (:class:`salesflow.ports.UnitOfWork`): the
    opportunity repository, the event log, and one :class:`BaseDocuments` per document kind."""

    opportunities: BaseOpportunities
    events: BaseEventLog
    categories: BaseDocuments
    products: BaseDocuments
    bundles: BaseDocuments
    quotes: BaseDocuments
    approvals: BaseDocuments
    delegations: BaseDocuments
    contracts: BaseDocuments
    billings: BaseDocuments
    contacts: BaseDocuments
    tasks: BaseDocuments
    calls: BaseDocuments
    library: BaseDocuments

    def __init__(self, storage: BaseStorage) -> None:
        self.storage = storage
        """The storage this unit of work belongs to."""
        self._revisions: dict[tuple[str, str], int] = {}
        self._open = True
        self.opportunities = BaseOpportunities(self)
        self.events = BaseEventLog(self)
        for kind in KINDS:
            setattr(self, kind.attribute, BaseDocuments(self, kind))

    def _require_open(self) -> None:
        if not self._open:
            raise ValidationError(
                "transaction", None, "an open unit of work: use storage.transaction()"
            )

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the outermost unit of work has committed (never on rollback)."""
        self._require_open()
        if not callable(callback):
            raise InvalidTypeError("callback", callback, "a callable")
        self.storage._journal_now().callbacks.append(callback)


class BaseStorage(abc.ABC):
    """A storage backend built from a few primitives (see :mod:`salesflow.storage.base`).

    Subclass it, call ``super().__init__(url, clock=clock)`` and implement the seven abstract
    primitives; override the transaction hooks if the backend has transactions of its own, and
    :meth:`_encode`/:meth:`_decode` to keep bodies in another form. Everything else of
    :class:`salesflow.ports.Storage` is derived, the port's invariants included.

    Args:
        url: the URL it was opened from (:attr:`url`; hide passwords).
        clock: what "now" is for ``updated_at`` (the UTC wall clock by default).
    """

    capabilities: frozenset[str] = frozenset()
    """Optional capabilities (see :attr:`salesflow.ports.Storage.capabilities`): none by
    default; a subclass whose forecast runs in its database declares
    ``frozenset({"forecast_pushdown"})``."""

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        if not isinstance(url, str):
            raise InvalidTypeError("url", url, "a storage URL")
        self.url = url
        """The URL this storage was opened from (passwords hidden)."""
        self.clock: Clock = clock or _utc_now
        """What "now" is for ``updated_at`` and revisions' write times."""
        self._lock = threading.RLock()
        self._journal: _Journal | None = None
        self._uow: BaseUnitOfWork | None = None
        self._closed = False

    # -- the primitives ------------------------------------------------------------------------------

    @abc.abstractmethod
    def _read(self, kind: str, key: str) -> Record | None:
        """The stored record of ``kind`` (a unit-of-work attribute such as ``"quotes"``, or
        ``"opportunities"``) with ``key``, or ``None``."""

    @abc.abstractmethod
    def _write(self, kind: str, record: Record, expected: int | None) -> bool:
        """Store ``record`` (replacing the one with its key) if the stored revision of that key is
        ``expected`` (``None``: nothing is stored under it); return whether it was stored. Keep
        everything the record holds: its revision, body, ``updated_at`` and (optionally) its
        indexed values."""

    @abc.abstractmethod
    def _delete(self, kind: str, key: str, expected: int) -> bool:
        """Remove the record ``key`` of ``kind`` if its revision is ``expected``; return whether
        it was removed."""

    @abc.abstractmethod
    def _scan(self, kind: str, filters: Mapping[str, Any]) -> Iterable[Record]:
        """Every stored record of ``kind``, in any order. ``filters`` (index name -> a value, a
        sequence of values or a :class:`~salesflow.ports.Between`) are a hint: a backend may
        return only matching records, and the base checks every record it gets anyway."""

    @abc.abstractmethod
    def _append_event(self, event: Event) -> Event:
        """Store ``event`` and return it with its sequence number (``attrs.evolve(event,
        seq=n)``): higher than that of every stored event (a number handed out in a unit of work
        that rolled back may be given again, or skipped)."""

    @abc.abstractmethod
    def _scan_events(
        self,
        *,
        subject_kind: str | None,
        subject_id: str | None,
        name: str | None,
        after: int | None,
    ) -> Iterable[Event]:
        """The stored events in sequence order. The arguments are hints (as for
        :meth:`EventLog.query <salesflow.ports.EventLog.query>`): a backend may skip events that
        do not match them; the base checks them anyway."""

    @abc.abstractmethod
    def _remove_event(self, seq: int) -> None:
        """Remove the event numbered ``seq``. Only rolling back (and :meth:`destroy`) calls this:
        the event log is append-only for everyone else."""

    # -- transaction hooks -----------------------------------------------------------------------------

    def _begin(self) -> None:  # noqa: B027 (an optional hook)
        """Called when an outermost unit of work starts (after the storage's lock is taken): take
        a file lock, load state, begin a database transaction... Nothing by default."""

    def _commit(self) -> None:  # noqa: B027 (an optional hook)
        """Called when an outermost unit of work succeeds, before its commit callbacks: make its
        writes durable. Nothing by default. An exception here rolls the unit of work back."""

    def _rollback(self) -> None:
        """Called when an outermost unit of work fails: undo its writes. By default the base
        replays its journal backwards through the primitives; a backend with real transactions
        discards them instead."""
        self._undo(0)

    # -- derived, override to do better -------------------------------------------------------------

    def _encode(self, kind: DocumentKind, item: Any) -> Any:
        """The body a record stores for ``item``: the :mod:`~salesflow.storage.codec`'s JSON text
        by default. An in-process backend may keep the (immutable) object itself."""
        return codec.dumps(item)

    def _decode(self, kind: DocumentKind, body: Any) -> Any:
        """The aggregate a body describes (the inverse of :meth:`_encode`).

        Raises:
            StorageError: the body does not describe a valid aggregate of the kind.
        """
        try:
            return codec.loads(body, kind.load_type())
        except Exception as error:
            raise StorageError(f"a stored {kind.name} cannot be read back: {error!r}") from error

    def _last_event_at(self, subject_kind: str, subject_id: str) -> datetime | None:
        """The time of the latest stored event of a subject (for the rule that a subject's
        events never go back); by default from :meth:`_scan_events`."""
        return max(
            (
                event.at
                for event in self._scan_events(
                    subject_kind=subject_kind, subject_id=subject_id, name=None, after=None
                )
                if event.subject_kind == subject_kind and event.subject_id == subject_id
            ),
            default=None,
        )

    # -- the port ------------------------------------------------------------------------------------

    def _journal_now(self) -> _Journal:
        if self._journal is None:
            raise ValidationError(
                "transaction", None, "an open unit of work: use storage.transaction()"
            )
        return self._journal

    def _journaled(self, undo: Callable[[], None]) -> None:
        self._journal_now().undo.append(undo)

    def _undo(self, mark: int) -> None:
        journal = self._journal_now()
        while len(journal.undo) > mark:
            journal.undo.pop()()

    def transaction(self) -> AbstractContextManager[BaseUnitOfWork]:
        """Open a unit of work: ``with storage.transaction() as uow: ...`` commits on success and
        rolls everything back on an exception. A nested call is a savepoint of the same unit of
        work. Units of work of one storage object run one at a time (other threads wait).

        Raises:
            ValidationError: the storage was closed (field ``"storage"``).
        """
        if self._closed:
            raise ValidationError("storage", self.url, "an open storage (it was closed)")
        return self._unit_of_work()

    @contextmanager
    def _unit_of_work(self) -> Iterator[BaseUnitOfWork]:
        with self._lock:
            if self._journal is not None and self._uow is not None:
                yield from self._savepoint(self._journal, self._uow)
                return
            self._begin()
            journal = self._journal = _Journal()
            uow = self._uow = BaseUnitOfWork(self)
            try:
                yield uow
                self._commit()
            except BaseException:
                try:
                    self._rollback()
                finally:
                    self._end(uow)
                raise
            self._end(uow)
            for callback in journal.callbacks:
                callback()

    def _savepoint(self, journal: _Journal, uow: BaseUnitOfWork) -> Iterator[BaseUnitOfWork]:
        mark, callbacks = len(journal.undo), len(journal.callbacks)
        revisions = dict(uow._revisions)
        try:
            yield uow
        except BaseException:
            self._undo(mark)
            del journal.callbacks[callbacks:]
            uow._revisions.clear()
            uow._revisions.update(revisions)
            raise

    def _end(self, uow: BaseUnitOfWork) -> None:
        uow._open = False
        self._journal = None
        self._uow = None

    def close(self) -> None:
        """Release what the storage holds open; it refuses new units of work afterwards."""
        self._closed = True

    def destroy(self) -> None:
        """Delete everything this storage holds (every record and event), for tests and
        uninstalling; it works on a closed storage too. By default through the primitives, in one
        unit of work."""
        with self._unit_of_work():
            for kind in (OPPORTUNITIES, *KINDS):
                for record in list(self._scan(kind.attribute, {})):
                    self._delete(kind.attribute, record.key, record.revision)
            everything = self._scan_events(
                subject_kind=None, subject_id=None, name=None, after=None
            )
            for event in list(everything):
                assert event.seq is not None
                self._remove_event(event.seq)


def _add_each(add: Callable[[Any], Any], items: Iterable[Any], batch_size: object) -> int:
    """``add`` every item (stopping at the first refused), returning how many: the base's bulk
    add, where ``batch_size`` is only checked."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("batch_size", batch_size, "a positive int")
    count = 0
    for item in items:
        add(item)
        count += 1
    return count
