"""The ports: what salesflow needs from a storage backend, as ``typing.Protocol`` classes.

A backend (a plugin, see :doc:`/plugins`) provides a :class:`Storage`; ``storage.transaction()``
opens a :class:`UnitOfWork` whose 14 repositories read and write aggregates: the
:class:`OpportunityRepository` (``uow.opportunities``), the :class:`EventLog` (``uow.events``) and
one :class:`DocumentRepository` per document kind (``uow.quotes``, ``uow.contracts``...; the kinds,
their keys and indexed fields are :mod:`salesflow.storage.kinds`). Everything a unit of work
writes commits together or not at all: an exception inside the ``with`` block rolls all of it back.
The quickest way to a correct backend is to subclass :class:`salesflow.storage.BaseStorage`, which
derives all of this from seven primitives; :mod:`salesflow.testing.storage` checks the result.

Rules every backend keeps (``salesflow.testing.storage`` checks them):

* **Versions and revisions.** Opportunities carry a ``version``: ``add`` stores a new one at version
  1 (its ``version`` must be 0); ``save`` stores a change only when the stored version equals the
  opportunity's ``version`` and bumps it by one; both return the opportunity as stored. Every other
  aggregate is a *document* with a hidden storage *revision* (its own ``version`` field, if it has
  one, keeps its domain meaning and is not checked by storage): a unit of work remembers the
  revision of every document it reads or adds, and ``save``/``delete`` write only if the stored
  revision is still that one. A stale write raises :class:`~salesflow.errors.ConcurrencyError` and
  changes nothing.
* Money is stored exactly, dates as dates and aware datetimes as instants.
* **Invariants hold at the port** (:mod:`salesflow.storage.invariants`), whoever writes: an
  opportunity's stage history only grows; a signed contract (formal, terminated, expired) is never
  saved changed, except formal -> terminated/expired with the same content
  (:class:`~salesflow.errors.ContractLockedError`); an approval request is saved only as its stored
  self plus appended audit entries, and every approval request stored must be exactly what its
  audit replays to (:class:`~salesflow.errors.ValidationError` on ``"audit"``).
* The event log is append-only and written in the same transaction as the change it records.
* A record's time only moves forward. ``OpportunityRepository.save`` stamps ``updated_at`` with the
  storage's clock and refuses (:class:`~salesflow.errors.ValidationError` on ``"clock"``) when that
  clock is behind the opportunity's stored ``updated_at``; ``EventLog.append`` refuses
  (``ValidationError`` on ``"at"``) an event dated before the latest stored event of the same
  subject (``subject_kind``, ``subject_id``). The error names the record, the clock's time and the
  last stored time; since it is raised inside the unit of work, the command changes nothing. The
  stored time is never bent (no ``max(now, last)``): a refused write tells the operator that the
  clock is wrong. So a record's ``updated_at`` and its events never decrease, and
  ``query(updated_since=t)`` returns every opportunity stamped after ``t``: no change of a record
  is stamped before an earlier change of it. (A change in the very instant of the previous one
  carries the same stamp, and across records the stamps are only as ordered as the clocks of the
  processes writing them.)

The error contract: which error a backend raises for what (the kit checks the class, and the words
quoted below, which are part of the message):

* :class:`~salesflow.errors.NotFoundError`: ``get`` of a key that is not stored (``kind`` is the
  kind's name such as ``"quote"``, ``key`` the key).
* :class:`~salesflow.errors.ConcurrencyError`: ``add`` of a stored id or unique key (``expected``
  0, ``actual`` the stored version or revision); ``save`` or ``delete`` of a stale or missing one
  (``expected``, ``actual``).
* :class:`~salesflow.errors.ValidationError` (``field`` says which rule): ``add`` of an opportunity
  whose version is not 0 (``"version"``); ``save``/``delete`` of a document not read in this unit
  of work (the kind's name; "read in this unit of work"); a filter or order on a field the kind
  does not index (``"filters"``, "indexed by"; ``"order_by"``); a rewritten stage history
  (``"history"``) or approval audit, or an approval request that its audit does not replay to
  (``"audit"``); a clock behind the record (``"clock"``, ``"at"``); a bad ``batch_size``; a
  repository used after its unit of work ended (``"transaction"``); a closed storage
  (``"storage"``).
* :class:`~salesflow.errors.InvalidTypeError` (a ``ValidationError`` and a ``TypeError``): an
  aggregate, event, id or filter of the wrong type.
* :class:`~salesflow.errors.ContractLockedError`: ``save`` of a signed contract, changed.
* :class:`~salesflow.errors.StorageError`: the backend failed (the driver's error chained as
  ``__cause__``), or a stored document cannot be read back.

Optional capabilities (:attr:`Storage.capabilities`): :data:`FORECAST_PUSHDOWN`,
:data:`WINDOW_PUSHDOWN`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs

from salesflow.analytics.forecast import Forecast
from salesflow.domain.calls import CallSource, RecordingSource
from salesflow.domain.events import Event
from salesflow.domain.money import RateSource
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import StagePlan

__all__ = [
    "FORECAST_PUSHDOWN",
    "WINDOW_PUSHDOWN",
    "Between",
    "CallSource",
    "DocumentRepository",
    "EventLog",
    "OpportunityRepository",
    "RateSource",
    "RecordingSource",
    "Storage",
    "UnitOfWork",
]

T = TypeVar("T")

FORECAST_PUSHDOWN = "forecast_pushdown"
"""The capability (in :attr:`Storage.capabilities`) of a backend whose
:meth:`OpportunityRepository.forecast` runs in the database (the SQL backend's ``GROUP BY``) instead
of over :meth:`OpportunityRepository.query` in Python. The conformance kit runs its
pushdown-specific cases only for such backends."""

WINDOW_PUSHDOWN = "window_pushdown"
"""The capability of a backend whose opportunity repository also has ``query_window(*, created,
closed, closed_stages, **filters)``: the opportunities of :meth:`OpportunityRepository.query`
with ``filters`` that may have been created in ``created`` or closed in ``closed`` (each a
``(start, end)`` pair of dates, inclusive, either ``None``; see
:mod:`salesflow.analytics.windows`), selected in the database. It may return more (the
calculator checks each row's days exactly), never fewer. The desk's windowed analytics use it
when the backend declares it, and :meth:`~OpportunityRepository.query` otherwise."""


@attrs.frozen
class Between:
    """A range filter for :meth:`DocumentRepository.query`: ``low <= value < high`` (either bound
    may be ``None`` for an open end)."""

    low: Any = None
    """The inclusive lower bound, or ``None``."""
    high: Any = None
    """The exclusive upper bound, or ``None``."""

    def matches(self, value: Any) -> bool:
        """Whether ``value`` lies in the range (``None`` never does)."""
        if value is None:
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value < self.high)


class OpportunityRepository(Protocol):
    """Opportunities with their stage history (``uow.opportunities``).

    An opportunity's ``version`` is its concurrency token: 1 once added, + 1 per save.
    """

    def get(self, id: str) -> Opportunity:
        """The opportunity ``id``.

        Raises:
            NotFoundError: none is stored (``kind`` ``"opportunity"``).
            InvalidTypeError: ``id`` is not a string.
        """
        ...

    def find(self, id: str) -> Opportunity | None:
        """The opportunity ``id``, or ``None``.

        Raises:
            InvalidTypeError: ``id`` is not a string.
        """
        ...

    def add(self, opportunity: Opportunity) -> Opportunity:
        """Store a new opportunity (version 0) and return it as stored, at version 1, its
        ``updated_at`` the storage clock's time.

        Raises:
            ValidationError: its ``version`` is not 0 (field ``"version"``).
            ConcurrencyError: its id is already stored (``expected`` 0).
            InvalidTypeError: it is not an :class:`~salesflow.Opportunity`.
        """
        ...

    def add_many(self, opportunities: Iterable[Opportunity], *, batch_size: int = 10_000) -> int:
        """Store many new opportunities efficiently, in batches of ``batch_size``; return how many
        were stored.

        Raises:
            ConcurrencyError: one of them (named) is already stored, or given twice; the unit of
                work then rolls back.
            ValidationError: as :meth:`add`, or ``batch_size`` is not a positive int.
        """
        ...

    def save(self, opportunity: Opportunity) -> Opportunity:
        """Store a changed opportunity if the stored version is still ``opportunity.version``;
        return it as stored (version + 1), stamped with the storage clock.

        Raises:
            ConcurrencyError: it was saved or deleted since it was read (``expected``: its
                version, ``actual``: the stored one or ``None``).
            ValidationError: its stored stage history is rewritten (``"history"``: history only
                grows), or the clock is behind its stored ``updated_at`` (``"clock"``).
        """
        ...

    def delete(self, id: str, *, version: int) -> None:
        """Delete opportunity ``id`` and its history if it is still at ``version``.

        Raises:
            ConcurrencyError: it is at another version, or not stored.
        """
        ...

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
        """Stream the opportunities that match every given filter, ordered by id.

        Args:
            owner: an owner, or a sequence of owners (any of them); likewise ``team``, ``stage``.
            close_from: the earliest expected close date (inclusive); ``close_until`` the latest
                (inclusive). An opportunity without one matches neither.
            updated_since: only those saved after this aware datetime (exclusive).

        Raises:
            InvalidTypeError: a filter of the wrong type.
        """
        ...

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
        ...

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
        """The forecast of every stored opportunity: exactly what :func:`salesflow.forecast`
        computes over :meth:`query` with the same arguments, pushed down to the database where
        the backend can (see :data:`FORECAST_PUSHDOWN`).

        Raises:
            StageError: a stored opportunity is in a stage ``plan`` does not know.
        """
        ...


class DocumentRepository(Protocol[T]):
    """The aggregates of one document kind (``uow.quotes``, ``uow.contracts``...; see
    :mod:`salesflow.storage.kinds` for every kind's key, indexed fields and unique keys).

    Concurrency: a unit of work remembers the storage revision of every aggregate it reads (with
    :meth:`get`, :meth:`find` or :meth:`query`) or adds; :meth:`save` and :meth:`delete` write only
    if the stored revision is still that one, else they raise
    :class:`~salesflow.errors.ConcurrencyError`. An aggregate must be read in the unit of work
    that saves it (a savepoint shares what its unit of work read).
    """

    def get(self, id: str) -> T:
        """The aggregate whose key is ``id``.

        Raises:
            NotFoundError: none is stored (``kind``: the kind's name, such as ``"quote"``).
            StorageError: the stored document cannot be read back.
        """
        ...

    def find(self, id: str) -> T | None:
        """The aggregate whose key is ``id``, or ``None``.

        Raises:
            InvalidTypeError: ``id`` is not a string.
        """
        ...

    def add(self, item: T) -> T:
        """Store a new aggregate and return it.

        Raises:
            ConcurrencyError: its key, or one of the kind's unique keys, is already stored.
            ValidationError: a rule of the kind refuses it (``"audit"``: an approval request
                whose state is not what its audit replays to).
            InvalidTypeError: it is not of the kind's class.
        """
        ...

    def add_many(self, items: Iterable[T], *, batch_size: int = 5_000) -> int:
        """Store many new aggregates in batches of ``batch_size``; return how many.

        Raises:
            ConcurrencyError: one of them (named) is already stored, or given twice.
            ValidationError: as :meth:`add`, or ``batch_size`` is not a positive int.
        """
        ...

    def save(self, item: T) -> T:
        """Store a changed aggregate read in this unit of work, if nobody saved it since; return
        it.

        Raises:
            ValidationError: it was not read in this unit of work ("read in this unit of work"),
                or an approval request's audit is rewritten or does not replay to it
                (``"audit"``).
            ContractLockedError: a signed contract is saved changed.
            ConcurrencyError: it was saved or deleted since it was read, or it takes a unique key
                another aggregate holds.
        """
        ...

    def delete(self, id: str) -> None:
        """Delete an aggregate read in this unit of work, if nobody saved it since.

        Raises:
            ValidationError: it was not read in this unit of work.
            ConcurrencyError: it was saved or deleted since.
        """
        ...

    def query(self, *, order_by: str | None = None, **filters: Any) -> Iterator[T]:
        """Stream the aggregates matching ``filters`` on the kind's indexed fields: a value
        (``None`` matches a missing value), a sequence of values (any of them), or a
        :class:`Between` range. Ordered by ``order_by`` (an indexed field; those without a value
        last) and then key, or by key.

        Raises:
            ValidationError: a filter or ``order_by`` on a field the kind does not index
                (``"filters"``: "indexed by"; ``"order_by"``).
        """
        ...

    def count(self, **filters: Any) -> int:
        """How many aggregates match ``filters`` (as for :meth:`query`)."""
        ...

    def ids(self, **filters: Any) -> Iterator[str]:
        """The keys of the aggregates matching ``filters``, in key order, without loading them."""
        ...


class EventLog(Protocol):
    """The append-only log of domain events, the audit log (``uow.events``). It has no way to
    change or delete an event.

    A backend may also offer ``append_all(events) -> list[Event]``, storing a command's events
    together (one statement) with the same checks as :meth:`append` one by one; the desk uses it
    when it is there. It is optional, so the protocol does not declare it."""

    def append(self, event: Event) -> Event:
        """Store ``event`` and return it with its sequence number (increasing; numbers may be
        skipped after a rollback).

        Raises:
            ValidationError: it is dated before the latest stored event of its subject
                (``"at"``).
            InvalidTypeError: it is not an :class:`~salesflow.domain.events.Event`.
        """
        ...

    def query(
        self,
        *,
        subject_kind: str | None = None,
        subject_id: str | None = None,
        name: str | None = None,
        after: int | None = None,
    ) -> Iterator[Event]:
        """Stream the stored events matching every given filter, in sequence order; ``after`` is
        an exclusive sequence number (to read what was appended since)."""
        ...


class UnitOfWork(Protocol):
    """One transaction's view of the storage: two repositories of their own and one
    :class:`DocumentRepository` per document kind (:data:`salesflow.storage.kinds.KINDS`)."""

    opportunities: OpportunityRepository
    """:class:`~salesflow.Opportunity` values with their stage history."""
    events: EventLog
    """The append-only event log (:class:`~salesflow.domain.events.Event`)."""
    categories: DocumentRepository[Any]
    """Catalog :class:`~salesflow.domain.catalog.Category` values, by ``id``."""
    products: DocumentRepository[Any]
    """Catalog :class:`~salesflow.domain.catalog.Product` values, by ``sku``."""
    bundles: DocumentRepository[Any]
    """Catalog :class:`~salesflow.domain.catalog.Bundle` values, by ``sku``."""
    quotes: DocumentRepository[Any]
    """:class:`~salesflow.domain.quotes.Quote` values, by ``id``."""
    approvals: DocumentRepository[Any]
    """:class:`~salesflow.domain.approvals.ApprovalRequest` values, by ``id``: the audit only
    grows, and each request must be what its audit replays to."""
    delegations: DocumentRepository[Any]
    """:class:`~salesflow.domain.approvals.Delegation` grants, by ``id``."""
    contracts: DocumentRepository[Any]
    """:class:`~salesflow.domain.contracts.Contract` values, by ``id``: a signed one is frozen."""
    billings: DocumentRepository[Any]
    """:class:`~salesflow.domain.billing.ContractBilling` values, by ``contract_id``."""
    contacts: DocumentRepository[Any]
    """Call-centre :class:`~salesflow.domain.contacts.Contact` values, by ``id``."""
    tasks: DocumentRepository[Any]
    """Follow-up tasks (:class:`~salesflow.domain.tasks.FollowUpTask`), by ``id``."""
    calls: DocumentRepository[Any]
    """Call records (:class:`~salesflow.domain.calls.CallRecord`), by ``id``; unique by
    ``source`` and ``external_id``."""
    contact_numbers: DocumentRepository[Any]
    """Contacts' numbers normalised once when stored
    (:class:`~salesflow.domain.contacts.ContactNumber`), by ``id``; queried by ``number``."""
    library: DocumentRepository[Any]
    """Best-call library entries (:class:`~salesflow.domain.library.LibraryEntry`), by
    ``call_id``."""
    rules: DocumentRepository[Any]
    """The versions of the sales rules (:class:`~salesflow.domain.rules.Rules`), by version (as
    text): a version is never changed or deleted."""
    alerts: DocumentRepository[Any]
    """The alerts emitted by the daily run (:class:`~salesflow.domain.alerts.Alert`), by their
    key ``"<on>/<name>/<record kind>/<record id>"``."""
    category_overrides: DocumentRepository[Any]
    """Forecast category overrides with their audit trail
    (:class:`~salesflow.domain.forecasts.CategoryOverride`), by ``opportunity_id``."""
    forecast_snapshots: DocumentRepository[Any]
    """A day's forecast lines (:class:`~salesflow.domain.forecasts.ForecastSnapshot`), by the ISO
    date: never changed or deleted."""

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the outermost transaction has committed (never on rollback);
        callbacks registered in a savepoint that rolls back are forgotten."""
        ...


@runtime_checkable
class Storage(Protocol):
    """A storage backend, opened from a URL by :func:`salesflow.open_storage` (a plugin's
    :class:`~salesflow.StorageBackend` factory builds it)."""

    url: str
    """The URL it was opened from, with any password hidden (handed to event handlers as
    ``storage_url``)."""
    capabilities: frozenset[str]
    """The optional capabilities the backend has, by name: :data:`FORECAST_PUSHDOWN`. Empty for a
    backend with none (the :class:`~salesflow.storage.BaseStorage` default)."""

    def transaction(self) -> AbstractContextManager[UnitOfWork]:
        """Open a unit of work: ``with storage.transaction() as uow: ...`` commits on success and
        rolls everything back on an exception. Nested calls become savepoints of the same unit of
        work (rolling back only what they wrote).

        Raises:
            ValidationError: the storage is closed (``"storage"``).
            StorageError: the backend cannot begin or commit.
        """
        ...

    def close(self) -> None:
        """Release connections and files. The data stays (see :meth:`destroy`)."""
        ...

    def destroy(self) -> None:
        """Delete everything this storage holds, for tests and uninstalling: every record and
        event (the SQL backend drops its tables). Close the storage afterwards."""
        ...
