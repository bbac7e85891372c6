"""A sample company, built through the desk: what ``salesflow demo``, the tests and the docs show.

:func:`build_company` opens a :class:`~salesflow.desk.SalesDesk` (or takes one) and lives half a
year of a small company through the desk's own commands, with a clock it moves forward day by day:
two teams (east and west) with a manager each, a sales director, a project manager, finance and
legal; accounts across industries and regions; opportunities created and moved stage by stage,
won through approved quotes and formal contracts or lost with a reason; a catalog; contracts in
every state (draft, in review, formal, terminated, cancelled); billing plans, progress, invoices
and payments; contacts, a PBX's calls imported week by week, follow-up tasks and a few calls in the
best-call library.

Every record is made by a command, so every rule of the desk holds: quotes are priced from the
stored catalog and approved by the right role of the right team, a contract turns formal only after
the sales manager, the project manager, finance and legal approved it, its opportunity is won on the
signing day, and billing starts after signing. The same ``seed`` always makes the same company
(``random.Random``, no global state, amounts from integers, never floats)::

    from salesflow.sample import build_company

    with build_company("sqlite:///demo.db", seed=7) as company:
        print(company.desk.forecast(as_of=company.as_of))

The opportunities' attributes come from :func:`salesflow.samples.generate_pipeline`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import attrs

from salesflow.errors import InvalidTypeError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from salesflow import (
        Actor,
        Catalog,
        Opportunity,
        Period,
        Quote,
        SalesDesk,
        Target,
    )

__all__ = [
    "AS_OF",
    "FUNNEL_TARGET",
    "SIZES",
    "START",
    "TIMEZONE",
    "SampleClock",
    "SampleCompany",
    "build_company",
    "sample_catalog",
]

Size = Literal["small", "medium"]

SIZES: Mapping[str, tuple[int, int]] = {"small": (3, 120), "medium": (6, 360)}
"""Reps per team and opportunities, per size."""

START = date(2026, 6, 1)
"""The first day of the sample company's history."""

AS_OF = date(2026, 11, 26)
"""The sample's "today": the last day anything happens (nothing is dated after it)."""

TIMEZONE = timezone(timedelta(hours=8), "CST")
"""The company's clock runs in China Standard Time (UTC+8)."""

FUNNEL_TARGET: Mapping[str, Decimal] = {
    "initial_contact": Decimal(30),
    "needs_analysis": Decimal(25),
    "intent_confirmed": Decimal(20),
    "quotation": Decimal(15),
    "won": Decimal(10),
}
"""The sales director's target funnel (percent of a rep's open and won opportunities per stage)."""

_REPS = {
    "east": ("ann", "bob", "cora", "dina", "eric", "fay"),
    "west": ("wes", "xia", "yan", "zhu", "uma", "vic"),
}
_MANAGERS = {"east": "mia", "west": "wil"}
_STAFF = {
    "dan": ("sales_director",),
    "pat": ("project_manager",),
    "fin": ("finance",),
    "leo": ("legal",),
    "root": ("admin",),
}
_PRODUCT_SKUS = {
    "CRM seats": "CRM-SEAT",
    "ERP rollout": "ERP-DAY",
    "Support plan": "SUPPORT",
    "Data platform": "DATA-PLAT",
    "Training": "TRAIN",
    "Hardware": "HW-APPL",
}
# Discounts a rep asks for: most within a rep's 10 %, some for the manager, a few for the director.
_DISCOUNTS = (0, 0, 0, 5, 5, 8, 10, 10, 12, 15, 15, 18, 22)
_SWITCHBOARD = "+861088880000"


