"""SalesDesk commands and reads for forecast truth: categories and their overrides, the range,
daily snapshots, movement between two days, accuracy and calibration.

* :meth:`ForecastCommands.set_forecast_category` lets whoever may change an opportunity (its owner,
  their manager, a director) put one open deal in another forecast category, with a reason; every
  change is appended to the deal's :class:`~salesflow.domain.forecasts.CategoryOverride` trail.
* :meth:`ForecastCommands.snapshot_forecast` stores the forecast lines of every opportunity as the
  desk sees them today, once per day (a second call that day returns the stored one and writes
  nothing). It is an organisation-wide act (``forecast.snapshot``: a director or an admin under
  the builtin policy).
* Reads take ``actor=`` and see only the opportunities (and lines, and contracts) that actor may
  read. The lines of a past day come from that day's snapshot when one is stored, else from the
  stage history (:func:`~salesflow.analytics.forecast_lines.forecast_lines`, whose docs say what
  a reconstruction can and cannot know). Stage-change days are UTC dates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any, Literal

from salesflow.analytics.forecast_accuracy import (
    ForecastAccuracy,
    ForecastCalibration,
    forecast_accuracy,
    forecast_calibration,
)
from salesflow.analytics.forecast_categories import ForecastCategories, forecast_categories
from salesflow.analytics.forecast_lines import forecast_lines
from salesflow.analytics.forecast_movement import ForecastMovement, forecast_movement
from salesflow.analytics.forecast_range import ForecastRange, forecast_range
from salesflow.analytics.velocity import learned_probabilities
from salesflow.commands.core import CommandResult, DeskCore
from salesflow.domain.actors import Actor
from salesflow.domain.events import Event
from salesflow.domain.forecasts import (
    CategoryOverride,
    ForecastSnapshot,
    OverrideEntry,
    SnapshotLine,
)
from salesflow.domain.money import Money
from salesflow.domain.periods import Period, PeriodKind
from salesflow.domain.stages import ForecastCategory
from salesflow.errors import InvalidTypeError, TransitionNotAllowedError, ValidationError
from salesflow.ports import UnitOfWork

__all__ = ["ForecastCommands"]


def _day(value: object, field: str) -> date:
    if type(value) is not date:
        raise InvalidTypeError(field, value, "a date (not a datetime)")
    return value


class ForecastCommands(DeskCore):
    """Forecast categories, range, snapshots, movement and accuracy on the desk."""

    # -- category overrides ----------------------------------------------------------------------

    def set_forecast_category(
        self,
        actor: Actor,
        opportunity_id: str,
        category: ForecastCategory | str | None,
        *,
        reason: str,
    ) -> CommandResult[CategoryOverride]:
        """Put open opportunity ``opportunity_id`` in forecast ``category`` (``None``: back to its
        stage's), because of ``reason`` (required). Refused (nothing changes) for an actor who may
        not change the opportunity, a closed deal, ``closed`` or an unknown category, or a blank
        reason. The ``forecast_category_set`` event carries the category and the reason."""
        if not isinstance(actor, Actor):
            raise InvalidTypeError("actor", actor, "an Actor")
        if not isinstance(opportunity_id, str):
            raise InvalidTypeError("opportunity_id", opportunity_id, "an opportunity id")
        entry = OverrideEntry(category=category, reason=reason, actor=actor.id, at=self.now())

        def work(uow: UnitOfWork, events: list[Event]) -> CategoryOverride:
            stored = uow.opportunities.get(opportunity_id)
            self.authorize(actor, "opportunity.update", stored)
            if not self.plan.resolve(stored.stage).is_open:
                raise TransitionNotAllowedError(
                    "set the forecast category of",
                    stored.stage,
                    f"opportunity {opportunity_id!r}",
                    "only an open deal has a category to choose (won is closed, lost omitted)",
                )
            trail = uow.category_overrides.find(opportunity_id)
            if trail is None:
                saved = uow.category_overrides.add(
                    CategoryOverride(
                        opportunity_id=opportunity_id,
                        owner=stored.owner,
                        team=stored.team,
                        entries=(entry,),
                    )
                )
            else:
                saved = uow.category_overrides.save(
                    trail.append(entry, owner=stored.owner, team=stored.team)
                )
            events.append(
                self.event(
                    "forecast_category_set",
                    "opportunity",
                    opportunity_id,
                    actor,
                    category=None if entry.category is None else entry.category.value,
                    reason=entry.reason,
                )
            )
            return saved  # type: ignore[no-any-return]

        return self.run(work)

    def category_overrides(self, *, actor: Actor | None = None) -> dict[str, CategoryOverride]:
        """The stored category overrides (with their trails) by opportunity id; with ``actor``,
        those of the opportunities the actor may read."""
        with self.storage.transaction() as uow:
            return {
                o.opportunity_id: o
                for o in self.visible(actor, "opportunity", uow.category_overrides.query())
            }

    # -- lines -----------------------------------------------------------------------------------

    def _overrides(self, uow: UnitOfWork) -> dict[str, CategoryOverride]:
        return {o.opportunity_id: o for o in uow.category_overrides.query()}

    def _current_lines(self, uow: UnitOfWork, day: date) -> list[SnapshotLine]:
        return list(
            forecast_lines(
                uow.opportunities.query(), self.plan, as_of=day, overrides=self._overrides(uow)
            )
        )

    def _lines_at(self, uow: UnitOfWork, actor: Actor | None) -> Callable[[date], list[Any]]:
        """day -> the lines ``actor`` may read: the day's snapshot, else a reconstruction."""
        opportunities = list(uow.opportunities.query())
        overrides = self._overrides(uow)

        def lines_at(day: date) -> list[Any]:
            snapshot = uow.forecast_snapshots.find(day.isoformat())
            if snapshot is not None:
                lines: Iterable[SnapshotLine] = snapshot.lines
            else:
                lines = forecast_lines(opportunities, self.plan, as_of=day, overrides=overrides)
            return list(self.visible(actor, "opportunity", lines))

        return lines_at

    def forecast_lines(
        self, as_of: date, *, actor: Actor | None = None, reconstruct: bool = False
    ) -> list[SnapshotLine]:
        """The forecast lines of ``as_of``: that day's stored snapshot, else (or with
        ``reconstruct=True``) reconstructed from stage history; with ``actor``, only the lines of
        opportunities the actor may read."""
        day = _day(as_of, "as_of")
        with self.storage.transaction() as uow:
            if reconstruct:
                lines = forecast_lines(
                    uow.opportunities.query(), self.plan, as_of=day, overrides=self._overrides(uow)
                )
                return list(self.visible(actor, "opportunity", lines))
            return self._lines_at(uow, actor)(day)

    # -- snapshots -------------------------------------------------------------------------------

    def snapshot_forecast(
        self, actor: Actor, as_of: date | None = None
    ) -> CommandResult[ForecastSnapshot]:
        """Store today's forecast lines (every opportunity, as stored now, under the plan and
        rules in force). Once per day: when today's snapshot is stored already, return it and
        write nothing (no event). ``as_of`` may only be today (the clock's date): a past day can
        be reconstructed (:meth:`forecast_lines`) but not seen as it was."""
        if not isinstance(actor, Actor):
            raise InvalidTypeError("actor", actor, "an Actor")
        today = self.today()
        day = today if as_of is None else _day(as_of, "as_of")
        if day != today:
            raise ValidationError(
                "as_of", day, f"today ({today.isoformat()}): a snapshot records what is seen now"
            )
        probe = ForecastSnapshot(
            as_of=day, taken_at=self.now(), actor=actor.id, threshold=self.plan.threshold, lines=()
        )
        self.authorize(actor, "forecast.snapshot", probe)
        with self.storage.transaction() as uow:
            existing = uow.forecast_snapshots.find(day.isoformat())
        if existing is not None:
            return CommandResult(existing)

        def work(uow: UnitOfWork, events: list[Event]) -> ForecastSnapshot:
            found = uow.forecast_snapshots.find(day.isoformat())
            if found is not None:  # taken meanwhile by another desk
                return found  # type: ignore[no-any-return]
            snapshot = ForecastSnapshot(
                as_of=day,
                taken_at=probe.taken_at,
                actor=actor.id,
                threshold=self.plan.threshold,
                rules_version=self.rules_version_for(uow, "plan"),
                lines=self._current_lines(uow, day),
            )
            stored = uow.forecast_snapshots.add(snapshot)
            events.append(
                self.event(
                    "forecast_snapshot_taken",
                    "forecast_snapshot",
                    snapshot.id,
                    actor,
                    lines=len(snapshot.lines),
                )
            )
            return stored  # type: ignore[no-any-return]

        return self.run(work)

    def forecast_snapshot(
        self, as_of: date, *, actor: Actor | None = None
    ) -> ForecastSnapshot | None:
        """The stored snapshot of ``as_of`` (None when none was taken); with ``actor``, holding
        only the lines of opportunities the actor may read."""
        day = _day(as_of, "as_of")
        with self.storage.transaction() as uow:
            found: ForecastSnapshot | None = uow.forecast_snapshots.find(day.isoformat())
        if found is None or actor is None:
            return found
        visible = tuple(self.visible(actor, "opportunity", found.lines))
        return ForecastSnapshot(
            as_of=found.as_of,
            taken_at=found.taken_at,
            actor=found.actor,
            threshold=found.threshold,
            rules_version=found.rules_version,
            lines=visible,
        )

    # -- reads -----------------------------------------------------------------------------------

    def forecast_categories(
        self,
        *,
        as_of: date | None = None,
        by: Sequence[str] | str = ("owner",),
        kind: PeriodKind = "month",
        fiscal_year_start: int = 1,
        actor: Actor | None = None,
    ) -> ForecastCategories:
        """The forecast by category (with the stored overrides) as of ``as_of`` (today by
        default); see :func:`~salesflow.analytics.forecast_categories.forecast_categories`."""
        day = self.today() if as_of is None else _day(as_of, "as_of")
        with self.storage.transaction() as uow:
            return forecast_categories(
                self.visible(actor, "opportunity", uow.opportunities.query()),
                self.plan,
                as_of=day,
                overrides=self._overrides(uow),
                by=by,
                kind=kind,
                fiscal_year_start=fiscal_year_start,
            )

    def forecast_range(
        self,
        *,
        period: Period | str | None = None,
        by: Sequence[str] | str = (),
        learned: bool = False,
        target: Money | None = None,
        method: Literal["auto", "exact", "simulate"] = "auto",
        samples: int = 10_000,
        seed: int = 0,
        as_of: date | None = None,
        actor: Actor | None = None,
    ) -> ForecastRange:
        """The range of what the stored open deals will sign (see
        :func:`~salesflow.analytics.forecast_range.forecast_range`); ``learned=True`` uses the
        probabilities learned from the stored history up to ``as_of`` (today by default)."""
        day = self.today() if as_of is None else _day(as_of, "as_of")
        with self.storage.transaction() as uow:
            items = list(self.visible(actor, "opportunity", uow.opportunities.query()))
        probabilities = None
        if learned:
            probabilities = learned_probabilities(items, self.plan, as_of=day).probabilities()
        return forecast_range(
            items,
            self.plan,
            period=period,
            by=by,
            probabilities=probabilities,
            target=target,
            method=method,
            samples=samples,
            seed=seed,
        )

    def forecast_movement(
        self,
        start: date,
        end: date,
        *,
        period: Period | str | None = None,
        by: Sequence[str] | str = ("owner",),
        measure: Literal["weighted", "pipeline"] = "weighted",
        actor: Actor | None = None,
    ) -> ForecastMovement:
        """What moved between the forecasts of ``start`` and ``end`` (snapshots where stored,
        reconstructions otherwise); see
        :func:`~salesflow.analytics.forecast_movement.forecast_movement`."""
        first, second = _day(start, "start"), _day(end, "end")
        with self.storage.transaction() as uow:
            lines_at = self._lines_at(uow, actor)
            before, after = lines_at(first), lines_at(second)
        return forecast_movement(
            before,
            after,
            self.plan,
            start=first,
            end=second,
            period=period,
            by=by,
            measure=measure,
            currency=self.currency,
        )

    def forecast_accuracy(
        self,
        periods: Sequence[Period | str],
        *,
        lead_times: Sequence[int] = (30, 60, 90),
        by: Sequence[str] | str = ("owner",),
        measure: Literal["weighted", "commit"] = "weighted",
        actor: Actor | None = None,
    ) -> ForecastAccuracy:
        """The forecast of each of ``periods`` at each lead time against what was signed (formal
        contracts by signing date); see
        :func:`~salesflow.analytics.forecast_accuracy.forecast_accuracy`."""
        with self.storage.transaction() as uow:
            lines_at = self._lines_at(uow, actor)
            signed = [
                c
                for c in self.visible(actor, "contract", uow.contracts.query())
                if c.signed_on is not None
            ]
            return forecast_accuracy(
                lines_at,
                signed,
                self.plan,
                periods=periods,
                lead_times=lead_times,
                by=by,
                measure=measure,
                currency=self.currency,
            )

    def forecast_calibration(
        self, *, as_of: date | None = None, learned: bool = True, actor: Actor | None = None
    ) -> ForecastCalibration:
        """Brier score and calibration of the plan's (and learned) probabilities over the deals
        closed by ``as_of`` (today by default); see
        :func:`~salesflow.analytics.forecast_accuracy.forecast_calibration`."""
        day = self.today() if as_of is None else _day(as_of, "as_of")
        with self.storage.transaction() as uow:
            items = list(self.visible(actor, "opportunity", uow.opportunities.query()))
        return forecast_calibration(items, self.plan, as_of=day, learned=learned)
