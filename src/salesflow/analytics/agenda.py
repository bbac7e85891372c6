"""The agenda: what a manager or a rep should act on today, most urgent first.

:func:`agenda` reads opportunities, follow-up tasks, calls, approval requests and signed contracts
with their billings (the domain objects, or any with the same attributes) and returns an
:class:`Agenda` of :class:`AgendaItem` values. Each item says what (``kind``), why (``reason``, a
sentence), which record (``record_kind`` and ``record_id``; ``parent_id`` is an invoice's or
milestone's contract and a rep's team), whose (``owner``, ``team``) and by when (``due``).

Rules (pinned by tests), for the day ``on`` and the :class:`AgendaSettings`:

* **Closing soon / slipped.** An open opportunity (by the plan) whose expected close is from ``on``
  to ``on + closing_within_days`` (both included) is ``deal_closing``, due on its expected close; one
  whose expected close is before ``on`` has slipped: ``deal_slipped``, due on its expected close.
* **Stalled.** An open opportunity is ``deal_stalled`` (due ``on``) when it had no activity in the
  last ``stalled_after_days`` days, ``on`` included: no stage change (its history, or its creation
  date), no call linked to it (``opportunity_id``, on the call's date) and no follow-up task linked
  to it created or closed, on a day ``d`` with ``on - stalled_after_days < d <= on``. With the
  default 21 a deal last moved on 1 November is stalled from 22 November on.
* **Follow-up tasks.** An open task due on ``on`` is ``task_due``; one due before is
  ``task_overdue``; both due on the task's due date.
* **Approvals.** Every pending request given is ``approval_waiting``, due when its current step
  started waiting plus the step's SLA (:attr:`~salesflow.domain.approvals.Step.sla_days`, else
  ``approval_sla_days``; without either, due on the day it started waiting and never overdue);
  ``approval_overdue`` once ``on`` is past that due date. Pass only the requests the reader is to
  decide (the desk passes :meth:`~salesflow.commands.approvals.ApprovalCommands.waiting_for`).
* **Collections** (:func:`~salesflow.analytics.receivables.receivables` on ``on``, per currency):
  each overdue invoice is ``invoice_overdue`` (due on its due date), each milestone due and not
  fully invoiced is ``milestone_due`` (due on its due date).
* **Funnel.** With a ``funnel_target``, the open opportunities of each team are put through
  :func:`~salesflow.analytics.funnel.funnel` by owner and
  :meth:`~salesflow.analytics.funnel.Funnel.deviations`; a rep with a deviation gets one
  ``funnel_deviation`` item (record kind ``"rep"``, due ``on``) naming every stage that is off.
* **Teams.** An item's team is its record's (an opportunity's, a contract's); a task's is its
  opportunity's, else its owner's; an approval's is its subject owner's. An owner's team is
  ``teams[owner]`` when given, else the smallest team among the owner's opportunities.
* **Order.** Most urgent first: by due date (the longest overdue first), then by kind in
  :class:`AgendaKind` order, then team, owner, record kind, parent and record id, so equal inputs
  always give the same agenda.

Everything here is pure: "today" is the ``on`` parameter.
"""

from __future__ import annotations

import enum
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, cast

import attrs

from salesflow.analytics.funnel import funnel
from salesflow.analytics.receivables import receivables
from salesflow.domain.approvals import ApprovalRequest, ApprovalState
from salesflow.domain.checks import check_count
from salesflow.domain.dates import to_date
from salesflow.domain.numbers import HUNDRED, ZERO, to_decimal, to_percent
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, ValidationError
from salesflow.tables import NEGATIVE, WARNING, Table, plot_bars

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["ALERT_OF", "Agenda", "AgendaItem", "AgendaKind", "AgendaSettings", "agenda"]

_MAX_DAYS: Final = 3660


