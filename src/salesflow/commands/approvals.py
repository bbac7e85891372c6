"""SalesDesk commands for approvals (R10, R12): one engine for every reviewed subject.

A subject under review (a quote beyond its rep's discount authority, a contract on its way to
formal) has one :class:`~salesflow.domain.approvals.ApprovalRequest`, stored with id
``"<kind>:<subject id>"``. Approving, rejecting and withdrawing are the same commands whatever the
subject; what each outcome does to the subject (a quote becomes approved, a contract formal) is
declared per kind in :data:`REVIEWED`.

Each command records the engine's events (``approval_requested`` naming the next roles,
``approval_granted``, ``approval_rejected``, ``approval_completed``, ``approval_withdrawn``) and the
subject's own (``quote_approved``, ``contract_formal``, ...) in the event log, for notification
plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

import attrs

from salesflow.commands.core import CommandResult, DeskCore
from salesflow.domain.actors import Actor
from salesflow.domain.approvals import (
    ApprovalEvent,
    ApprovalRequest,
    ApprovalState,
    Delegation,
    DelegationState,
    DelegationStatus,
    Workflow,
    overlapping,
    waiting_for,
)
from salesflow.domain.events import Event
from salesflow.errors import InvalidTypeError, NotFoundError, StorageError, ValidationError
from salesflow.ports import Between, UnitOfWork
from salesflow.storage.invariants import check_approval_add

__all__ = ["REVIEWED", "ApprovalCommands", "Reviewed", "replayed", "request_id"]


@attrs.frozen(kw_only=True)
class Reviewed:
    """How one kind of subject takes part in approvals."""

    kind: str
    """The subject kind, as the requests name it (``"quote"``)."""
    repository: str
    """The unit-of-work repository that stores the subjects."""
    content_hash: Callable[[Any], str]
    """The hash approvers approve: a subject changed since submission cannot be approved."""
    approved: Callable[[Any, date], Any]
    """The subject once every role approved (``on`` is the approval date)."""
    rejected: Callable[[Any, str], Any]
    """The subject sent back to its owner with the reason."""
    withdrawn: Callable[[Any], Any]
    """The subject taken back by its submitter."""
    approved_event: str
    """The subject's event when approval completes (``quote_approved``, ``contract_formal``)."""
    on_approved: Callable[[DeskCore, UnitOfWork, list[Event], Actor, Any], None] | None = None
    """What else approval starts, in the same unit of work, given the desk, the unit of work, the
    command's events, the deciding actor and the approved subject (a formal contract opens its
    billing and wins its opportunity)."""


def _quote_rejected(quote: Any, reason: str) -> Any:
    return quote.reject(reason)


REVIEWED: dict[str, Reviewed] = {
    "quote": Reviewed(
        kind="quote",
        repository="quotes",
        content_hash=lambda quote: quote.content_hash(),
        approved=lambda quote, _on: quote.approve(),
        rejected=_quote_rejected,
        withdrawn=lambda quote: quote.reopen(),
        approved_event="quote_approved",
    ),
}
"""The subjects approvals know, by kind (the contract commands add ``"contract"``)."""


def request_id(kind: str, subject_id: str) -> str:
    """The id of the approval request of a subject."""
    return f"{kind}:{subject_id}"


def replayed(request: ApprovalRequest) -> ApprovalRequest:
    """``request`` as loaded from storage, once checked to be exactly what its audit replays to
    (the desk never acts on, or shows, a request whose decisions or state its audit does not
    explain).

    Raises:
        StorageError: the stored request is corrupt; the message names it and what is wrong.
    """
    try:
        check_approval_add(request)
    except ValidationError as error:
        raise StorageError(
            f"stored approval request {request.id!r} is corrupt and was not used: {error}"
        ) from error
    return request


