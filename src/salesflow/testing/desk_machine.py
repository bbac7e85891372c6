"""A hypothesis state machine over a whole :class:`~salesflow.desk.SalesDesk`: the sales process
cannot be fooled through the desk, whatever commands come in whatever order (issue 11).

:func:`desk_machine` builds a :class:`~hypothesis.stateful.RuleBasedStateMachine` that plays random
commands by random people of two teams against one desk: it adds and moves opportunities, creates,
edits, submits and accepts quotes (with discounts from 0 to 30 %), decides and withdraws approval
requests, makes contracts of quotes, revises, submits, cancels and terminates them, and tries to
forge a quote's state and a deal's dates (a placement days ago, a creation tomorrow, a creation
date moved). Each example starts with a catalog, an opportunity per team and ann's deal
taken some way (up to a formal contract), so that short histories reach the late states too. The cast (see :data:`CAST`): reps ann and bob (team east) and wes (west), sales
managers mia (east) and wil (west), director dan, project manager pat, finance fin, legal leo and
the admin root. Actions are biased towards ones that can succeed, so that histories reach formal
contracts, but every rule sometimes picks somebody out of scope, a stale version or a record in the
wrong state.

A command may refuse (any :class:`~salesflow.errors.SalesflowError`); the machine then checks that
the desk's stored state did not change. Any other exception is a bug. After every step it reads what
the desk stores and checks that:

* no quote is approved (or accepted, or contracted) beyond its owner's own discount authority
  without an approval of its current content by a role whose limits cover it. The owner's
  authority is the rung of the policy's ladder they hold, else the first: a manager submitting her
  own quote is judged against her own limits, as the desk documents;
* no contract is signed (formal, terminated, expired) without every role of the contract workflow
  approving its current content in the request's current cycle, by distinct people who neither own
  nor submitted it;
* every signed contract's opportunity is in the plan's won stage;
* what :meth:`~salesflow.desk.SalesDesk.attainment` reports as signed per rep and month is the sum
  of the signed contracts' amounts by signing month;
* no quote backs two live contracts (draft, in review or formal: a cancelled or terminated contract
  released its quote, which the desk then lets back another), and a contracted quote names exactly
  its live contract;
* a signed contract stays signed and its :meth:`~salesflow.domain.contracts.Contract.content_hash`
  never changes;
* nobody team-bound changed a record outside their scope (the record as it was and as it became),
  and reads for a team-bound actor return exactly their scope;
* every stored approval request equals its replay from its audit trail.

Run it on a backend with::

    TestDesk = desk_machine(
        lambda clock: salesflow.open("memory://", clock=clock, load_entrypoints=False)
    ).TestCase
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import attrs
from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from salesflow.analytics.performance import REP
from salesflow.desk import SalesDesk
from salesflow.domain.actors import Actor
from salesflow.domain.approvals import ApprovalAction, ApprovalRequest, ApprovalState
from salesflow.domain.catalog import Catalog, Category, Product
from salesflow.domain.contracts import Contract, ContractState
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.periods import Period
from salesflow.domain.quotes import Quote, QuoteState
from salesflow.errors import SalesflowError
from salesflow.testing.cast import CAST
from salesflow.testing.storage import ManualClock

__all__ = ["CAST", "CATALOG", "TEAM_BOUND", "Stored", "desk_machine", "may_change", "may_read"]

T = TypeVar("T")

#: The roles that act only within the actor's teams (the builtin policy's default).
TEAM_BOUND = frozenset({"sales_rep", "sales_manager"})

_REPS = ("ann", "bob", "wes")
_OWNERS = ("ann", "bob", "wes", "mia", "wil", "dan")
_TEAMS = ("east", "west")
_ROLES = ("sales_manager", "sales_director", "project_manager", "finance", "legal", "sales_rep")
_START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # near a month's end: signing months vary

#: The catalog the desk sells from: a service with a floor at half its price, and a kit.
CATALOG = Catalog(
    categories=[Category(id="services", name="Services")],
    products=[
        Product(
            sku="SRV",
            name="Service",
            category="services",
            list_price=Money.of("1000.00", "CNY"),
            floor_price=Money.of("500.00", "CNY"),
        ),
        Product(sku="KIT", name="Kit", category="services", list_price=Money.of("100.00", "CNY")),
    ],
)

_LIVE = frozenset({ContractState.DRAFT, ContractState.IN_REVIEW, ContractState.FORMAL})
"""Contracts that hold their quote: a cancelled or terminated one released it (an expired one
ran its course)."""
_APPROVED_QUOTES = frozenset({QuoteState.APPROVED, QuoteState.ACCEPTED, QuoteState.CONTRACTED})
_SUBMITTABLE = frozenset({QuoteState.DRAFT, QuoteState.REJECTED})
_EDITABLE = frozenset(
    {QuoteState.DRAFT, QuoteState.PENDING_APPROVAL, QuoteState.REJECTED, QuoteState.APPROVED}
)
_CONTRACTABLE = frozenset({QuoteState.APPROVED, QuoteState.ACCEPTED})


def may_change(actor: Actor, team: str | None, owner: str | None, *, deciding: bool) -> bool:
    """Whether the design lets ``actor`` change (or, ``deciding``, decide an approval step on) a
    record of ``team`` owned by ``owner``: a team-bound actor only in their teams, a rep only what
    they own; a record without a team only its owner, but any holder of the role decides on it."""
    if not actor.roles & TEAM_BOUND:
        return True
    if team is None:
        return deciding or owner == actor.id
    if team not in actor.teams:
        return False
    return deciding or actor.has_role("sales_manager") or owner == actor.id


def may_read(actor: Actor, team: str | None, owner: str | None) -> bool:
    """Whether a team-bound ``actor`` may read a record: their own, or (a manager) their teams'."""
    return owner == actor.id or (actor.has_role("sales_manager") and actor.in_team(team))


