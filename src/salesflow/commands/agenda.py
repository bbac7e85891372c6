"""SalesDesk's agenda and daily alerts: what each actor should act on today, and telling them.

:meth:`AgendaCommands.agenda` is :func:`~salesflow.analytics.agenda.agenda` over what is stored,
for one actor: a rep sees the items of their own records, a sales manager those of their teams (and
their own), an organisation-wide role everything, always as the ``salesflow_authorize`` hook says
(``<kind>.read`` on each item, which carries the record's ``owner`` and ``team``; a task's team is
its deal's, else its owner's: the team the rules' team members list them in when they list them
in one, else one of their deals'), plus the approvals waiting for the actor
(:meth:`~salesflow.commands.approvals.ApprovalCommands.waiting_for`). Funnel deviations are for the
rep's managers, not for the rep.

The selection is pushed down to storage where it pays: open deals only (``stage``), a rep's own
(``owner``) or a manager's teams' (``team``); open tasks due by the day (``status``, ``due``); calls
of the stalled window only (``started_at``). A deal's activity is read from the calls and tasks of
the owners of the deals the reader sees (a call or task on a deal is its owner's, as a rule).

:meth:`AgendaCommands.run_daily` computes the day's alerts for everyone once: each alert
(:class:`~salesflow.domain.alerts.Alert`) is stored under its key ``"<on>/<name>/<record kind>/<record
id>"`` in the same unit of work as its event, so a second run on the same day (or a run racing it)
emits nothing new. Only an administrator runs it (the scheduler acts as one).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import attrs

from salesflow.adapters.authorization import TeamScope
from salesflow.analytics.agenda import Agenda, AgendaItem, AgendaKind, AgendaSettings, agenda
from salesflow.commands.approvals import ApprovalCommands, replayed
from salesflow.commands.core import CommandResult
from salesflow.domain.actors import Actor, Role
from salesflow.domain.alerts import Alert
from salesflow.domain.approvals import ApprovalRequest, ApprovalState, waiting_for
from salesflow.domain.events import Event
from salesflow.domain.tasks import TaskStatus
from salesflow.errors import InvalidTypeError, NotAuthorizedError, ValidationError
from salesflow.ports import Between, UnitOfWork

__all__ = ["AgendaCommands"]

_READ_AS: Final = {
    "opportunity": "opportunity",
    "task": "task",
    "invoice": "contract",
    "milestone": "contract",
    "rep": "opportunity",
    "approval": "approval",
}
"""The kind whose ``.read`` permission an item of each record kind needs."""


@attrs.frozen
class _Whose:
    """What the hook is asked about when an actor reads another person's agenda."""

    owner: str
    team: str | None


@attrs.frozen
class _Scope:
    """What to ask storage for: ``None`` fields mean everything."""

    owner: str | None = None
    teams: tuple[str, ...] | None = None

    @property
    def everything(self) -> bool:
        return self.owner is None and self.teams is None


def _check_day(on: object) -> date:
    if type(on) is not date:
        raise InvalidTypeError("on", on, "a date (datetime.date)")
    return on


def _check_settings(settings: object) -> AgendaSettings:
    if settings is None:
        return AgendaSettings()
    if not isinstance(settings, AgendaSettings):
        raise InvalidTypeError("settings", settings, "AgendaSettings")
    return settings


