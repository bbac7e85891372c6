"""A hypothesis state machine for the approval engine, reusable against storage backends.

:class:`ApprovalMachine` runs random sequences of submit, approve, reject, withdraw and resubmit on a
few approval requests, by random actors holding random roles, with random delegations (granted,
backdated, overlapping and revoked), random subject owners, workflows that sometimes allow
self-approval, random subject edits (content hash changes), stale versions and out-of-order times.
It keeps its own model of what the rules allow, written independently of the engine, and checks
after every step that:

* an action succeeds exactly when the model allows it, and a refused one raises the error the rule
  names and leaves the stored request unchanged;
* a request is approved only after every role of every step approved, in step order, in the
  current cycle; no step was decided (approved or rejected) by the subject's owner or submitter,
  directly or through a delegation, unless the workflow allows self-approval, and then the audit
  entry says so; nobody approved two roles in one cycle; every approval was by a holder of the
  role or by a delegate under a grant valid and unrevoked at that time;
* the audit trail only grows, its versions count the actions, and it replays to the request;
* :func:`~salesflow.domain.approvals.waiting_for` lists exactly what the model says each actor and
  role can act on, longest waiting first;
* the stored value equals the engine's value, and survives ``to_dict``/``from_dict``.

Run it as a test with ``TestApprovals = ApprovalMachine.TestCase``. To run it against a storage
backend (every request saved to and read back from it after every step), use
:func:`stored_approval_machine`::

    TestSqliteApprovals = stored_approval_machine(lambda: open_storage("sqlite://")).TestCase
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import attrs
from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from salesflow.domain.actors import Actor, Role
from salesflow.domain.approvals import (
    ActionResult,
    ApprovalAction,
    ApprovalEventName,
    ApprovalRequest,
    ApprovalState,
    AuditEntry,
    Delegation,
    Step,
    Workflow,
    overlapping,
    waiting_for,
)
from salesflow.errors import (
    ApprovalError,
    ConcurrencyError,
    NotAuthorizedError,
    TransitionNotAllowedError,
    ValidationError,
)
from salesflow.ports import Storage

__all__ = [
    "ACTOR_IDS",
    "ROLE_POOL",
    "ApprovalMachine",
    "RequestModel",
    "stored_approval_machine",
    "workflows",
]

#: The roles random workflows and actors draw from.
ROLE_POOL: tuple[str, ...] = (
    Role.SALES_MANAGER.value,
    Role.PROJECT_MANAGER.value,
    Role.FINANCE.value,
    Role.LEGAL.value,
    Role.SALES_DIRECTOR.value,
)

#: The people the machine lets act.
ACTOR_IDS: tuple[str, ...] = ("ann", "bob", "cai", "dan", "eve", "fay")

_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_MAX_REQUESTS = 3
_REASONS = ("", "   ", "claim 'replaces breast milk' is not allowed", "price below cost")
_BLANK_REASONS = 2
_Errors = tuple[type[Exception], ...]


def workflows(roles: tuple[str, ...] = ROLE_POOL) -> st.SearchStrategy[Workflow]:
    """Valid workflows over ``roles``: the contract default, or 1-3 steps of distinct roles."""

    @st.composite
    def build(draw: st.DrawFn) -> Workflow:
        order = draw(st.permutations(roles))
        chosen = order[: draw(st.integers(1, len(order)))]
        n_steps = draw(st.integers(1, min(3, len(chosen))))
        cuts: list[int] = []
        if n_steps > 1:
            inner = st.integers(1, len(chosen) - 1)
            cuts = sorted(draw(st.sets(inner, min_size=n_steps - 1, max_size=n_steps - 1)))
        bounds = [0, *cuts, len(chosen)]
        steps = [
            Step(f"step{i + 1}", chosen[bounds[i] : bounds[i + 1]]) for i in range(len(bounds) - 1)
        ]
        return Workflow("random", steps)

    return st.one_of(st.just(Workflow.contract_default()), build())


@attrs.define
class RequestModel:
    """What the machine expects of one request, kept by the rules as the design states them."""

    workflow: Workflow
    state: ApprovalState = ApprovalState.DRAFT
    submitter: str | None = None
    cycle: int = 0
    step: int = 0
    approvals: dict[str, frozenset[str]] = attrs.Factory(dict)
    content_hash: str | None = None
    version: int = 0
    last_at: datetime | None = None
    owner: str | None = None

    @property
    def awaiting(self) -> tuple[str, ...]:
        """Roles of the current step still to approve (pending only)."""
        if self.state is not ApprovalState.PENDING:
            return ()
        return tuple(r for r in self.workflow.steps[self.step].roles if r not in self.approvals)

    def person_ok(self, actor: str, behalf: str | None, *, approving: bool) -> bool:
        """Whether ``actor`` acting for ``behalf`` passes the people rules of this cycle."""
        people = {actor} if behalf is None else {actor, behalf}
        if not self.workflow.allow_self_approval and people & {self.submitter, self.owner}:
            return False
        return not (approving and any(people & done for done in self.approvals.values()))

    def relations(self, actor: str, behalf: str | None) -> tuple[str, ...]:
        """What the audit's ``self_approval`` must say of a decision by ``actor`` for
        ``behalf``."""
        if not self.workflow.allow_self_approval:
            return ()
        people = {actor, behalf} - {None}
        return tuple(
            name
            for name, who in (("owner", self.owner), ("submitter", self.submitter))
            if who is not None and who in people
        )


class ApprovalMachine(RuleBasedStateMachine):
    """Random approval histories checked against an independent model (see the module docs).

    Override :meth:`save_request` and :meth:`load_request` to run the machine against a store.
    """

    def __init__(self) -> None:
        super().__init__()
        self.actors: dict[str, Actor] = {}
        self.workflow = Workflow.contract_default()
        self.delegations: list[Delegation] = []
        self.now = _START
        self.reference: dict[str, ApprovalRequest] = {}
        self.models: dict[str, RequestModel] = {}
        self.content: dict[str, str] = {}
        self.seen_audit: dict[str, tuple[AuditEntry, ...]] = {}
        self._memory: dict[str, ApprovalRequest] = {}
        self._edits = 0

    # -- the storage contract -------------------------------------------------------------------

    def save_request(self, request: ApprovalRequest) -> None:
        """Store ``request``: a new draft (version 0), or the successor (version ``v``) of the
        stored version ``v - 1``. Anything else must raise
        :class:`~salesflow.errors.ConcurrencyError` and store nothing."""
        stored = self._memory.get(request.id)
        actual = None if stored is None else stored.version
        expected = request.version - 1 if request.version else None
        if actual != expected:
            raise ConcurrencyError(
                "approval request", request.id, max(request.version - 1, 0), actual
            )
        self._memory[request.id] = request

    def load_request(self, request_id: str) -> ApprovalRequest:
        """The stored request ``request_id``."""
        return self._memory[request_id]

    # -- set-up ---------------------------------------------------------------------------------

    @initialize(data=st.data())
    def cast(self, data: st.DataObject) -> None:
        """Draw the workflow and who holds which role (every role has one to three holders)."""
        self.workflow = data.draw(workflows(), label="workflow")
        roles: dict[str, set[str]] = {actor: set() for actor in ACTOR_IDS}
        for role in ROLE_POOL:
            holders = data.draw(
                st.lists(st.sampled_from(ACTOR_IDS), min_size=1, max_size=3, unique=True),
                label=f"holders of {role}",
            )
            for holder in holders:
                roles[holder].add(role)
        self.actors = {actor: Actor(actor, roles=held) for actor, held in roles.items()}
        self._create(data)
        # Start with a submission attempt, so that even short or approve-heavy runs (hypothesis
        # favours the first rule) have a pending request to work on.
        self._submission(data, ApprovalAction.SUBMIT)

    @precondition(lambda self: len(self.reference) < _MAX_REQUESTS)
    @rule(data=st.data())
    def create_request(self, data: st.DataObject) -> None:
        """Another subject goes into review (a contract or a quote)."""
        self._create(data)

    def _create(self, data: st.DataObject) -> None:
        rid = f"apr-{len(self.reference) + 1}"
        kind = data.draw(st.sampled_from(("contract", "quote")), label="kind")
        workflow = data.draw(st.sampled_from((self.workflow, Workflow.one_step(ROLE_POOL[0]))))
        if data.draw(st.integers(0, 4), label="allow self-approval") == 4:
            workflow = attrs.evolve(workflow, allow_self_approval=True)
        request = ApprovalRequest(
            id=rid, subject_id=f"{kind}-{rid}", subject_kind=kind, workflow=workflow
        )
        self.save_request(request)
        self.reference[rid] = request
        self.models[rid] = RequestModel(workflow=workflow)
        self.seen_audit[rid] = ()
        self._edit(rid)

    # -- helpers --------------------------------------------------------------------------------

    def _edit(self, rid: str) -> None:
        self._edits += 1
        self.content[rid] = f"sha256:content-{self._edits}"

    @staticmethod
    def _mostly(data: st.DataObject, label: str) -> bool:
        # Uniformly random actions are nearly all refused; a bias towards ones that can succeed
        # lets histories reach the later steps, approval and resubmission. Hypothesis favours and
        # shrinks towards 0, so 0 means "yes": counterexamples shrink to purposeful actions.
        return data.draw(st.integers(0, 3), label=label) != 3

    def _pick_request(
        self, data: st.DataObject, prefer: Callable[[str], bool] | None = None
    ) -> str:
        ids = sorted(self.reference)
        preferred = [rid for rid in ids if prefer is not None and prefer(rid)]
        if preferred and self._mostly(data, "a request where it can work"):
            ids = preferred
        return data.draw(st.sampled_from(ids), label="request")

    def _pick_actor(self, data: st.DataObject) -> Actor:
        return self.actors[data.draw(st.sampled_from(ACTOR_IDS), label="actor")]

    def _at(self, data: st.DataObject) -> datetime:
        # Mostly forward, sometimes a little back: an action dated before the last audit entry
        # must be refused.
        minutes = data.draw(st.integers(0, 12 * 60), label="minutes later")
        if data.draw(st.integers(0, 9), label="back in time") == 9:
            minutes = -data.draw(st.integers(1, 90), label="minutes earlier")
        at = self.now + timedelta(minutes=minutes)
        self.now = max(self.now, at)
        return at

    def _version(self, data: st.DataObject, model: RequestModel) -> int:
        pick = data.draw(st.integers(0, 9), label="version")
        return model.version + {8: -1, 9: 1}.get(pick, 0)

    def _candidates(self, actor: Actor, role: str, on: datetime | date) -> list[str | None]:
        """Whom ``actor`` may act as for ``role`` at a time (or on a whole day): a grant counts
        in its days and before its revocation (for a day: before the revocation's day)."""
        if actor.has_role(role):
            return [None]
        day = on.date() if isinstance(on, datetime) else on
        found: list[str | None] = []
        for grant in self.delegations:
            revoked = grant.revoked_at
            if revoked is not None and (
                on >= revoked if isinstance(on, datetime) else day >= revoked.date()
            ):
                continue
            if (
                grant.delegate == actor.id
                and grant.role == role
                and grant.valid_from <= day <= grant.valid_until
                and grant.delegator not in found
            ):
                found.append(grant.delegator)
        return found

    def _eligible(self, model: RequestModel, on: datetime | date) -> list[tuple[str, str]]:
        pairs = []
        for actor in self.actors.values():
            for role in model.awaiting:
                if any(
                    model.person_ok(actor.id, behalf, approving=True)
                    for behalf in self._candidates(actor, role, on)
                ):
                    pairs.append((actor.id, role))
        return pairs

    def _common_errors(
        self, model: RequestModel, at: datetime, version: int | None
    ) -> list[type[Exception]]:
        errors: list[type[Exception]] = []
        if model.last_at is not None and at < model.last_at:
            errors.append(ValidationError)
        if version is not None and version != model.version:
            errors.append(ConcurrencyError)
        return errors

    def _decision_errors(
        self, model: RequestModel, actor: Actor, role: str, at: datetime, *, approving: bool
    ) -> tuple[list[type[Exception]], str | None]:
        """The errors an approve/reject would earn, and whom it would be on behalf of."""
        errors: list[type[Exception]] = []
        candidates = self._candidates(actor, role, at)
        if not candidates:
            errors.append(NotAuthorizedError)
        if role not in model.workflow.steps[model.step].roles:
            in_workflow = role in model.workflow.roles
            errors.append(TransitionNotAllowedError if in_workflow else NotAuthorizedError)
        elif approving and role in model.approvals:
            errors.append(TransitionNotAllowedError)
        usable = [c for c in candidates if model.person_ok(actor.id, c, approving=approving)]
        if candidates and not usable:
            errors.append(NotAuthorizedError)
        return errors, (usable[0] if usable else None)

    def _attempt(
        self,
        rid: str,
        label: str,
        expected: list[type[Exception]],
        act: Callable[[ApprovalRequest], ActionResult],
    ) -> ActionResult | None:
        """Run ``act`` on the stored request; check it succeeds exactly when ``expected`` is
        empty, and that a refusal changes nothing."""
        before = self.load_request(rid)
        assert before == self.reference[rid], "the store lost or changed the request"
        snapshot = before.to_dict()
        refused: Exception | None = None
        try:
            result = act(before)
        except (ApprovalError, ConcurrencyError, ValidationError) as exc:
            refused = exc
        if refused is not None:
            note(f"{label} on {rid} refused: {type(refused).__name__}: {refused}")
            event(f"{label}: refused ({type(refused).__name__})")
            assert expected, f"{label} was refused although the rules allow it: {refused!r}"
            allowed: _Errors = tuple(expected)
            assert isinstance(refused, allowed), (
                f"{label} raised {type(refused).__name__} ({refused}); the broken rules call for "
                f"{[e.__name__ for e in expected]}"
            )
            assert before.to_dict() == snapshot
            assert self.load_request(rid) == before, "a refused action changed the stored request"
            return None
        note(f"{label} on {rid} -> {result.request.state} v{result.request.version}")
        event(f"{label}: done")
        assert not expected, (
            f"{label} succeeded although the rules refuse it ({[e.__name__ for e in expected]})"
        )
        new = result.request
        assert before.to_dict() == snapshot, "an action changed the value it was called on"
        assert new.version == before.version + 1
        assert all(e.request_id == rid and e.version == new.version for e in result.events)
        self.save_request(new)
        self.reference[rid] = new
        return result

    def _check_outcome(
        self, rid: str, result: ActionResult, names: list[ApprovalEventName]
    ) -> None:
        model = self.models[rid]
        request = result.request
        assert [e.name for e in result.events] == names
        assert request.state is model.state
        assert request.submitter == model.submitter
        assert request.cycle == model.cycle
        assert request.step_index == model.step
        assert request.version == model.version
        assert request.content_hash == model.content_hash
        assert {d.role: d.participants for d in request.decisions} == model.approvals
        for e in result.events:
            if e.name is ApprovalEventName.REQUESTED:
                assert e.roles == model.workflow.steps[model.step].roles
        if model.state is ApprovalState.APPROVED:
            event("reached approved")

    # -- rules ----------------------------------------------------------------------------------

    @rule(data=st.data())
    def edit_subject(self, data: st.DataObject) -> None:
        """The subject's content changes (its hash with it)."""
        self._edit(self._pick_request(data))

    @rule(data=st.data())
    def grant_delegation(self, data: st.DataObject) -> None:
        """Somebody delegates a role (mostly one they hold) to somebody else for a few days."""
        held = sorted((a.id, r) for a in self.actors.values() for r in a.roles)
        awaited = {role for model in self.models.values() for role in model.awaiting}
        wanted = [(a, r) for a, r in held if r in awaited]
        if wanted and self._mostly(data, "a role some request awaits"):
            held = wanted
        if self._mostly(data, "a role the delegator holds"):
            delegator_id, role = data.draw(st.sampled_from(held), label="delegated role")
            delegator = self.actors[delegator_id]
        else:
            delegator = self._pick_actor(data)
            role = data.draw(st.sampled_from(ROLE_POOL), label="delegated role")
        others = [a for a in ACTOR_IDS if a != delegator.id]
        lacking = [a for a in others if not self.actors[a].has_role(role)]
        if lacking and self._mostly(data, "a delegate without the role"):
            others = lacking
        delegate = data.draw(st.sampled_from(others), label="delegate")
        start = self.now.date() + timedelta(days=data.draw(st.integers(-1, 2), label="from"))
        until = start + timedelta(days=data.draw(st.integers(0, 4), label="days"))
        refused: str | None = None
        try:
            grant = Delegation.grant(
                delegator,
                delegate=delegate,
                role=role,
                valid_from=start,
                valid_until=until,
                at=self.now,
            )
        except NotAuthorizedError:
            assert not delegator.has_role(role)
            event("delegation: refused (role not held)")
            return
        except ValidationError as exc:
            refused = exc.field
        if refused is not None:
            assert delegator.has_role(role)
            assert refused == "valid_from" and start < self.now.date(), refused
            event("delegation: refused (backdated)")
            return
        assert delegator.has_role(role)
        assert start >= self.now.date(), "a backdated grant was accepted"
        # The desk refuses a grant that shares a day with an unrevoked grant of the same role by
        # the same delegator; the model says which one, independently.
        clashes = [
            g
            for g in self.delegations
            if g.delegator == grant.delegator
            and g.role == grant.role
            and g.revoked_at is None
            and g.valid_from <= grant.valid_until
            and grant.valid_from <= g.valid_until
            and g.id != grant.id
        ]
        found = overlapping(grant, self.delegations)
        assert found == (clashes[0] if clashes else None)
        if found is not None or any(g.id == grant.id for g in self.delegations):
            event("delegation: refused (overlapping)")
            return
        event("delegation: granted")
        self.delegations.append(grant)

    @precondition(lambda self: any(g.revoked_at is None for g in self.delegations))
    @rule(data=st.data())
    def revoke_delegation(self, data: st.DataObject) -> None:
        """The delegator (or an admin) takes a grant back: it stops counting at once."""
        live = [i for i, g in enumerate(self.delegations) if g.revoked_at is None]
        index = data.draw(st.sampled_from(live), label="revoked grant")
        grant = self.delegations[index]
        self.now += timedelta(minutes=data.draw(st.integers(0, 60), label="minutes later"))
        revoked = grant.revoke(grant.delegator, at=self.now, reason="back from leave")
        assert revoked.revoked_at == self.now
        assert not revoked.covers(grant.delegate, grant.role, self.now)
        try:
            revoked.revoke("root", at=self.now)
        except TransitionNotAllowedError:
            pass
        else:
            raise AssertionError("a revoked grant was revoked again")
        self.delegations[index] = revoked
        event("delegation: revoked")

    @rule(data=st.data())
    def submit(self, data: st.DataObject) -> None:
        """Somebody submits (only a draft may be submitted)."""
        self._submission(data, ApprovalAction.SUBMIT)

    @rule(data=st.data())
    def resubmit(self, data: st.DataObject) -> None:
        """Somebody resubmits (only a rejected or withdrawn request)."""
        self._submission(data, ApprovalAction.RESUBMIT)

    def _submission(self, data: st.DataObject, action: ApprovalAction) -> None:
        allowed_from = (
            {ApprovalState.DRAFT}
            if action is ApprovalAction.SUBMIT
            else {ApprovalState.REJECTED, ApprovalState.WITHDRAWN}
        )
        rid = self._pick_request(data, lambda rid: self.models[rid].state in allowed_from)
        model = self.models[rid]
        actor = self._pick_actor(data)
        at = self._at(data)
        version: int | None = self._version(data, model)
        if data.draw(st.booleans(), label="leave the version out"):
            version = None
        content = self.content[rid]
        # The subject's owner: anyone (the submitter too), or not given.
        owner = data.draw(st.sampled_from((None, *ACTOR_IDS)), label="owner")
        expected = self._common_errors(model, at, version)
        if model.state not in allowed_from:
            expected.append(TransitionNotAllowedError)
        act = (
            ApprovalRequest.submit if action is ApprovalAction.SUBMIT else ApprovalRequest.resubmit
        )
        result = self._attempt(
            rid,
            action.value,
            expected,
            lambda r: act(r, actor, at=at, content_hash=content, owner=owner, version=version),
        )
        if result is None:
            return
        model.state = ApprovalState.PENDING
        model.submitter = actor.id
        model.owner = owner
        model.cycle += 1
        model.step = 0
        model.approvals = {}
        model.content_hash = content
        model.version += 1
        model.last_at = at
        first = (
            ApprovalEventName.SUBMITTED
            if action is ApprovalAction.SUBMIT
            else ApprovalEventName.RESUBMITTED
        )
        self._check_outcome(rid, result, [first, ApprovalEventName.REQUESTED])

    @rule(data=st.data())
    def approve(self, data: st.DataObject) -> None:
        """Somebody approves: mostly someone the model says may, sometimes anyone as any role."""
        at = self._at(data)
        rid = self._pick_request(data, lambda rid: bool(self._eligible(self.models[rid], at)))
        model = self.models[rid]
        eligible = self._eligible(model, at)
        # Someone with authority for an awaited role whom the people rules stop (the submitter,
        # somebody who approved already, or a delegate acting for one of them).
        stopped = [
            (actor.id, role)
            for actor in self.actors.values()
            for role in model.awaiting
            if self._candidates(actor, role, at) and (actor.id, role) not in eligible
        ]
        choice = data.draw(st.integers(0, 3), label="who approves")
        if eligible and choice < 2:
            actor_id, role = data.draw(st.sampled_from(eligible), label="approver")
        elif stopped and choice == 2:
            actor_id, role = data.draw(st.sampled_from(stopped), label="stopped approver")
        else:
            actor_id = data.draw(st.sampled_from(ACTOR_IDS), label="actor")
            role = data.draw(st.sampled_from(ROLE_POOL), label="role")
        self._approve(data, rid, self.actors[actor_id], role, at)

    def _delegated(self, on: datetime) -> list[tuple[str, str, str]]:
        """(request, actor, role): awaited roles someone may act for only through a delegation."""
        return [
            (rid, actor.id, role)
            for rid, model in sorted(self.models.items())
            for actor in self.actors.values()
            for role in model.awaiting
            if not actor.has_role(role) and self._candidates(actor, role, on)
        ]

    @precondition(lambda self: bool(self._delegated(self.now)))
    @rule(data=st.data())
    def approve_through_delegation(self, data: st.DataObject) -> None:
        """A delegate approves for an awaited role (the people rules may still stop them)."""
        at = self.now
        rid, actor_id, role = data.draw(st.sampled_from(self._delegated(at)), label="delegate")
        self._approve(data, rid, self.actors[actor_id], role, at)

    def _approve(
        self, data: st.DataObject, rid: str, actor: Actor, role: str, at: datetime
    ) -> None:
        model = self.models[rid]
        version = self._version(data, model)
        content = self.content[rid]
        expected = self._common_errors(model, at, version)
        behalf = None
        if model.state is not ApprovalState.PENDING:
            expected.append(TransitionNotAllowedError)
        else:
            errors, behalf = self._decision_errors(model, actor, role, at, approving=True)
            expected += errors
            if content != model.content_hash:
                expected.append(TransitionNotAllowedError)
        grants = tuple(self.delegations)
        result = self._attempt(
            rid,
            "approve",
            expected,
            lambda r: r.approve(
                actor, role=role, at=at, version=version, content_hash=content, delegations=grants
            ),
        )
        if result is None:
            return
        step_roles = model.workflow.steps[model.step].roles
        model.approvals[role] = frozenset({actor.id} if behalf is None else {actor.id, behalf})
        names = [ApprovalEventName.GRANTED]
        if all(r in model.approvals for r in step_roles):
            model.step += 1
            if model.step == len(model.workflow.steps):
                model.state = ApprovalState.APPROVED
                names.append(ApprovalEventName.COMPLETED)
            else:
                names.append(ApprovalEventName.REQUESTED)
        model.version += 1
        model.last_at = at
        self._check_outcome(rid, result, names)
        assert result.request.audit[-1].on_behalf_of == behalf
        assert result.request.audit[-1].self_approval == model.relations(actor.id, behalf)
        if behalf is not None:
            event("approve: done through a delegation")
        if result.request.audit[-1].self_approval:
            event("approve: self-approval the workflow allows")

    @rule(data=st.data())
    def reject(self, data: st.DataObject) -> None:
        """Somebody rejects, with a reason that may be blank."""
        at = self._at(data)
        rid = self._pick_request(data, lambda rid: self.models[rid].state is ApprovalState.PENDING)
        model = self.models[rid]
        rejecters = [
            (actor, role)
            for actor in self.actors.values()
            for role in (model.workflow.steps[model.step].roles if model.awaiting else ())
            if any(
                model.person_ok(actor.id, behalf, approving=False)
                for behalf in self._candidates(actor, role, at)
            )
        ]
        if rejecters and self._mostly(data, "someone who may reject"):
            actor, role = data.draw(st.sampled_from(rejecters), label="rejecter")
        else:
            actor = self._pick_actor(data)
            role = data.draw(st.sampled_from(ROLE_POOL), label="role")
        pick = data.draw(st.integers(0, 9), label="reason")
        reason = _REASONS[pick - 8] if pick >= 8 else _REASONS[_BLANK_REASONS + pick % 2]
        version = self._version(data, model)
        expected = self._common_errors(model, at, version)
        if not reason.strip():
            expected.append(ValidationError)
        if model.state is not ApprovalState.PENDING:
            expected.append(TransitionNotAllowedError)
        else:
            errors, behalf = self._decision_errors(model, actor, role, at, approving=False)
            expected += errors
        grants = tuple(self.delegations)
        result = self._attempt(
            rid,
            "reject",
            expected,
            lambda r: r.reject(
                actor, role=role, at=at, version=version, reason=reason, delegations=grants
            ),
        )
        if result is None:
            return
        model.state = ApprovalState.REJECTED
        model.version += 1
        model.last_at = at
        self._check_outcome(rid, result, [ApprovalEventName.REJECTED])
        assert result.request.rejection_reason == reason.strip()
        entry = result.request.audit[-1]
        assert entry.on_behalf_of == behalf
        assert entry.self_approval == model.relations(actor.id, behalf)

    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        """The submitter (or, to be refused, somebody else) withdraws."""
        rid = self._pick_request(data, lambda rid: self.models[rid].state is ApprovalState.PENDING)
        model = self.models[rid]
        at = self._at(data)
        if model.submitter is not None and self._mostly(data, "the submitter"):
            actor = self.actors[model.submitter]
        else:
            actor = self._pick_actor(data)
        version = self._version(data, model)
        expected = self._common_errors(model, at, version)
        if model.state is not ApprovalState.PENDING:
            expected.append(TransitionNotAllowedError)
        elif actor.id != model.submitter:
            expected.append(NotAuthorizedError)
        result = self._attempt(
            rid, "withdraw", expected, lambda r: r.withdraw(actor, at=at, version=version)
        )
        if result is None:
            return
        model.state = ApprovalState.WITHDRAWN
        model.version += 1
        model.last_at = at
        self._check_outcome(rid, result, [ApprovalEventName.WITHDRAWN])

    @rule(data=st.data())
    def save_stale_copy(self, data: st.DataObject) -> None:
        """Saving a request that is not the successor of the stored one is refused."""
        rid = self._pick_request(data)
        stored = self.load_request(rid)
        stale = data.draw(st.sampled_from((stored, stored.origin())), label="stale copy")
        if stale.version == 0 and stored.version == 0:
            return
        try:
            self.save_request(stale)
        except ConcurrencyError:
            pass
        else:
            raise AssertionError(
                f"the store accepted version {stale.version} over {stored.version}"
            )
        assert self.load_request(rid) == stored

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def store_matches_engine(self) -> None:
        """What the store holds is what the engine returned last, also through plain dicts."""
        for rid, request in self.reference.items():
            assert self.load_request(rid) == request
            assert ApprovalRequest.from_dict(request.to_dict()) == request

    @invariant()
    def audit_only_grows_and_replays(self) -> None:
        """The trail is append-only, numbered 1..n with version n, and replays to the request."""
        for rid, request in self.reference.items():
            old = self.seen_audit[rid]
            assert request.audit[: len(old)] == old, "an audit entry was edited or removed"
            self.seen_audit[rid] = request.audit
            assert [e.seq for e in request.audit] == list(range(1, len(request.audit) + 1))
            assert request.version == len(request.audit)
            assert all(e.version == e.seq for e in request.audit)
            assert request.replayed() == request

    @invariant()
    def the_audit_obeys_the_rules(self) -> None:
        """Read from the trail alone: who approved what, for whom, in which order, per cycle."""
        for request in self.reference.values():
            cycles: dict[int, list[AuditEntry]] = {}
            for entry in request.audit:
                cycles.setdefault(entry.cycle, []).append(entry)
            relaxed = request.workflow.allow_self_approval
            for cycle, entries in cycles.items():
                submitter = entries[0].actor
                owner = entries[0].owner
                assert entries[0].action in (ApprovalAction.SUBMIT, ApprovalAction.RESUBMIT)
                approved: dict[str, AuditEntry] = {}
                people: set[str] = set()
                for entry in entries:
                    if entry.action not in (ApprovalAction.APPROVE, ApprovalAction.REJECT):
                        assert entry.self_approval == ()
                        continue
                    who = {entry.actor} | ({entry.on_behalf_of} if entry.on_behalf_of else set())
                    # Segregation of duties: no step decided by the owner or the submitter,
                    # unless the workflow allows it, and then the entry says so.
                    said = tuple(
                        name
                        for name, person in (("owner", owner), ("submitter", submitter))
                        if person in who
                    )
                    if relaxed:
                        assert entry.self_approval == said, entry
                    else:
                        assert not said, f"{said} decided a step in cycle {cycle}: {entry}"
                        assert entry.self_approval == ()
                    if entry.action is not ApprovalAction.APPROVE:
                        continue
                    assert entry.role is not None
                    assert not who & people, f"two roles by one person in cycle {cycle}: {entry}"
                    assert entry.role not in approved
                    self._assert_authority(entry)
                    index = request.workflow.step_index_of(entry.role)
                    assert index is not None
                    for earlier in request.workflow.steps[:index]:
                        assert all(r in approved for r in earlier.roles), "a step was skipped"
                    people |= who
                    approved[entry.role] = entry
                if cycle == request.cycle and request.state is ApprovalState.APPROVED:
                    assert set(approved) == set(request.workflow.roles)
                    assert entries[-1].state_after is ApprovalState.APPROVED
            if request.state is ApprovalState.APPROVED:
                assert set(request.approved_roles) == set(request.workflow.roles)

    def _assert_authority(self, entry: AuditEntry) -> None:
        assert entry.role is not None
        if entry.on_behalf_of is None:
            assert self.actors[entry.actor].has_role(entry.role)
            return
        # A grant valid on the decision's date and not revoked before its time. A revocation at
        # the very instant of the decision came after it: from then on the grant covers nothing
        # (_candidates refuses a decision at or after the revocation time).
        assert any(
            g.delegator == entry.on_behalf_of
            and g.delegate == entry.actor
            and g.role == entry.role
            and g.valid_from <= entry.at.date() <= g.valid_until
            and (g.revoked_at is None or entry.at <= g.revoked_at)
            for g in self.delegations
        ), f"no delegation valid and unrevoked at that time covers {entry}"
        assert self.actors[entry.on_behalf_of].has_role(entry.role)

    @invariant()
    def the_model_agrees(self) -> None:
        """The engine's state is the model's state (a refused action leaves both unchanged)."""
        for rid, request in self.reference.items():
            model = self.models[rid]
            assert request.state is model.state
            assert request.version == model.version
            assert request.awaiting_roles == model.awaiting

    @invariant()
    def waiting_lists_match_the_model(self) -> None:
        """Inboxes per actor and per role hold exactly what the model says, oldest first."""
        requests = list(self.reference.values())
        on = self.now.date()
        grants = tuple(self.delegations)
        for actor in self.actors.values():
            found = waiting_for(requests, actor, on=on, delegations=grants)
            expected = {
                rid
                for rid, model in self.models.items()
                if any(a == actor.id for a, _role in self._eligible(model, on))
            }
            assert {r.id for r in found} == expected
            self._assert_oldest_first(found)
        for role in ROLE_POOL:
            found = waiting_for(requests, role)
            expected = {rid for rid, model in self.models.items() if role in model.awaiting}
            assert {r.id for r in found} == expected
            self._assert_oldest_first(found)

    @staticmethod
    def _assert_oldest_first(found: tuple[ApprovalRequest, ...]) -> None:
        keys = [(r.waiting_since, r.id) for r in found]
        assert keys == sorted(keys)


def stored_approval_machine(
    factory: Callable[[], Storage],
    cleanup: Callable[[Storage], None] = lambda storage: storage.close(),
) -> type[ApprovalMachine]:
    """:class:`ApprovalMachine` with every request stored in a backend built by ``factory`` (one
    per example; ``cleanup`` empties it after): a save must be the successor of the stored version
    (else :class:`~salesflow.errors.ConcurrencyError`), and every read comes back from storage."""

    class StoredApprovalMachine(ApprovalMachine):
        def __init__(self) -> None:
            super().__init__()
            self.storage = factory()

        def save_request(self, request: ApprovalRequest) -> None:
            with self.storage.transaction() as uow:
                if request.version == 0:
                    uow.approvals.add(request)
                    return
                stored: ApprovalRequest = uow.approvals.get(request.id)
                if stored.version != request.version - 1:
                    raise ConcurrencyError(
                        "approval request", request.id, request.version - 1, stored.version
                    )
                uow.approvals.save(request)

        def load_request(self, request_id: str) -> ApprovalRequest:
            with self.storage.transaction() as uow:
                loaded: ApprovalRequest = uow.approvals.get(request_id)
                return loaded

        def teardown(self) -> None:
            cleanup(self.storage)

    StoredApprovalMachine.TestCase.settings = settings(
        max_examples=12,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    return StoredApprovalMachine