class SampleClock:
    """A clock moved by hand (the same protocol as :class:`salesflow.testing.storage.ManualClock`,
    without the test extra): ``clock()`` is :attr:`now`; :meth:`advance` moves it forward."""

    def __init__(self, start: datetime) -> None:
        if start.utcoffset() is None:
            raise ValidationError("start", start, "a timezone-aware datetime")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move the clock forward (``advance(days=1)``) and return the new time."""
        self.now += timedelta(**delta)
        return self.now


@attrs.frozen(kw_only=True)
class SampleCompany:
    """What :func:`build_company` made: the desk, the people, and the ids of every record."""

    desk: SalesDesk
    """The desk the company lives in (closed by ``with``/:meth:`close` if it was opened here)."""
    clock: Any
    """The desk's clock, standing at the last moment anything happened."""
    seed: int
    size: str
    as_of: date
    """The sample's today (:data:`AS_OF`)."""
    actors: Mapping[str, Actor]
    """Everyone, by id: reps, managers, the director, project manager, finance, legal, admin."""
    teams: Mapping[str, tuple[str, ...]]
    """The reps of each team."""
    managers: Mapping[str, str]
    """The sales manager of each team."""
    monthly_targets: Mapping[str, Decimal]
    """Each rep's monthly signing target (CNY)."""
    funnel_target: Mapping[str, Decimal]
    """The target funnel (:data:`FUNNEL_TARGET`)."""
    opportunities: tuple[str, ...]
    quotes: tuple[str, ...]
    contracts: Mapping[str, tuple[str, ...]]
    """Contract ids by state (``draft``, ``in_review``, ``formal``, ``terminated``,
    ``cancelled``)."""
    invoices: tuple[str, ...]
    payments: tuple[str, ...]
    contacts: tuple[str, ...]
    calls: int
    """How many calls were imported."""
    tasks: tuple[str, ...]
    """Follow-up tasks created for missed calls."""
    commands: int
    """How many desk commands built the company."""
    owns_desk: bool = False

    @property
    def currency(self) -> str:
        """The company's currency."""
        return "CNY"

    def targets(self, period: Period | str) -> list[Target]:
        """Every rep's target for ``period`` (a month, or the months of a quarter or year added)."""
        from salesflow import Money, Period, Target

        chosen = Period.parse(period) if isinstance(period, str) else period
        months = chosen.length
        return [
            Target(owner=rep, period=chosen, amount=Money.of(amount * months, self.currency))
            for rep, amount in sorted(self.monthly_targets.items())
        ]

    def users_toml(self) -> str:
        """The people as a ``salesflow --users`` file."""
        lines = ["# Who may act: roles and teams per user id (salesflow --users FILE).", ""]
        for user, actor in sorted(self.actors.items()):
            lines.append(f"[users.{user}]")
            lines.append(f"roles = [{', '.join(_quote(r) for r in sorted(actor.roles))}]")
            if actor.teams:
                lines.append(f"teams = [{', '.join(_quote(t) for t in sorted(actor.teams))}]")
            lines.append("")
        return "\n".join(lines)

    def config_toml(self) -> str:
        """The company's settings as a ``salesflow --config`` file: currency, teams, monthly
        targets and the target funnel."""
        lines = [
            "# salesflow settings (salesflow --config FILE); the stage plan is the default one.",
            f"currency = {_quote(self.currency)}",
            f"as_of = {self.as_of.isoformat()}",
            "",
            "[teams]",
        ]
        lines += [
            f"{team} = [{', '.join(_quote(r) for r in reps)}]"
            for team, reps in sorted(self.teams.items())
        ]
        lines += ["", "[targets.monthly]"]
        lines += [f"{rep} = {_quote(str(amount))}" for rep, amount in self.monthly_targets.items()]
        lines += [
            "",
            "[funnel]",
            "tolerance = 0.5",
            "min_opportunities = 10",
            "",
            "[funnel.target]",
        ]
        lines += [f"{stage} = {share}" for stage, share in self.funnel_target.items()]
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        """Close the desk if :func:`build_company` opened it."""
        if self.owns_desk:
            self.desk.close()

    def __enter__(self) -> SampleCompany:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sample_catalog() -> Catalog:
    """The sample company's catalog (CNY): seats with volume tiers, services, hardware, a bundle."""
    from salesflow import Bundle, BundleComponent, Catalog, Category, Money, PriceTier, Product

    def cny(amount: str) -> Money:
        return Money.of(amount, "CNY")

    return Catalog(
        categories=[
            Category(id="software", name="Software"),
            Category(id="services", name="Services"),
            Category(id="hardware", name="Hardware"),
        ],
        products=[
            Product(
                sku="CRM-SEAT",
                name="CRM seat, one year",
                list_price=cny("1200.00"),
                floor_price=cny("700.00"),
                category="software",
                tiers=[
                    PriceTier(min_quantity=50, unit_price=cny("1100.00")),
                    PriceTier(min_quantity=200, unit_price=cny("1000.00")),
                ],
            ),
            Product(
                sku="ERP-DAY",
                name="ERP rollout, consultant day",
                list_price=cny("8000.00"),
                floor_price=cny("5600.00"),
                category="services",
            ),
            Product(
                sku="SUPPORT",
                name="Support plan, one year",
                list_price=cny("60000.00"),
                floor_price=cny("45000.00"),
                category="services",
            ),
            Product(
                sku="DATA-PLAT",
                name="Data platform licence",
                list_price=cny("150000.00"),
                floor_price=cny("110000.00"),
                category="software",
            ),
            Product(
                sku="TRAIN",
                name="Training day",
                list_price=cny("6000.00"),
                floor_price=cny("4000.00"),
                category="services",
            ),
            Product(
                sku="HW-APPL",
                name="Server appliance",
                list_price=cny("48000.00"),
                floor_price=cny("36000.00"),
                category="hardware",
            ),
        ],
        bundles=[
            Bundle(
                sku="STARTER",
                name="Starter pack: 20 seats and 2 training days",
                price=cny("30000.00"),
                category="software",
                components=[
                    BundleComponent(sku="CRM-SEAT", quantity=20),
                    BundleComponent(sku="TRAIN", quantity=2),
                ],
            )
        ],
    )