@attrs.frozen(kw_only=True)
class Stored:
    """Everything the commands under test can change, as the desk stores it."""

    opportunities: dict[str, Opportunity]
    quotes: dict[str, Quote]
    contracts: dict[str, Contract]
    approvals: dict[str, ApprovalRequest]
    events: int

    @classmethod
    def read(cls, desk: SalesDesk) -> Stored:
        return cls(
            opportunities={o.id: o for o in desk.opportunities()},
            quotes={q.id: q for q in desk.quotes()},
            contracts={c.id: c for c in desk.contracts()},
            approvals={r.id: r for r in desk.approvals()},
            events=len(desk.events()),
        )


@attrs.frozen
class Touch:
    """A record a successful command changed: who did it, and whose the record was and became."""

    actor: str
    kind: str
    id: str
    before: tuple[str | None, str | None] | None  # (team, owner); None for a new record
    after: tuple[str | None, str | None]
    deciding: bool


def desk_machine(
    open_desk: Callable[[ManualClock], SalesDesk],
    cleanup: Callable[[SalesDesk], None] = lambda desk: desk.close(),
    *,
    max_examples: int = 40,
    stateful_step_count: int = 30,
) -> type[RuleBasedStateMachine]:
    """A state machine playing random commands against a desk opened by ``open_desk(clock)`` (an
    empty storage per example; ``cleanup`` empties and closes it after), checking the invariants of
    the module docs after every step."""

    class DeskMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.clock = ManualClock(_START)
            self.desk = open_desk(self.clock)
            self.plan = self.desk.plan
            self.policy = self.desk.discount_policy
            self.counter = 0
            self.stored = Stored.read(self.desk)
            # The model: what only history can tell. Signed contracts' content hashes, and who
            # changed which record (whose it was and became) with every successful command.
            self.signed_hashes: dict[str, str] = {}
            self.touched: list[Touch] = []

        def teardown(self) -> None:
            cleanup(self.desk)

        # -- helpers --------------------------------------------------------------------------------

        def _new_id(self, prefix: str) -> str:
            self.counter += 1
            return f"{prefix}{self.counter}"

        @staticmethod
        def _mostly(data: st.DataObject, label: str) -> bool:
            # As in the approval machine: uniformly random commands are nearly all refused, so lean
            # towards ones that can succeed; 0 means "yes", so failures shrink to purposeful steps.
            return data.draw(st.integers(0, 5), label=label) != 5

        # Rules that need a record in some state run only when one exists (hypothesis then draws
        # them where they matter), and still sometimes pick another record or actor to be refused.

        def has_quote(self, states: frozenset[QuoteState]) -> bool:
            return any(q.state in states for q in self.stored.quotes.values())

        def has_contract(self, state: ContractState) -> bool:
            return any(c.state is state for c in self.stored.contracts.values())

        def has_pending(self) -> bool:
            return any(r.state is ApprovalState.PENDING for r in self.stored.approvals.values())

        def _pick(
            self, data: st.DataObject, items: Sequence[T], good: Sequence[T], label: str
        ) -> T:
            """One of ``items``, mostly one of the ``good`` ones (where the command can work)."""
            if good and self._mostly(data, f"a good {label}"):
                items = good
            return data.draw(st.sampled_from(list(items)), label=label)

        def _actor(self, data: st.DataObject, good: Sequence[str] = ()) -> Actor:
            return CAST[self._pick(data, sorted(CAST), good, "actor")]

        def _scoped(self, team: str | None, owner: str | None) -> list[str]:
            """The people who may change a record of ``team`` owned by ``owner``, besides the
            admin: the owner, and the team's manager."""
            return [
                name
                for name in (owner or "", "mia", "wil", "dan")
                if name in CAST and may_change(CAST[name], team, owner, deciding=False)
            ]

        def _tick(self, data: st.DataObject) -> None:
            # Time passes between commands: hours to a few days, so signings fall in several months.
            self.clock.advance(hours=data.draw(st.integers(0, 72), label="hours later"))

        def _attempt(
            self,
            actor: Actor,
            what: str,
            act: Callable[[], object],
            *,
            deciding: bool = False,
            forged: bool = False,
        ) -> bool:
            """Run ``act``; a refusal must leave the stored state as it was, a success is logged
            with whom it touched. ``forged`` commands must be refused."""
            note(f"{actor.id}: {what}")
            name = ("forged " if forged else "") + what.split("(")[0]
            before = self.stored
            refusal: SalesflowError | None = None
            try:
                act()
            except SalesflowError as error:
                refusal = error
            if refusal is not None:
                event(f"{name} refused: {type(refusal).__name__}")
                after = Stored.read(self.desk)
                assert after == before, f"refused ({refusal!r}) but the stored state changed"
                return False
            assert not forged, f"{what} by {actor.id} was accepted"
            event(f"{name} succeeded")
            after = Stored.read(self.desk)
            self._log(actor, before, after, deciding=deciding)
            self.stored = after
            return True

        def _log(self, actor: Actor, before: Stored, after: Stored, *, deciding: bool) -> None:
            for kind, old, new in (
                ("opportunity", before.opportunities, after.opportunities),
                ("quote", before.quotes, after.quotes),
                ("contract", before.contracts, after.contracts),
            ):
                for key, record in new.items():
                    previous: Any = old.get(key)
                    if previous == record:
                        continue
                    self.touched.append(
                        Touch(
                            actor=actor.id,
                            kind=kind,
                            id=key,
                            before=None if previous is None else (previous.team, previous.owner),
                            after=(record.team, record.owner),
                            deciding=deciding,
                        )
                    )

        def _quote_draft(self, data: st.DataObject, id: str) -> Quote:
            owner = data.draw(st.sampled_from(_OWNERS), label="owner")
            opportunities = sorted(self.stored.opportunities)
            opportunity = data.draw(st.sampled_from([None, *opportunities]), label="opportunity")
            draft = Quote(
                id=id,
                owner=owner,
                currency="CNY",
                quoted_on=self.clock.now.date(),
                opportunity_id=opportunity,
            )
            return draft.add_line(
                CATALOG,
                data.draw(st.sampled_from(("SRV", "KIT")), label="sku"),
                data.draw(st.integers(1, 30), label="quantity"),
                discount=data.draw(st.integers(0, 30), label="discount"),
            )

        def _team_of(self, quote: Quote) -> str | None:
            if quote.opportunity_id is None:
                return None
            found = self.stored.opportunities.get(quote.opportunity_id)
            return None if found is None else found.team

        # -- set-up ---------------------------------------------------------------------------------

        @initialize(data=st.data())
        def open_shop(self, data: st.DataObject) -> None:
            """The admin stores the catalog; each team starts with an opportunity, and ann's deal
            is taken some way towards a formal contract: short histories (hypothesis favours them)
            then still reach signed contracts, their terminations and their invariants."""
            self.desk.update_catalog(CAST["root"], CATALOG)
            for owner, team in (("ann", "east"), ("wes", "west")):
                self.desk.add_opportunity(CAST[owner], self._opportunity(owner, team, "quotation"))
            steps = (
                self._start_quote,
                self._start_contract,
                self._start_review,
                *(self._start_approval(role) for role in self.desk.contract_workflow.roles),
            )
            # How far: nowhere, or any step of the way; all the way (signed) three times as often.
            choices = [*range(len(steps) + 1), len(steps), len(steps)]
            for step in steps[: data.draw(st.sampled_from(choices), label="starting deal")]:
                self.clock.advance(hours=1)
                step()
            self.stored = Stored.read(self.desk)

        def _start_quote(self) -> None:
            ann = CAST["ann"]
            draft = Quote(
                id="Q0", owner="ann", currency="CNY", quoted_on=_START.date(), opportunity_id="O1"
            )
            self.desk.create_quote(ann, draft.add_line(CATALOG, "SRV", 25, discount=15))
            self.desk.submit_quote(ann, "Q0")  # beyond a rep's 10 %: mia approves
            request = self.desk.approval("quote:Q0")
            self.desk.approve(
                CAST["mia"], request.id, role="sales_manager", version=request.version
            )

        def _start_contract(self) -> None:
            self.desk.create_contract(CAST["ann"], "Q0", id="C0")

        def _start_review(self) -> None:
            self.desk.submit_contract(CAST["ann"], "C0")

        def _start_approval(self, role: str) -> Callable[[], None]:
            def approve() -> None:
                request = self.desk.approval("contract:C0")
                actor = next(
                    a
                    for a in CAST.values()
                    if a.has_role(role) and (role not in TEAM_BOUND or a.in_team("east"))
                )
                self.desk.approve(actor, request.id, role=role, version=request.version)

            return approve

        def _opportunity(
            self, owner: str, team: str, stage: str, amount: int = 25000
        ) -> Opportunity:
            return Opportunity(
                id=self._new_id("O"),
                owner=owner,
                team=team,
                amount=Money.of(amount, "CNY"),
                stage=stage,
                expected_close=self.clock.now.date(),
            )

        # -- opportunities --------------------------------------------------------------------------

        @rule(data=st.data())
        def add_opportunity(self, data: st.DataObject) -> None:
            owner = data.draw(st.sampled_from(_REPS), label="owner")
            home = CAST[owner].teams
            team = self._pick(data, _TEAMS, sorted(home), "team")
            stage = data.draw(
                st.sampled_from([s.key for s in self.plan.open_stages]), label="stage"
            )
            amount = data.draw(st.integers(1000, 90000), label="amount")
            opportunity = self._opportunity(owner, team, stage, amount)
            actor = self._actor(data, self._scoped(team, owner))
            self._tick(data)
            self._attempt(
                actor,
                f"add_opportunity({opportunity.id}, {owner}, {team})",
                lambda: self.desk.add_opportunity(actor, opportunity),
            )

        @rule(data=st.data())
        def move_opportunity(self, data: st.DataObject) -> None:
            opportunity = self.stored.opportunities[
                data.draw(st.sampled_from(sorted(self.stored.opportunities)), label="opportunity")
            ]
            stages = [s.key for s in self.plan.open_stages] + [s.key for s in self.plan.lost_stages]
            stage = data.draw(st.sampled_from(stages), label="stage")
            # A move into a lost stage needs one of the plan's reason codes.
            reason = (
                data.draw(st.sampled_from(self.plan.lost_reasons), label="reason")
                if self.plan.is_lost(stage)
                else None
            )
            actor = self._actor(data, self._scoped(opportunity.team, opportunity.owner))
            self._tick(data)
            self._attempt(
                actor,
                f"move_opportunity({opportunity.id}, {stage}, reason={reason})",
                lambda: self.desk.move_opportunity(actor, opportunity.id, stage, reason=reason),
            )

        @rule(data=st.data())
        def forge_opportunity_dates(self, data: st.DataObject) -> None:
            """Write a deal's past (a placement days ago, a creation tomorrow, a creation date
            moved): always refused, whoever asks."""
            actor = self._actor(data, ("ann", "mia", "dan", "root"))
            self._tick(data)
            now = self.clock.now
            days = data.draw(st.integers(1, 400), label="days")
            how = data.draw(st.sampled_from(["placed", "created", "moved"]), label="forgery")
            if how == "moved" and self.stored.opportunities:
                stored = self.stored.opportunities[
                    data.draw(st.sampled_from(sorted(self.stored.opportunities)), label="deal")
                ]
                assert stored.created is not None  # the desk dated it
                moved = stored.created - timedelta(days=days)
                self._attempt(
                    actor,
                    f"update_opportunity({stored.id}, created={moved})",
                    lambda: self.desk.update_opportunity(
                        actor, attrs.evolve(stored, created=moved)
                    ),
                    forged=True,
                )
                return
            fresh = self._opportunity("ann", "east", "quotation")
            if how == "created":
                forged = attrs.evolve(fresh, created=now.date() + timedelta(days=days))
            else:
                placed = StageChange(now - timedelta(days=days), None, "quotation")
                forged = attrs.evolve(fresh, history=(placed,))
            self._attempt(
                actor,
                f"add_opportunity({forged.id}, {how} {days} days off)",
                lambda: self.desk.add_opportunity(actor, forged),
                forged=True,
            )

        # -- quotes ---------------------------------------------------------------------------------

        @rule(data=st.data())
        def create_quote(self, data: st.DataObject) -> None:
            quote = self._quote_draft(data, self._new_id("Q"))
            actor = self._actor(data, self._scoped(self._team_of(quote), quote.owner))
            self._tick(data)
            self._attempt(
                actor,
                f"create_quote({quote.id}, owner={quote.owner}, on={quote.opportunity_id}, "
                f"{quote.items[0].sku} x{quote.items[0].quantity} -{quote.items[0].discount}%)",
                lambda: self.desk.create_quote(actor, quote),
            )

        def _pick_quote(self, data: st.DataObject, states: frozenset[QuoteState]) -> Quote:
            quotes = sorted(self.stored.quotes)
            good = [q for q in quotes if self.stored.quotes[q].state in states]
            return self.stored.quotes[self._pick(data, quotes, good, "quote")]

        @precondition(lambda self: self.has_quote(_SUBMITTABLE))
        @rule(data=st.data())
        def submit_quote(self, data: st.DataObject) -> None:
            quote = self._pick_quote(data, _SUBMITTABLE)
            actor = self._actor(data, self._scoped(quote.team, quote.owner))
            self._tick(data)
            self._attempt(
                actor,
                f"submit_quote({quote.id})",
                lambda: self.desk.submit_quote(actor, quote.id),
            )

        @precondition(lambda self: self.has_quote(_EDITABLE))
        @rule(data=st.data())
        def update_quote(self, data: st.DataObject) -> None:
            quote = self._pick_quote(data, _EDITABLE)
            discount = data.draw(st.integers(0, 30), label="discount")
            actor = self._actor(data, self._scoped(quote.team, quote.owner))
            self._tick(data)
            self._attempt(
                actor,
                f"update_quote({quote.id}, -{discount}%)",
                # The edit itself refuses a locked quote: a refusal like the desk's.
                lambda: self.desk.update_quote(actor, quote.set_discount("L1", discount)),
            )

        @precondition(lambda self: self.has_quote(frozenset({QuoteState.APPROVED})))
        @rule(data=st.data())
        def accept_quote(self, data: st.DataObject) -> None:
            quote = self._pick_quote(data, frozenset({QuoteState.APPROVED}))
            actor = self._actor(data, self._scoped(quote.team, quote.owner))
            self._tick(data)
            self._attempt(
                actor,
                f"accept_quote({quote.id})",
                lambda: self.desk.accept_quote(actor, quote.id),
            )

        @rule(data=st.data())
        def forge_quote(self, data: st.DataObject) -> None:
            """Slip an approved state past the commands: always refused."""
            actor = self._actor(data, ("ann", "mia", "dan", "root"))
            self._tick(data)
            if not self.stored.quotes or data.draw(st.booleans(), label="as a new quote"):
                forged = attrs.evolve(
                    self._quote_draft(data, self._new_id("Q")), state=QuoteState.APPROVED
                )
                self._attempt(
                    actor,
                    f"create_quote({forged.id}, state=approved)",
                    lambda: self.desk.create_quote(actor, forged),
                    forged=True,
                )
                return
            stored = self._pick_quote(data, frozenset(QuoteState))
            discount = data.draw(st.integers(0, 30), label="discount")

            def forge() -> object:
                edited = stored.set_discount("L1", discount)
                if edited is stored:
                    edited = attrs.evolve(stored, version=stored.version + 1)
                return self.desk.update_quote(
                    actor, attrs.evolve(edited, state=QuoteState.APPROVED)
                )

            self._attempt(
                actor,
                f"update_quote({stored.id}, -{discount}%, state=approved)",
                forge,
                forged=True,
            )

        # -- approvals ------------------------------------------------------------------------------

        def _pick_request(self, data: st.DataObject) -> ApprovalRequest:
            requests = sorted(self.stored.approvals)
            pending = [
                r for r in requests if self.stored.approvals[r].state is ApprovalState.PENDING
            ]
            return self.stored.approvals[self._pick(data, requests, pending, "request")]

        def _subject(self, request: ApprovalRequest) -> Quote | Contract | None:
            subjects: dict[str, Any] = (
                self.stored.quotes if request.subject_kind == "quote" else self.stored.contracts
            )
            found: Quote | Contract | None = subjects.get(request.subject_id)
            return found

        def _decision(self, data: st.DataObject) -> tuple[ApprovalRequest, Actor, str, int]:
            request = self._pick_request(data)
            subject = self._subject(request)
            awaiting = request.awaiting_roles
            role = self._pick(data, _ROLES, awaiting, "role")
            deciders = [
                a.id
                for a in CAST.values()
                if a.has_role(role)
                and subject is not None
                and a.id not in (subject.owner, request.submitter)
                and may_change(a, subject.team, subject.owner, deciding=True)
            ]
            actor = self._actor(data, deciders)
            stale = data.draw(st.integers(0, 9), label="stale version") == 9
            return request, actor, role, request.version - 1 if stale else request.version

        @precondition(lambda self: self.has_pending())
        @rule(data=st.data())
        def decide(self, data: st.DataObject) -> None:
            """Approve (mostly) or reject a request: one rule, so that decisions, which every
            history needs many of, are drawn as often as approve and reject together."""
            request, actor, role, version = self._decision(data)
            approving = data.draw(st.integers(0, 2), label="approve (0, 1) or reject (2)") != 2
            self._tick(data)
            if approving:
                self._attempt(
                    actor,
                    f"approve({request.id}, role={role}, version={version})",
                    lambda: self.desk.approve(actor, request.id, role=role, version=version),
                    deciding=True,
                )
                return
            self._attempt(
                actor,
                f"reject({request.id}, role={role}, version={version})",
                lambda: self.desk.reject(
                    actor, request.id, role=role, version=version, reason="not like this"
                ),
                deciding=True,
            )

        @precondition(lambda self: self.has_pending())
        @rule(data=st.data())
        def withdraw(self, data: st.DataObject) -> None:
            request = self._pick_request(data)
            actor = self._actor(data, [request.submitter] if request.submitter else [])
            self._tick(data)
            self._attempt(
                actor,
                f"withdraw({request.id}, version={request.version})",
                lambda: self.desk.withdraw(actor, request.id, version=request.version),
            )

        # -- contracts ------------------------------------------------------------------------------

        @precondition(lambda self: self.has_quote(_CONTRACTABLE))
        @rule(data=st.data())
        def create_contract(self, data: st.DataObject) -> None:
            quote = self._pick_quote(data, _CONTRACTABLE)
            actor = self._actor(data, self._scoped(quote.team, quote.owner))
            contract_id = self._new_id("C")
            self._tick(data)
            self._attempt(
                actor,
                f"create_contract({contract_id}, quote={quote.id})",
                lambda: self.desk.create_contract(actor, quote.id, id=contract_id),
            )

        def _pick_contract(
            self, data: st.DataObject, state: ContractState
        ) -> tuple[Contract, Actor]:
            contracts = sorted(self.stored.contracts)
            good = [c for c in contracts if self.stored.contracts[c].state is state]
            contract = self.stored.contracts[self._pick(data, contracts, good, "contract")]
            return contract, self._actor(data, self._scoped(contract.team, contract.owner))

        @precondition(lambda self: self.has_contract(ContractState.DRAFT))
        @rule(data=st.data())
        def submit_contract(self, data: st.DataObject) -> None:
            contract, actor = self._pick_contract(data, ContractState.DRAFT)
            self._tick(data)
            self._attempt(
                actor,
                f"submit_contract({contract.id})",
                lambda: self.desk.submit_contract(actor, contract.id),
            )

        @precondition(lambda self: self.has_contract(ContractState.DRAFT))
        @rule(data=st.data())
        def revise_contract(self, data: st.DataObject) -> None:
            """New terms: the content approvers approve changes (refused unless a draft)."""
            contract, actor = self._pick_contract(data, ContractState.DRAFT)
            terms = f"terms {self._new_id('T')}"
            self._tick(data)
            self._attempt(
                actor,
                f"revise_contract({contract.id}, {terms!r})",
                lambda: self.desk.revise_contract(actor, contract.id, terms=terms),
            )

        @precondition(lambda self: self.has_contract(ContractState.DRAFT))
        @rule(data=st.data())
        def cancel_contract(self, data: st.DataObject) -> None:
            contract, actor = self._pick_contract(data, ContractState.DRAFT)
            self._tick(data)
            self._attempt(
                actor,
                f"cancel_contract({contract.id})",
                lambda: self.desk.cancel_contract(actor, contract.id, reason="customer declined"),
            )

        @precondition(lambda self: self.has_contract(ContractState.FORMAL))
        @rule(data=st.data())
        def terminate_contract(self, data: st.DataObject) -> None:
            contract, actor = self._pick_contract(data, ContractState.FORMAL)
            self._tick(data)
            self._attempt(
                actor,
                f"terminate_contract({contract.id})",
                lambda: self.desk.terminate_contract(actor, contract.id, reason="bankrupt"),
            )

        # -- invariants -----------------------------------------------------------------------------

        def _authority(self, owner: str) -> Actor:
            # A quote is judged against its owner's authority: the owner's own rung of the ladder
            # when they hold one (a manager submitting her own quote), else the first rung.
            person = CAST.get(owner)
            held = set() if person is None else person.roles & set(self.policy.roles)
            return Actor(owner, roles=held or {self.policy.roles[0]})

        @invariant()
        def no_quote_is_approved_beyond_the_policy(self) -> None:
            for quote in self.stored.quotes.values():
                if quote.state not in _APPROVED_QUOTES:
                    continue
                if self.policy.evaluate(quote, self._authority(quote.owner)).within_authority:
                    continue
                digest = quote.content_hash()
                covered = [
                    request.id
                    for request in self.stored.approvals.values()
                    if request.subject_kind == "quote"
                    and request.subject_id == quote.id
                    and request.state is ApprovalState.APPROVED
                    and request.content_hash == digest
                    and any(
                        self.policy.evaluate(quote, Actor(d.actor, roles={d.role})).within_authority
                        for d in request.decisions
                        if d.role in self.policy.roles
                    )
                ]
                assert covered, f"{quote.state.value} quote {quote.id} beyond its owner's authority"

        @invariant()
        def no_contract_is_signed_without_every_role(self) -> None:
            workflow = self.desk.contract_workflow
            for contract in self.stored.contracts.values():
                if not contract.is_signed:
                    continue
                requests = [
                    r
                    for r in self.stored.approvals.values()
                    if r.subject_kind == "contract" and r.subject_id == contract.id
                ]
                approved = [
                    r
                    for r in requests
                    if r.state is ApprovalState.APPROVED
                    and r.workflow == workflow
                    and r.content_hash == contract.content_hash()
                ]
                assert len(approved) == 1, f"signed contract {contract.id}: {requests}"
                (request,) = approved
                # Read the current cycle from the audit trail, not from the engine's summary.
                cycle = [e for e in request.audit if e.cycle == request.cycle]
                approvals = [e for e in cycle if e.action is ApprovalAction.APPROVE]
                assert {e.role for e in approvals} == set(workflow.roles), cycle
                people = [e.actor for e in approvals]
                assert len(set(people)) == len(people), f"one person, two roles: {cycle}"
                assert not set(people) & {contract.owner, request.submitter}, cycle

        @invariant()
        def a_signed_contract_won_its_opportunity(self) -> None:
            won = self.plan.won_stage.key
            for contract in self.stored.contracts.values():
                if contract.is_signed and contract.opportunity_id is not None:
                    opportunity = self.stored.opportunities[contract.opportunity_id]
                    assert opportunity.stage == won, (
                        f"{contract.state.value} contract {contract.id} but opportunity "
                        f"{opportunity.id} is {opportunity.stage!r}"
                    )

        @invariant()
        def signed_totals_are_the_signed_contracts(self) -> None:
            expected: dict[date, dict[str, Decimal]] = {self.clock.now.date().replace(day=1): {}}
            for contract in self.stored.contracts.values():
                if contract.signed_on is None:
                    continue
                month = expected.setdefault(contract.signed_on.replace(day=1), {})
                month[contract.owner] = month.get(contract.owner, Decimal(0)) + (
                    contract.amount.amount
                )
            for first, owners in expected.items():
                report = self.desk.attainment([], period=Period.month(first.year, first.month))
                signed = {
                    row.name: row.signed.amount
                    for row in report.rows
                    if row.kind == REP and row.signed.amount
                }
                assert signed == owners, f"{first:%Y-%m}: reported {signed}, contracts {owners}"

        @invariant()
        def one_quote_one_live_contract(self) -> None:
            live: dict[str, list[str]] = {}
            for contract in self.stored.contracts.values():
                if contract.state in _LIVE:
                    live.setdefault(contract.quote.id, []).append(contract.id)
            for quote_id, contracts in live.items():
                assert len(contracts) == 1, f"quote {quote_id} backs {contracts}"
                quote = self.stored.quotes[quote_id]
                assert quote.state is QuoteState.CONTRACTED, (quote_id, quote.state, contracts)
            for quote in self.stored.quotes.values():
                if quote.state is QuoteState.CONTRACTED:
                    assert live.get(quote.id) == [quote.contract_id], (quote.id, live)
                else:
                    assert quote.contract_id is None, quote

        @invariant()
        def a_signed_contract_never_changes(self) -> None:
            for contract in self.stored.contracts.values():
                known = self.signed_hashes.get(contract.id)
                if known is not None:
                    assert contract.is_signed, f"contract {contract.id} was signed, now {contract}"
                    assert contract.content_hash() == known, f"signed {contract.id} changed"
                elif contract.is_signed:
                    event("a contract was signed")  # how often histories get this far
                    self.signed_hashes[contract.id] = contract.content_hash()

        @invariant()
        def nobody_acted_outside_their_scope(self) -> None:
            for touch in self.touched:
                actor = CAST[touch.actor]
                for whose in (touch.before, touch.after):
                    if whose is not None:
                        team, owner = whose
                        assert may_change(actor, team, owner, deciding=touch.deciding), (
                            f"{touch.actor} changed {touch.kind} {touch.id} of team {team!r}, "
                            f"owner {owner!r} ({touch})"
                        )
            self.touched.clear()  # each change is checked once, right after its step

        @invariant()
        def reads_return_exactly_the_actors_scope(self) -> None:
            for actor in CAST.values():
                if not actor.roles & TEAM_BOUND:
                    continue
                for read, records in (
                    (self.desk.opportunities, self.stored.opportunities),
                    (self.desk.quotes, self.stored.quotes),
                    (self.desk.contracts, self.stored.contracts),
                ):
                    seen = {r.id for r in read(actor=actor)}
                    expected = {
                        key for key, r in records.items() if may_read(actor, r.team, r.owner)
                    }
                    assert seen == expected, f"{actor.id} reads {sorted(seen)}, not {expected}"

        @invariant()
        def every_request_replays_from_its_audit(self) -> None:
            for request in self.stored.approvals.values():
                assert request.replayed() == request, request.id

    DeskMachine.TestCase.settings = settings(
        max_examples=max_examples,
        stateful_step_count=stateful_step_count,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    return DeskMachine
