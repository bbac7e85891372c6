"""SalesDesk commands and reads for opportunities: add, update, move, import; forecast and funnel."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import attrs

from salesflow.analytics.forecast import Forecast
from salesflow.analytics.funnel import Funnel, funnel
from salesflow.commands.core import CommandResult, DeskCore
from salesflow.domain.actors import Actor
from salesflow.domain.events import Event
from salesflow.domain.opportunities import Opportunity
from salesflow.errors import ConcurrencyError, InvalidTypeError, ValidationError
from salesflow.plugins.manager import PluginRates
from salesflow.ports import UnitOfWork
from salesflow.tabular import Column, Source, iter_opportunities

__all__ = ["OpportunityCommands"]


class OpportunityCommands(DeskCore):
    """Opportunities (R1-R4) on the desk."""

    # -- commands ------------------------------------------------------------------------------

    def add_opportunity(self, actor: Actor, opportunity: Opportunity) -> CommandResult[Opportunity]:
        """Store a new opportunity (its stage must be in the plan)."""
        if not isinstance(opportunity, Opportunity):
            raise InvalidTypeError("opportunity", opportunity, "an Opportunity")
        self.plan.resolve(opportunity.stage)  # a stage the plan does not know raises StageError
        self.authorize(actor, "opportunity.create", opportunity)

        def work(uow: UnitOfWork, events: list[Event]) -> Opportunity:
            stored = uow.opportunities.add(opportunity)
            events.append(
                self.event(
                    "opportunity_created", "opportunity", stored.id, actor, stage=stored.stage
                )
            )
            return stored

        return self.run(work)

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
            events.append(
                self.event("opportunity_updated", "opportunity", saved.id, actor, changed=changed)
            )
            return saved

        return self.run(work)

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
                self.event(
                    "opportunity_moved",
                    "opportunity",
                    saved.id,
                    actor,
                    **{"from": previous, "to": stage},
                )
            )
            return saved

        return self.run(work)

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
