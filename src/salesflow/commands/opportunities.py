"""SalesDesk commands and reads for opportunities: add, update, move, import; forecast, funnel and
lost reasons."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs

from salesflow.analytics.forecast import Forecast
from salesflow.analytics.funnel import Funnel, funnel
from salesflow.analytics.grouping import MISSING
from salesflow.analytics.lost_reasons import LostReasons, lost_reasons
from salesflow.analytics.windows import WindowLike
from salesflow.commands.analytics import select_window
from salesflow.commands.core import CommandResult, DeskCore
from salesflow.domain.actors import Actor
from salesflow.domain.events import Event
from salesflow.domain.opportunities import Opportunity, check_lost_reason
from salesflow.errors import (
    ConcurrencyError,
    InvalidTypeError,
    TransitionNotAllowedError,
    ValidationError,
)
from salesflow.plugins.manager import PluginRates
from salesflow.ports import UnitOfWork
from salesflow.storage.queries import narrow_stages
from salesflow.tabular import Column, Source, iter_opportunities

__all__ = ["OpportunityCommands"]


class OpportunityCommands(DeskCore):
    """Opportunities (R1-R4) on the desk."""

    # -- commands ------------------------------------------------------------------------------

    def add_opportunity(self, actor: Actor, opportunity: Opportunity) -> CommandResult[Opportunity]:
        """Store a new opportunity (its stage must be in the plan), created today (the clock's
        date) unless it says when it was created (never a day after today).

        Its history is the desk's record of its moves: it may hold only the deal's first
        placement, into its stage, today and not later than now; every later move is recorded by
        :meth:`move_opportunity`. Deals with a past history come in through
        :meth:`import_opportunities` (a manager's work). Anything else is refused with
        :class:`~salesflow.errors.ValidationError` naming ``history`` or ``created``."""
        if not isinstance(opportunity, Opportunity):
            raise InvalidTypeError("opportunity", opportunity, "an Opportunity")
        self.plan.resolve(opportunity.stage)  # a stage the plan does not know raises StageError
        self._refuse_made_up_dates(opportunity)
        self.authorize(actor, "opportunity.create", opportunity)
        if opportunity.created is None:
            # Else a deal never moved would be in no created= window: nothing would date it.
            opportunity = attrs.evolve(opportunity, created=self.today())

        def work(uow: UnitOfWork, events: list[Event]) -> Opportunity:
            stored = uow.opportunities.add(opportunity)
            events.append(
                self.event(
                    "opportunity_created", "opportunity", stored.id, actor, stage=stored.stage
                )
            )
            return stored

        return self.run(work)

    def _refuse_made_up_dates(self, opportunity: Opportunity) -> None:
        """Refuse a new deal dated in the future or with moves the desk did not see (see
        :meth:`add_opportunity`): the forecast's reconstructions and each rep's measured accuracy
        are read from these dates."""
        now = self._refuse_future_creation(opportunity)
        history = opportunity.history
        if not history:
            return
        first = history[0]
        # A history ends in the deal's stage (the Opportunity checks it): one move from nowhere
        # is its first placement.
        placed = (
            len(history) == 1
            and first.from_stage is None
            and first.at <= now
            and first.at.astimezone(now.tzinfo).date() == now.date()
        )
        if not placed:
            raise ValidationError(
                "history",
                f"{len(history)} move{'s' if len(history) > 1 else ''}, the first into "
                f"{first.to_stage!r} at {first.at.isoformat()}",
                f"no moves, or only the deal's first placement into {opportunity.stage!r} today, "
                f"at or before {now.isoformat()}: the desk records each move as it happens "
                "(move_opportunity); "
                "past deals come in with their history through import_opportunities",
                where=f"opportunity {opportunity.id!r}",
            )

    def _refuse_future_creation(self, opportunity: Opportunity) -> datetime:
        """Refuse a deal created after today; the clock's time."""
        now = self.now()
        created = opportunity.created
        if created is not None and created > now.date():
            raise ValidationError(
                "created",
                created,
                f"today ({now.date()}) or a day before it",
                where=f"opportunity {opportunity.id!r}",
            )
        return now

    def update_opportunity(
        self, actor: Actor, opportunity: Opportunity
    ) -> CommandResult[Opportunity]:
        """Store changed attributes of an opportunity read at ``opportunity.version`` (stage
        changes go through :meth:`move_opportunity`). When a deal was created does not change
        once it is stored (a deal stored without that date may be given one, not in the
        future)."""
        if not isinstance(opportunity, Opportunity):
            raise InvalidTypeError("opportunity", opportunity, "an Opportunity")

        def work(uow: UnitOfWork, events: list[Event]) -> Opportunity:
            stored = uow.opportunities.get(opportunity.id)
            self.authorize(actor, "opportunity.update", stored, after=opportunity)
            if opportunity.version != stored.version:
                raise ConcurrencyError(
                    "opportunity", opportunity.id, opportunity.version, stored.version
                )
            if opportunity.stage != stored.stage or opportunity.history != stored.history:
                raise ValidationError(
                    "stage", opportunity.stage, f"{stored.stage!r} (use move_opportunity)"
                )
            if opportunity.created != stored.created:
                if stored.created is not None:
                    raise ValidationError(
                        "created",
                        opportunity.created,
                        f"{stored.created} (when a deal was created does not change)",
                        where=f"opportunity {opportunity.id!r}",
                    )
                self._refuse_future_creation(opportunity)
            saved = uow.opportunities.save(opportunity)
            changed = sorted(
                field.name
                for field in attrs.fields(Opportunity)
                if field.name != "version"
                and getattr(stored, field.name) != getattr(saved, field.name)
            )
            events.append(
                self.event("opportunity_updated", "opportunity", saved.id, actor, changed=changed)
            )
            return saved

        return self.run(work)

    def move_opportunity(
        self,
        actor: Actor,
        id: str,
        stage: str,
        *,
        version: int | None = None,
        reason: str | None = None,
        note: str | None = None,
    ) -> CommandResult[Opportunity]:
        """Move opportunity ``id`` to ``stage`` (a key or display name) now, recording the move in
        its history. With ``version`` the move applies only if nobody changed the opportunity
        since. A move into a lost stage needs a ``reason`` from the plan's lost reasons and may
        carry a ``note``; a move elsewhere takes neither (see
        :meth:`~salesflow.domain.opportunities.Opportunity.move_to`). A refused move changes
        nothing. The ``opportunity_moved`` event carries ``from`` and ``to``, and ``reason`` and
        ``note`` on a move into a lost stage."""
        key = self.plan.resolve(stage).key  # a stage the plan does not know raises StageError
        check_lost_reason(self.plan, key, reason, note)  # before anything is read or written

        def work(uow: UnitOfWork, events: list[Event]) -> Opportunity:
            stored = uow.opportunities.get(id)
            self.authorize(actor, "opportunity.move", stored)
            if version is not None and version != stored.version:
                raise ConcurrencyError("opportunity", id, version, stored.version)
            previous = stored.stage
            if previous == self.plan.won_stage.key and key != previous:
                self._refuse_reopening(uow, stored)
            moved = stored.move_to(key, self.now(), plan=self.plan, reason=reason, note=note)
            saved = uow.opportunities.save(moved)
            data: dict[str, Any] = {"from": previous, "to": key}
            if self.plan.is_lost(key):
                data.update(reason=moved.history[-1].reason, note=moved.history[-1].note)
            events.append(self.event("opportunity_moved", "opportunity", saved.id, actor, **data))
            return saved

        return self.run(work)

    def _refuse_reopening(self, uow: UnitOfWork, won: Opportunity) -> None:
        """A deal a signed contract won stays won: reopening it would count it as both signed
        and expected."""
        for contract in uow.contracts.query(opportunity_id=won.id):
            if contract.is_signed:
                raise TransitionNotAllowedError(
                    "move",
                    won.stage,
                    f"opportunity {won.id!r}",
                    f"contract {contract.id!r} signed on {contract.signed_on} won it",
                )

    def import_opportunities(
        self,
        actor: Actor,
        source: Source,
        *,
        mapping: Mapping[str, Column] | None = None,
        currency: str | None = None,
        dayfirst: bool | None = None,
        year_pivot: int | None = None,
        history: Mapping[str, Column] | None = None,
        batch_size: int = 10_000,
    ) -> CommandResult[int]:
        """Import a CSV file of new opportunities in one unit of work, streaming in batches (memory
        stays flat however large the file). A bad row, an unknown stage, a duplicate id or an
        opportunity the actor may not create rolls the whole import back. ``dayfirst``,
        ``year_pivot`` and ``history`` are read as :func:`salesflow.iter_opportunities` reads
        them (``dayfirst=None``: the file decides, and an ambiguous file is refused)."""

        def authorized(rows: Iterable[Opportunity]) -> Iterable[Opportunity]:
            for opportunity in rows:
                self.authorize(actor, "opportunity.import", opportunity)
                yield opportunity

        def work(uow: UnitOfWork, events: list[Event]) -> int:
            rows = iter_opportunities(
                source,
                plan=self.plan,
                mapping=mapping,
                currency=currency,
                dayfirst=dayfirst,
                year_pivot=year_pivot,
                history=history,
            )
            count = uow.opportunities.add_many(authorized(rows), batch_size=batch_size)
            events.append(
                self.event(
                    "opportunities_imported",
                    "opportunity",
                    "*",
                    actor,
                    count=count,
                    source=str(getattr(source, "name", source)),
                )
            )
            return count

        return self.run(work)

    # -- reads ------------------------------------------------------------------------------------------

    def opportunity(self, id: str, *, actor: Actor | None = None) -> Opportunity:
        """The stored opportunity ``id`` (for ``actor``, if given: refused when they may not read
        it)."""
        with self.storage.transaction() as uow:
            found = uow.opportunities.get(id)
        return self.readable(actor, "opportunity", found)

    def opportunities(self, *, actor: Actor | None = None, **filters: Any) -> list[Opportunity]:
        """The stored opportunities matching ``filters`` (see
        :meth:`salesflow.ports.OpportunityRepository.query`), ordered by id; with ``actor``,
        only those the actor may read."""
        with self.storage.transaction() as uow:
            return list(self.visible(actor, "opportunity", uow.opportunities.query(**filters)))

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
        actor: Actor | None = None,
    ) -> Forecast:
        """The forecast of everything stored, as of ``as_of`` (the clock's date by default),
        pushed down to the database where the backend can; with ``actor``, of the opportunities
        the actor may read. With ``convert=True`` amounts are converted into ``currency`` with the
        rates of the ``salesflow_get_exchange_rate`` hook."""
        rates = PluginRates(self.plugins) if convert else None
        with self.storage.transaction() as uow:
            return self.stored_forecast(
                uow,
                actor,
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
        actor: Actor | None = None,
        **filters: Any,
    ) -> Funnel:
        """The stage funnel (R4) of the stored opportunities matching ``filters`` (and readable
        by ``actor``, if given), streamed from storage in one pass."""
        with self.storage.transaction() as uow:
            return funnel(
                self.visible(actor, "opportunity", uow.opportunities.query(**filters)),
                self.plan,
                by=by,
                include_lost=include_lost,
                places=places,
            )

    def lost_reasons(
        self,
        *,
        by: Sequence[str] | str = ("owner",),
        teams: Mapping[str, Iterable[str]] | None = None,
        missing: str = MISSING,
        places: int = 1,
        created: WindowLike = None,
        closed: WindowLike = None,
        actor: Actor | None = None,
        **filters: Any,
    ) -> LostReasons:
        """Why the stored lost opportunities matching ``filters`` (and readable by ``actor``, if
        given) were lost (see :func:`~salesflow.analytics.lost_reasons.lost_reasons`): only the
        plan's lost stages are read from storage (a ``stage`` filter narrows them further),
        streamed in one pass. ``created=`` and ``closed=`` count only the deals created, or
        lost, in those windows (see :mod:`salesflow.analytics.windows`; the day of a move is its
        date in the desk's ``timezone``, UTC when it has none)."""
        lost = [s.key for s in self.plan.lost_stages]
        stages = narrow_stages(lost, filters.pop("stage", None))
        with self.storage.transaction() as uow:
            return lost_reasons(
                select_window(
                    self, uow, actor, created=created, closed=closed, stage=stages, **filters
                ),
                self.plan,
                by=by,
                teams=teams,
                missing=missing,
                places=places,
                created=created,
                closed=closed,
                tz=self.timezone,
            )
