"""The plumbing every SalesDesk command shares: authorization, one unit of work, events after commit.

Every command takes the :class:`~salesflow.domain.actors.Actor` who acts and

1. asks the ``salesflow_authorize`` hook whether the actor may do it (a refusal raises
   :class:`~salesflow.errors.NotAuthorizedError` and changes nothing);
2. runs in one unit of work: everything it writes, including its events in the event log, commits
   together or not at all;
3. hands its events to the ``salesflow_handle_event`` hook after the commit. A handler that raises
   never undoes the change: the error is logged and returned in
   :attr:`CommandResult.handler_errors`.

Reads take an optional ``actor=``: given, they return only what the hook lets that actor read
(``<kind>.read``); without it the read is the system's own and sees everything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Generic, Self, TypeVar

import attrs
import pluggy

from salesflow.analytics.forecast import Forecast, forecast
from salesflow.domain.actors import Actor
from salesflow.domain.approvals import Workflow
from salesflow.domain.discounts import DiscountPolicy
from salesflow.domain.events import Event
from salesflow.domain.money import currency_exponent
from salesflow.domain.phones import PhoneSettings
from salesflow.domain.rules import default_discount_policy as _default_policy
from salesflow.domain.stages import StagePlan
from salesflow.domain.tasks import FollowUpMode, check_follow_up_mode
from salesflow.errors import InvalidTypeError, NotAuthorizedError, ValidationError
from salesflow.plugins.manager import get_plugin_manager
from salesflow.ports import Storage, UnitOfWork

__all__ = ["Clock", "CommandResult", "DeskCore", "HandlerError", "default_discount_policy"]

log = logging.getLogger("salesflow.desk")

T = TypeVar("T")
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def default_discount_policy() -> DiscountPolicy:
    """The policy of a desk that was given none: a rep may give up to 10 % per line and on average,
    a sales manager 20 %, a sales director 25 %; more needs nobody's approval because nobody may
    give it. Configure your own with ``salesflow.open(discount_policy=...)`` or
    ``desk.change_rules(...)``."""
    return _default_policy()


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


class DeskCore:
    """What every command group of :class:`~salesflow.desk.SalesDesk` builds on."""

    def __init__(
        self,
        storage: Storage,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        clock: Clock | None = None,
        plan: StagePlan | None = None,
        phones: PhoneSettings | None = None,
        timezone: tzinfo | None = None,
        discount_policy: DiscountPolicy | None = None,
        contract_workflow: Workflow | None = None,
        currency: str = "CNY",
        call_follow_up: FollowUpMode = "completed",
    ) -> None:
        if not isinstance(storage, Storage):
            raise InvalidTypeError("storage", storage, "a Storage (see salesflow.ports)")
        if plan is not None and not isinstance(plan, StagePlan):
            raise InvalidTypeError("plan", plan, "a StagePlan")
        if phones is not None and not isinstance(phones, PhoneSettings):
            raise InvalidTypeError("phones", phones, "PhoneSettings")
        if discount_policy is not None and not isinstance(discount_policy, DiscountPolicy):
            raise InvalidTypeError("discount_policy", discount_policy, "a DiscountPolicy")
        if timezone is not None and not isinstance(timezone, tzinfo):
            raise InvalidTypeError(
                "timezone", timezone, "a tzinfo such as ZoneInfo('Asia/Shanghai')"
            )
        self.storage = storage
        self.plugins = plugin_manager or get_plugin_manager()
        self.plan = plan or StagePlan.default()
        self.phone_settings = phones or PhoneSettings()
        """How phone numbers are read: default region, the company's own numbers."""
        self.timezone = timezone
        self.call_follow_up: FollowUpMode = check_follow_up_mode(call_follow_up)
        """What an answered call to a known contact with no open task leaves (``"completed"``: a
        done task; ``"open"``: a task for the next step; ``"off"``: nothing)."""
        if contract_workflow is not None and not isinstance(contract_workflow, Workflow):
            raise InvalidTypeError("contract_workflow", contract_workflow, "a Workflow")
        currency_exponent(currency)  # refuses a code that is not ISO 4217
        self.currency = currency
        """The reporting currency: what an empty report (nothing signed, nothing expected) is in."""
        self.contract_workflow = contract_workflow or Workflow.contract_default()
        """Who reviews a contract, in which order (sales manager -> project manager -> finance
        and legal unless configured)."""
        self.discount_policy = discount_policy or default_discount_policy()
        """Who may give which discount (:func:`default_discount_policy` unless configured)."""
        """The zone that decides which day (and month) a call belongs to (its own offset if None)."""
        self._clock = clock or _utc_now
        given = {
            "plan": plan,
            "discount_policy": discount_policy,
            "contract_workflow": contract_workflow,
        }
        self.code_rules: frozenset[str] = frozenset(k for k, v in given.items() if v is not None)
        """The parts of the sales rules this desk was given in code: they win over the stored
        rules, which it does not consult for them (see :mod:`salesflow.commands.rules`)."""
        self.load_rules()

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

    def authorize(
        self,
        actor: Actor,
        action: str,
        subject: Any,
        *,
        after: Any = None,
        role: str | None = None,
    ) -> None:
        """Raise :class:`~salesflow.errors.NotAuthorizedError` unless the ``salesflow_authorize``
        hook allows ``actor`` to do ``action`` on ``subject`` and, for a change, on ``after`` (the
        record as it would be): nobody moves a record into or out of a scope they lack."""
        if not isinstance(actor, Actor):
            raise InvalidTypeError("actor", actor, "an Actor")
        for record in (subject,) if after is None else (subject, after):
            if not self.allows(actor, action, record, role=role):
                label = getattr(record, "id", None) or type(record).__name__
                owner = getattr(record, "owner", None)
                team = getattr(record, "team", None)
                reason = "" if owner is None else f"it belongs to {owner!r}"
                if team is not None:
                    reason += f"{' in' if reason else 'it belongs to'} team {team!r}"
                if record is after:
                    reason += " after the change"
                raise NotAuthorizedError(
                    actor.id, action, f"{action.split('.')[0]} {label!r}", reason.strip()
                )

    def allows(self, actor: Actor, action: str, subject: Any, *, role: str | None = None) -> bool:
        """Whether the ``salesflow_authorize`` hook allows ``actor`` to do ``action`` on
        ``subject``."""
        hook = self.plugins.hook.salesflow_authorize
        return hook(actor=actor, action=action, subject=subject, role=role) is True

    def visible(self, actor: Actor | None, kind: str, records: Iterable[T]) -> Iterator[T]:
        """The ``records`` that ``actor`` may read (``<kind>.read``); all of them for ``None``
        (the system's own read)."""
        if actor is None:
            yield from records
            return
        if not isinstance(actor, Actor):
            raise InvalidTypeError("actor", actor, "an Actor or None (the system)")
        for record in records:
            if self.allows(actor, f"{kind}.read", record):
                yield record

    def readable(self, actor: Actor | None, kind: str, record: T) -> T:
        """``record`` if ``actor`` may read it (always for ``None``), else
        :class:`~salesflow.errors.NotAuthorizedError`."""
        if actor is not None:
            self.authorize(actor, f"{kind}.read", record)
        return record

    def stored_forecast(self, uow: UnitOfWork, actor: Actor | None, **options: Any) -> Forecast:
        """The forecast of the stored opportunities ``actor`` may read (all of them for
        ``None``, pushed down to the database where the backend can; an actor's is computed over
        the opportunities the authorization hook lets them read)."""
        if actor is None:
            return uow.opportunities.forecast(self.plan, **options)
        visible = self.visible(actor, "opportunity", uow.opportunities.query())
        return forecast(visible, self.plan, **options)

    def refuse_lifecycle(self, given: Any, kind: str, **expected: Any) -> None:
        """Refuse ``given`` (a record passed to a command) if a lifecycle field differs from what
        the command would produce: callers never set states, approvals, versions or totals."""
        for field, value in expected.items():
            actual = getattr(given, field)
            if actual != value:
                raise ValidationError(
                    field,
                    actual,
                    f"{value!r}: {field} is set by the desk's commands, never by the caller",
                    where=f"{kind} {getattr(given, 'id', '')!r}",
                )

    def run(self, work: Callable[[UnitOfWork, list[Event]], T]) -> CommandResult[T]:
        """Run ``work(uow, events)`` in one unit of work; store the events it appends there, in the
        same transaction; hand them to the event hook after the commit."""
        pending: list[Event] = []
        stored: list[Event] = []
        errors: list[HandlerError] = []
        with self.storage.transaction() as uow:
            value = work(uow, pending)
            # A backend that stores several events in one statement says so with append_all.
            append_all = getattr(uow.events, "append_all", None)
            if append_all is not None:
                stored = append_all(pending)
            else:
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

    def event(self, name: str, kind: str, subject: str, actor: Actor, **data: Any) -> Event:
        """An event of this command, stamped with the clock's time."""
        return Event(
            name=name,
            subject_kind=kind,
            subject_id=subject,
            actor=actor.id,
            at=self.now(),
            data=data,
        )

    # -- the sales rules (stored and versioned by salesflow.commands.rules) -------------------------

    def load_rules(self) -> None:
        """Put the stored sales rules in force for the parts not given in code (the desk's rule
        commands do; the core alone keeps what it was given)."""

    def rules_version_for(self, uow: UnitOfWork, part: str) -> int | None:
        """The version of the stored rules whose ``part`` a decision in ``uow`` is made under, or
        ``None`` when no stored rules are in force for it (the core alone has none)."""
        return None

    # -- lifetime ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the storage."""
        self.storage.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
