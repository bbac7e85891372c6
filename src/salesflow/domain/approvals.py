"""The approval engine (R10, R12): workflows, approval requests, decisions, delegation and the audit.

The engine is a plain state machine over immutable values. It knows nothing about what is being
approved: a *subject* is anything with an id, a kind (``"contract"``, ``"quote"``...) and a content
hash that changes whenever the subject's content does (:func:`hash_content` makes one). The contract
and quote layers keep one :class:`ApprovalRequest` per subject under review and translate its events
into their own.

A :class:`Workflow` is an ordered tuple of :class:`Step` values; every role of a step must approve
before the next step starts, and a role appears in at most one step. States of a request:

``draft``
    Created, never submitted. Allowed: ``submit``.
``pending``
    Submitted and waiting at step :attr:`~ApprovalRequest.step_index`. Allowed: ``approve``,
    ``reject``, ``withdraw``.
``approved``
    Every role of every step approved in the current cycle. Final: nothing is allowed.
``rejected``
    An approver rejected it with a reason: the subject is back with its owner as a draft
    (:attr:`~ApprovalRequest.rejection_reason` says why). Allowed: ``resubmit``.
``withdrawn``
    The submitter took it back while it was pending. Allowed: ``resubmit``.

Every submission starts a *cycle* at step one; decisions count only within their cycle. Every action
returns an :class:`ActionResult` (the new request and the :class:`ApprovalEvent` values it produced),
bumps :attr:`~ApprovalRequest.version` by one and appends one :class:`AuditEntry`. A refused action
raises and returns nothing, so the request it was called on is all there is: nothing half-applied.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

import attrs

from salesflow.domain.actors import Actor, Role
from salesflow.domain.checks import (
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    as_date,
    as_datetime,
    as_enum,
    as_optional_datetime,
    as_tuple,
    check_bool,
    check_code,
    check_comment,
    check_count,
    check_id,
    check_name,
    check_optional_id,
    check_optional_name,
    check_positive,
    check_string,
)
from salesflow.domain.dates import to_aware_datetime
from salesflow.errors import (
    ApprovalError,
    ConcurrencyError,
    InvalidTypeError,
    NotAuthorizedError,
    TransitionNotAllowedError,
    ValidationError,
)

__all__ = [
    "ActionResult",
    "ApprovalAction",
    "ApprovalEvent",
    "ApprovalEventName",
    "ApprovalRequest",
    "ApprovalState",
    "AuditEntry",
    "Decision",
    "Delegation",
    "DelegationState",
    "DelegationStatus",
    "Step",
    "Workflow",
    "hash_content",
    "overlapping",
    "replay",
    "waiting_for",
]


_T = TypeVar("_T")


class ApprovalState(enum.StrEnum):
    """Where an approval request stands (see the module documentation for what each allows)."""

    DRAFT = "draft"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ApprovalAction(enum.StrEnum):
    """The actions the engine knows; each audit entry records one."""

    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    RESUBMIT = "resubmit"


class ApprovalEventName(enum.StrEnum):
    """Names of the events actions produce. The subject's layer maps them to its own
    (``approval_completed`` of a contract's request becomes ``contract_formal``)."""

    SUBMITTED = "approval_submitted"
    RESUBMITTED = "approval_resubmitted"
    REQUESTED = "approval_requested"
    GRANTED = "approval_granted"
    REJECTED = "approval_rejected"
    WITHDRAWN = "approval_withdrawn"
    COMPLETED = "approval_completed"


_ALLOWED: Mapping[ApprovalAction, frozenset[ApprovalState]] = {
    ApprovalAction.SUBMIT: frozenset({ApprovalState.DRAFT}),
    ApprovalAction.APPROVE: frozenset({ApprovalState.PENDING}),
    ApprovalAction.REJECT: frozenset({ApprovalState.PENDING}),
    ApprovalAction.WITHDRAW: frozenset({ApprovalState.PENDING}),
    ApprovalAction.RESUBMIT: frozenset({ApprovalState.REJECTED, ApprovalState.WITHDRAWN}),
}

_HINTS: Mapping[ApprovalState, str] = {
    ApprovalState.DRAFT: "submit it first",
    ApprovalState.PENDING: "it is already waiting for approval; withdraw it first to start over",
    ApprovalState.APPROVED: "approval is final; a changed subject needs a new request",
    ApprovalState.REJECTED: "resubmit it after making the change the rejection asks for",
    ApprovalState.WITHDRAWN: "resubmit it to start a new cycle",
}


# -- converters and validators ------------------------------------------------------------------


def _role_name(value: object, field: str = "role") -> str:
    """``value`` as a role name (a converter of the fields called ``role``)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, value, "a non-empty role name")
    check_string(value, field, MAX_ID_LENGTH)
    # A Role member is a str subclass; plain str keeps equality, hashing and dumps uniform.
    return str(value)


def _to_roles(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise InvalidTypeError("roles", value, "a role or an iterable of roles")
    roles: list[str] = []
    for item in value:
        role = _role_name(item, "roles")
        if role in roles:
            raise ValidationError("roles", role, "each role once per step")
        roles.append(role)
    if not roles:
        raise ValidationError("roles", (), "at least one role")
    return tuple(roles)


def _day_of(value: object) -> date:
    """The business date of a time (in its own offset) or a date."""
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValidationError("at", value, "a timezone-aware datetime")
        return value.date()
    if isinstance(value, date):
        return value
    raise InvalidTypeError("on", value, "a date or an aware datetime")


def _tuple_of(value: object, kind: type[_T], field: str) -> tuple[_T, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidTypeError(field, value, f"a sequence of {kind.__name__}")
    items = tuple(value)
    for i, item in enumerate(items):
        if not isinstance(item, kind):
            raise InvalidTypeError(f"{field}[{i}]", item, f"a {kind.__name__}")
    return items


def _check_keys(data: object, field: str, required: set[str], optional: set[str]) -> None:
    if not isinstance(data, Mapping):
        raise InvalidTypeError(field, data, f"a mapping with the keys {sorted(required)}")
    missing = required - set(data)
    if missing:
        raise ValidationError(field, sorted(missing), f"the keys {sorted(required)}")
    unknown = set(data) - required - optional
    if unknown:
        raise ValidationError(
            field, sorted(unknown), f"only the keys {sorted(required | optional)}"
        )


# -- workflows ----------------------------------------------------------------------------------

_MAX_SLA_DAYS = 366
"""The longest SLA a workflow step may have (days)."""


def _check_sla(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if type(value) is not int or not 0 <= value <= _MAX_SLA_DAYS:
        raise ValidationError(
            attribute.name, value, f"None or a whole number of days from 0 to {_MAX_SLA_DAYS}"
        )


@attrs.frozen
class Step:
    """One step of a workflow: a name and the roles that must ALL approve it.

    ``Step("finance_legal_review", ("finance", "legal"))`` waits for both finance and legal, in
    either order. Roles are role names (a :class:`~salesflow.domain.actors.Role` or any string),
    each at most once.
    """

    name: str = attrs.field(validator=check_name)
    roles: tuple[str, ...] = attrs.field(converter=_to_roles)
    sla_days: int | None = attrs.field(default=None, kw_only=True, validator=_check_sla)
    """How many days the step may wait for its roles (``None``: no SLA). A request is overdue at
    the step once it has waited longer: ``Step("review", ("legal",), sla_days=2)`` waited on
    Monday is due Wednesday and overdue on Thursday (see :func:`salesflow.agenda`)."""

    def to_dict(self) -> dict[str, Any]:
        """This step as a plain dict: ``{"name": ..., "roles": [...]}`` (and ``"sla_days"`` when
        the step has an SLA)."""
        data: dict[str, Any] = {"name": self.name, "roles": list(self.roles)}
        if self.sla_days is not None:
            data["sla_days"] = self.sla_days
        return data


@attrs.frozen
class Workflow:
    """A named, ordered tuple of steps: every role of a step approves before the next step starts.

    Validation: at least one step, unique step names, and each role in at most one step. The last
    rule keeps "which roles have approved in this cycle" a complete description of progress, and it
    follows from the house rule that one person approves at most one role per cycle: a role that
    came back in a later step would need a second person for the same role, which is a separate
    role in all but name (name it so).

    Segregation of duties: neither the subject's owner nor its submitter approves or rejects any
    step of it, whatever roles they hold. ``allow_self_approval=True`` relaxes that for this
    workflow, explicitly (a one-person team, a test setup); every decision that uses it says so in
    its audit entry (:attr:`AuditEntry.self_approval`).
    """

    name: str = attrs.field(validator=check_name)
    steps: tuple[Step, ...] = attrs.field(converter=as_tuple, metadata={"items": Step})
    allow_self_approval: bool = attrs.field(default=False, kw_only=True, validator=check_bool)
    """Whether the subject's owner and submitter may decide its steps (``False``: never)."""

    def __attrs_post_init__(self) -> None:
        if not self.steps:
            raise ValidationError("steps", (), "at least one step")
        names: set[str] = set()
        owner: dict[str, str] = {}
        for i, step in enumerate(self.steps):
            if step.name in names:
                raise ValidationError(f"steps[{i}].name", step.name, "a name used by no other step")
            names.add(step.name)
            for role in step.roles:
                if role in owner:
                    raise ValidationError(
                        f"steps[{i}].roles",
                        role,
                        f"roles not already in step {owner[role]!r} (a role decides in one step)",
                    )
                owner[role] = step.name

    @classmethod
    def contract_default(cls) -> Workflow:
        """The contract chain of R12: sales manager, then project manager, then finance AND legal."""
        return cls(
            "contract",
            (
                Step("sales_manager_review", (Role.SALES_MANAGER,)),
                Step("project_manager_review", (Role.PROJECT_MANAGER,)),
                Step("finance_legal_review", (Role.FINANCE, Role.LEGAL)),
            ),
        )

    @classmethod
    def one_step(cls, role: str, *, name: str = "quote_approval") -> Workflow:
        """A workflow with a single step decided by ``role`` (a quote discount beyond the rep's
        limit, approved by the sales manager: ``Workflow.one_step(Role.SALES_MANAGER)``)."""
        role = _role_name(role)
        return cls(name, (Step(f"{role}_review", (role,)),))

    @property
    def roles(self) -> tuple[str, ...]:
        """Every role of the workflow, in step order."""
        return tuple(role for step in self.steps for role in step.roles)

    def step_index_of(self, role: str) -> int | None:
        """The index of the step in which ``role`` decides, or ``None`` if no step names it."""
        for i, step in enumerate(self.steps):
            if role in step.roles:
                return i
        return None

    def to_dict(self) -> dict[str, Any]:
        """This workflow as a plain dict that :meth:`from_dict` reads back
        (``allow_self_approval`` only when it is set)."""
        data: dict[str, Any] = {"name": self.name, "steps": [step.to_dict() for step in self.steps]}
        if self.allow_self_approval:
            data["allow_self_approval"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Workflow:
        """Build a workflow from ``{"name": ..., "steps": [{"name": ..., "roles": [...]}, ...]}``
        (and optionally ``"allow_self_approval": true``, and a step's ``"sla_days"``).

        Errors name the offending step (``steps[2].roles``).
        """
        _check_keys(data, "workflow", {"name", "steps"}, {"allow_self_approval"})
        raw = data["steps"]
        if not isinstance(raw, list | tuple):
            raise InvalidTypeError("steps", raw, "a list of step dicts")
        steps = []
        for i, item in enumerate(raw):
            _check_keys(item, f"steps[{i}]", {"name", "roles"}, {"sla_days"})
            try:
                steps.append(Step(item["name"], item["roles"], sla_days=item.get("sla_days")))
            except ValidationError as exc:
                raise exc.located(f"steps[{i}]") from None
        return cls(data["name"], steps, allow_self_approval=data.get("allow_self_approval", False))


# -- delegation ---------------------------------------------------------------------------------


class DelegationState(enum.StrEnum):
    """Where a delegation stands at a given time (see :meth:`Delegation.state`)."""

    SCHEDULED = "scheduled"
    """Granted for days that have not come yet."""
    ACTIVE = "active"
    """Valid now: the delegate may decide for the role."""
    EXPIRED = "expired"
    """Its last day has passed."""
    REVOKED = "revoked"
    """Taken back (:meth:`Delegation.revoke`); it never counts again."""


@attrs.frozen(kw_only=True)
class Delegation:
    """``delegator`` lets ``delegate`` decide for ``role`` from ``valid_from`` to ``valid_until``
    (business dates, both inclusive; an action counts on the date of its ``at`` in its own offset)
    until it is revoked.

    Grant one with :meth:`grant`, which checks that the delegator holds the role (and, given the
    grant's time, that it does not start in the past); the plain constructor trusts that check was
    made when the delegation was granted (use it to load stored delegations). A delegate cannot
    pass the role on: only a holder of a role can delegate it.

    A delegation counts for a decision at time ``t`` when ``t``'s date lies in its days and it was
    not revoked at or before ``t`` (:meth:`covers`). Whether the delegator still holds the role is
    not checked at decision time (a delegation records the role as held when it was granted): when
    someone loses a role, their delegations of it are ended with :meth:`revoke` (by the delegator
    or an admin, on the desk: ``desk.revoke_delegation``). A revocation is kept, never deleted.
    """

    delegator: str = attrs.field(validator=check_id)
    delegate: str = attrs.field(validator=check_id)
    role: str = attrs.field(converter=_role_name)
    valid_from: date = attrs.field(converter=as_date)
    valid_until: date = attrs.field(converter=as_date)
    granted_at: datetime | None = attrs.field(default=None, converter=as_optional_datetime)
    """When it was granted (``None`` for grants stored before this was recorded)."""
    revoked_at: datetime | None = attrs.field(default=None, converter=as_optional_datetime)
    """When it was revoked; from that moment it no longer counts (``None``: not revoked)."""
    revoked_by: str | None = attrs.field(default=None, validator=check_optional_id)
    """Who revoked it (an actor id), when revoked."""
    revocation_reason: str | None = attrs.field(default=None, validator=check_comment)
    """Why it was revoked, when a reason was given."""

    def __attrs_post_init__(self) -> None:
        if self.delegate == self.delegator:
            raise ValidationError("delegate", self.delegate, "someone other than the delegator")
        if len(self.id) > MAX_ID_LENGTH:
            # The id keys the stored grant: it must fit an id column like any other id.
            raise ValidationError(
                "id",
                f"{self.id[:40]}...",
                f"a delegator, role and delegate short enough for an id of at most "
                f"{MAX_ID_LENGTH} characters (delegator/role/delegate/valid_from@granted_at)",
            )
        if self.valid_until < self.valid_from:
            raise ValidationError(
                "valid_until", self.valid_until, f"a date on or after {self.valid_from.isoformat()}"
            )
        if (self.revoked_at is None) != (self.revoked_by is None):
            raise ValidationError(
                "revoked_by", self.revoked_by, "set exactly when revoked_at is set"
            )
        if self.revoked_at is None and self.revocation_reason is not None:
            raise ValidationError(
                "revocation_reason", self.revocation_reason, "None unless revoked"
            )
        if (
            self.revoked_at is not None
            and self.granted_at is not None
            and self.revoked_at < self.granted_at
        ):
            raise ValidationError(
                "revoked_at",
                self.revoked_at,
                f"a time at or after the grant ({self.granted_at.isoformat()})",
            )

    @property
    def id(self) -> str:
        """The grant's identity, how storage keys it:
        ``"<delegator>/<role>/<delegate>/<valid_from>"``, then ``"@<granted_at in UTC>"`` when the
        grant time is known (so a grant revoked by mistake can be granted again the same day)."""
        key = f"{self.delegator}/{self.role}/{self.delegate}/{self.valid_from.isoformat()}"
        if self.granted_at is None:
            return key
        return f"{key}@{self.granted_at.astimezone(UTC).isoformat()}"

    @property
    def is_revoked(self) -> bool:
        """Whether it was revoked."""
        return self.revoked_at is not None

    @classmethod
    def grant(
        cls,
        delegator: Actor,
        *,
        delegate: Actor | str,
        role: str,
        valid_from: date | str,
        valid_until: date | str,
        at: datetime | str | None = None,
    ) -> Delegation:
        """``delegator`` delegates ``role`` to ``delegate`` for a date range.

        ``at``, when given, is when the grant is made: it is recorded as :attr:`granted_at`, and
        a grant that starts before ``at``'s date (backdated) is refused.

        Raises:
            NotAuthorizedError: the delegator does not hold the role.
            ValidationError: the delegate is the delegator, the days are out of order, or the
                grant starts before ``at``'s date.
        """
        if not isinstance(delegator, Actor):
            raise InvalidTypeError("delegator", delegator, "an Actor")
        role = _role_name(role)
        if not delegator.has_role(role):
            raise NotAuthorizedError(
                delegator.id,
                "delegate",
                f"role {role!r}",
                "they do not hold it; only a holder of a role can delegate it",
            )
        delegate_id = delegate.id if isinstance(delegate, Actor) else delegate
        made = cls(
            delegator=delegator.id,
            delegate=delegate_id,
            role=role,
            valid_from=valid_from,
            valid_until=valid_until,
            granted_at=None if at is None else to_aware_datetime(at, "at"),
        )
        if made.granted_at is not None and made.valid_from < made.granted_at.date():
            raise ValidationError(
                "valid_from",
                made.valid_from,
                f"a date on or after {made.granted_at.date().isoformat()}, the day it is granted "
                "(a delegation is never backdated)",
            )
        return made

    def revoke(self, by: str, *, at: datetime | str, reason: str | None = None) -> Delegation:
        """This delegation revoked by actor ``by`` at ``at``: it no longer counts from ``at`` on.

        Raises:
            TransitionNotAllowedError: it is revoked already.
            ValidationError: ``at`` is before the grant, or ``by`` or ``reason`` is blank.
        """
        moment = to_aware_datetime(at, "at")
        if self.revoked_at is not None:
            raise TransitionNotAllowedError(
                "revoke",
                DelegationState.REVOKED.value,
                f"delegation {self.id!r}",
                f"it was revoked by {self.revoked_by!r} at {self.revoked_at.isoformat()}",
            )
        if self.granted_at is not None and moment < self.granted_at:
            raise ValidationError(
                "at", moment, f"a time at or after the grant ({self.granted_at.isoformat()})"
            )
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            raise ValidationError("reason", reason, "a non-empty reason, or None")
        return attrs.evolve(
            self,
            revoked_at=moment,
            revoked_by=by,
            revocation_reason=None if reason is None else reason.strip(),
        )

    def state(self, at: datetime | date) -> DelegationState:
        """Where it stands at ``at`` (a time; a date means "at some time that day", so a grant
        revoked that day or earlier is revoked)."""
        day = _day_of(at)
        if self.revoked_at is not None and not self._before_revocation(at):
            return DelegationState.REVOKED
        if day < self.valid_from:
            return DelegationState.SCHEDULED
        if day > self.valid_until:
            return DelegationState.EXPIRED
        return DelegationState.ACTIVE

    def _before_revocation(self, at: datetime | date) -> bool:
        if self.revoked_at is None:
            return True
        if isinstance(at, datetime):
            return at < self.revoked_at
        return at < self.revoked_at.date()

    def covers(self, actor: str, role: str, on: datetime | date) -> bool:
        """Whether this delegation lets ``actor`` (an id) decide for ``role`` at ``on``: a time
        (its date in its own offset lies in the days, and it is before any revocation) or a date
        (in the days, and before the day of any revocation)."""
        day = _day_of(on)
        return (
            actor == self.delegate
            and role == self.role
            and self.valid_from <= day <= self.valid_until
            and self._before_revocation(on)
        )

    def overlaps(self, other: Delegation) -> bool:
        """Whether both are unrevoked grants of the same role by the same delegator sharing a day
        (a delegator hands one role to one delegate at a time)."""
        return (
            self.delegator == other.delegator
            and self.role == other.role
            and self.revoked_at is None
            and other.revoked_at is None
            and self.valid_from <= other.valid_until
            and other.valid_from <= self.valid_until
        )

    def to_dict(self) -> dict[str, Any]:
        """This delegation as a plain dict (dates in ISO 8601; the grant and revocation fields
        only when set)."""
        data: dict[str, Any] = {
            "delegator": self.delegator,
            "delegate": self.delegate,
            "role": self.role,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
        }
        if self.granted_at is not None:
            data["granted_at"] = self.granted_at.isoformat()
        if self.revoked_at is not None:
            data["revoked_at"] = self.revoked_at.isoformat()
            data["revoked_by"] = self.revoked_by
        if self.revocation_reason is not None:
            data["revocation_reason"] = self.revocation_reason
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Delegation:
        """A stored delegation from :meth:`to_dict`'s shape."""
        keys = {"delegator", "delegate", "role", "valid_from", "valid_until"}
        optional = {"granted_at", "revoked_at", "revoked_by", "revocation_reason"}
        _check_keys(data, "delegation", keys, optional)
        return cls(**{key: data[key] for key in keys | optional if key in data})


class DelegationStatus(NamedTuple):
    """A grant and where it stands at the time it was looked at (``desk.delegations()``)."""

    grant: Delegation
    state: DelegationState


def overlapping(grant: Delegation, grants: Iterable[Delegation]) -> Delegation | None:
    """The first of ``grants`` that ``grant`` overlaps (:meth:`Delegation.overlaps`), if any.

    A grant does not overlap itself (the same :attr:`~Delegation.id`)."""
    for other in _check_delegations(grants):
        if other.id != grant.id and grant.overlaps(other):
            return other
    return None


# -- records ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Decision:
    """One approval within the current cycle: which step, which role, who, for whom, when."""

    step: str = attrs.field(validator=check_name)
    role: str = attrs.field(converter=_role_name)
    actor: str = attrs.field(validator=check_id)
    at: datetime = attrs.field(converter=as_datetime)
    on_behalf_of: str | None = attrs.field(default=None, validator=check_optional_id)
    comment: str | None = attrs.field(default=None, validator=check_comment)

    @property
    def participants(self) -> frozenset[str]:
        """The people who decided: the actor, and the delegator they acted for (if any)."""
        if self.on_behalf_of is None:
            return frozenset({self.actor})
        return frozenset({self.actor, self.on_behalf_of})

    def to_dict(self) -> dict[str, Any]:
        """This decision as a plain dict (``at`` in ISO 8601)."""
        return {
            "step": self.step,
            "role": self.role,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "on_behalf_of": self.on_behalf_of,
            "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """A decision from :meth:`to_dict`'s shape."""
        _check_keys(data, "decision", {"step", "role", "actor", "at"}, {"on_behalf_of", "comment"})
        return cls(**dict(data))


_SELF_APPROVAL = ("owner", "submitter")


def _to_self_approval(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidTypeError("self_approval", value, f"a sequence of {list(_SELF_APPROVAL)}")
    items = tuple(value)
    if any(item not in _SELF_APPROVAL for item in items) or list(items) != sorted(set(items)):
        raise ValidationError(
            "self_approval", items, f"distinct items of {list(_SELF_APPROVAL)}, in that order"
        )
    return items


@attrs.frozen(kw_only=True)
class AuditEntry:
    """One line of a request's audit trail; the trail is append-only and replays to the request.

    Attributes:
        seq: position in the trail, 1 for the first action.
        at: when (timezone-aware), as given by the caller.
        actor: who acted (the delegate, when acting under a delegation).
        action: what they did.
        state_before: the request's state before the action.
        state_after: the request's state after it.
        version: the request's version after the action (equal to ``seq``).
        cycle: the submission cycle the action belongs to (1 for the first submission).
        role: the role decided for (approve, reject), else ``None``.
        on_behalf_of: the delegator, when the actor used a delegation.
        step: the step decided (approve, reject) or left (withdraw), else ``None``.
        comment: the approver's comment, the rejection's reason, or the submitter's note.
        content_hash: the subject's hash given with a submission or an approval.
        owner: the subject's owner as given with a submission (``None`` when not given).
        self_approval: for a decision that the workflow's ``allow_self_approval`` let through,
            which rules it relaxed: ``"owner"`` and/or ``"submitter"`` (the actor, or the
            delegator they acted for, owns or submitted the subject); empty otherwise.
    """

    seq: int = attrs.field(validator=check_positive)
    at: datetime = attrs.field(converter=as_datetime)
    actor: str = attrs.field(validator=check_id)
    action: ApprovalAction = attrs.field(converter=as_enum, metadata={"enum": ApprovalAction})
    state_before: ApprovalState = attrs.field(converter=as_enum, metadata={"enum": ApprovalState})
    state_after: ApprovalState = attrs.field(converter=as_enum, metadata={"enum": ApprovalState})
    version: int = attrs.field(validator=check_positive)
    cycle: int = attrs.field(validator=check_count)
    role: str | None = attrs.field(default=None, converter=attrs.converters.optional(_role_name))
    on_behalf_of: str | None = attrs.field(default=None, validator=check_optional_id)
    step: str | None = attrs.field(default=None, validator=check_optional_name)
    comment: str | None = attrs.field(default=None, validator=check_comment)
    content_hash: str | None = attrs.field(default=None, validator=check_optional_id)
    owner: str | None = attrs.field(default=None, validator=check_optional_id)
    self_approval: tuple[str, ...] = attrs.field(default=(), converter=_to_self_approval)

    def to_dict(self) -> dict[str, Any]:
        """This entry as a plain dict (enums as their values, ``at`` in ISO 8601)."""
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action.value,
            "state_before": self.state_before.value,
            "state_after": self.state_after.value,
            "version": self.version,
            "cycle": self.cycle,
            "role": self.role,
            "on_behalf_of": self.on_behalf_of,
            "step": self.step,
            "comment": self.comment,
            "content_hash": self.content_hash,
            "owner": self.owner,
            "self_approval": list(self.self_approval),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEntry:
        """An entry from :meth:`to_dict`'s shape (optional keys may be left out)."""
        required = {
            "seq",
            "at",
            "actor",
            "action",
            "state_before",
            "state_after",
            "version",
            "cycle",
        }
        optional = {"role", "on_behalf_of", "step", "comment", "content_hash", "owner"}
        optional |= {"self_approval"}
        _check_keys(data, "audit entry", required, optional)
        return cls(**dict(data))


def _to_event_roles(value: object) -> tuple[str, ...]:
    return tuple(_role_name(role, "roles") for role in _tuple_of(value, str, "roles"))


@attrs.frozen(kw_only=True)
class ApprovalEvent:
    """Something a service may tell people about, produced by an action.

    ``roles`` names the roles the event is about: the roles now awaited for
    ``approval_requested``, the role decided for ``approval_granted`` and ``approval_rejected``,
    empty otherwise. ``comment`` carries a rejection's reason or a withdrawal's note. ``version``
    is the request's version after the action, so a listener can tell which state it describes.
    """

    name: ApprovalEventName = attrs.field(converter=as_enum, metadata={"enum": ApprovalEventName})
    request_id: str = attrs.field(validator=check_id)
    subject_id: str = attrs.field(validator=check_id)
    subject_kind: str = attrs.field(validator=check_code)
    at: datetime = attrs.field(converter=as_datetime)
    actor: str = attrs.field(validator=check_id)
    version: int = attrs.field(validator=check_positive)
    cycle: int = attrs.field(validator=check_positive)
    step: str | None = attrs.field(default=None, validator=check_optional_name)
    roles: tuple[str, ...] = attrs.field(default=(), converter=_to_event_roles)
    on_behalf_of: str | None = attrs.field(default=None, validator=check_optional_id)
    comment: str | None = attrs.field(default=None, validator=check_comment)

    def to_dict(self) -> dict[str, Any]:
        """This event as a plain dict, ready for a notification hook or a message queue."""
        return {
            "name": self.name.value,
            "request_id": self.request_id,
            "subject_id": self.subject_id,
            "subject_kind": self.subject_kind,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "version": self.version,
            "cycle": self.cycle,
            "step": self.step,
            "roles": list(self.roles),
            "on_behalf_of": self.on_behalf_of,
            "comment": self.comment,
        }


class ActionResult(NamedTuple):
    """What an action returns: the new request and the events it produced, in order.

    Unpacks as a pair: ``request, events = request.approve(...)``.
    """

    request: ApprovalRequest
    events: tuple[ApprovalEvent, ...]


# -- the request --------------------------------------------------------------------------------


def _check_actor(actor: object) -> Actor:
    if not isinstance(actor, Actor):
        raise InvalidTypeError("actor", actor, "an Actor")
    return actor


def _check_hash(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            "content_hash", value, "the subject's content hash, a non-empty string"
        )
    return check_string(value, "content_hash", MAX_ID_LENGTH)


def _check_comment(value: object, field: str = "comment") -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidTypeError(field, value, "a string or None")
    return None if value is None else check_string(value, field, MAX_TEXT_LENGTH)


def _check_delegations(value: Iterable[Delegation]) -> tuple[Delegation, ...]:
    return _tuple_of(value, Delegation, "delegations")


@attrs.frozen(kw_only=True)
class ApprovalRequest:
    """One subject's way through a workflow: its state, this cycle's decisions and its audit trail.

    Create a draft with the identity fields only::

        request = ApprovalRequest(
            id="apr-1", subject_id="c-7", subject_kind="contract",
            workflow=Workflow.contract_default(),
        )

    then act on it; every action returns an :class:`ActionResult`. The other fields are state the
    engine maintains (pass them only when loading a stored request):

    Attributes:
        state: see :class:`ApprovalState`.
        submitter: the actor id who submitted the current cycle (``None`` in draft).
        step_index: the step waited for while pending; where it stopped when rejected or
            withdrawn; ``len(workflow.steps)`` once approved; 0 in draft.
        decisions: the approvals of the current cycle, in order (a resubmission clears them).
        cycle: the number of submissions so far (0 in draft).
        version: bumped by every action (0 in draft); a decision names the version it saw.
        content_hash: the subject's hash at the current cycle's submission.
        owner: the subject's owner as given with the current cycle's submission (``None`` when
            not given); neither they nor the submitter decide a step unless the workflow allows
            self-approval.
        audit: every action ever taken, oldest first; only ever appended to.
    """

    id: str = attrs.field(validator=check_id)
    subject_id: str = attrs.field(validator=check_id)
    subject_kind: str = attrs.field(validator=check_code)
    workflow: Workflow = attrs.field(validator=attrs.validators.instance_of(Workflow))
    state: ApprovalState = attrs.field(
        default=ApprovalState.DRAFT, converter=as_enum, metadata={"enum": ApprovalState}
    )
    submitter: str | None = attrs.field(default=None, validator=check_optional_id)
    step_index: int = attrs.field(default=0, validator=check_count)
    decisions: tuple[Decision, ...] = attrs.field(
        default=(), converter=as_tuple, metadata={"items": Decision}
    )
    cycle: int = attrs.field(default=0, validator=check_count)
    version: int = attrs.field(default=0, validator=check_count)
    content_hash: str | None = attrs.field(default=None, validator=check_optional_id)
    audit: tuple[AuditEntry, ...] = attrs.field(
        default=(), converter=as_tuple, metadata={"items": AuditEntry}
    )
    owner: str | None = attrs.field(default=None, validator=check_optional_id)

    def __attrs_post_init__(self) -> None:
        last = len(self.workflow.steps)
        if self.state is ApprovalState.PENDING:
            last -= 1
        if self.step_index > last:
            raise ValidationError(
                "step_index", self.step_index, f"0 to {last} for this workflow while {self.state}"
            )

    # -- reading --------------------------------------------------------------------------------

    @property
    def subject(self) -> str:
        """How errors and messages name the subject, such as ``contract 'c-7'``."""
        return f"{self.subject_kind} {self.subject_id!r}"

    @property
    def current_step(self) -> Step | None:
        """The step waited for while pending, else ``None``."""
        if self.state is not ApprovalState.PENDING:
            return None
        return self.workflow.steps[self.step_index]

    @property
    def approved_roles(self) -> tuple[str, ...]:
        """The roles approved in the current cycle, in the order they approved."""
        return tuple(d.role for d in self.decisions)

    @property
    def awaiting_roles(self) -> tuple[str, ...]:
        """The roles of the current step that have not approved yet (empty unless pending)."""
        step = self.current_step
        if step is None:
            return ()
        done = set(self.approved_roles)
        return tuple(role for role in step.roles if role not in done)

    @property
    def submitted_at(self) -> datetime | None:
        """When the current cycle was submitted (``None`` in draft)."""
        for entry in reversed(self.audit):
            if entry.action in (ApprovalAction.SUBMIT, ApprovalAction.RESUBMIT):
                return entry.at
        return None

    @property
    def waiting_since(self) -> datetime | None:
        """When the current step started waiting (pending only, else ``None``)."""
        if self.state is not ApprovalState.PENDING:
            return None
        if self.step_index == 0:
            return self.submitted_at
        previous = self.workflow.steps[self.step_index - 1].name
        return max((d.at for d in self.decisions if d.step == previous), default=self.submitted_at)

    @property
    def rejection(self) -> AuditEntry | None:
        """The audit entry of the rejection, while the request is rejected."""
        if self.state is not ApprovalState.REJECTED:
            return None
        return self.audit[-1]

    @property
    def rejection_reason(self) -> str | None:
        """Why the request was rejected, while it is rejected."""
        entry = self.rejection
        return None if entry is None else entry.comment

    @property
    def is_final(self) -> bool:
        """Whether no action can change this request any more (it is approved)."""
        return self.state is ApprovalState.APPROVED

    def approvable_roles(
        self,
        actor: Actor,
        *,
        on: date | None = None,
        delegations: Iterable[Delegation] = (),
    ) -> tuple[str, ...]:
        """The awaited roles ``actor`` may approve now: held, or delegated to them for ``on``.

        Applies every rule of :meth:`approve` except the version and the content hash, which the
        approver supplies when acting. Delegations are considered only when ``on`` is given.
        """
        actor = _check_actor(actor)
        grants = _check_delegations(delegations)
        if grants and on is None:
            raise ValidationError("on", None, "the date to check the delegations against")
        roles = []
        for role in self.awaiting_roles:
            candidates = self._authorities(actor, role, on, grants)
            if any(
                self._decision_error(ApprovalAction.APPROVE, actor.id, behalf, role) is None
                for behalf in candidates
            ):
                roles.append(role)
        return tuple(roles)

    # -- actions --------------------------------------------------------------------------------

    def submit(
        self,
        actor: Actor,
        *,
        at: datetime | str,
        content_hash: str,
        owner: str | None = None,
        comment: str | None = None,
        version: int | None = None,
    ) -> ActionResult:
        """Submit a draft: the first cycle starts at step one.

        Anyone may submit; who may submit which subject is the subject layer's decision (a
        contract's owner, for instance). ``content_hash`` is the subject's hash now; approvals
        must present the same hash. ``owner`` is the subject's owner (an actor id): neither they
        nor the submitter decide any step of this cycle (unless the workflow allows
        self-approval); pass it whenever the subject has one. ``version``, when given, must be the
        current version.
        """
        return self._submission(
            ApprovalAction.SUBMIT, actor, at, content_hash, owner, comment, version
        )

    def resubmit(
        self,
        actor: Actor,
        *,
        at: datetime | str,
        content_hash: str,
        owner: str | None = None,
        comment: str | None = None,
        version: int | None = None,
    ) -> ActionResult:
        """Submit a rejected or withdrawn request again: a new cycle starts at step one and the
        previous cycle's decisions no longer count. The resubmitting actor becomes the submitter
        and ``owner`` the subject's owner for the new cycle (see :meth:`submit`)."""
        return self._submission(
            ApprovalAction.RESUBMIT, actor, at, content_hash, owner, comment, version
        )

    def approve(
        self,
        actor: Actor,
        *,
        role: str,
        at: datetime | str,
        version: int,
        content_hash: str,
        comment: str | None = None,
        delegations: Iterable[Delegation] = (),
    ) -> ActionResult:
        """``actor`` approves the current step for ``role``.

        Refused (and nothing changes) when:

        * ``version`` is not the current version: :class:`~salesflow.errors.ConcurrencyError`;
        * the request is not pending, the role decides at another step or has already approved
          in this cycle, or ``content_hash`` differs from the hash at submission (the subject
          changed: withdraw and resubmit it): :class:`~salesflow.errors.TransitionNotAllowedError`;
        * the actor neither holds ``role`` nor has a delegation of it valid at ``at`` (on its
          date, and not revoked by then), the workflow has no step for the role, the actor (or the
          delegator they act for) submitted the request or owns the subject (unless the workflow
          allows self-approval), or either of them already approved another role in this cycle:
          :class:`~salesflow.errors.NotAuthorizedError`.

        When the last awaited role of a step approves, the next step starts; when it is the last
        step, the request is approved.
        """
        actor = _check_actor(actor)
        role = _role_name(role)
        moment = to_aware_datetime(at, "at")
        content_hash = _check_hash(content_hash)
        comment = _check_comment(comment)
        grants = _check_delegations(delegations)
        self._check_version(version)
        self._require(ApprovalAction.APPROVE)
        return self._decide(
            ApprovalAction.APPROVE,
            actor,
            role,
            moment,
            grants,
            comment=comment,
            content_hash=content_hash,
        )

    def reject(
        self,
        actor: Actor,
        *,
        role: str,
        at: datetime | str,
        version: int,
        reason: str,
        delegations: Iterable[Delegation] = (),
    ) -> ActionResult:
        """``actor`` rejects the request for ``role`` of the current step, with ``reason``.

        The subject goes back to its owner (state ``rejected``) with the reason; a resubmission
        starts again from step one. The same authority rules as :meth:`approve` apply, except that
        a role that has already approved in this cycle may still reject (a second look is
        allowed to stop a request, never to push it through), and the content hash is not needed.
        A blank reason raises :class:`~salesflow.errors.ValidationError`.
        """
        actor = _check_actor(actor)
        role = _role_name(role)
        moment = to_aware_datetime(at, "at")
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("reason", reason, "a non-empty reason telling the submitter why")
        grants = _check_delegations(delegations)
        self._check_version(version)
        self._require(ApprovalAction.REJECT)
        return self._decide(
            ApprovalAction.REJECT, actor, role, moment, grants, comment=reason.strip()
        )

    def withdraw(
        self,
        actor: Actor,
        *,
        at: datetime | str,
        version: int,
        comment: str | None = None,
    ) -> ActionResult:
        """The submitter takes a pending request back (to change the subject, say).

        Anyone else gets :class:`~salesflow.errors.NotAuthorizedError`. A withdrawn request can be
        resubmitted, which starts a new cycle.
        """
        actor = _check_actor(actor)
        moment = to_aware_datetime(at, "at")
        comment = _check_comment(comment)
        self._check_version(version)
        new = _transition(
            self, action=ApprovalAction.WITHDRAW, actor=actor.id, at=moment, comment=comment
        )
        return ActionResult(new, _events(self, new))

    # -- replay and storage ---------------------------------------------------------------------

    def origin(self) -> ApprovalRequest:
        """The draft this request started as: same identity and workflow, no actions taken."""
        return ApprovalRequest(
            id=self.id,
            subject_id=self.subject_id,
            subject_kind=self.subject_kind,
            workflow=self.workflow,
        )

    def replayed(self) -> ApprovalRequest:
        """This request rebuilt from its audit trail alone (see :func:`replay`).

        A consistent request equals its replay: ``request.replayed() == request``.
        """
        return replay(self.origin(), self.audit)

    def to_dict(self) -> dict[str, Any]:
        """This request as a plain dict (workflow, decisions and audit included)."""
        return {
            "id": self.id,
            "subject_id": self.subject_id,
            "subject_kind": self.subject_kind,
            "workflow": self.workflow.to_dict(),
            "state": self.state.value,
            "submitter": self.submitter,
            "step_index": self.step_index,
            "decisions": [d.to_dict() for d in self.decisions],
            "cycle": self.cycle,
            "version": self.version,
            "content_hash": self.content_hash,
            "audit": [e.to_dict() for e in self.audit],
            "owner": self.owner,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApprovalRequest:
        """A request from :meth:`to_dict`'s shape. Check it with :meth:`replayed` if its source
        is not trusted."""
        required = {"id", "subject_id", "subject_kind", "workflow"}
        optional = {"state", "submitter", "step_index", "decisions", "cycle", "version"}
        optional |= {"content_hash", "audit", "owner"}
        _check_keys(data, "approval request", required, optional)
        fields = dict(data)
        fields["workflow"] = Workflow.from_dict(data["workflow"])
        fields["decisions"] = tuple(Decision.from_dict(d) for d in data.get("decisions", ()))
        fields["audit"] = tuple(AuditEntry.from_dict(e) for e in data.get("audit", ()))
        return cls(**fields)

    # -- internals ------------------------------------------------------------------------------

    def _check_version(self, version: object) -> None:
        if type(version) is not int:
            raise InvalidTypeError(
                "version", version, "the request version the decision is based on"
            )
        if version != self.version:
            raise ConcurrencyError(
                "approval request",
                self.id,
                version,
                self.version,
                message=(
                    f"approval request {self.id!r} is at version {self.version}, but the decision "
                    f"was made on version {version}: reload it and decide again"
                ),
            )

    def _require(self, action: ApprovalAction) -> None:
        if self.state not in _ALLOWED[action]:
            raise TransitionNotAllowedError(
                action.value, self.state.value, self.subject, _HINTS[self.state]
            )

    def _submission(
        self,
        action: ApprovalAction,
        actor: Actor,
        at: datetime | str,
        content_hash: str,
        owner: str | None,
        comment: str | None,
        version: int | None,
    ) -> ActionResult:
        actor = _check_actor(actor)
        moment = to_aware_datetime(at, "at")
        content_hash = _check_hash(content_hash)
        if owner is not None and (not isinstance(owner, str) or not owner.strip()):
            raise ValidationError("owner", owner, "the subject owner's actor id, or None")
        comment = _check_comment(comment)
        if version is not None:
            self._check_version(version)
        new = _transition(
            self,
            action=action,
            actor=actor.id,
            at=moment,
            comment=comment,
            content_hash=content_hash,
            owner=owner,
        )
        return ActionResult(new, _events(self, new))

    def _authorities(
        self,
        actor: Actor,
        role: str,
        on: datetime | date | None,
        grants: tuple[Delegation, ...],
    ) -> list[str | None]:
        """Whom ``actor`` can act as for ``role`` at ``on`` (a time, or a whole day): themselves
        (``None``) or delegators whose delegation covers it."""
        if actor.has_role(role):
            return [None]
        if on is None:
            return []
        delegators: list[str | None] = []
        for grant in grants:
            if grant.covers(actor.id, role, on) and grant.delegator not in delegators:
                delegators.append(grant.delegator)
        return delegators

    def _decide(
        self,
        action: ApprovalAction,
        actor: Actor,
        role: str,
        at: datetime,
        grants: tuple[Delegation, ...],
        *,
        comment: str | None,
        content_hash: str | None = None,
    ) -> ActionResult:
        candidates = self._authorities(actor, role, at, grants)
        if not candidates:
            raise NotAuthorizedError(
                actor.id,
                action.value,
                self.subject,
                f"they do not hold role {role!r} and no delegation of it to them is valid at "
                f"{at.isoformat()} (on its date, and not revoked by then)",
            )
        # Several delegations may cover the role; the first one the rules accept is used, so a
        # delegation from the submitter does not hide a usable one from somebody else.
        first_error: ApprovalError | None = None
        for behalf in candidates:
            error = self._decision_error(action, actor.id, behalf, role)
            if error is None:
                new = _transition(
                    self,
                    action=action,
                    actor=actor.id,
                    at=at,
                    role=role,
                    on_behalf_of=behalf,
                    comment=comment,
                    content_hash=content_hash,
                )
                return ActionResult(new, _events(self, new))
            first_error = first_error or error
        assert first_error is not None  # candidates is not empty
        raise first_error

    def _self_decision_error(
        self, action: ApprovalAction, actor: str, on_behalf_of: str | None
    ) -> ApprovalError | None:
        """Segregation of duties: the refusal of a decision by (or for) the subject's submitter or
        owner, or ``None``."""
        rule = (
            f"workflow {self.workflow.name!r} does not allow self-approval, so neither the owner "
            f"nor the submitter of a {self.subject_kind} decides any step of it, whatever roles "
            "they hold"
        )
        if actor == self.submitter:
            hint = (
                "nobody approves their own submission"
                if action is ApprovalAction.APPROVE
                else "the submitter withdraws instead"
            )
            return NotAuthorizedError(
                actor, action.value, self.subject, f"they submitted it; {hint} ({rule})"
            )
        if actor == self.owner:
            return NotAuthorizedError(actor, action.value, self.subject, f"they own it; {rule}")
        if on_behalf_of is not None and on_behalf_of == self.submitter:
            return NotAuthorizedError(
                actor,
                action.value,
                self.subject,
                f"they act for {on_behalf_of!r}, who submitted it; a delegation cannot be used "
                "on the delegator's own submission",
            )
        if on_behalf_of is not None and on_behalf_of == self.owner:
            return NotAuthorizedError(
                actor,
                action.value,
                self.subject,
                f"they act for {on_behalf_of!r}, who owns it; a delegation cannot be used on "
                f"the delegator's own {self.subject_kind}",
            )
        return None

    def _decision_error(
        self, action: ApprovalAction, actor: str, on_behalf_of: str | None, role: str
    ) -> ApprovalError | None:
        """The rule an approve or reject by ``actor`` (for ``on_behalf_of``) as ``role`` would
        break, judged from the request alone; ``None`` when it breaks none."""
        step = self.workflow.steps[self.step_index]
        if role not in step.roles:
            index = self.workflow.step_index_of(role)
            if index is None:
                return NotAuthorizedError(
                    actor,
                    action.value,
                    self.subject,
                    f"workflow {self.workflow.name!r} has no step for role {role!r}",
                )
            return TransitionNotAllowedError(
                action.value,
                self.state.value,
                self.subject,
                f"it waits at step {step.name!r} for {', '.join(step.roles)}; role {role!r} "
                f"decides at step {self.workflow.steps[index].name!r}",
            )
        if not self.workflow.allow_self_approval:
            error = self._self_decision_error(action, actor, on_behalf_of)
            if error is not None:
                return error
        if action is ApprovalAction.APPROVE:
            for decision in self.decisions:
                if decision.role == role:
                    return TransitionNotAllowedError(
                        action.value,
                        self.state.value,
                        self.subject,
                        f"role {role!r} was already approved by {decision.actor!r} in this cycle",
                    )
            people = {actor} if on_behalf_of is None else {actor, on_behalf_of}
            for decision in self.decisions:
                again = sorted(people & decision.participants)
                if again:
                    return NotAuthorizedError(
                        actor,
                        action.value,
                        self.subject,
                        f"{again[0]!r} already approved as {decision.role!r} in this cycle; one "
                        "person approves at most one role per cycle (delegations included)",
                    )
        return None


def _relations(request: ApprovalRequest, people: Iterable[str | None]) -> tuple[str, ...]:
    """Which of "owner" and "submitter" of ``request`` any of ``people`` is, in that order."""
    found = set(people) - {None}
    return tuple(
        name
        for name, who in (("owner", request.owner), ("submitter", request.submitter))
        if who is not None and who in found
    )


def _transition(
    request: ApprovalRequest,
    *,
    action: ApprovalAction,
    actor: str,
    at: datetime,
    role: str | None = None,
    on_behalf_of: str | None = None,
    comment: str | None = None,
    content_hash: str | None = None,
    owner: str | None = None,
) -> ApprovalRequest:
    """Apply one action whose authority is established; live actions and :func:`replay` share it,
    so a stored trail is judged by exactly the rules that wrote it."""
    request._require(action)
    submission = action in (ApprovalAction.SUBMIT, ApprovalAction.RESUBMIT)
    if owner is not None and not submission:
        raise ValidationError(
            "owner", owner, f"no owner for {action.value} (a submission names it)"
        )
    # Live actions never pass what an action does not take; a stored trail might.
    if action not in (ApprovalAction.APPROVE, ApprovalAction.REJECT) and (
        role is not None or on_behalf_of is not None
    ):
        raise ValidationError("role", role, f"no role or delegator for {action.value}")
    if action in (ApprovalAction.REJECT, ApprovalAction.WITHDRAW) and content_hash is not None:
        raise ValidationError("content_hash", content_hash, f"no content hash for {action.value}")
    if on_behalf_of is not None and on_behalf_of == actor:
        raise ValidationError("on_behalf_of", on_behalf_of, "someone other than the actor")
    if request.audit and at < request.audit[-1].at:
        raise ValidationError(
            "at", at, f"a time at or after the last action ({request.audit[-1].at.isoformat()})"
        )
    changes: dict[str, Any]
    step_name: str | None = None
    self_approval: tuple[str, ...] = ()
    if submission:
        if content_hash is None:
            raise ValidationError("content_hash", None, "the subject's content hash")
        changes = {
            "state": ApprovalState.PENDING,
            "submitter": actor,
            "owner": owner,
            "step_index": 0,
            "decisions": (),
            "cycle": request.cycle + 1,
            "content_hash": content_hash,
        }
    elif action is ApprovalAction.WITHDRAW:
        if actor != request.submitter:
            raise NotAuthorizedError(
                actor,
                action.value,
                request.subject,
                f"only the submitter {request.submitter!r} may withdraw it",
            )
        step_name = request.workflow.steps[request.step_index].name
        changes = {"state": ApprovalState.WITHDRAWN}
    else:
        if role is None:
            raise ValidationError("role", None, f"the role to {action.value} for")
        error = request._decision_error(action, actor, on_behalf_of, role)
        if error is not None:
            raise error
        if request.workflow.allow_self_approval:
            self_approval = _relations(request, (actor, on_behalf_of))
        step = request.workflow.steps[request.step_index]
        step_name = step.name
        if action is ApprovalAction.REJECT:
            if comment is None or not comment.strip():
                raise ValidationError(
                    "reason", comment, "a non-empty reason telling the submitter why"
                )
            changes = {"state": ApprovalState.REJECTED}
        else:
            if content_hash != request.content_hash:
                raise TransitionNotAllowedError(
                    action.value,
                    request.state.value,
                    request.subject,
                    f"the subject changed after it was submitted (content hash {content_hash!r}, "
                    f"submitted as {request.content_hash!r}); the submitter must withdraw and "
                    "resubmit it before anyone approves it",
                )
            decision = Decision(
                step=step.name,
                role=role,
                actor=actor,
                at=at,
                on_behalf_of=on_behalf_of,
                comment=comment,
            )
            decisions = (*request.decisions, decision)
            index = request.step_index
            done = {d.role for d in decisions}
            if done.issuperset(step.roles):
                index += 1
            finished = index == len(request.workflow.steps)
            changes = {
                "state": ApprovalState.APPROVED if finished else ApprovalState.PENDING,
                "step_index": index,
                "decisions": decisions,
            }
    entry = AuditEntry(
        seq=len(request.audit) + 1,
        at=at,
        actor=actor,
        action=action,
        state_before=request.state,
        state_after=changes["state"],
        version=request.version + 1,
        cycle=changes.get("cycle", request.cycle),
        role=role,
        on_behalf_of=on_behalf_of,
        step=step_name,
        comment=comment,
        content_hash=content_hash,
        owner=owner,
        self_approval=self_approval,
    )
    return attrs.evolve(
        request, **changes, version=request.version + 1, audit=(*request.audit, entry)
    )


def _events(before: ApprovalRequest, after: ApprovalRequest) -> tuple[ApprovalEvent, ...]:
    entry = after.audit[-1]

    def event(name: ApprovalEventName, **fields: Any) -> ApprovalEvent:
        return ApprovalEvent(
            name=name,
            request_id=after.id,
            subject_id=after.subject_id,
            subject_kind=after.subject_kind,
            at=entry.at,
            actor=entry.actor,
            version=after.version,
            cycle=after.cycle,
            **fields,
        )

    def requested() -> ApprovalEvent:
        step = after.workflow.steps[after.step_index]
        return event(ApprovalEventName.REQUESTED, step=step.name, roles=step.roles)

    action = entry.action
    if action is ApprovalAction.SUBMIT:
        return (event(ApprovalEventName.SUBMITTED, comment=entry.comment), requested())
    if action is ApprovalAction.RESUBMIT:
        return (event(ApprovalEventName.RESUBMITTED, comment=entry.comment), requested())
    if action is ApprovalAction.WITHDRAW:
        return (event(ApprovalEventName.WITHDRAWN, step=entry.step, comment=entry.comment),)
    assert entry.role is not None  # approve and reject always name their role
    decided = {
        "step": entry.step,
        "roles": (entry.role,),
        "on_behalf_of": entry.on_behalf_of,
        "comment": entry.comment,
    }
    if action is ApprovalAction.REJECT:
        return (event(ApprovalEventName.REJECTED, **decided),)
    granted = event(ApprovalEventName.GRANTED, **decided)
    if after.state is ApprovalState.APPROVED:
        return (granted, event(ApprovalEventName.COMPLETED))
    if after.step_index > before.step_index:
        return (granted, requested())
    return (granted,)


# -- module functions ---------------------------------------------------------------------------


def replay(start: ApprovalRequest, audit: Iterable[AuditEntry]) -> ApprovalRequest:
    """Apply ``audit`` entries to ``start`` by the engine's rules and return the result.

    ``start`` is usually :meth:`ApprovalRequest.origin`; a later state works too, to apply only
    new entries. Each entry must be exactly what the engine would record for that action (seq,
    version, states, cycle, step); otherwise :class:`~salesflow.errors.ValidationError` names the
    entry (``audit[4]``). Authority that depends on who held which role or delegation is not
    re-checked (the trail does not hold actors' roles), everything else is: the order of steps, no
    decision by the owner (as recorded with the submission) or the submitter unless the workflow
    allows it (and then :attr:`AuditEntry.self_approval` must say so), one role per person per
    cycle, the content hash.
    """
    request = start
    for i, entry in enumerate(audit):
        where = f"audit[{i}]"
        if not isinstance(entry, AuditEntry):
            raise InvalidTypeError(where, entry, "an AuditEntry")
        try:
            request = _transition(
                request,
                action=entry.action,
                actor=entry.actor,
                at=entry.at,
                role=entry.role,
                on_behalf_of=entry.on_behalf_of,
                comment=entry.comment,
                content_hash=entry.content_hash,
                owner=entry.owner,
            )
        except ValidationError as exc:
            raise exc.located(where) from None
        except ApprovalError as exc:
            raise ValidationError(
                where, entry.to_dict(), "an action the engine allows", message=f"{where}: {exc}"
            ) from None
        recorded = request.audit[-1]
        if recorded != entry:
            raise ValidationError(
                where,
                entry.to_dict(),
                message=f"{where}: the trail says {entry.to_dict()} but the engine records "
                f"{recorded.to_dict()} for that action",
            )
    return request


def waiting_for(
    requests: Iterable[ApprovalRequest],
    who: Actor | str,
    *,
    on: date | None = None,
    delegations: Iterable[Delegation] = (),
) -> tuple[ApprovalRequest, ...]:
    """The pending requests ``who`` can act on, longest waiting first.

    ``who`` is an :class:`~salesflow.domain.actors.Actor` (requests they may approve now, by a role
    they hold or one delegated to them on ``on``; see :meth:`ApprovalRequest.approvable_roles`) or a
    role name (requests whose current step still awaits that role). Requests are ordered by
    :attr:`ApprovalRequest.waiting_since`, then id.
    """
    grants = _check_delegations(delegations)
    if grants and on is None:
        raise ValidationError("on", None, "the date to check the delegations against")
    if isinstance(who, Actor):

        def wanted(request: ApprovalRequest) -> bool:
            return bool(request.approvable_roles(who, on=on, delegations=grants))

    elif isinstance(who, str) and who.strip():
        role = str(who)

        def wanted(request: ApprovalRequest) -> bool:
            return role in request.awaiting_roles

    else:
        raise InvalidTypeError("who", who, "an Actor or a role name")
    found = []
    for request in requests:
        if not isinstance(request, ApprovalRequest):
            raise InvalidTypeError("requests", request, "ApprovalRequest values")
        if request.state is ApprovalState.PENDING and wanted(request):
            found.append(request)
    found.sort(key=lambda r: (r.waiting_since, r.id))
    return tuple(found)


def hash_content(data: object) -> str:
    """A stable content hash for a subject: ``"sha256:"`` and the hex digest of canonical JSON.

    ``data`` is built from dicts (string keys), lists, tuples, sets, strings, ints, bools, ``None``,
    ``Decimal`` (hashed by its text, so ``1.0`` and ``1.00`` differ), dates, datetimes, enums and
    attrs classes (by their fields, such as :class:`~salesflow.domain.money.Money`). Floats are
    refused, as everywhere in salesflow. Equal data gives equal hashes in every process.
    """
    text = json.dumps(
        _canonical(data, "data"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: object, where: str) -> Any:
    if value is None or (isinstance(value, bool | int | str) and not isinstance(value, enum.Enum)):
        return value
    if isinstance(value, enum.Enum):
        return _canonical(value.value, where)
    if isinstance(value, float):
        raise InvalidTypeError(where, value, "no floats (use Decimal or a string)")
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidTypeError(f"{where} key", key, "string keys")
            out[key] = _canonical(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [_canonical(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [_canonical(item, f"{where} item") for item in value]
        return {"$set": sorted(items, key=lambda item: json.dumps(item, sort_keys=True))}
    cls = type(value)
    if attrs.has(cls):
        # Only the fields a caller passes in make up the content; derived caches do not.
        fields = {a.name: getattr(value, a.name) for a in attrs.fields(cls) if a.init}
        return {"$" + cls.__name__: _canonical(fields, where)}
    raise InvalidTypeError(
        where, value, "dicts, lists, strings, ints, Decimals, dates, enums or attrs values"
    )
