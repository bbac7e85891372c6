"""SalesDesk: the application service that wires storage, plugins and the domain together.

Every command takes the :class:`~salesflow.domain.actors.Actor` who acts and

1. asks the ``salesflow_authorize`` hook whether the actor may do it (a refusal raises
   :class:`~salesflow.errors.NotAuthorizedError` and changes nothing);
2. runs in one unit of work: everything it writes, including its events in the event log, commits
   together or not at all;
3. hands its events to the ``salesflow_handle_event`` hook after the commit. A handler that raises
   never undoes the change: the error is logged and returned in
   :attr:`CommandResult.handler_errors`.

Reads take no actor: the embedding application decides who may see what.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import attrs
import pluggy

from salesflow.analytics.forecast import Forecast
from salesflow.analytics.funnel import Funnel, funnel
from salesflow.domain.actors import Actor
from salesflow.domain.events import Event
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import StagePlan
from salesflow.errors import (
    ConcurrencyError,
    InvalidTypeError,
    NotAuthorizedError,
    PluginError,
    ValidationError,
)
from salesflow.plugins.manager import PluginRates, find_storage_backend, get_plugin_manager
from salesflow.ports import Storage, UnitOfWork
from salesflow.tabular import Column, Source, iter_opportunities

__all__ = ["CommandResult", "HandlerError", "SalesDesk", "open", "open_storage"]

log = logging.getLogger("salesflow.desk")

T = TypeVar("T")
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class HandlerError:
    """An event handler that raised after a commit: which plugin, on which event, what error."""

    plugin: str
    event: Event
    error: BaseException


@attrs.frozen
class CommandResult(Generic[T]):
    """What a command returns: its value, the events it stored, and any handler errors.

    ``handler_errors`` is empty when every ``salesflow_handle_event`` implementation succeeded. The
    change is committed either way.
    """

    value: T
    events: tuple[Event, ...] = ()
    handler_errors: tuple[HandlerError, ...] = ()


def open_storage(
    url: str,
    *,
    plugin_manager: pluggy.PluginManager | None = None,
    clock: Clock | None = None,
    **options: Any,
) -> Storage:
    """Open the storage for ``url`` with the backend registered for its scheme.

    ``memory://``, ``sqlite:///path.db``, ``postgresql://user@host/db`` and ``mysql://user@host/db``
    are builtin; plugins add more. An unknown scheme raises
    :class:`~salesflow.errors.BackendNotFoundError` listing the registered ones.
    """
    manager = plugin_manager or get_plugin_manager()
    backend = find_storage_backend(manager, url)
    storage = backend.factory(url, clock=clock, **options)
    if not isinstance(storage, Storage):
        raise PluginError(f"storage backend {backend.name!r} returned {storage!r}, not a Storage")
    return storage


def open(
    url: str = "sqlite:///salesflow.db",
    *,
    plugins: Iterable[object] | None = None,
    clock: Clock | None = None,
    plan: StagePlan | None = None,
    load_entrypoints: bool = True,
    **storage_options: Any,
) -> SalesDesk:
    """Open a :class:`SalesDesk` on the storage at ``url`` (a SQLite file by default).

    Args:
        url: the storage URL.
        plugins: extra plugin objects to register (after the builtin and entry-point ones).
        clock: what "now" is (an aware datetime); the UTC wall clock by default.
        plan: the stage plan (``StagePlan.default()`` when omitted).
        load_entrypoints: load the plugins of the ``salesflow`` entry-point group.
        storage_options: passed to the backend (``table_prefix=`` for SQL, ...).
    """
    manager = get_plugin_manager(load_entrypoints=load_entrypoints, plugins=plugins or ())
    storage = open_storage(url, plugin_manager=manager, clock=clock, **storage_options)
    return SalesDesk(storage, plugin_manager=manager, clock=clock, plan=plan)


class SalesDesk:
    """The application service over one storage. Use :func:`salesflow.open` to build one, or pass
    your own storage (e.g. ``SqlStorage(your_engine)``) to share your application's database."""

    def __init__(
        self,
        storage: Storage,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        clock: Clock | None = None,
        plan: StagePlan | None = None,
    ) -> None:
        if not isinstance(storage, Storage):
            raise InvalidTypeError("storage", storage, "a Storage (see salesflow.ports)")
        if plan is not None and not isinstance(plan, StagePlan):
            raise InvalidTypeError("plan", plan, "a StagePlan")
        self.storage = storage
        self.plugins = plugin_manager or get_plugin_manager()
        self.plan = plan or StagePlan.default()
        self._clock = clock or _utc_now

    # -- plumbing --------------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The clock's current time (aware)."""
        moment = self._clock()
        if not isinstance(moment, datetime) or moment.utcoffset() is None:
            raise ValidationError("clock", moment, "a clock that returns timezone-aware datetimes")
        return moment

    def today(self) -> date:
        """The clock's current date."""
        return self.now().date()

    def authorize(self, actor: Actor, action: str, subject: Any) -> None:
        """Raise :class:`~salesflow.errors.NotAuthorizedError` unless the ``salesflow_authorize``
        hook allows ``actor`` to do ``action`` on ``subject``."""
        if not isinstance(actor, Actor):
            raise InvalidTypeError("actor", actor, "an Actor")
        allowed = self.plugins.hook.salesflow_authorize(actor=actor, action=action, subject=subject)
        if allowed is not True:
            label = getattr(subject, "id", None) or type(subject).__name__
            owner = getattr(subject, "owner", None)
            reason = "" if owner is None else f"it belongs to {owner!r}"
            raise NotAuthorizedError(actor.id, action, f"{action.split('.')[0]} {label!r}", reason)

    def _run(self, work: Callable[[UnitOfWork, list[Event]], T]) -> CommandResult[T]:
        """Run ``work`` in one unit of work; store its events there; dispatch them after commit."""
        pending: list[Event] = []
        stored: list[Event] = []
        errors: list[HandlerError] = []
        with self.storage.transaction() as uow:
            value = work(uow, pending)
            stored = [uow.events.append(e) for e in pending]
            uow.on_commit(lambda: errors.extend(self._dispatch(stored)))
        return CommandResult(value, tuple(stored), tuple(errors))

    def _dispatch(self, events: Sequence[Event]) -> list[HandlerError]:
        errors: list[HandlerError] = []
        hook = self.plugins.hook.salesflow_handle_event
        url = self.storage.url
        for event in events:
            # Each implementation separately, so that one failing handler does not silence the rest.
            for impl in reversed(hook.get_hookimpls()):
                arguments = {"event": event, "storage_url": url}
                try:
                    impl.function(**{name: arguments[name] for name in impl.argnames})
                except Exception as error:
                    log.exception("event handler %s failed on %s", impl.plugin_name, event.name)
                    errors.append(HandlerError(impl.plugin_name, event, error))
        return errors

    def _event(self, name: str, opportunity: Opportunity, actor: Actor, **data: Any) -> Event:
        return Event(
            name=name,
            subject_kind="opportunity",
            subject_id=opportunity.id,
            actor=actor.id,
            at=self.now(),
            data=data,
        )

    # -- opportunities ------------------------------------------------------------------------------

    def add_opportunity(self, actor: Actor, opportunity: Opportunity) -> CommandResult[Opportunity]:
        """Store a new opportunity (its stage must be in the plan)."""
        if not isinstance(opportunity, Opportunity):
            raise InvalidTypeError("opportunity", opportunity, "an Opportunity")
        self.plan.resolve(opportunity.stage)  # a stage the plan does not know raises StageError
        self.authorize(actor, "opportunity.create", opportunity)

        def work(uow: UnitOfWork, events: list[Event]) -> Opportunity:
            stored = uow.opportunities.add(opportunity)
            events.append(self._event("opportunity_created", stored, actor, stage=stored.stage))
            return stored

        return self._run(work)

    def update_opportunity(
        self, actor: Actor, opportunity: Opportunity
    ) -> CommandResult[Opportunity]:
        """Store changed attributes of an opportunity read at ``opportunity.version`` (stage
        changes go through :meth:`move_opportunity`)."""
        if not isinstance(opportunity, Opportunity):
            raise InvalidTypeError("opportunity", opportunity, "an Opportunity")

        def work(uow: UnitOfWork, events: list[Event]) -> Opportunity:
            stored = uow.opportunities.get(opportunity.id)
            self.authorize(actor, "opportunity.update", stored)
            if opportunity.owner != stored.owner:
                self.authorize(actor, "opportunity.update", opportunity)  # also on the new owner's
            if opportunity.stage != stored.stage or opportunity.history != stored.history:
                raise ValidationError(
                    "stage", opportunity.stage, f"{stored.stage!r} (use move_opportunity)"
                )
            saved = uow.opportunities.save(opportunity)
            changed = sorted(
                field.name
                for field in attrs.fields(Opportunity)
                if field.name != "version"
                and getattr(stored, field.name) != getattr(saved, field.name)
            )
            events.append(self._event("opportunity_updated", saved, actor, changed=changed))
            return saved

        return self._run(work)

    def move_opportunity(
        self, actor: Actor, id: str, stage: str, *, version: int | None = None
    ) -> CommandResult[Opportunity]:
        """Move opportunity ``id`` to ``stage`` now, recording the move in its history. With
        ``version`` the move applies only if nobody changed the opportunity since."""
        self.plan.resolve(stage)  # a stage the plan does not know raises StageError

        def work(uow: UnitOfWork, events: list[Event]) -> Opportunity:
            stored = uow.opportunities.get(id)
            self.authorize(actor, "opportunity.move", stored)
            if version is not None and version != stored.version:
                raise ConcurrencyError("opportunity", id, version, stored.version)
            previous = stored.stage
            saved = uow.opportunities.save(stored.move_to(stage, self.now(), plan=self.plan))
            events.append(
                self._event("opportunity_moved", saved, actor, **{"from": previous, "to": stage})
            )
            return saved

        return self._run(work)

    def import_opportunities(
        self,
        actor: Actor,
        source: Source,
        *,
        mapping: Mapping[str, Column] | None = None,
        currency: str | None = None,
        dayfirst: bool = False,
        batch_size: int = 10_000,
    ) -> CommandResult[int]:
        """Import a CSV file of new opportunities in one unit of work, streaming in batches (memory
        stays flat however large the file). A bad row, an unknown stage, a duplicate id or an
        opportunity the actor may not create rolls the whole import back."""

        def authorized(rows: Iterable[Opportunity]) -> Iterable[Opportunity]:
            for opportunity in rows:
                self.authorize(actor, "opportunity.import", opportunity)
                yield opportunity

        def work(uow: UnitOfWork, events: list[Event]) -> int:
            rows = iter_opportunities(
                source, plan=self.plan, mapping=mapping, currency=currency, dayfirst=dayfirst
            )
            count = uow.opportunities.add_many(authorized(rows), batch_size=batch_size)
            events.append(
                Event(
                    name="opportunities_imported",
                    subject_kind="opportunity",
                    subject_id="*",
                    actor=actor.id,
                    at=self.now(),
                    data={"count": count, "source": str(getattr(source, "name", source))},
                )
            )
            return count

        return self._run(work)

    # -- reads ------------------------------------------------------------------------------------------

    def opportunity(self, id: str) -> Opportunity:
        """The stored opportunity ``id``."""
        with self.storage.transaction() as uow:
            return uow.opportunities.get(id)

    def opportunities(self, **filters: Any) -> list[Opportunity]:
        """The stored opportunities matching ``filters`` (see
        :meth:`salesflow.ports.OpportunityRepository.query`), ordered by id."""
        with self.storage.transaction() as uow:
            return list(uow.opportunities.query(**filters))

    def events(self, **filters: Any) -> list[Event]:
        """Stored events matching ``filters`` (see :meth:`salesflow.ports.EventLog.query`)."""
        with self.storage.transaction() as uow:
            return list(uow.events.query(**filters))

    def forecast(
        self,
        *,
        as_of: date | None = None,
        threshold: Decimal | int | str | None = None,
        by: Sequence[str] | str = ("owner",),
        fiscal_year_start: int = 1,
        currency: str | None = None,
        convert: bool = False,
    ) -> Forecast:
        """The forecast of everything stored, as of ``as_of`` (the clock's date by default),
        pushed down to the database where the backend can. With ``convert=True`` amounts are
        converted into ``currency`` with the rates of the ``salesflow_get_exchange_rate`` hook."""
        rates = PluginRates(self.plugins) if convert else None
        with self.storage.transaction() as uow:
            return uow.opportunities.forecast(
                self.plan,
                as_of=self.today() if as_of is None else as_of,
                threshold=threshold,
                by=by,
                fiscal_year_start=fiscal_year_start,
                rates=rates,
                currency=currency,
            )

    def funnel(
        self,
        *,
        by: Sequence[str] | str = "owner",
        include_lost: bool = False,
        places: int = 1,
        **filters: Any,
    ) -> Funnel:
        """The stage funnel (R4) of the stored opportunities matching ``filters``, streamed from
        storage in one pass."""
        with self.storage.transaction() as uow:
            return funnel(
                uow.opportunities.query(**filters),
                self.plan,
                by=by,
                include_lost=include_lost,
                places=places,
            )

    # -- lifetime ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the storage."""
        self.storage.close()

    def __enter__(self) -> SalesDesk:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