class ApprovalCommands(DeskCore):
    """Approvals on the desk: decide, withdraw, delegate, and see what waits for whom."""

    # -- used by the subjects' own commands --------------------------------------------------------

    def open_review(
        self,
        uow: UnitOfWork,
        events: list[Event],
        actor: Actor,
        subject: Any,
        kind: str,
        workflow: Workflow,
        *,
        comment: str | None = None,
    ) -> ApprovalRequest:
        """Submit ``subject`` for approval through ``workflow``: a new request, or a new cycle of
        its rejected or withdrawn one (a pending one changed since submission is withdrawn first
        by its submitter). Records the engine's events."""
        reviewed = REVIEWED[kind]
        at = self.now()
        digest = reviewed.content_hash(subject)
        # The engine refuses the subject's owner (and the submitter) as a decider of any step.
        owner = getattr(subject, "owner", None)
        earlier = [
            replayed(r) for r in uow.approvals.query(subject_kind=kind, subject_id=subject.id)
        ]
        latest: ApprovalRequest | None = max(earlier, key=lambda r: r.audit[0].at, default=None)
        if latest is not None and latest.state is ApprovalState.PENDING:
            # Submitted again while pending: the subject changed (else there is nothing to do).
            latest, withdrawn = latest.withdraw(
                actor, at=at, version=latest.version, comment="changed and submitted again"
            )
            uow.approvals.save(latest)
            events.extend(self._approval_events(withdrawn))
        if latest is not None and latest.workflow == workflow:
            request, happened = latest.resubmit(
                actor, at=at, content_hash=digest, owner=owner, comment=comment
            )
            uow.approvals.save(request)
        else:
            # The first review, or one on another route (a bigger discount needs a higher role):
            # a request of its own, so that every request's audit replays on its own workflow.
            key = request_id(kind, subject.id) + (f"#{len(earlier) + 1}" if earlier else "")
            draft = ApprovalRequest(
                id=key, subject_id=subject.id, subject_kind=kind, workflow=workflow
            )
            request, happened = draft.submit(
                actor, at=at, content_hash=digest, owner=owner, comment=comment
            )
            uow.approvals.add(request)
        events.extend(self._approval_events(happened))
        return request

    def withdraw_pending(
        self,
        uow: UnitOfWork,
        events: list[Event],
        actor: Actor,
        kind: str,
        subject_id: str,
        comment: str,
    ) -> None:
        """Withdraw the pending request of a subject that changed: its approvers would approve
        content that is gone."""
        for stored in uow.approvals.query(
            subject_kind=kind, subject_id=subject_id, state=ApprovalState.PENDING.value
        ):
            request = replayed(stored)
            withdrawn, happened = request.withdraw(
                actor, at=self.now(), version=request.version, comment=comment
            )
            uow.approvals.save(withdrawn)
            events.extend(self._approval_events(happened))

    def _approval_events(self, happened: Iterable[ApprovalEvent]) -> list[Event]:
        return [
            Event(
                name=e.name.value,
                subject_kind=e.subject_kind,
                subject_id=e.subject_id,
                actor=e.actor,
                at=e.at,
                data={
                    "request": e.request_id,
                    "version": e.version,
                    "cycle": e.cycle,
                    "step": e.step,
                    "roles": list(e.roles),
                    "on_behalf_of": e.on_behalf_of,
                    "comment": e.comment,
                },
            )
            for e in happened
        ]

    def _delegations(self, uow: UnitOfWork, on: date) -> list[Delegation]:
        """The stored grants that may count on ``on`` or later. A revoked grant never counts on
        the desk, whatever its clock says: the revocation is stored, so it has happened."""
        return [
            grant
            for grant in uow.delegations.query(valid_until=Between(on, None))
            if grant.revoked_at is None
        ]

    def _decide(
        self,
        actor: Actor,
        key: str,
        verb: str,
        decide: Callable[
            [ApprovalRequest, Any, list[Delegation]],
            tuple[ApprovalRequest, tuple[ApprovalEvent, ...]],
        ],
        role: str | None = None,
    ) -> CommandResult[ApprovalRequest]:
        def work(uow: UnitOfWork, events: list[Event]) -> ApprovalRequest:
            request = replayed(uow.approvals.get(key))
            reviewed = REVIEWED.get(request.subject_kind)
            if reviewed is None:
                raise NotFoundError(
                    "reviewed kind", request.subject_kind, f"known: {sorted(REVIEWED)}"
                )
            repository = getattr(uow, reviewed.repository)
            subject = repository.get(request.subject_id)
            self.authorize(actor, f"{reviewed.kind}.{verb}", subject, role=role)
            # The engine consults delegations only for a role the actor does not hold (and a
            # withdrawal never): then the stored grants need not be read.
            needed = role is not None and not actor.has_role(role)
            grants = self._delegations(uow, self.today()) if needed else []
            decided, happened = decide(request, subject, grants)
            uow.approvals.save(decided)
            events.extend(self._approval_events(happened))
            outcome = self._outcome(reviewed, request, decided, subject)
            if outcome is not None:
                changed, name = outcome
                repository.save(changed)
                events.append(
                    self.event(name, reviewed.kind, request.subject_id, actor, request=key)
                )
                if decided.state is ApprovalState.APPROVED and reviewed.on_approved is not None:
                    reviewed.on_approved(self, uow, events, actor, changed)
            return decided

        return self.run(work)

    def _outcome(
        self, reviewed: Reviewed, before: ApprovalRequest, after: ApprovalRequest, subject: Any
    ) -> tuple[Any, str] | None:
        if after.state is before.state:
            return None
        if after.state is ApprovalState.APPROVED:
            return reviewed.approved(subject, self.today()), reviewed.approved_event
        if after.state is ApprovalState.REJECTED:
            reason = after.rejection_reason or ""
            return reviewed.rejected(subject, reason), f"{reviewed.kind}_rejected"
        if after.state is ApprovalState.WITHDRAWN:
            return reviewed.withdrawn(subject), f"{reviewed.kind}_withdrawn"
        return None

    # -- decisions -----------------------------------------------------------------------------------

    def approve(
        self,
        actor: Actor,
        request: str,
        *,
        role: str,
        version: int,
        comment: str | None = None,
    ) -> CommandResult[ApprovalRequest]:
        """``actor`` approves ``request`` (an id such as ``"contract:c-7"``) for ``role``, having
        seen it at ``version``. The subject must be unchanged since submission; when the last role
        approves, the subject is approved (a quote) or turns formal (a contract)."""

        def decide(
            current: ApprovalRequest, subject: Any, grants: list[Delegation]
        ) -> tuple[ApprovalRequest, tuple[ApprovalEvent, ...]]:
            digest = REVIEWED[current.subject_kind].content_hash(subject)
            return current.approve(
                actor,
                role=role,
                at=self.now(),
                version=version,
                content_hash=digest,
                comment=comment,
                delegations=grants,
            )

        return self._decide(actor, request, "approve", decide, role)

    def reject(
        self, actor: Actor, request: str, *, role: str, version: int, reason: str
    ) -> CommandResult[ApprovalRequest]:
        """``actor`` rejects ``request`` for ``role`` with ``reason``: the subject goes back to its
        owner with the reason, and a resubmission starts again at step one."""

        def decide(
            current: ApprovalRequest, _subject: Any, grants: list[Delegation]
        ) -> tuple[ApprovalRequest, tuple[ApprovalEvent, ...]]:
            return current.reject(
                actor, role=role, at=self.now(), version=version, reason=reason, delegations=grants
            )

        return self._decide(actor, request, "reject", decide, role)

    def withdraw(
        self, actor: Actor, request: str, *, version: int, comment: str | None = None
    ) -> CommandResult[ApprovalRequest]:
        """The submitter takes ``request`` back while it is pending; the subject returns to draft."""

        def decide(
            current: ApprovalRequest, _subject: Any, _grants: list[Delegation]
        ) -> tuple[ApprovalRequest, tuple[ApprovalEvent, ...]]:
            return current.withdraw(actor, at=self.now(), version=version, comment=comment)

        return self._decide(actor, request, "withdraw", decide)

    def delegate(
        self, actor: Actor, *, to: str, role: str, valid_from: date, valid_until: date
    ) -> CommandResult[Delegation]:
        """``actor`` lets ``to`` decide for ``role`` (which ``actor`` holds) between two dates,
        inclusive; the audit of every decision made so shows both.

        Authorized as ``delegation.grant`` on the grant (the builtin policy: the delegator
        themselves, or an admin). Refused with :class:`~salesflow.errors.ValidationError` when
        the grant starts before today (by the desk's clock: no backdating) or shares a day with
        an unrevoked grant of the same role by the same delegator (the error names it: revoke it
        first). The grant records when it was made (:attr:`Delegation.granted_at`).
        """
        grant = Delegation.grant(
            actor,
            delegate=to,
            role=role,
            valid_from=valid_from,
            valid_until=valid_until,
            at=self.now(),
        )

        def work(uow: UnitOfWork, events: list[Event]) -> Delegation:
            self.authorize(actor, "delegation.grant", grant)
            mine = uow.delegations.query(delegator=grant.delegator, role=grant.role)
            clash = overlapping(grant, mine)
            if clash is not None:
                raise ValidationError(
                    "valid_from",
                    f"{grant.valid_from.isoformat()}..{grant.valid_until.isoformat()}",
                    f"days no unrevoked grant of role {grant.role!r} by {grant.delegator!r} "
                    f"covers, but grant {clash.id!r} to {clash.delegate!r} covers "
                    f"{clash.valid_from.isoformat()}..{clash.valid_until.isoformat()} "
                    "(revoke it first, or start after it)",
                )
            uow.delegations.add(grant)
            events.append(
                self.event(
                    "delegation_granted",
                    "delegation",
                    grant.id,
                    actor,
                    delegator=grant.delegator,
                    delegate=grant.delegate,
                    role=grant.role,
                    valid_from=grant.valid_from.isoformat(),
                    valid_until=grant.valid_until.isoformat(),
                )
            )
            return grant

        return self.run(work)

    def revoke_delegation(
        self, actor: Actor, grant: Delegation | str, *, reason: str | None = None
    ) -> CommandResult[Delegation]:
        """Take back ``grant`` (a :class:`Delegation` or its :attr:`~Delegation.id`), effective
        at once: from this moment its delegate no longer decides for the delegator, and the desk
        ignores it even if its clock is later set back. The grant stays stored, with
        ``revoked_at``, ``revoked_by`` and the reason; the event log records
        ``delegation_revoked``.

        Authorized as ``delegation.revoke`` on the stored grant (the builtin policy: the delegator
        themselves, or an admin, for instance when the delegator lost the role: a delegation is
        not re-checked against the delegator's roles when it is used, so ending it is how a lost
        role stops counting). A grant already revoked raises
        :class:`~salesflow.errors.TransitionNotAllowedError`.
        """
        if isinstance(grant, Delegation):
            key = grant.id
        elif isinstance(grant, str) and grant.strip():
            key = grant
        else:
            raise InvalidTypeError("grant", grant, "a Delegation or a delegation id")

        def work(uow: UnitOfWork, events: list[Event]) -> Delegation:
            stored: Delegation = uow.delegations.get(key)
            self.authorize(actor, "delegation.revoke", stored)
            revoked = stored.revoke(actor.id, at=self.now(), reason=reason)
            uow.delegations.save(revoked)
            events.append(
                self.event(
                    "delegation_revoked",
                    "delegation",
                    revoked.id,
                    actor,
                    delegator=revoked.delegator,
                    delegate=revoked.delegate,
                    role=revoked.role,
                    valid_from=revoked.valid_from.isoformat(),
                    valid_until=revoked.valid_until.isoformat(),
                    reason=revoked.revocation_reason,
                )
            )
            return revoked

        return self.run(work)

    # -- reads ----------------------------------------------------------------------------------------

    def approval(self, request: str, *, actor: Actor | None = None) -> ApprovalRequest:
        """The approval request ``request`` (``"<kind>:<subject id>"``); for ``actor``, if given,
        refused unless they may read its subject."""
        with self.storage.transaction() as uow:
            found = replayed(uow.approvals.get(request))
            if actor is not None:
                self.readable(actor, found.subject_kind, self._subject(uow, found))
            return found

    def _subject(self, uow: UnitOfWork, request: ApprovalRequest) -> Any:
        reviewed = REVIEWED.get(request.subject_kind)
        if reviewed is None:
            raise NotFoundError("reviewed kind", request.subject_kind, f"known: {sorted(REVIEWED)}")
        return getattr(uow, reviewed.repository).get(request.subject_id)

    def approvals(self, *, actor: Actor | None = None, **filters: Any) -> list[ApprovalRequest]:
        """Stored approval requests matching ``filters`` (``subject_kind``, ``subject_id``,
        ``state``, ``submitter``); with ``actor``, only those whose subject the actor may read."""
        with self.storage.transaction() as uow:
            found = [replayed(request) for request in uow.approvals.query(**filters)]
            return [
                request
                for request in found
                if actor is None
                or self.allows(actor, f"{request.subject_kind}.read", self._subject(uow, request))
            ]

    def delegations(
        self,
        *,
        actor: Actor | None = None,
        state: DelegationState | str | None = None,
        **filters: Any,
    ) -> list[DelegationStatus]:
        """Stored grants with their state now (by the desk's clock): ``scheduled``, ``active``,
        ``expired`` or ``revoked``, ordered by id. ``filters`` are the indexed fields
        (``delegator``, ``delegate``, ``role``, ``valid_until``); ``state`` keeps one state; with
        ``actor``, only the grants the hook lets them read (``delegation.read``)."""
        wanted = None
        if state is not None:
            try:
                wanted = DelegationState(state)
            except ValueError:
                raise ValidationError(
                    "state", state, f"one of {[s.value for s in DelegationState]}"
                ) from None
        now = self.now()
        with self.storage.transaction() as uow:
            grants = list(uow.delegations.query(**filters))
        found = [
            DelegationStatus(grant, grant.state(now))
            for grant in grants
            if actor is None or self.allows(actor, "delegation.read", grant)
        ]
        return [item for item in found if wanted is None or item.state is wanted]

    def waiting_for(
        self, who: Actor | str, *, on: date | None = None
    ) -> tuple[ApprovalRequest, ...]:
        """Pending requests ``who`` can decide now, longest waiting first.

        For an actor: the requests awaiting a role they hold or hold by delegation, that the
        authorization hook lets them decide (the builtin policy: a team-bound role only in the
        actor's teams), and whose subject they neither own nor submitted. For a role name: every
        request whose current step awaits that role.
        """
        if not isinstance(who, Actor | str):
            raise InvalidTypeError("who", who, "an Actor or a role name")
        day = self.today() if on is None else on
        with self.storage.transaction() as uow:
            pending = [replayed(r) for r in uow.approvals.query(state=ApprovalState.PENDING.value)]
            grants = self._delegations(uow, day) if isinstance(who, Actor) else []
            found = waiting_for(pending, who, on=day, delegations=grants)
            if not isinstance(who, Actor):
                return found
            return tuple(r for r in found if self._may_decide(uow, who, r, day, grants))

    def _may_decide(
        self,
        uow: UnitOfWork,
        actor: Actor,
        request: ApprovalRequest,
        day: date,
        grants: list[Delegation],
    ) -> bool:
        subject = self._subject(uow, request)
        roles = request.approvable_roles(actor, on=day, delegations=grants)
        action = f"{request.subject_kind}.approve"
        return any(self.allows(actor, action, subject, role=role) for role in roles)
