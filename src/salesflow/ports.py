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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from salesflow.analytics.forecast import Forecast
from salesflow.domain.events import Event
from salesflow.domain.money import RateSource
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import StagePlan

__all__ = [
    "EventLog",
    "OpportunityRepository",
    "RateSource",
    "Storage",
    "UnitOfWork",
]


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
