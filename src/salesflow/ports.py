"""The ports: what salesflow needs from a storage backend, as ``typing.Protocol`` classes.

A backend (a plugin) provides a :class:`Storage`; ``storage.transaction()`` opens a
:class:`UnitOfWork` whose repositories read and write aggregates. Everything a unit of work writes
commits together or not at all: an exception inside the ``with`` block rolls all of it back.

Rules every backend keeps (``salesflow.testing.storage`` checks them):

* Every aggregate carries a ``version``. ``add`` stores a new aggregate at version 1 (its
  ``version`` must be 0); ``save`` stores a change only when the stored version equals the
  aggregate's ``version`` and bumps it by one; otherwise it raises
  :class:`~salesflow.errors.ConcurrencyError` and changes nothing. Both return the aggregate as
  stored (with its new version).
* Money is stored exactly, dates as dates and aware datetimes as instants (read back in UTC).
* An opportunity's stage history only grows: a save that rewrites stored history is refused.
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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs

from salesflow.analytics.forecast import Forecast
from salesflow.domain.calls import CallSource
from salesflow.domain.events import Event
from salesflow.domain.money import RateSource
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import StagePlan

__all__ = [
    "Between",
    "CallSource",
    "DocumentRepository",
    "EventLog",
    "OpportunityRepository",
    "RateSource",
    "Storage",
    "UnitOfWork",
]

T = TypeVar("T")


@attrs.frozen
class Between:
    """A range filter for :meth:`DocumentRepository.query`: ``low <= value < high`` (either bound
    may be ``None`` for an open end)."""

    low: Any = None
    high: Any = None

    def matches(self, value: Any) -> bool:
        """Whether ``value`` lies in the range (``None`` never does)."""
        if value is None:
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value < self.high)


class OpportunityRepository(Protocol):
    """Opportunities with their stage history."""

    def get(self, id: str) -> Opportunity:
        """The opportunity ``id``; :class:`~salesflow.errors.NotFoundError` if there is none."""
        ...

    def find(self, id: str) -> Opportunity | None:
        """The opportunity ``id``, or ``None``."""
        ...

    def add(self, opportunity: Opportunity) -> Opportunity:
        """Store a new opportunity (version 0) and return it at version 1; an id that is already
        stored raises :class:`~salesflow.errors.ConcurrencyError`."""
        ...

    def add_many(self, opportunities: Iterable[Opportunity], *, batch_size: int = 10_000) -> int:
        """Store many new opportunities efficiently, in batches; return how many were stored."""
        ...

    def save(self, opportunity: Opportunity) -> Opportunity:
        """Store a changed opportunity if nobody saved it since it was read; return it as stored."""
        ...

    def delete(self, id: str, *, version: int) -> None:
        """Delete opportunity ``id`` if it is still at ``version``."""
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

        ``close_from`` and ``close_until`` are inclusive; ``updated_since`` is exclusive.
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
        """The forecast of every stored opportunity: exactly what
        :func:`salesflow.forecast` computes over :meth:`query`, pushed down to the database where
        the backend can."""
        ...


class DocumentRepository(Protocol[T]):
    """The aggregates of one kind (quotes, approval requests, contracts, calls...).

    Concurrency: a unit of work remembers the storage revision of every aggregate it reads (with
    :meth:`get`, :meth:`find` or :meth:`query`) or adds; :meth:`save` and :meth:`delete` write only if the stored
    revision is still that one, else they raise :class:`~salesflow.errors.ConcurrencyError`. An
    aggregate must be read in the unit of work that saves it.
    """

    def get(self, id: str) -> T:
        """The aggregate ``id``; :class:`~salesflow.errors.NotFoundError` if there is none."""
        ...

    def find(self, id: str) -> T | None:
        """The aggregate ``id``, or ``None``."""
        ...

    def add(self, item: T) -> T:
        """Store a new aggregate; an id (or unique key) already stored raises
        :class:`~salesflow.errors.ConcurrencyError`."""
        ...

    def add_many(self, items: Iterable[T], *, batch_size: int = 5_000) -> int:
        """Store many new aggregates in batches; return how many."""
        ...

    def save(self, item: T) -> T:
        """Store a changed aggregate read in this unit of work, if nobody saved it since."""
        ...

    def delete(self, id: str) -> None:
        """Delete an aggregate read in this unit of work, if nobody saved it since."""
        ...

    def query(self, *, order_by: str | None = None, **filters: Any) -> Iterator[T]:
        """Stream the aggregates matching ``filters`` on the kind's indexed fields: a value, a
        sequence of values (any of them), or a :class:`Between` range. Ordered by ``order_by`` (an
        indexed field) and then id, or by id."""
        ...

    def count(self, **filters: Any) -> int:
        """How many aggregates match ``filters`` (as for :meth:`query`)."""
        ...

    def ids(self, **filters: Any) -> Iterator[str]:
        """The ids of the aggregates matching ``filters``, in id order, without loading them."""
        ...


class EventLog(Protocol):
    """The append-only log of domain events (the audit log)."""

    def append(self, event: Event) -> Event:
        """Store ``event`` and return it with its sequence number."""
        ...

    def query(
        self,
        *,
        subject_kind: str | None = None,
        subject_id: str | None = None,
        name: str | None = None,
        after: int | None = None,
    ) -> Iterator[Event]:
        """Stream stored events in sequence order; ``after`` is an exclusive sequence number."""
        ...


class UnitOfWork(Protocol):
    """One transaction's view of the storage."""

    opportunities: OpportunityRepository
    events: EventLog
    categories: DocumentRepository[Any]
    products: DocumentRepository[Any]
    bundles: DocumentRepository[Any]
    quotes: DocumentRepository[Any]
    approvals: DocumentRepository[Any]
    delegations: DocumentRepository[Any]
    contracts: DocumentRepository[Any]
    billings: DocumentRepository[Any]
    contacts: DocumentRepository[Any]
    tasks: DocumentRepository[Any]
    calls: DocumentRepository[Any]
    library: DocumentRepository[Any]

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the outermost transaction has committed (never on rollback)."""
        ...


@runtime_checkable
class Storage(Protocol):
    """A storage backend, opened from a URL by :func:`salesflow.open_storage`."""

    url: str

    def transaction(self) -> AbstractContextManager[UnitOfWork]:
        """Open a unit of work: ``with storage.transaction() as uow: ...`` commits on success and
        rolls everything back on an exception. Nested calls become savepoints."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