class AgendaKind(enum.StrEnum):
    """Why an item is on the agenda; the order of the members breaks ties of equal due dates."""

    APPROVAL_OVERDUE = "approval_overdue"
    """A pending approval past its step's SLA."""
    INVOICE_OVERDUE = "invoice_overdue"
    """An invoice with money open after its due date."""
    TASK_OVERDUE = "task_overdue"
    """An open follow-up task due before today."""
    DEAL_SLIPPED = "deal_slipped"
    """An open deal whose expected close has passed."""
    DEAL_STALLED = "deal_stalled"
    """An open deal without a stage change, call or task for ``stalled_after_days``."""
    FUNNEL_DEVIATION = "funnel_deviation"
    """A rep whose funnel is off the target."""
    TASK_DUE = "task_due"
    """An open follow-up task due today."""
    APPROVAL_WAITING = "approval_waiting"
    """A pending approval within its SLA (or without one)."""
    MILESTONE_DUE = "milestone_due"
    """A billing milestone due and not fully invoiced."""
    DEAL_CLOSING = "deal_closing"
    """An open deal expected to close within ``closing_within_days``."""


_RANK: Final = {kind: i for i, kind in enumerate(AgendaKind)}

ALERT_OF: Final[Mapping[AgendaKind, str]] = {
    AgendaKind.DEAL_CLOSING: "deal_slipping",
    AgendaKind.DEAL_SLIPPED: "deal_slipping",
    AgendaKind.DEAL_STALLED: "deal_stalled",
    AgendaKind.TASK_OVERDUE: "task_overdue",
    AgendaKind.APPROVAL_OVERDUE: "approval_overdue",
    AgendaKind.INVOICE_OVERDUE: "invoice_overdue",
    AgendaKind.FUNNEL_DEVIATION: "funnel_deviation",
}
"""The alert (event name, :data:`~salesflow.domain.alerts.ALERT_NAMES`) each kind of item raises;
the other kinds (a task due today, an approval within its SLA, a milestone due) are on the agenda
without an alert."""


# -- settings ---------------------------------------------------------------------------------------


def _check_days(low: int, high: int) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if type(value) is not int or not low <= value <= high:
            raise ValidationError(
                attribute.name, value, f"a whole number of days from {low} to {high}"
            )

    return check