# -- the builder -----------------------------------------------------------------------------------


@attrs.define
class _Step:
    at: datetime
    order: int
    run: Callable[[], Any]


class _Builder:
    """Plans every deal's story as dated steps, then runs them in time order on the desk."""

    def __init__(self, desk: SalesDesk, clock: Any, seed: int, size: str) -> None:
        from salesflow import Actor

        self.desk = desk
        self.clock = clock
        self.seed = seed
        self.size = size
        self.rng = random.Random(f"salesflow-sample-{seed}")
        per_team, self.deal_count = SIZES[size]
        self.teams = {team: reps[:per_team] for team, reps in _REPS.items()}
        self.team_of = {rep: team for team, reps in self.teams.items() for rep in reps}
        self.actors: dict[str, Actor] = {}
        for team, reps in self.teams.items():
            for rep in reps:
                self.actors[rep] = Actor(rep, roles={"sales_rep"}, teams={team})
            manager = _MANAGERS[team]
            self.actors[manager] = Actor(manager, roles={"sales_manager"}, teams={team})
        for user, roles in _STAFF.items():
            self.actors[user] = Actor(user, roles=roles)
        self.steps: list[_Step] = []
        self.commands = 0
        self.catalog = sample_catalog()
        self.quotes: list[str] = []
        self.contracts: dict[str, str] = {}  # id -> planned end state (checked after the run)
        self.invoices: list[str] = []
        self.payments: list[str] = []
        self.contacts: list[str] = []
        self.tasks: list[str] = []
        self.calls = 0
        self.phones: dict[str, list[str]] = {}  # rep -> the phone numbers of their contacts

    # -- scheduling ----------------------------------------------------------------------------

    def at(self, day: date, minute: int, run: Callable[[], Any]) -> None:
        """Run ``run`` on ``day`` at 09:00 + ``minute`` (local time), if that is not after AS_OF."""
        if day > AS_OF:
            return
        moment = datetime.combine(day, time(9, 0), TIMEZONE) + timedelta(minutes=minute)
        self.steps.append(_Step(moment, len(self.steps), run))

    def command(self, run: Callable[[], Any]) -> Callable[[], Any]:
        def counted() -> Any:
            self.commands += 1
            return run()

        return counted

    def spread(self, start: date, end: date, count: int) -> list[date]:
        """``count`` increasing days from ``start`` to ``end`` (days may repeat when it is short)."""
        span = max((end - start).days, 0)
        if count <= 0:
            return []
        if span + 1 >= count:
            offsets = sorted(self.rng.sample(range(span + 1), count))
        else:
            offsets = sorted(self.rng.randrange(span + 1) for _ in range(count))
        return [start + timedelta(days=o) for o in offsets]

    def run(self) -> None:
        for step in sorted(self.steps, key=lambda s: (s.at, s.order)):
            if step.at > self.clock.now:
                self.clock.now = step.at
            step.run()

    # -- the company ---------------------------------------------------------------------------

    def plan(self) -> None:
        from salesflow import generate_pipeline

        root = self.actors["root"]
        self.at(START, -60, self.command(lambda: self.desk.update_catalog(root, self.catalog)))
        owners = [(rep, team) for team, reps in self.teams.items() for rep in reps]
        pipeline = generate_pipeline(
            self.deal_count, seed=self.seed, as_of=AS_OF, owners=owners, months=4
        )
        special = self._special_roles(pipeline)
        accounts: dict[str, list[str]] = {}
        for number, opportunity in enumerate(pipeline, start=1):
            self._deal(number, opportunity, special.get(opportunity.id), accounts)
        self._calls()

    def _special_roles(self, pipeline: Sequence[Opportunity]) -> dict[str, str]:
        """Deals whose contract ends in a particular state, so that every state is present."""
        by_stage: dict[str, list[str]] = {}
        for opportunity in pipeline:
            by_stage.setdefault(opportunity.stage, []).append(opportunity.id)
        roles: dict[str, str] = {}
        wanted = [
            ("quotation", "draft"),
            ("quotation", "in_review"),
            ("quotation", "in_review"),
            ("won", "terminated"),
            ("won", "resubmitted"),
            ("lost", "cancelled"),
        ]
        for stage, role in wanted:
            free = [i for i in by_stage.get(stage, []) if i not in roles]
            if free:
                roles[free[0]] = role
        return roles

    def _deal(
        self,
        number: int,
        opportunity: Opportunity,
        role: str | None,
        accounts: dict[str, list[str]],
    ) -> None:
        from salesflow import Opportunity, StageChange

        rng = self.rng
        rep = self.actors[opportunity.owner]
        plan = self.desk.plan
        open_keys = [s.key for s in plan.open_stages]
        target = opportunity.stage
        if target == "lost" and role != "cancelled":
            reached = [c.to_stage for c in opportunity.history if c.to_stage in open_keys]
            path = reached or open_keys[:1]
            end = START + timedelta(days=rng.randrange(25, (AS_OF - START).days))
            reason: str | None = opportunity.history[-1].reason or "other"
            note = opportunity.history[-1].note
        else:
            # Won deals and the ones whose contract matters run to quotation; others stop earlier.
            last = "quotation" if target in ("won", "lost") else target
            path = open_keys[: open_keys.index(last) + 1]
            if role == "terminated":  # signed early enough to be ended before AS_OF
                end = START + timedelta(days=rng.randrange(30, 60))
            elif target == "won":  # the later of two days: more deals are won lately
                latest = (AS_OF - START).days - 14
                end = START + timedelta(days=max(rng.randrange(30, latest) for _ in range(2)))
            elif role in ("draft", "in_review", "cancelled"):
                end = AS_OF - timedelta(days=rng.randrange(16, 23))
            else:
                end = AS_OF - timedelta(days=rng.randrange(1, 60))
            reason = note = None
        created = max(START, end - timedelta(days=rng.randrange(10 * len(path), 40 * len(path))))
        days = [created, *self.spread(created + timedelta(days=1), end, len(path) - 1)]
        sku = _PRODUCT_SKUS[(opportunity.name or "").split(" - ")[-1].rsplit(" #", 1)[0]]
        quantity, discount = self._quantity(sku, opportunity), rng.choice(_DISCOUNTS)
        quoted_on = days[-1] + timedelta(days=rng.randrange(0, 3))
        quote = self._quote(number, opportunity.owner, sku, quantity, discount, quoted_on)
        expected = opportunity.expected_close
        if target == "quotation" and role is None:  # what the forecast counts: mostly near
            month = AS_OF.month - 1 + rng.choice((-1, 0, 0, 0, 1, 1, 1, 2))
            day = date(AS_OF.year + month // 12, month % 12 + 1, rng.randrange(1, 29))
            expected = None if rng.randrange(20) == 0 else day
        if target in ("won", "lost") or role is not None:
            expected = end + timedelta(days=rng.randrange(15, 40))
        deal = attrs.evolve(
            opportunity,
            amount=quote.total,
            stage=path[0],
            expected_close=expected,
            created=created,
            history=(),
        )
        self._contacts(deal, days[0], accounts)
        minute = rng.randrange(0, 480)

        def add() -> None:
            first = StageChange(self.clock.now, None, path[0])
            self.desk.add_opportunity(rep, attrs.evolve(deal, history=(first,)))

        assert isinstance(deal, Opportunity)
        self.at(days[0], minute, self.command(add))
        for key, day in zip(path[1:], days[1:], strict=True):
            self.at(day, minute, self.command(_bind(self.desk.move_opportunity, rep, deal.id, key)))
        if target == "lost" and role != "cancelled":
            move = _bind(self.desk.move_opportunity, rep, deal.id, "lost", reason=reason, note=note)
            self.at(end, minute + 5, self.command(move))
            return
        if path[-1] != "quotation":
            return
        self._sell(number, deal, quote, role, quoted_on, minute, wins=target == "won")

    def _quantity(self, sku: str, opportunity: Opportunity) -> int:
        unit = {
            "CRM-SEAT": 1100,
            "ERP-DAY": 8000,
            "SUPPORT": 60000,
            "DATA-PLAT": 150000,
            "TRAIN": 6000,
            "HW-APPL": 48000,
        }[sku]
        return max(1, min(int(opportunity.amount.amount) // unit, 900))

    def _quote(
        self, number: int, owner: str, sku: str, quantity: int, discount: int, on: date
    ) -> Quote:
        from salesflow import Quote

        draft = Quote(
            id=f"Q-{number:04d}",
            owner=owner,
            currency="CNY",
            quoted_on=on,
            opportunity_id=f"OPP-{number:07d}",
        )
        quote = draft.add_line(self.catalog, sku, quantity, discount=discount)
        if self.rng.randrange(4) == 0:
            quote = quote.add_line(self.catalog, "TRAIN", self.rng.randrange(1, 6))
        return quote

    def _sell(
        self,
        number: int,
        deal: Opportunity,
        quote: Quote,
        role: str | None,
        quoted_on: date,
        minute: int,
        *,
        wins: bool,
    ) -> None:
        rng = self.rng
        rep = self.actors[deal.owner]
        team = self.team_of[deal.owner]
        manager = self.actors[_MANAGERS[team]]
        self.quotes.append(quote.id)
        self.at(quoted_on, minute + 10, self.command(_bind(self.desk.create_quote, rep, quote)))
        self.at(quoted_on, minute + 15, self.command(_bind(self.desk.submit_quote, rep, quote.id)))
        approved_on = quoted_on + timedelta(days=rng.randrange(1, 4))
        self.at(approved_on, minute, lambda: self._decide_quote(quote.id, team))
        if not wins and role is None:
            return  # an open deal at quotation: the quote is all there is so far
        contract_id = f"C-{number:04d}"
        drafted = approved_on + timedelta(days=rng.randrange(1, 5))
        terms = "Delivery within 60 days of signing; payment 30 days after each invoice."
        create = _bind(self.desk.create_contract, rep, quote.id, id=contract_id, terms=terms)
        self.at(drafted, minute + 20, self.command(create))
        self.contracts[contract_id] = role or "formal"
        if role == "draft":
            return
        if role == "cancelled":
            cancelled = drafted + timedelta(days=rng.randrange(2, 6))
            reason = "Customer froze the budget before signing"
            cancel = _bind(self.desk.cancel_contract, rep, contract_id, reason=reason)
            self.at(cancelled, minute, self.command(cancel))
            lose = _bind(self.desk.move_opportunity, rep, deal.id, "lost", reason="no_budget")
            self.at(cancelled, minute + 5, self.command(lose))
            return
        submitted = drafted + timedelta(days=rng.randrange(0, 2))
        if role == "in_review":
            submitted = AS_OF - timedelta(days=rng.randrange(0, 4))
        self.at(
            submitted, minute + 30, self.command(_bind(self.desk.submit_contract, rep, contract_id))
        )
        request = f"contract:{contract_id}"
        day = submitted
        chain: list[tuple[Actor, str]] = [
            (manager, "sales_manager"),
            (self.actors["pat"], "project_manager"),
            (self.actors["fin"], "finance"),
            (self.actors["leo"], "legal"),
        ]
        if role == "resubmitted":
            day += timedelta(days=1)
            self.at(day, minute + 40, self._approval(request, manager, "sales_manager"))
            day += timedelta(days=rng.randrange(1, 3))
            reason = "Penalty clause uncapped: cap it at 10 % of the contract amount"
            self.at(day, minute + 40, self._rejection(request, self.actors["pat"], reason))
            day += timedelta(days=1)
            revise = _bind(
                self.desk.revise_contract,
                rep,
                contract_id,
                terms=terms + " Penalties capped at 10 %.",
            )
            self.at(day, minute + 45, self.command(revise))
            self.at(
                day, minute + 50, self.command(_bind(self.desk.submit_contract, rep, contract_id))
            )
        if role == "in_review":  # still waiting on AS_OF, at the first or the second step
            chain = chain[: rng.randrange(0, 2)]
        for actor, step_role in chain:
            day += timedelta(days=rng.randrange(0, 3) if step_role in ("finance", "legal") else 1)
            self.at(day, minute + 60, self._approval(request, actor, step_role))
        if role == "in_review":
            return
        self._bill(number, deal, contract_id, day, role, minute)

    def _decide_quote(self, quote_id: str, team: str) -> None:
        try:
            request = self.desk.approval(f"quote:{quote_id}")
        except NotFoundError:
            return  # approved at once: within the rep's authority
        for role in request.awaiting_roles:
            who = _MANAGERS[team] if role == "sales_manager" else "dan"
            self._approval(f"quote:{quote_id}", self.actors[who], role)()

    def _approval(self, request_id: str, actor: Actor, role: str) -> Callable[[], None]:
        def approve() -> None:
            request = self.desk.approval(request_id)
            if role not in request.awaiting_roles:
                raise ValidationError(
                    "role", role, f"a role {request_id} awaits ({request.awaiting_roles})"
                )
            self.commands += 1
            self.desk.approve(actor, request_id, role=role, version=request.version)

        return approve

    def _rejection(self, request_id: str, actor: Actor, reason: str) -> Callable[[], None]:
        def reject() -> None:
            request = self.desk.approval(request_id)
            self.commands += 1
            self.desk.reject(
                actor, request_id, role="project_manager", version=request.version, reason=reason
            )

        return reject

    def _bill(
        self,
        number: int,
        deal: Opportunity,
        contract_id: str,
        signed: date,
        role: str | None,
        minute: int,
    ) -> None:
        """Billing after signing: a plan of two milestones, delivery, invoices, payments."""
        from salesflow import MilestoneSpec, Trigger

        rng = self.rng
        rep = self.actors[deal.owner]
        pat, fin = self.actors["pat"], self.actors["fin"]
        specs = [
            MilestoneSpec(name="signing", due_on=signed + timedelta(days=15), share=30),
            MilestoneSpec(
                name="acceptance",
                due_on=signed + timedelta(days=75),
                share=70,
                trigger=Trigger(lines=("L1",)),
            ),
        ]
        plan = _bind(self.desk.attach_billing_plan, rep, contract_id, specs)
        self.at(signed + timedelta(days=1), minute, self.command(plan))
        first = f"INV-{number:04d}-1"
        invoiced = signed + timedelta(days=rng.randrange(2, 8))
        issue = _bind(
            self.desk.issue_invoice,
            fin,
            contract_id,
            first,
            milestone="signing",
            due_on=invoiced + timedelta(days=30),
        )
        self.at(invoiced, minute + 5, self._counted(issue, self.invoices, first))
        behaviour = rng.choice(("prompt", "prompt", "prompt", "late", "late", "partial", "never"))
        if role == "terminated":  # the customer restructured and left its first invoice unpaid
            behaviour = "never"
        self._pay(number, 1, contract_id, first, invoiced, behaviour, minute)
        ended = None
        if role == "terminated":
            ended = signed + timedelta(days=rng.randrange(30, 45))
            manager = self.actors[_MANAGERS[self.team_of[deal.owner]]]
            reason = "Customer restructured and stopped the project after phase one"
            terminate = _bind(self.desk.terminate_contract, manager, contract_id, reason=reason)
            self.at(ended, minute + 30, self.command(terminate))
        half = signed + timedelta(days=rng.randrange(15, 30))
        done = half + timedelta(days=rng.randrange(15, 40))
        progress_half = _bind(self.desk.record_progress, pat, contract_id, "L1", 50)
        self.at(half, minute + 10, self.command(progress_half))
        if ended is not None and done >= ended:
            return
        progress_done = _bind(self.desk.record_progress, pat, contract_id, "L1", 100)
        self.at(done, minute + 10, self.command(progress_done))
        second = f"INV-{number:04d}-2"
        invoiced = done + timedelta(days=rng.randrange(1, 6))
        issue = _bind(
            self.desk.issue_invoice,
            fin,
            contract_id,
            second,
            milestone="acceptance",
            due_on=invoiced + timedelta(days=30),
        )
        self.at(invoiced, minute + 15, self._counted(issue, self.invoices, second))
        self._pay(number, 2, contract_id, second, invoiced, behaviour, minute)

    def _pay(
        self,
        number: int,
        index: int,
        contract_id: str,
        invoice_id: str,
        invoiced: date,
        behaviour: str,
        minute: int,
    ) -> None:
        if behaviour == "never":
            return
        rng = self.rng
        fin = self.actors["fin"]
        due = invoiced + timedelta(days=30)
        if behaviour == "prompt":
            paid = due - timedelta(days=rng.randrange(0, 20))
        else:
            paid = due + timedelta(days=rng.randrange(10, 50))
        payment = f"PAY-{number:04d}-{index}"

        def pay() -> None:
            billing = self.desk.billing(contract_id)
            (invoice,) = [i for i in billing.invoices if i.id == invoice_id]
            amount = invoice.amount.amount
            if behaviour == "partial":
                amount = (amount / 2).quantize(Decimal("0.01"))
            self.commands += 1
            self.desk.record_payment(fin, contract_id, payment, invoice_id, amount)
            self.payments.append(payment)

        self.at(paid, 420, pay)

    def _counted(self, run: Callable[[], Any], into: list[str], item: str) -> Callable[[], None]:
        def counted() -> None:
            self.commands += 1
            run()
            into.append(item)

        return counted

    # -- contacts and calls -------------------------------------------------------------------------

    def _contacts(self, deal: Opportunity, day: date, accounts: dict[str, list[str]]) -> None:
        from salesflow import Contact

        account = deal.account or deal.id
        if account in accounts:
            return
        rng = self.rng
        owner = deal.owner
        rep = self.actors[owner]
        made: list[str] = []
        for _ in range(rng.randrange(1, 3)):
            contact_id = f"K-{len(self.contacts) + 1:04d}"
            phones = [f"+86{rng.choice((138, 139, 186, 137))}{rng.randrange(10**8):08d}"]
            if rng.randrange(5) == 0:
                phones.append(f"+8610{rng.randrange(10**8):08d}")
            contact = Contact(
                id=contact_id,
                name=f"{rng.choice(_FAMILY)} {rng.choice(_GIVEN)}",
                account=account,
                owner=owner,
                industry=deal.industry,
                region=deal.region,
                phones=phones,
            )
            self.contacts.append(contact_id)
            self.phones.setdefault(owner, []).extend(phones)
            self.at(day, -30, self.command(_bind(self.desk.add_contact, rep, contact)))
            made.append(contact_id)
        accounts[account] = made

    def _calls(self) -> None:
        """Six weeks of calls, imported every Monday (and on the last day) by each team's manager."""
        from salesflow import CallRecord

        rng = random.Random(f"salesflow-sample-calls-{self.seed}")
        first = AS_OF - timedelta(days=42)
        first -= timedelta(days=first.weekday())  # a Monday
        records: list[CallRecord] = []
        for offset in range((AS_OF - first).days):
            day = first + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for team, reps in self.teams.items():
                for index, rep in enumerate(reps):
                    line = f"+8610888{1 if team == 'east' else 2}{index:04d}"
                    for _ in range(rng.randrange(2, 7)):
                        records.append(self._call(rng, day, rep, line, len(records)))
        source = _SampleSource(records)
        mondays = [first + timedelta(days=7 * w) for w in range(1, 7)] + [AS_OF]
        previous = datetime.combine(first, time(0), TIMEZONE)
        for monday in sorted(set(mondays)):
            until = datetime.combine(monday, time(0), TIMEZONE)
            window = (previous, until)
            previous = until
            manager = self.actors[_MANAGERS["east"]]
            self.at(monday, -45, self._import(manager, source, window))
            sweep = monday + timedelta(days=2)
            if sweep < AS_OF:
                self.at(sweep, 480, self._sweep)
        library_day = AS_OF - timedelta(days=1)
        self.at(library_day, 500, self._feature)

    def _call(self, rng: random.Random, day: date, rep: str, line: str, n: int) -> Any:
        from salesflow import CallRecord, Direction, Disposition

        started = datetime.combine(day, time(9, 0), TIMEZONE) + timedelta(
            minutes=rng.randrange(0, 540), seconds=rng.randrange(60)
        )
        known = self.phones.get(rep, [])
        kind = rng.randrange(10)
        if kind < 7 or not known:
            direction = "outbound"
            other = rng.choice(known) if known and kind < 9 else f"+86135{rng.randrange(10**8):08d}"
            answered = rng.randrange(100) < 65
        else:
            direction = "inbound"
            other = rng.choice(known) if kind < 9 else f"+86135{rng.randrange(10**8):08d}"
            answered = rng.randrange(100) < 75
        disposition = (
            "answered" if answered else rng.choice(("no_answer", "no_answer", "busy", "failed"))
        )
        talk = rng.randrange(20, 1200) if answered else 0
        from_number, to_number = (line, other) if direction == "outbound" else (other, line)
        return CallRecord(
            source="sample-pbx",
            external_id=f"S-{n + 1:06d}",
            direction=Direction(direction),
            from_number=from_number,
            to_number=to_number,
            started_at=started,
            disposition=Disposition(disposition),
            owner=rep,
            ring_seconds=rng.randrange(2, 30),
            talk_seconds=talk,
            recording=f"recordings/S-{n + 1:06d}.wav" if answered else None,
        )

    def _import(
        self, actor: Actor, source: _SampleSource, window: tuple[datetime, datetime]
    ) -> Callable[[], None]:
        def run() -> None:
            self.commands += 1
            result = self.desk.import_calls(actor, source, since=window[0], until=window[1])
            self.calls += result.value.imported
            self.tasks.extend(result.value.tasks_created)

        return run

    def _sweep(self) -> None:
        """Reps close most of their open follow-up tasks."""
        for task in self.desk.tasks(status="open"):
            if task.owner is None or self.rng.randrange(10) < 3:
                continue
            self.commands += 1
            self.desk.complete_task(
                self.actors[task.owner], task.id, note="Called back", version=task.version
            )

    def _feature(self) -> None:
        """Each manager files their team's longest answered call in the best-call library."""
        calls = [c for c in self.desk.calls() if c.answered and c.contact_id and c.recording]
        for team, manager in sorted(_MANAGERS.items()):
            mine = [c for c in calls if self.team_of.get(c.owner or "") == team]
            if not mine:
                continue
            best = max(mine, key=lambda c: (c.talk_seconds, c.id))
            self.commands += 1
            self.desk.feature_call(
                self.actors[manager], best.id, tags=["discovery"], note="Clear needs analysis"
            )


_FAMILY = ("Li", "Wang", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu")
_GIVEN = ("Wei", "Fang", "Na", "Min", "Jing", "Lei", "Yan", "Jun", "Tao", "Hui")


def _bind(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    return lambda: function(*args, **kwargs)


class _SampleSource:
    """The sample PBX: a call source over records held in memory."""

    name = "sample-pbx"

    def __init__(self, records: Sequence[Any]) -> None:
        self._records = tuple(records)

    @property
    def errors(self) -> tuple[Any, ...]:
        return ()

    def fetch(
        self, since: datetime | None, until: datetime | None, *, on_error: str = "raise"
    ) -> Any:
        return iter(
            [
                r
                for r in self._records
                if (since is None or r.started_at >= since)
                and (until is None or r.started_at < until)
            ]
        )


def build_company(
    where: str | SalesDesk = "memory://",
    *,
    seed: int = 7,
    size: Size = "small",
    clock: Any = None,
    **open_options: Any,
) -> SampleCompany:
    """Build the sample company (see the module documentation) and return what was made.

    Args:
        where: a storage URL (a desk is opened on it with a clock of its own; close it with
            ``with`` or :meth:`SampleCompany.close`), or a :class:`~salesflow.desk.SalesDesk` on an
            empty storage, opened with ``clock=`` a hand-moved clock that is also passed here
            (:class:`SampleClock` or :class:`salesflow.testing.storage.ManualClock`).
        seed: the same seed makes the same company.
        size: ``"small"`` (3 reps per team, 90 opportunities) or ``"medium"`` (6 reps per team,
            360 opportunities).
        clock: the desk's clock, when ``where`` is a desk.
        open_options: passed to :func:`salesflow.open` when ``where`` is a URL.
    """
    import salesflow

    if type(seed) is not int:
        raise InvalidTypeError("seed", seed, "an int")
    if size not in SIZES:
        raise ValidationError("size", size, f"one of {sorted(SIZES)}")
    begin = datetime.combine(START, time(7, 0), TIMEZONE)
    owns = isinstance(where, str)
    if isinstance(where, str):
        if clock is not None:
            raise ValidationError(
                "clock", clock, "None when a URL is given (the desk gets its own)"
            )
        clock = SampleClock(begin)
        desk = salesflow.open(where, clock=clock, **open_options)
    elif isinstance(where, salesflow.SalesDesk):
        desk = where
        if clock is None or not hasattr(clock, "now") or desk.now() != clock():
            raise ValidationError(
                "clock",
                clock,
                "the hand-moved clock the desk was opened with (e.g. SampleClock or ManualClock)",
            )
        if desk.opportunities() or desk.contracts():
            raise ValidationError("where", desk.storage.url, "a desk on an empty storage")
        if clock.now > begin:
            raise ValidationError("clock", clock.now, f"a clock at or before {begin.isoformat()}")
        clock.now = begin
    else:
        raise InvalidTypeError("where", where, "a storage URL or a SalesDesk")
    try:
        if desk.opportunities() or desk.contracts():
            raise ValidationError("where", desk.storage.url, "an empty storage")
        builder = _Builder(desk, clock, seed, size)
        builder.plan()
        builder.run()
        states: dict[str, list[str]] = {}
        for contract in desk.contracts():
            states.setdefault(contract.state.value, []).append(contract.id)
    except BaseException:
        if owns:
            desk.close()
        raise
    return SampleCompany(
        desk=desk,
        clock=clock,
        seed=seed,
        size=size,
        as_of=AS_OF,
        actors=dict(builder.actors),
        teams={team: tuple(reps) for team, reps in builder.teams.items()},
        managers=dict(_MANAGERS),
        monthly_targets=_targets(builder),
        funnel_target=dict(FUNNEL_TARGET),
        opportunities=tuple(o.id for o in desk.opportunities()),
        quotes=tuple(sorted(builder.quotes)),
        contracts={state: tuple(sorted(ids)) for state, ids in sorted(states.items())},
        invoices=tuple(sorted(builder.invoices)),
        payments=tuple(sorted(builder.payments)),
        contacts=tuple(builder.contacts),
        calls=builder.calls,
        tasks=tuple(builder.tasks),
        commands=builder.commands,
        owns_desk=owns,
    )


def _targets(builder: _Builder) -> dict[str, Decimal]:
    rng = random.Random(f"salesflow-sample-targets-{builder.seed}")
    return {
        rep: Decimal(rng.choice((150, 200, 250, 300, 350)) * 1000)
        for reps in builder.teams.values()
        for rep in reps
    }