class AgendaCommands(ApprovalCommands):
    """The agenda and the daily alerts on the desk."""

    def agenda(
        self,
        actor: Actor,
        *,
        on: date | None = None,
        settings: AgendaSettings | None = None,
        owner: str | None = None,
    ) -> Agenda:
        """What ``actor`` should act on, on ``on`` (today by default), most urgent first.

        Args:
            actor: whose agenda: a rep sees their own records' items, a sales manager their
                teams' (and the approvals waiting for them), an organisation-wide role all.
            on: the day.
            settings: what puts an item on the agenda (:class:`AgendaSettings` defaults).
            owner: only the items of this person's records (a manager looking at one rep's
                day); reading someone else's needs ``agenda.read`` on them (the builtin policy:
                their manager, or an organisation-wide role).

        Raises:
            NotAuthorizedError: ``owner`` is someone whose agenda the actor may not read.
            InvalidTypeError: a bad ``actor``, ``on`` or ``settings``.
        """
        if not isinstance(actor, Actor):
            raise InvalidTypeError("actor", actor, "an Actor")
        day = self.today() if on is None else _check_day(on)
        chosen = _check_settings(settings)
        if owner is not None and not isinstance(owner, str):
            raise InvalidTypeError("owner", owner, "a person's id or None")
        with self.storage.transaction() as uow:
            if owner is not None and owner != actor.id:
                teams = sorted(
                    {o.team for o in uow.opportunities.query(owner=owner) if o.team is not None}
                )
                subject = _Whose(owner, teams[0] if teams else None)
                self.authorize(actor, "agenda.read", subject)
            result = self._agenda(uow, actor, day, chosen)
        if owner is None:
            return result
        return Agenda((i for i in result if i.owner == owner), on=day, who=owner)

    def run_daily(
        self, actor: Actor, *, on: date | None = None, settings: AgendaSettings | None = None
    ) -> CommandResult[tuple[Alert, ...]]:
        """Emit the day's alerts once: every item of everyone's agenda on ``on`` (today by
        default) that raises an alert (:data:`~salesflow.analytics.agenda.ALERT_OF`) and was not
        emitted yet that day becomes an :class:`~salesflow.domain.alerts.Alert`, stored, and an
        event of the alert's name (``deal_slipping``, ``deal_stalled``, ``task_overdue``,
        ``approval_overdue``, ``invoice_overdue``, ``funnel_deviation``) whose data is
        :meth:`Alert.to_dict <salesflow.domain.alerts.Alert.to_dict>` plus the item's ``kind``
        and ``days``, handed to the ``salesflow_handle_event`` hook after the commit. Running it
        again that day emits nothing new; the next day emits what is still due.

        Only an administrator runs it (schedule it as one), and the authorization hook must allow
        ``alerts.run_daily``.

        Raises:
            NotAuthorizedError: the actor is not an administrator; nothing is stored or emitted.
            ValidationError: ``on`` is after today (the clock's date): nothing is stored.
        """
        if not isinstance(actor, Actor):
            raise InvalidTypeError("actor", actor, "an Actor")
        if not actor.has_role(Role.ADMIN):
            raise NotAuthorizedError(
                actor.id,
                "alerts.run_daily",
                "the daily alerts",
                "only an administrator runs them (schedule the job as one)",
            )
        self.authorize(actor, "alerts.run_daily", _Whose(actor.id, None))
        today = self.today()
        day = today if on is None else _check_day(on)
        if day > today:
            # Alerts emitted ahead of their day would be skipped when the day comes.
            raise ValidationError("on", day, f"today ({today.isoformat()}) or a day before it")
        chosen = _check_settings(settings)

        def work(uow: UnitOfWork, events: list[Event]) -> tuple[Alert, ...]:
            emitted = set(uow.alerts.ids(on=day))
            now = self.now()
            new: list[Alert] = []
            for item in self._agenda(uow, None, day, chosen):
                name = item.alert
                if name is None:
                    continue
                key = Alert.key_of(day, name, item.record_kind, item.record_id, item.parent_id)
                if key in emitted:
                    continue
                alert = Alert(
                    on=day,
                    name=name,
                    record_kind=item.record_kind,
                    record_id=item.record_id,
                    parent_id=item.parent_id,
                    owner=item.owner,
                    team=item.team,
                    reason=item.reason,
                    due=item.due,
                    emitted_at=now,
                )
                emitted.add(key)
                new.append(alert)
                data = {**alert.to_dict(), "kind": str(item.kind), "days": item.days}
                events.append(
                    Event(
                        name=name,
                        subject_kind=item.record_kind,
                        subject_id=item.record_id,
                        actor=actor.id,
                        at=now,
                        data=data,
                    )
                )
            uow.alerts.add_many(new)
            return tuple(new)

        return self.run(work)

    # -- selection -------------------------------------------------------------------------------

    def _scope(self, actor: Actor | None) -> _Scope:
        """What storage is asked for: a rep's own records, a manager's teams' and own, or all.
        Every record is still checked with the hook; the scope only narrows the reading."""
        if actor is None:
            return _Scope()
        roles = set(actor.roles)
        if roles == {Role.SALES_REP.value}:
            return _Scope(owner=actor.id)
        if roles and roles <= {Role.SALES_REP.value, Role.SALES_MANAGER.value}:
            return _Scope(owner=actor.id, teams=tuple(sorted(actor.teams)))
        if not roles:
            return _Scope(owner=actor.id, teams=())
        return _Scope()

    def _in_scope(self, scope: _Scope, query: Any, **filters: Any) -> list[Any]:
        """``query(**filters)`` for the scope's owner and teams, each record once."""
        if scope.everything:
            return list(query(**filters))
        found: dict[str, Any] = {}
        batches: list[Iterable[Any]] = [query(owner=scope.owner, **filters)]
        if scope.teams:
            batches.append(query(team=list(scope.teams), **filters))
        for batch in batches:
            for record in batch:
                found.setdefault(record.id, record)
        return [found[key] for key in sorted(found)]

    def _agenda(
        self, uow: UnitOfWork, actor: Actor | None, day: date, settings: AgendaSettings
    ) -> Agenda:
        scope = self._scope(actor)
        open_stages = [s.key for s in self.plan.open_stages]
        opportunities = self._in_scope(scope, uow.opportunities.query, stage=open_stages)
        contracts = [
            c
            for c in self._in_scope(scope, uow.contracts.query)
            if getattr(c, "signed_on", None) is not None
        ]
        owners = sorted({o.owner for o in opportunities} | {c.owner for c in contracts})
        if scope.owner is not None and scope.owner not in owners:
            owners.append(scope.owner)
        who: dict[str, Any] = {} if scope.everything else {"owner": owners}

        due = Between(None, day + timedelta(days=1))
        # A rep's own tasks; a manager's team's, whose members storage cannot name: every open
        # task due by the day (the status and due indexes keep that short), checked one by one.
        mine = {"owner": scope.owner} if scope.owner is not None and not scope.teams else {}
        tasks = {t.id: t for t in uow.tasks.query(status=TaskStatus.OPEN.value, due=due, **mine)}
        for task in uow.tasks.query(**who):  # activity: tasks created or closed on the deals
            if task.opportunity_id is not None:
                tasks.setdefault(task.id, task)
        if not scope.everything:
            # A task on someone else's deal belongs to that deal's team, as in everyone's agenda;
            # the deal's own items are then left out by the read check.
            loaded = {o.id for o in opportunities}
            people = set(owners)
            linked = {
                t.opportunity_id
                for t in tasks.values()
                if t.opportunity_id is not None and t.is_open and t.due <= day and t.owner in people
            }
            for id in sorted(linked - loaded):
                found = uow.opportunities.find(id)
                if found is not None and self.plan.is_open(found.stage):
                    opportunities.append(found)

        # The calls of the window, with a day's margin each side for the zone of the day.
        start = day - timedelta(days=settings.stalled_after_days)
        window = Between(
            datetime.combine(start, time(), UTC),
            datetime.combine(day + timedelta(days=2), time(), UTC),
        )
        calls = [
            c for c in uow.calls.query(started_at=window, **who) if c.opportunity_id is not None
        ]

        billings = {}
        signed = {c.id for c in contracts}
        if signed:
            candidates = uow.billings.query(**who)
            billings = {b.contract_id: b for b in candidates if b.contract_id in signed}

        if actor is None:
            approvals: Iterable[ApprovalRequest] = [
                replayed(r) for r in uow.approvals.query(state=ApprovalState.PENDING.value)
            ]
        else:
            approvals = self._waiting(uow, actor, day)

        result = agenda(
            on=day,
            opportunities=opportunities,
            tasks=tasks.values(),
            calls=calls,
            approvals=approvals,
            contracts=contracts,
            billings=billings,
            plan=self.plan,
            settings=settings,
            tz=self.timezone,
            who=None if actor is None else actor.id,
            teams=self._member_teams(),
        )
        if actor is None:
            return result
        return Agenda(
            (item for item in result if self._shows(actor, item)),
            on=day,
            who=actor.id,
        )

    def _member_teams(self) -> dict[str, str]:
        """owner -> team, for the owners the team-scope policy in force lists in exactly one
        team: an item of a record without a team (a task with no deal, an approval) then carries
        the team the reads put it in. An owner in several teams keeps the agenda's own rule."""
        teams: dict[str, set[str]] = {}
        for plugin in self.plugins.get_plugins():
            if isinstance(plugin, TeamScope):
                for team, members in plugin.team_members.items():
                    for member in members:
                        teams.setdefault(member, set()).add(team)
        return {owner: next(iter(found)) for owner, found in teams.items() if len(found) == 1}

    def _waiting(self, uow: UnitOfWork, actor: Actor, day: date) -> list[ApprovalRequest]:
        """The pending requests ``actor`` may decide on ``day`` (as
        :meth:`~salesflow.commands.approvals.ApprovalCommands.waiting_for`, in this unit of
        work)."""
        pending = [replayed(r) for r in uow.approvals.query(state=ApprovalState.PENDING.value)]
        grants = self._delegations(uow, day)
        found = waiting_for(pending, actor, on=day, delegations=grants)
        return [r for r in found if self._may_decide(uow, actor, r, day, grants)]

    def _shows(self, actor: Actor, item: AgendaItem) -> bool:
        """Whether ``item`` is on ``actor``'s agenda."""
        if item.record_kind == "approval":
            return True  # chosen by waiting_for: the actor is to decide it
        if item.kind is AgendaKind.FUNNEL_DEVIATION and item.owner == actor.id:
            return False  # for the rep's managers
        return self.allows(actor, f"{_READ_AS[item.record_kind]}.read", item)