def _check_optional_days(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _check_days(0, 366)(_instance, attribute, value)


def _to_target(value: object) -> tuple[tuple[str, Decimal], ...] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidTypeError(
            "funnel_target", value, "a mapping of open stage key to percent, or None"
        )
    pairs = []
    for key, share in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidTypeError("funnel_target", key, "stage keys as strings")
        pairs.append((key, to_percent(share, f"funnel_target[{key!r}]")))
    total = sum((share for _key, share in pairs), ZERO)
    if total != HUNDRED:
        raise ValidationError(
            "funnel_target",
            dict(value),
            f"percentages that add up to 100 (these add up to {total})",
        )
    return tuple(sorted(pairs))


def _to_tolerance(value: object) -> Decimal:
    number = to_decimal(value, "funnel_tolerance")
    if number < 0:
        raise ValidationError("funnel_tolerance", value, "a fraction of zero or more, e.g. 0.5")
    return number


@attrs.frozen(kw_only=True)
class AgendaSettings:
    """What puts an item on the agenda (every field has a documented default).

    ``AgendaSettings(closing_within_days=7, funnel_target={"initial_contact": 40, ...})``. A bad
    value raises :class:`~salesflow.errors.ValidationError` naming the field.
    """

    closing_within_days: int = attrs.field(default=14, validator=_check_days(0, 366))
    """A deal expected to close within this many days from today is listed (0: today only)."""
    stalled_after_days: int = attrs.field(default=21, validator=_check_days(1, _MAX_DAYS))
    """A deal without activity (stage change, call, task) for this many days is stalled."""
    approval_sla_days: int | None = attrs.field(default=None, validator=_check_optional_days)
    """The SLA of a workflow step that has none of its own (``None``: such steps never run
    late)."""
    funnel_target: tuple[tuple[str, Decimal], ...] | None = attrs.field(
        default=None, converter=_to_target
    )
    """The target share (percent) of each open stage in a rep's open pipeline, adding up to 100,
    given as a mapping (kept as sorted pairs); ``None`` (the default) checks no funnel."""
    funnel_tolerance: Decimal = attrs.field(default=Decimal("0.5"), converter=_to_tolerance)
    """The accepted relative deviation from the target (``0.5``: half to one and a half times)."""
    funnel_min_opportunities: int = attrs.field(default=10, validator=check_count)
    """Reps with fewer open deals are not checked (small samples stay quiet)."""


# -- items and the result -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class AgendaItem:
    """One thing to act on: what, why, which record, whose, by when."""

    kind: AgendaKind
    """Why it is listed."""
    reason: str
    """The reason as a sentence a person reads."""
    record_kind: str
    """``"opportunity"``, ``"task"``, ``"approval"``, ``"invoice"``, ``"milestone"`` or
    ``"rep"``."""
    record_id: str
    """The record's id (a milestone's name, a rep's id)."""
    due: date
    """When it was or is due: the item's urgency."""
    days: int
    """``(on - due).days``: days late when positive, days left when negative."""
    owner: str | None = None
    """Whose it is (the rep)."""
    team: str | None = None
    """The owner's team on the record."""
    parent_id: str | None = None
    """The contract of an invoice or milestone, the team of a rep."""

    @property
    def alert(self) -> str | None:
        """The alert this item raises (see :data:`ALERT_OF`), or ``None``."""
        return ALERT_OF.get(self.kind)

    def sort_key(self) -> tuple[Any, ...]:
        """The agenda's order: due date, kind, team, owner, record kind, parent, record id."""
        return (
            self.due,
            _RANK[self.kind],
            self.team or "",
            self.owner or "",
            self.record_kind,
            self.parent_id or "",
            self.record_id,
        )

    def to_record(self) -> dict[str, Any]:
        """This item as a flat dict of plain values."""
        return {
            "due": self.due,
            "days": self.days,
            "kind": str(self.kind),
            "reason": self.reason,
            "record_kind": self.record_kind,
            "record_id": self.record_id,
            "parent_id": self.parent_id,
            "owner": self.owner,
            "team": self.team,
        }


_COLUMNS: Final = [
    "due",
    "days",
    "kind",
    "reason",
    "record_kind",
    "record_id",
    "parent_id",
    "owner",
    "team",
]


class Agenda(Table):
    """The items of :func:`agenda` (or ``desk.agenda()``), most urgent first: iterate it, or
    print it, or read it as records and a DataFrame."""

    def __init__(self, items: Iterable[AgendaItem], *, on: date, who: str | None = None) -> None:
        self.items: tuple[AgendaItem, ...] = tuple(sorted(items, key=AgendaItem.sort_key))
        """The items, most urgent first."""
        self.on = on
        """The day the agenda is for."""
        self.who = who
        """Whose agenda it is (an actor id), if known."""

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[AgendaItem]:
        return iter(self.items)

    def of_kind(self, *kinds: AgendaKind | str) -> tuple[AgendaItem, ...]:
        """The items of the given kinds, in agenda order."""
        wanted = {AgendaKind(kind) for kind in kinds}
        return tuple(item for item in self.items if item.kind in wanted)

    def counts(self) -> dict[str, int]:
        """How many items of each kind (kinds in :class:`AgendaKind` order, only those present)."""
        found = Counter(item.kind for item in self.items)
        return {str(kind): found[kind] for kind in AgendaKind if found[kind]}

    @property
    def caption(self) -> str:
        """Title of the printed table."""
        whose = f" of {self.who}" if self.who else ""
        return f"Agenda{whose} on {self.on.isoformat()} ({len(self.items)} items)"

    def to_records(self) -> list[dict[str, Any]]:
        """One record per item, most urgent first: ``due``, ``days`` (late when positive),
        ``kind``, ``reason``, ``record_kind``, ``record_id``, ``parent_id``, ``owner``, ``team``."""
        return [item.to_record() for item in self.items]

    def record_columns(self) -> list[str]:
        """The columns of :meth:`to_records`."""
        return list(_COLUMNS)

    def _tone(self, column: str, value: Any, record: dict[str, Any]) -> str | None:
        if column != "days" or not isinstance(value, int):
            return None
        return NEGATIVE if value > 0 else WARNING if value == 0 else None

    def plot(self, ax: Axes | None = None, **kw: Any) -> Axes:
        """A bar per kind of item: how many of each."""
        counts = self.counts()
        title = kw.pop("title", self.caption)
        return plot_bars(
            ax, list(counts), {"items": [float(n) for n in counts.values()]}, title=title, **kw
        )


# -- the calculator ---------------------------------------------------------------------------------


def _day(moment: datetime, tz: tzinfo | None) -> date:
    return (moment if tz is None else moment.astimezone(tz)).date()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _team_of_owners(opportunities: Iterable[Any]) -> dict[str, str]:
    teams: dict[str, str] = {}
    for opp in opportunities:
        if opp.team is not None and (opp.owner not in teams or opp.team < teams[opp.owner]):
            teams[opp.owner] = opp.team
    return teams


def agenda(
    *,
    on: date | str,
    opportunities: Iterable[Any] = (),
    tasks: Iterable[Any] = (),
    calls: Iterable[Any] = (),
    approvals: Iterable[ApprovalRequest] = (),
    contracts: Iterable[Any] = (),
    billings: Iterable[Any] | Mapping[str, Any] = (),
    plan: StagePlan | None = None,
    settings: AgendaSettings | None = None,
    teams: Mapping[str, str] | None = None,
    tz: tzinfo | None = None,
    who: str | None = None,
) -> Agenda:
    """What to act on, on day ``on``, most urgent first (the rules are in the module docs).

    Args:
        on: the day (a ``date`` or ISO text).
        opportunities: :class:`~salesflow.Opportunity` values (or objects with ``id``, ``owner``,
            ``team``, ``stage``, ``expected_close``, ``created`` and ``history``).
        tasks: :class:`~salesflow.domain.tasks.FollowUpTask` values.
        calls: :class:`~salesflow.domain.calls.CallRecord` values (only their opportunity links
            and dates are read: they are activity).
        approvals: the :class:`~salesflow.domain.approvals.ApprovalRequest` values to decide
            (pending ones are listed).
        contracts: contracts (see :func:`~salesflow.analytics.receivables.receivables`) and
            ``billings`` their billings.
        plan: the stage plan (``StagePlan.default()`` when omitted).
        settings: the :class:`AgendaSettings` (the defaults when omitted).
        teams: owner -> team, for records without a team of their own.
        tz: the zone that decides the day of a stage change, call or task (each one's own offset
            when ``None``).
        who: whose agenda it is (shown in the caption).

    Raises:
        ValidationError: a bad argument, or a funnel target naming a stage that is not open.
        StageError: an opportunity's stage is not in the plan.
    """
    day = to_date(on, "on")
    plan = StagePlan.default() if plan is None else plan
    if not isinstance(plan, StagePlan):
        raise InvalidTypeError("plan", plan, "a StagePlan")
    settings = AgendaSettings() if settings is None else settings
    if not isinstance(settings, AgendaSettings):
        raise InvalidTypeError("settings", settings, "AgendaSettings")
    if teams is not None and not isinstance(teams, Mapping):
        raise InvalidTypeError("teams", teams, "a mapping of owner to team")
    if tz is not None and not isinstance(tz, tzinfo):
        raise InvalidTypeError("tz", tz, "a tzinfo or None")
    target = _target(plan, settings)

    opps = list(opportunities)
    team_of = _team_of_owners(opps)
    if teams is not None:
        team_of.update(teams)
    items: list[AgendaItem] = []
    open_opps = [o for o in opps if plan.is_open(o.stage)]
    by_id = {o.id: o for o in open_opps}

    # Activity in the window (day - N, day] keeps a deal from being stalled.
    window_start = day - timedelta(days=settings.stalled_after_days)

    def recent(d: date | None) -> bool:
        return d is not None and window_start < d <= day

    active: set[str] = set()
    for opp in open_opps:
        if recent(opp.created) or any(recent(_day(c.at, tz)) for c in opp.history):
            active.add(opp.id)
    for call in calls:
        if call.opportunity_id in by_id and recent(call.local_date(tz)):
            active.add(call.opportunity_id)
    task_list = list(tasks)
    for task in task_list:
        if task.opportunity_id in by_id and (
            (task.created_at is not None and recent(_day(task.created_at, tz)))
            or (task.closed_at is not None and recent(_day(task.closed_at, tz)))
        ):
            active.add(task.opportunity_id)

    horizon = day + timedelta(days=settings.closing_within_days)
    for opp in open_opps:
        common = {
            "record_kind": "opportunity",
            "record_id": opp.id,
            "owner": opp.owner,
            "team": opp.team,
        }
        name = f"{opp.name!r} ({opp.id})" if getattr(opp, "name", None) else repr(opp.id)
        close = opp.expected_close
        if close is not None and close < day:
            late = (day - close).days
            reason = (
                f"deal {name} was expected to close on {close.isoformat()}, "
                f"{_plural(late, 'day')} ago, and is still in {opp.stage}"
            )
            items.append(_item(day, AgendaKind.DEAL_SLIPPED, close, reason=reason, **common))
        elif close is not None and close <= horizon:
            left = (close - day).days
            when = "today" if left == 0 else f"in {_plural(left, 'day')}"
            reason = (
                f"deal {name} is expected to close {when} ({close.isoformat()}), in {opp.stage}"
            )
            items.append(_item(day, AgendaKind.DEAL_CLOSING, close, reason=reason, **common))
        if opp.id not in active:
            reason = (
                f"deal {name} has had no stage change, call or task in the last "
                f"{_plural(settings.stalled_after_days, 'day')}"
            )
            items.append(_item(day, AgendaKind.DEAL_STALLED, day, reason=reason, **common))

    for task in task_list:
        if not task.is_open or task.due > day:
            continue
        linked = by_id.get(task.opportunity_id) if task.opportunity_id else None
        team = linked.team if linked is not None else team_of.get(task.owner)
        about = f" ({task.subject})" if task.subject else ""
        if task.due == day:
            kind, reason = AgendaKind.TASK_DUE, f"follow-up task {task.id!r}{about} is due today"
        else:
            late = _plural((day - task.due).days, "day")
            kind = AgendaKind.TASK_OVERDUE
            reason = f"follow-up task {task.id!r}{about} is {late} overdue"
        items.append(
            _item(
                day,
                kind,
                task.due,
                reason=reason,
                record_kind="task",
                record_id=task.id,
                owner=task.owner,
                team=team,
            )
        )

    for request in approvals:
        if not isinstance(request, ApprovalRequest):
            raise InvalidTypeError("approvals", request, "ApprovalRequest values")
        items.extend(_approval_items(request, day, settings, team_of, tz))

    items.extend(_collection_items(contracts, billings, day))
    if target is not None:
        items.extend(_funnel_items(open_opps, plan, settings, target, day))
    return Agenda(items, on=day, who=who)


def _target(plan: StagePlan, settings: AgendaSettings) -> dict[str, Decimal] | None:
    if settings.funnel_target is None:
        return None
    open_keys = [s.key for s in plan.open_stages]
    for key, _share in settings.funnel_target:
        if key not in open_keys:
            raise ValidationError(
                "funnel_target", key, f"an open stage of the plan, one of {open_keys}"
            )
    return dict(settings.funnel_target)


def _item(day: date, kind: AgendaKind, due: date, **fields: Any) -> AgendaItem:
    """An item of ``kind`` due on ``due``, ``days`` past it on ``day`` (negative: still ahead)."""
    return AgendaItem(kind=kind, due=due, days=(day - due).days, **fields)


def _approval_items(
    request: ApprovalRequest,
    day: date,
    settings: AgendaSettings,
    team_of: Mapping[str, str],
    tz: tzinfo | None,
) -> list[AgendaItem]:
    step = request.current_step
    since = request.waiting_since
    if request.state is not ApprovalState.PENDING or step is None or since is None:
        return []
    started = _day(since, tz)
    waited = (day - started).days
    sla = step.sla_days if step.sla_days is not None else settings.approval_sla_days
    due = started if sla is None else started + timedelta(days=sla)
    roles = " and ".join(request.awaiting_roles)
    reason = (
        f"{request.subject} has waited {_plural(waited, 'day')} for {roles} at step {step.name!r}"
    )
    if sla is None:
        kind = AgendaKind.APPROVAL_WAITING
    elif day > due:
        kind = AgendaKind.APPROVAL_OVERDUE
        reason += f", past its SLA of {_plural(sla, 'day')} (due {due.isoformat()})"
    else:
        kind = AgendaKind.APPROVAL_WAITING
        reason += f", within its SLA of {_plural(sla, 'day')} (due {due.isoformat()})"
    owner = request.owner
    return [
        _item(
            day,
            kind,
            due,
            reason=reason,
            record_kind="approval",
            record_id=request.id,
            owner=owner,
            team=None if owner is None else team_of.get(owner),
        )
    ]


def _collection_items(
    contracts: Iterable[Any], billings: Iterable[Any] | Mapping[str, Any], day: date
) -> list[AgendaItem]:
    by_currency: dict[str, list[Any]] = defaultdict(list)
    for contract in contracts:
        if getattr(contract, "signed_on", None) is not None:
            by_currency[contract.amount.currency].append(contract)
    if not by_currency:
        return []
    billing_of: dict[str, Any] = {}
    if isinstance(billings, Mapping):
        billing_of.update(billings)
    else:
        for billing in cast("Iterable[Any]", billings):
            billing_of[billing.contract_id] = billing
    items: list[AgendaItem] = []
    for code in sorted(by_currency):
        for row in receivables(by_currency[code], billing_of, as_of=day):
            common = {"owner": row.owner, "team": row.team, "parent_id": row.contract_id}
            for invoice in row.overdue_invoices:
                reason = (
                    f"invoice {invoice.invoice_id!r} of contract {row.contract_id!r} has "
                    f"{invoice.open.amount} {invoice.open.currency} open, "
                    f"{_plural(invoice.days_overdue, 'day')} overdue"
                )
                items.append(
                    _item(
                        day,
                        AgendaKind.INVOICE_OVERDUE,
                        invoice.due_on,
                        reason=reason,
                        record_kind="invoice",
                        record_id=invoice.invoice_id,
                        **common,
                    )
                )
            for milestone in row.due_milestones:
                why = " (its trigger was met)" if milestone.due_on > day else ""
                reason = (
                    f"milestone {milestone.name!r} of contract {row.contract_id!r} is due"
                    f"{why}: {milestone.uninvoiced.amount} {milestone.uninvoiced.currency} "
                    "to invoice"
                )
                items.append(
                    _item(
                        day,
                        AgendaKind.MILESTONE_DUE,
                        milestone.due_on,
                        reason=reason,
                        record_kind="milestone",
                        record_id=milestone.name,
                        **common,
                    )
                )
    return items


def _funnel_items(
    open_opps: list[Any],
    plan: StagePlan,
    settings: AgendaSettings,
    target: dict[str, Decimal],
    day: date,
) -> list[AgendaItem]:
    by_team: dict[str | None, list[Any]] = defaultdict(list)
    for opp in open_opps:
        by_team[opp.team].append(opp)
    items: list[AgendaItem] = []
    for team in sorted(by_team, key=lambda t: (t is not None, t or "")):
        found = funnel(by_team[team], plan, by="owner").deviations(
            target,
            tolerance=settings.funnel_tolerance,
            min_opportunities=settings.funnel_min_opportunities,
        )
        per_owner: dict[str, list[Any]] = defaultdict(list)
        for deviation in found:
            per_owner[deviation.group].append(deviation)
        for owner, deviations in sorted(per_owner.items()):
            stages = ", ".join(
                f"{d.stage} {d.actual_share} % (target {d.target_share} %)" for d in deviations
            )
            n = deviations[0].opportunities
            reason = f"{owner}'s funnel is off target over {_plural(n, 'open deal')}: {stages}"
            items.append(
                _item(
                    day,
                    AgendaKind.FUNNEL_DEVIATION,
                    day,
                    reason=reason,
                    record_kind="rep",
                    record_id=owner,
                    owner=owner,
                    team=team,
                    parent_id=team,
                )
            )
    return items
