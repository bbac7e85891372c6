"""The storage conformance kit: a backend is correct when it passes these.

Subclass :class:`StorageContract` in your test suite and override two fixtures: ``storage`` (the
backend under test, empty) and ``reopen`` (how to open a second storage on the same data: the
durability case closes the storage and reopens it, the concurrency case races two storages)::

    import pytest
    from salesflow.testing.storage import StorageContract

    class TestMyBackend(StorageContract):
        @pytest.fixture
        def storage(self, clock):
            storage = MyStorage("mine://test", clock=clock)
            yield storage
            storage.destroy()  # runs after the durability case closed it, too

        @pytest.fixture
        def reopen(self, clock):
            return lambda storage: MyStorage(storage.url, clock=clock)

A backend that by design keeps nothing beyond its object (like ``memory://``) returns ``None``
from ``reopen``: the durability case is skipped with that reason, and the concurrency case runs two
units of work of the one storage.

Run the kit with salesflow's pytest plugin, so that a failing case shows what differs (pytest
rewrites the assertions of the kit's modules only when told to before they are imported): it is
registered through the ``pytest11`` entry point, so installing salesflow enables it, and
``pytest -p salesflow.testing.plugin`` names it explicitly (:mod:`salesflow.testing.plugin`).

Optional behaviour is declared by the backend, not guessed: ``storage.capabilities`` (a frozenset
of :data:`CAPABILITIES` names, empty when absent). Cases about an optional capability are skipped,
with the reason, for a backend that does not declare it, like the requirements of SQLAlchemy's
dialect test suite. Errors are checked by class and attributes (``field``, ``id``...), never by
their message text, which a backend words as it likes.

Then run the random command sequences of :func:`storage_machine` against it (a hypothesis
``RuleBasedStateMachine`` that checks your backend against the in-memory reference after every
step)::

    TestMyBackendMachine = storage_machine(lambda clock: MyStorage(..., clock=clock), cleanup).TestCase
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from salesflow.adapters.storage_memory import MemoryStorage
from salesflow.analytics.forecast import forecast
from salesflow.domain.actors import Actor
from salesflow.domain.alerts import Alert
from salesflow.domain.approvals import ApprovalRequest, Delegation, Workflow
from salesflow.domain.billing import ContractBilling, MilestoneSpec, Trigger
from salesflow.domain.calls import CallRecord, Direction, Disposition
from salesflow.domain.catalog import Bundle as ProductBundle
from salesflow.domain.catalog import BundleComponent, Catalog, Category, PriceTier, Product
from salesflow.domain.contacts import Contact, contact_numbers
from salesflow.domain.contracts import Contract
from salesflow.domain.events import Event
from salesflow.domain.forecasts import (
    CategoryOverride,
    ForecastSnapshot,
    OverrideEntry,
    SnapshotLine,
)
from salesflow.domain.library import feature_call
from salesflow.domain.money import Money
from salesflow.domain.numbers import MAX_AMOUNT, MAX_PLACES, MAX_QUANTITY
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.phones import PhoneSettings
from salesflow.domain.quotes import Quote
from salesflow.domain.stages import StagePlan
from salesflow.domain.tasks import FollowUpTask
from salesflow.errors import (
    ConcurrencyError,
    ContractLockedError,
    NotFoundError,
    SalesflowError,
    StageError,
    ValidationError,
)
from salesflow.ports import Between, Storage
from salesflow.storage.kinds import KINDS
from salesflow.testing.strategies import opportunities

__all__ = [
    "CAPABILITIES",
    "ManualClock",
    "Reopen",
    "StorageContract",
    "capabilities",
    "requires",
    "storage_machine",
]

PLAN = StagePlan.default()
AS_OF = date(2026, 11, 26)

Reopen = Callable[[Storage], Storage]
"""``reopen(storage)``: a new storage object on the same data as ``storage`` (its URL, database,
options and clock), opened while ``storage`` may still be open; the kit closes it."""

CAPABILITIES: dict[str, str] = {
    "forecast_pushdown": "the stored forecast is computed by the database (GROUP BY), not by the "
    "pure calculator over the stored rows",
    "window_pushdown": "opportunities.query_window() selects a created/closed time window in the "
    "database (the desk's windowed analytics use it)",
}
"""The optional capabilities a backend may declare in ``storage.capabilities``, with what each
means. The kit's cases about one are skipped for a backend that does not declare it."""


def capabilities(storage: Storage) -> frozenset[str]:
    """The optional capabilities ``storage`` declares (``storage.capabilities``; none when it has
    no such attribute)."""
    return frozenset(getattr(storage, "capabilities", frozenset()))


def requires(storage: Storage, capability: str) -> None:
    """Skip the calling case, saying why, unless ``storage`` declares ``capability``."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; known: {sorted(CAPABILITIES)}")
    if capability not in capabilities(storage):
        pytest.skip(
            f"the backend does not declare the optional capability {capability!r} "
            f"({CAPABILITIES[capability]})"
        )


_SMALLEST = Decimal(1).scaleb(-MAX_PLACES)
_LARGEST_AMOUNT = MAX_AMOUNT - _SMALLEST
_LARGEST_QUANTITY = MAX_QUANTITY - _SMALLEST

BOUNDARY_AMOUNTS = (
    str(_LARGEST_AMOUNT),  # 999999999999999.9999999999: 25 digits, no double holds it
    str(_SMALLEST),
    "123456789012345.6789012345",
    "100000000000000.0000000001",
)
"""Amounts at and near the documented bounds (:mod:`salesflow.domain.numbers`): a backend that
rounds through a binary float (even one read back through ``str()``) cannot return them exactly."""


class ManualClock:
    """A clock the test moves by hand: ``clock()`` is the current time; ``advance()`` moves it."""

    def __init__(self, start: datetime = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move the clock forward (``advance(minutes=5)``) and return the new time."""
        self.now += timedelta(**delta)
        return self.now


class _DeliberateRollbackError(Exception):
    """Raised to roll a unit of work back on purpose."""


def _opp(i: int | str, **changes: Any) -> Opportunity:
    fields: dict[str, Any] = {
        "id": f"op-{i}",
        "owner": "ann",
        "team": "east",
        "amount": Money.of("1000.00", "CNY"),
        "stage": "quotation",
        "expected_close": date(2026, 12, 15),
    }
    fields.update(changes)
    return Opportunity(**fields)


def _call(
    external_id: str, *, owner: str = "ann", at: datetime = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
) -> CallRecord:
    return CallRecord(
        source="asterisk-csv",
        external_id=external_id,
        owner=owner,
        direction=Direction.OUTBOUND,
        from_number="+861088880000",
        to_number="+8613800138000",
        started_at=at,
        disposition=Disposition.ANSWERED,
        talk_seconds=30,
        recording=f"rec/{external_id}.wav",
    )


def sample_aggregates() -> dict[str, list[Any]]:
    """One or more realistic values of every document kind, by unit-of-work attribute: a catalog
    with tiers and a bundle, a quote priced from it, an approval request with a delegated decision,
    a formal contract with its billing (plan, progress, invoice, credit note, payment), and the call
    centre's contacts, tasks, calls and library entries."""
    at = datetime(2026, 11, 3, 10, 30, tzinfo=timezone(timedelta(hours=8)))
    day = date(2026, 11, 3)
    cny = Money.of
    categories = [
        Category(id="hw", name="Hardware"),
        Category(id="laptops", name="Laptops", parent="hw"),
    ]
    products = [
        Product(
            sku="LAPTOP",
            name="Laptop 14",
            category="laptops",
            list_price=cny("6000.00", "CNY"),
            floor_price=cny("4800.00", "CNY"),
            cost=cny("4100.55", "CNY"),
            tiers=(PriceTier(10, cny("5700.00", "CNY")), PriceTier(50, cny("5400.00", "CNY"))),
            tier_mode="slab",
            valid_from=date(2026, 1, 1),
        ),
        Product(sku="DOCK", name="Dock", category="hw", list_price=cny("799.99", "CNY")),
    ]
    bundles = [
        ProductBundle(
            sku="KIT",
            name="Office kit",
            price=cny("6500.00", "CNY"),
            components=(BundleComponent("LAPTOP", 1), BundleComponent("DOCK", 1)),
            category="hw",
        )
    ]
    catalog = Catalog(categories=categories, products=products, bundles=bundles)
    quote = (
        Quote(
            id="Q-1", owner="ann", currency="CNY", quoted_on=day, opportunity_id="op-1", tax_rate=13
        )
        .add_line(catalog, "LAPTOP", 12, discount=Decimal("7.5"))
        .add_line(catalog, "KIT", 2)
        .set_document_discount(3)
    )
    approved_quote = quote.submit_for_approval().approve()
    rep, manager, deputy = (
        Actor("ann", roles={"sales_rep"}),
        Actor("mia", roles={"sales_manager"}),
        Actor("bob"),
    )
    delegation = Delegation.grant(
        manager,
        delegate=deputy,
        role="sales_manager",
        valid_from=day,
        valid_until=date(2026, 11, 30),
    )
    request, _ = ApprovalRequest(
        id="quote:Q-1",
        subject_id="Q-1",
        subject_kind="quote",
        workflow=Workflow.one_step("sales_manager"),
    ).submit(rep, at=at, content_hash=quote.content_hash(), owner=rep.id)
    request, _ = request.approve(
        deputy,
        role="sales_manager",
        at=at + timedelta(hours=1),
        version=1,
        content_hash=quote.content_hash(),
        delegations=[delegation],
    )
    contract = Contract.from_quote(
        approved_quote, id="C-1", team="east", terms="delivery by March"
    ).submit()
    contract = contract.make_formal(day)
    billing = (
        ContractBilling.open(contract)
        .attach_plan(
            [
                MilestoneSpec(name="advance", share=Decimal("30"), due_on=date(2026, 11, 30)),
                MilestoneSpec(
                    name="delivery",
                    share=Decimal("70"),
                    due_on=date(2027, 1, 31),
                    trigger=Trigger(lines=("L1",)),
                ),
            ],
            at=at,
        )
        .billing
    )
    billing = billing.record_progress("L1", Decimal("40"), at=at, delivered=5).billing
    billing = billing.issue_invoice(
        "INV-1", issued_on=day, due_on=date(2026, 11, 30), milestone="advance"
    )
    billing = billing.issue_credit_note(
        "CN-1", "INV-1", cny("100.00", "CNY"), issued_on=day, reason="typo"
    )
    billing = billing.record_payment("PAY-1", "INV-1", cny("1000.00", "CNY"), received_on=day)
    contact = Contact(
        id="c1",
        name="王芳",
        owner="ann",
        industry="retail",
        region="Shanghai",
        phones=("+86 138 0013 8000", "021-8888-6666"),
    )
    call = attrs.evolve(_call("u9"), contact_id="c1", price=cny("-0.200", "USD"))
    task = FollowUpTask.create(
        id="t1", owner="ann", contact_id="c1", due=day, at=at, subject="send the quote"
    )
    entry = feature_call(
        call, curated_by=manager, at=at, tags=["opening"], note="clear", contact=contact
    )
    return {
        "categories": categories,
        "products": products,
        "bundles": bundles,
        "quotes": [quote, attrs.evolve(approved_quote, id="Q-2")],
        "approvals": [request],
        "delegations": [
            delegation,
            Delegation.grant(
                manager,
                delegate=rep,
                role="sales_manager",
                valid_from=date(2026, 12, 1),
                valid_until=date(2026, 12, 5),
                at=at,
            ).revoke("root", at=at + timedelta(hours=2), reason="not needed"),
        ],
        "contracts": [contract],
        "billings": [billing],
        "contacts": [contact],
        "tasks": [task, attrs.evolve(task.complete(at + timedelta(days=1), note="done"), id="t2")],
        "calls": [call],
        "library": [entry],
        "contact_numbers": contact_numbers(contact, PhoneSettings(default_region="CN")),
        "rules": _sample_rules(at),
        "alerts": [
            Alert(
                on=day,
                name="task_overdue",
                record_kind="task",
                record_id="t1",
                reason="follow-up task 't1' is 2 days overdue",
                due=day - timedelta(days=2),
                emitted_at=at,
                owner="ann",
                team="east",
            )
        ],
        "category_overrides": [
            CategoryOverride(
                opportunity_id="o1",
                owner="ann",
                team="east",
                entries=(
                    OverrideEntry(category="best_case", reason="signed LOI", actor="ann", at=at),
                    OverrideEntry(category=None, reason="LOI withdrawn", actor="mia", at=at),
                ),
            )
        ],
        "forecast_snapshots": [
            ForecastSnapshot(
                as_of=day,
                taken_at=at,
                actor="dan",
                threshold=Decimal("70"),
                rules_version=2,
                lines=(
                    SnapshotLine(
                        id="o1",
                        owner="ann",
                        team="east",
                        stage="quotation",
                        category="commit",
                        amount=cny("1234.567", "KWD"),
                        probability=Decimal("70"),
                        expected_close=day + timedelta(days=20),
                        weighted=cny("864.197", "KWD"),
                    ),
                    SnapshotLine(
                        id="o2",
                        owner="bob",
                        stage="lost",
                        category="omitted",
                        amount=cny("10.00", "CNY"),
                        probability=Decimal("0"),
                        weighted=cny("0.00", "CNY"),
                        closed_on=day,
                        lost_reason="price",
                    ),
                ),
            )
        ],
    }


def _sample_rules(at: datetime) -> list[Any]:
    """Two stored versions of the sales rules: a tighter policy, then a longer contract chain."""
    from salesflow.domain.approvals import Step
    from salesflow.domain.discounts import DiscountPolicy
    from salesflow.domain.rules import Rules

    policy = DiscountPolicy.from_dict(
        {
            "ladder": [
                {"role": "sales_rep", "max_line_discount": "7.5"},
                {
                    "role": "sales_manager",
                    "max_line_discount": 15,
                    "categories": {"hardware": {"max_line_discount": 12}},
                },
            ]
        }
    )
    parts = Rules(
        discount_policy=policy,
        team_roles={"sales_rep"},
        team_members={"east": ["ann", "bob"], "west": ["wes"]},
    )
    first = Rules().changed(parts, by="dan", at=at, comment="Q4")
    chain = Workflow(
        "contract",
        (Step("sales_manager_review", ("sales_manager",)), Step("legal_review", ("legal",))),
    )
    second = first.changed(first.with_part(chain), by="root", at=at + timedelta(days=1))
    return [first, second]


def _two_saves_at_once(
    first: Storage, second: Storage, read: Opportunity, wait: float
) -> dict[str, str]:
    """Save ``read`` changed by "bob" through ``first`` and, while that unit of work is still
    open, by "cai" through ``second`` (in a thread); give the second ``wait`` seconds to finish
    before the first commits. Return each one's outcome: "saved", "conflict" or the error."""
    outcomes: dict[str, str] = {}
    finished = threading.Event()

    def save(owner: str, storage: Storage, during: Callable[[], None] = lambda: None) -> None:
        try:
            with storage.transaction() as uow:
                uow.opportunities.save(read.evolve(owner=owner))
                during()
            outcomes[owner] = "saved"
        except ConcurrencyError:
            outcomes[owner] = "conflict"
        except Exception as error:  # reported in the assertion, not swallowed
            outcomes[owner] = repr(error)

    def in_thread() -> None:
        try:
            save("cai", second)
        finally:
            finished.set()

    thread = threading.Thread(target=in_thread, name="second save", daemon=True)

    def start_the_second() -> None:
        thread.start()
        finished.wait(wait)  # a backend that locks keeps it waiting (or refuses it) meanwhile

    save("bob", first, start_the_second)
    if thread.ident is None:
        thread.start()  # the first save failed before it could start the second one
    thread.join(60)
    if thread.is_alive():
        outcomes["cai"] = "still waiting after the first unit of work ended (a deadlock?)"
    return outcomes


def _event(subject: str, name: str = "opportunity_created", **data: Any) -> Event:
    return Event(
        name=name,
        subject_kind="opportunity",
        subject_id=subject,
        actor="ann",
        at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
        data=data,
    )


def add_samples(uow: Any, samples: dict[str, list[Any]]) -> None:
    """Store ``samples`` (see :func:`sample_aggregates`) in ``uow`` as the port allows: every kind
    added in bulk, except contracts, which are added as drafts and then saved in their state (the
    port refuses a contract added already signed)."""
    from salesflow.domain.contracts import ContractState

    for attribute, items in samples.items():
        if attribute != "contracts":
            getattr(uow, attribute).add_many(items)
            continue
        for contract in items:
            draft = attrs.evolve(contract, state=ContractState.DRAFT, signed_on=None)
            uow.contracts.add(draft)
            if contract != draft:
                uow.contracts.save(contract)


class StorageContract:
    """The behaviour every storage backend must have. Override the ``storage`` and ``reopen``
    fixtures (see the module docs)."""

    concurrency_wait: float = 1.0
    """Seconds the concurrency case lets the second of two conflicting saves run while the first
    one's unit of work is still open. A backend that locks keeps the second waiting (or refuses
    it) whatever this is; one that does not lets it finish, which the case then sees."""

    @pytest.fixture
    def clock(self) -> ManualClock:
        """The clock the storage must use for ``updated_at``."""
        return ManualClock()

    @pytest.fixture
    def storage(self, clock: ManualClock) -> Storage:
        """The backend under test, empty, using ``clock``. Subclasses override this (returning it,
        or yielding it and cleaning up after; the cleanup also runs after a case closed it)."""
        pytest.fail("override the `storage` fixture of StorageContract to return your backend")

    @pytest.fixture
    def reopen(self, clock: ManualClock) -> Reopen | None:
        """How to open a second storage on the same data as the one under test (see
        :data:`Reopen`), or ``None`` for a backend that keeps nothing beyond its object (the
        durability case is then skipped, the concurrency case races two units of work of one
        storage). Subclasses override this."""
        pytest.fail(
            "override the `reopen` fixture of StorageContract: return a function that opens "
            "another storage on the same data as the one given (or None for a backend that "
            "keeps nothing, like memory://)"
        )

    # -- aggregates and versions -------------------------------------------------------------------

    def test_add_then_get_returns_version_one(self, storage: Storage) -> None:
        with storage.transaction() as uow:
            stored = uow.opportunities.add(_opp(1))
            assert stored.version == 1
        with storage.transaction() as uow:
            assert uow.opportunities.get("op-1") == stored
            assert uow.opportunities.find("op-2") is None
            with pytest.raises(NotFoundError):
                uow.opportunities.get("op-2")

    def test_add_refuses_an_existing_id_and_a_stored_version(self, storage: Storage) -> None:
        with storage.transaction() as uow:
            uow.opportunities.add(_opp(1))
        with pytest.raises(ConcurrencyError) as info, storage.transaction() as uow:
            uow.opportunities.add(_opp(1, owner="bob"))
        assert info.value.id == "op-1"
        with pytest.raises(ValidationError), storage.transaction() as uow:
            uow.opportunities.add(_opp(2, version=3))
        with storage.transaction() as uow:
            assert uow.opportunities.get("op-1").owner == "ann"
            assert uow.opportunities.count() == 1

    def test_save_bumps_the_version_and_refuses_a_stale_one(self, storage: Storage) -> None:
        with storage.transaction() as uow:
            first = uow.opportunities.add(_opp(1))
        with storage.transaction() as uow:
            second = uow.opportunities.save(first.evolve(amount=Money.of("2000", "CNY")))
        assert second.version == 2
        with pytest.raises(ConcurrencyError) as info, storage.transaction() as uow:
            uow.opportunities.save(first.evolve(owner="bob"))
        assert (info.value.expected, info.value.actual) == (1, 2)
        with pytest.raises(ConcurrencyError), storage.transaction() as uow:
            uow.opportunities.save(_opp(9, version=1))
        with storage.transaction() as uow:
            assert uow.opportunities.get("op-1") == second

    def test_stage_history_only_grows(self, storage: Storage, clock: ManualClock) -> None:
        with storage.transaction() as uow:
            stored = uow.opportunities.add(_opp(1, stage="needs_analysis"))
        moved = stored.move_to("quotation", clock.advance(hours=1))
        moved = moved.move_to(
            "won", datetime(2026, 11, 27, 9, 30, tzinfo=timezone(timedelta(hours=8)))
        )
        with storage.transaction() as uow:
            saved = uow.opportunities.save(moved)
        with storage.transaction() as uow:
            read = uow.opportunities.get("op-1")
        assert read == saved
        assert [c.to_stage for c in read.history] == ["quotation", "won"]
        assert read.history[1].at == datetime(2026, 11, 27, 1, 30, tzinfo=UTC)  # the same instant
        rewritten = attrs.evolve(
            read,
            history=(attrs.evolve(read.history[0], from_stage="initial_contact"), read.history[1]),
        )
        with pytest.raises(ValidationError) as refused, storage.transaction() as uow:
            uow.opportunities.save(rewritten)
        assert refused.value.field == "history"
        with pytest.raises(ValidationError) as refused, storage.transaction() as uow:
            uow.opportunities.save(attrs.evolve(read, history=read.history[:1]))
        assert refused.value.field == "history"
        with storage.transaction() as uow:
            assert uow.opportunities.get("op-1") == saved

    def test_a_lost_reason_and_its_note_are_stored_with_the_move(
        self, storage: Storage, clock: ManualClock
    ) -> None:
        with storage.transaction() as uow:
            stored = uow.opportunities.add(_opp(1, stage="quotation"))
        note = "Chose a competitor's offer: 12 % cheaper, 多年合作"
        lost = stored.move_to("lost", clock.advance(hours=1), plan=PLAN, reason="price", note=note)
        with storage.transaction() as uow:
            uow.opportunities.save(lost)
        with storage.transaction() as uow:
            read = uow.opportunities.get("op-1")
            assert list(uow.opportunities.query(stage="lost")) == [read]
        assert (read.history[-1].reason, read.history[-1].note) == ("price", note)
        assert read.history == lost.history

    def test_delete_needs_the_current_version(self, storage: Storage) -> None:
        with storage.transaction() as uow:
            stored = uow.opportunities.add(
                _opp(1, history=(StageChange(datetime(2026, 1, 1, tzinfo=UTC), None, "quotation"),))
            )
        with pytest.raises(ConcurrencyError), storage.transaction() as uow:
            uow.opportunities.delete("op-1", version=7)
        with storage.transaction() as uow:
            uow.opportunities.delete("op-1", version=stored.version)
            assert uow.opportunities.find("op-1") is None
        with storage.transaction() as uow:
            uow.opportunities.add(_opp(1))  # the id (and its history) is free again
            assert uow.opportunities.get("op-1").history == ()

    # -- values -------------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("amount", "currency"),
        [
            ("0.01", "CNY"),
            ("12345678901234.56", "CNY"),
            ("1000", "JPY"),
            ("1.234", "KWD"),
            ("0.0000001", "USD"),
        ],
    )
    def test_money_is_stored_exactly(self, storage: Storage, amount: str, currency: str) -> None:
        money = Money.of(amount, currency)
        with storage.transaction() as uow:
            uow.opportunities.add(_opp(1, amount=money))
        with storage.transaction() as uow:
            read = uow.opportunities.get("op-1").amount
        assert read == money
        assert read.currency == currency
        assert isinstance(read.amount, Decimal)

    def test_text_and_dates_round_trip(self, storage: Storage) -> None:
        original = _opp(
            1,
            name="华为 — ERP rollout, phase 2",
            account="Ümlaut & Co.",
            industry=None,
            region="Chengdu",
            expected_close=None,
            created=date(2024, 2, 29),
        )
        with storage.transaction() as uow:
            uow.opportunities.add(original)
        with storage.transaction() as uow:
            assert uow.opportunities.get("op-1") == attrs.evolve(original, version=1)

    @pytest.mark.parametrize("amount", BOUNDARY_AMOUNTS)
    def test_amounts_at_the_documented_bounds_read_back_exactly(
        self, storage: Storage, amount: str
    ) -> None:
        money = Money.of(amount, "CNY")
        with storage.transaction() as uow:
            uow.opportunities.add(_opp(1, amount=money))
            uow.opportunities.add_many([_opp(2, amount=money)])  # a bulk path may differ
        with storage.transaction() as uow:
            read = [uow.opportunities.get("op-1").amount, uow.opportunities.get("op-2").amount]
            queried = [o.amount for o in uow.opportunities.query()]
        assert read == [money, money]
        assert queried == [money, money]
        assert all(isinstance(m.amount, Decimal) and m.currency == "CNY" for m in read)

    def test_quantities_and_prices_at_the_documented_bounds_read_back_exactly(
        self, storage: Storage
    ) -> None:
        category = Category(id="bulk", name="Bulk goods")
        grain = Product(
            sku="GRAIN",
            name="Grain",
            category="bulk",
            list_price=Money.of(_SMALLEST, "CNY"),
            cost=Money.of(_SMALLEST, "CNY"),
        )
        big = Product(
            sku="BIG", name="Big", category="bulk", list_price=Money.of(_LARGEST_AMOUNT, "CNY")
        )
        catalog = Catalog(categories=[category], products=[grain, big])
        quote = (
            Quote(id="Q-bounds", owner="ann", currency="CNY", quoted_on=date(2026, 11, 3))
            .add_line(catalog, "GRAIN", _LARGEST_QUANTITY)
            .add_line(catalog, "BIG", _SMALLEST)
        )
        with storage.transaction() as uow:
            uow.categories.add(category)
            uow.products.add_many([grain, big])
            uow.quotes.add(quote)
        with storage.transaction() as uow:
            assert uow.products.get("GRAIN") == grain
            assert uow.products.get("BIG") == big
            stored = uow.quotes.get("Q-bounds")
        assert stored == quote
        assert [line.quantity for line in stored.lines] == [_LARGEST_QUANTITY, _SMALLEST]
        assert stored.total == quote.total

    def test_aware_times_read_back_as_the_same_instant_and_utc_ones_in_utc(
        self, storage: Storage
    ) -> None:
        # The port stores aware datetimes as instants read back in UTC: a time given in UTC must
        # come back in UTC (not merely the same instant in another zone), and one given in
        # another zone as the same instant.
        utc = datetime(2026, 11, 27, 1, 30, 15, 123456, tzinfo=UTC)
        beijing = datetime(2026, 11, 27, 9, 45, tzinfo=timezone(timedelta(hours=8)))
        with storage.transaction() as uow:
            stored = uow.opportunities.add(_opp(1, stage="needs_analysis"))
        moved = stored.move_to("intent_confirmed", utc).move_to("quotation", beijing)
        with storage.transaction() as uow:
            uow.opportunities.save(moved)
            uow.events.append(attrs.evolve(_event("op-1"), at=utc))
            uow.events.append(attrs.evolve(_event("op-1", name="opportunity_moved"), at=beijing))
            uow.calls.add(_call("u1", at=utc))
        with storage.transaction() as uow:
            history = [change.at for change in uow.opportunities.get("op-1").history]
            events = [event.at for event in uow.events.query(subject_id="op-1")]
            started = uow.calls.get("asterisk-csv:u1").started_at
            window = Between(utc, utc + timedelta(microseconds=1))
            found = [c.external_id for c in uow.calls.query(started_at=window)]
        assert history == [utc, beijing]  # the same instants
        assert events == [utc, beijing]
        assert (started, found) == (utc, ["u1"])
        offsets = {"history": history[0], "event": events[0], "call": started}
        assert {name: at.utcoffset() for name, at in offsets.items()} == {
            name: timedelta(0) for name in offsets
        }

    # -- queries ----------------------------------------------------------------------------------

    def test_queries_filter_and_order_by_id(self, storage: Storage, clock: ManualClock) -> None:
        rows = [
            _opp(
                "b", owner="ann", team="east", stage="quotation", expected_close=date(2026, 12, 1)
            ),
            _opp("a", owner="bob", team="west", stage="won", expected_close=date(2026, 11, 1)),
            _opp("c", owner="ann", team=None, stage="lost", expected_close=None),
            _opp(
                "d", owner="cai", team="east", stage="quotation", expected_close=date(2027, 1, 31)
            ),
        ]
        with storage.transaction() as uow:
            uow.opportunities.add_many(rows[:2])
        since = clock.advance(minutes=5)
        clock.advance(minutes=5)
        with storage.transaction() as uow:
            uow.opportunities.add_many(rows[2:])

        def ids(**filters: Any) -> list[str]:
            with storage.transaction() as uow:
                found = [o.id for o in uow.opportunities.query(**filters)]
                assert uow.opportunities.count(**filters) == len(found)
                return found

        assert ids() == ["op-a", "op-b", "op-c", "op-d"]
        assert ids(owner="ann") == ["op-b", "op-c"]
        assert ids(owner=["bob", "cai"]) == ["op-a", "op-d"]
        assert ids(team="east") == ["op-b", "op-d"]
        assert ids(stage=["won", "lost"]) == ["op-a", "op-c"]
        assert ids(close_from=date(2026, 12, 1)) == ["op-b", "op-d"]
        assert ids(close_until=date(2026, 12, 1)) == ["op-a", "op-b"]
        assert ids(close_from=date(2026, 11, 2), close_until=date(2027, 1, 30)) == ["op-b"]
        assert ids(updated_since=since) == ["op-c", "op-d"]
        assert ids(owner="ann", stage="quotation") == ["op-b"]

    def test_queries_stream_past_any_page_size(self, storage: Storage) -> None:
        rows = [_opp(f"{i:05d}", amount=Money.of(i, "CNY")) for i in range(4_321)]
        with storage.transaction() as uow:
            assert uow.opportunities.add_many(iter(rows), batch_size=1_000) == len(rows)
        with storage.transaction() as uow:
            read = list(uow.opportunities.query())
        assert read == [attrs.evolve(o, version=1) for o in rows]

    # -- transactions ------------------------------------------------------------------------------

    def test_an_exception_rolls_back_everything(self, storage: Storage) -> None:
        with storage.transaction() as uow:
            first = uow.opportunities.add(_opp(1))
        with pytest.raises(_DeliberateRollbackError), storage.transaction() as uow:
            uow.opportunities.add(_opp(2))
            uow.opportunities.save(first.evolve(owner="bob"))
            uow.opportunities.add_many([_opp(3), _opp(4)])
            uow.events.append(_event("op-2"))
            raise _DeliberateRollbackError
        with storage.transaction() as uow:
            assert [o.id for o in uow.opportunities.query()] == ["op-1"]
            assert uow.opportunities.get("op-1") == first
            assert list(uow.events.query()) == []

    def test_a_failed_bulk_add_names_the_duplicate_and_stores_nothing(
        self, storage: Storage
    ) -> None:
        with storage.transaction() as uow:
            uow.opportunities.add(_opp(5))
        batch = [_opp(i) for i in range(10)]
        with pytest.raises(ConcurrencyError) as info, storage.transaction() as uow:
            uow.opportunities.add_many(batch, batch_size=4)
        assert info.value.id == "op-5"
        with pytest.raises(ConcurrencyError) as info, storage.transaction() as uow:
            uow.opportunities.add_many([_opp(20), _opp(21), _opp(20)])
        assert info.value.id == "op-20"
        with storage.transaction() as uow:
            assert [o.id for o in uow.opportunities.query()] == ["op-5"]

    def test_a_nested_unit_of_work_is_a_savepoint(self, storage: Storage) -> None:
        with storage.transaction() as outer:
            outer.opportunities.add(_opp(1))
            with pytest.raises(_DeliberateRollbackError), storage.transaction() as inner:
                inner.opportunities.add(_opp(2))
                raise _DeliberateRollbackError
            outer.opportunities.add(_opp(3))
        with storage.transaction() as uow:
            assert [o.id for o in uow.opportunities.query()] == ["op-1", "op-3"]

    def test_commit_callbacks_run_after_commit_and_never_after_rollback(
        self, storage: Storage
    ) -> None:
        calls: list[str] = []
        with storage.transaction() as uow:
            uow.on_commit(lambda: calls.append("committed"))
            uow.opportunities.add(_opp(1))
            assert calls == []
        assert calls == ["committed"]
        with pytest.raises(_DeliberateRollbackError), storage.transaction() as uow:
            uow.on_commit(lambda: calls.append("rolled back"))
            raise _DeliberateRollbackError
        assert calls == ["committed"]

    # -- the event log -------------------------------------------------------------------------------

    def test_the_event_log_is_append_only_and_ordered(self, storage: Storage) -> None:
        with storage.transaction() as uow:
            a = uow.events.append(
                _event("op-1", amount="12.30", tags=["x", None], nested={"ok": True})
            )
            b = uow.events.append(_event("op-2", name="opportunity_moved"))
        with storage.transaction() as uow:
            c = uow.events.append(_event("op-1", name="opportunity_moved"))
        assert a.seq is not None
        assert b.seq is not None
        assert c.seq is not None
        assert a.seq < b.seq < c.seq
        with storage.transaction() as uow:
            log = uow.events
            assert list(log.query()) == [a, b, c]
            assert list(log.query(subject_id="op-1")) == [a, c]
            assert list(log.query(name="opportunity_moved")) == [b, c]
            assert list(log.query(after=a.seq)) == [b, c]
            assert list(log.query(subject_kind="contract")) == []
        assert a.data == {"amount": "12.30", "tags": ["x", None], "nested": {"ok": True}}
        assert not hasattr(log, "delete")
        assert not hasattr(log, "update")

    def test_a_records_time_only_moves_forward(self, storage: Storage, clock: ManualClock) -> None:
        with storage.transaction() as uow:
            uow.opportunities.add(_opp(1))
            uow.opportunities.add(_opp(2))
        since = clock.now
        clock.advance(minutes=10)
        with storage.transaction() as uow:
            stored = uow.opportunities.save(
                uow.opportunities.get("op-1").evolve(amount=Money.of("1500.00", "CNY"))
            )
            first = uow.events.append(attrs.evolve(_event("op-1"), at=clock.now))
        clock.now -= timedelta(minutes=5)  # the clock goes back
        with pytest.raises(ValidationError) as refused, storage.transaction() as uow:
            uow.opportunities.save(stored.evolve(amount=Money.of("2000.00", "CNY")))
        assert refused.value.field == "clock"
        assert "op-1" in str(refused.value)
        with pytest.raises(ValidationError) as refused, storage.transaction() as uow:
            uow.events.append(attrs.evolve(_event("op-1"), at=clock.now))
        assert refused.value.field == "at"
        with storage.transaction() as uow:
            assert uow.opportunities.get("op-1") == stored  # nothing changed
            assert list(uow.events.query()) == [first]
            assert [o.id for o in uow.opportunities.query(updated_since=since)] == ["op-1"]
            # Another record, whose own last time is earlier, may still change; so may another
            # subject's events.
            uow.opportunities.save(
                uow.opportunities.get("op-2").evolve(amount=Money.of("10.00", "CNY"))
            )
            uow.events.append(attrs.evolve(_event("op-2"), at=clock.now))
        clock.advance(minutes=5)  # the clock is right again: at the last time is fine
        with storage.transaction() as uow:
            uow.opportunities.save(stored.evolve(amount=Money.of("2000.00", "CNY")))
            uow.events.append(attrs.evolve(_event("op-1"), at=clock.now))
            assert [o.id for o in uow.opportunities.query(updated_since=since)] == ["op-1", "op-2"]

    # -- documents (every aggregate but opportunities) ------------------------------------------------

    def test_documents_round_trip_and_keep_revisions(self, storage: Storage) -> None:
        call = _call("u1")
        with storage.transaction() as uow:
            assert uow.calls.add(call) == call
            uow.contacts.add(
                Contact(id="c1", name="Wang Fang", owner="ann", phones=("+86 138 0013 8000",))
            )
        with storage.transaction() as uow:
            stored = uow.calls.get(call.id)
            assert stored == call
            uow.calls.save(attrs.evolve(stored, contact_id="c1", talk_seconds=95))
            # saved twice in one unit of work: the second save sees the first's revision
            uow.calls.save(attrs.evolve(stored, contact_id="c1", talk_seconds=96))
        with storage.transaction() as uow:
            assert uow.calls.get(call.id).talk_seconds == 96
            assert uow.contacts.get("c1").phones == ("+86 138 0013 8000",)
            assert uow.calls.find("nope") is None
            with pytest.raises(NotFoundError):
                uow.calls.get("nope")

    def test_a_document_must_be_read_before_it_is_saved(self, storage: Storage) -> None:
        with storage.transaction() as uow:
            uow.calls.add(_call("u1"))
        # A unit of work that did not read the call may not overwrite it blindly.
        with pytest.raises(ValidationError) as refused, storage.transaction() as uow:
            uow.calls.save(attrs.evolve(_call("u1"), talk_seconds=1))
        assert (refused.value.field, refused.value.value) == ("call", "asterisk-csv:u1")
        with pytest.raises(ValidationError) as refused, storage.transaction() as uow:
            uow.calls.delete("asterisk-csv:u1")
        assert (refused.value.field, refused.value.value) == ("call", "asterisk-csv:u1")
        with storage.transaction() as outer:
            read = outer.calls.get("asterisk-csv:u1")
            with storage.transaction() as inner:  # a savepoint shares what the outer one read
                inner.calls.save(attrs.evolve(read, talk_seconds=2))
            with pytest.raises(_DeliberateRollbackError), storage.transaction() as inner:
                inner.calls.save(attrs.evolve(read, talk_seconds=3))
                raise _DeliberateRollbackError
            assert outer.calls.get("asterisk-csv:u1").talk_seconds == 2
            outer.calls.delete("asterisk-csv:u1")
        with storage.transaction() as uow:
            assert uow.calls.count() == 0

    def test_unique_keys_and_duplicates_are_refused(self, storage: Storage) -> None:
        with storage.transaction() as uow:
            uow.calls.add(_call("u1"))
        same_call_other_id = attrs.evolve(_call("u1"), id="elsewhere")
        with pytest.raises(ConcurrencyError), storage.transaction() as uow:
            uow.calls.add(same_call_other_id)
        with pytest.raises(ConcurrencyError) as info, storage.transaction() as uow:
            uow.calls.add_many([_call("u2"), _call("u3"), _call("u1")], batch_size=2)
        assert info.value.id == "asterisk-csv:u1"
        with storage.transaction() as uow:
            assert [c.id for c in uow.calls.query()] == ["asterisk-csv:u1"]
            # What a rolled-back add held, and what a deleted call held, is free again.
            uow.calls.add(_call("u2"))
            uow.calls.delete("asterisk-csv:u1")
            uow.calls.add(same_call_other_id)
        with storage.transaction() as uow:
            assert sorted(c.id for c in uow.calls.query()) == ["asterisk-csv:u2", "elsewhere"]

    def test_document_queries_filter_and_order(self, storage: Storage) -> None:
        calls = [
            _call("a", owner="ann", at=datetime(2026, 11, 3, 9, 0, tzinfo=UTC)),
            _call("b", owner="bob", at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC)),
            _call(
                "c",
                owner="ann",
                at=datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=8))),
            ),
        ]
        with storage.transaction() as uow:
            assert uow.calls.add_many(calls) == 3
        with storage.transaction() as uow:
            repo = uow.calls
            assert [c.external_id for c in repo.query(owner="ann")] == ["a", "c"]
            assert [
                c.external_id for c in repo.query(owner=["ann", "bob"], order_by="started_at")
            ] == ["b", "c", "a"]
            window = Between(
                datetime(2026, 11, 1, 12, 0, tzinfo=UTC), datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
            )
            assert [c.external_id for c in repo.query(started_at=window)] == ["c"]
            assert repo.count(source="asterisk-csv") == 3
            assert list(repo.ids(owner="ann")) == ["asterisk-csv:a", "asterisk-csv:c"]
            assert repo.count(contact_id=None) == 3
            with pytest.raises(ValidationError) as refused:
                list(repo.query(talk_seconds=3))
            assert refused.value.field == "filters"

    def test_documents_roll_back_with_everything_else(self, storage: Storage) -> None:
        with pytest.raises(_DeliberateRollbackError), storage.transaction() as uow:
            uow.calls.add(_call("u1"))
            uow.contacts.add_many([Contact(id=f"c{i}", name="X", owner="ann") for i in range(3)])
            raise _DeliberateRollbackError
        with storage.transaction() as uow:
            assert uow.calls.count() == 0
            assert uow.contacts.count() == 0

    def test_documents_page_past_any_page_size(self, storage: Storage) -> None:
        contacts = [Contact(id=f"c{i:05d}", name=f"Contact {i}", owner="ann") for i in range(2_345)]
        with storage.transaction() as uow:
            uow.contacts.add_many(iter(contacts), batch_size=1_000)
        with storage.transaction() as uow:
            assert list(uow.contacts.query(owner="ann")) == contacts

    def test_every_kind_of_aggregate_round_trips_exactly(self, storage: Storage) -> None:
        samples = sample_aggregates()
        assert set(samples) == {kind.attribute for kind in KINDS}, "a kind without a sample"
        with storage.transaction() as uow:
            add_samples(uow, samples)
        with storage.transaction() as uow:
            for kind in KINDS:
                repository = getattr(uow, kind.attribute)
                for item in samples[kind.attribute]:
                    stored = repository.get(kind.key(item))
                    assert stored == item, kind.name
                    assert type(stored) is type(item)
            for quote in samples["quotes"]:  # the prices are recomputed from what was stored
                assert uow.quotes.get(quote.id).total == quote.total

    # -- durability and concurrency -------------------------------------------------------------------

    def test_everything_is_still_there_after_closing_and_reopening(
        self, storage: Storage, reopen: Reopen | None, clock: ManualClock
    ) -> None:
        if reopen is None:
            pytest.skip("the backend keeps nothing beyond its storage object (reopen is None)")
        samples = sample_aggregates()
        with storage.transaction() as uow:
            first = uow.opportunities.add(_opp(1, amount=Money.of(_LARGEST_AMOUNT, "CNY")))
            uow.opportunities.add_many([_opp(2), _opp(3, stage="needs_analysis")])
            add_samples(uow, samples)
            logged = [uow.events.append(_event("op-1")), uow.events.append(_event("op-2"))]
        moved = first.move_to("won", clock.advance(hours=1), plan=PLAN)
        with storage.transaction() as uow:
            moved = uow.opportunities.save(moved)
        with storage.transaction() as uow:
            before = list(uow.opportunities.query())
        storage.close()
        again = reopen(storage)
        try:
            with again.transaction() as uow:
                assert list(uow.opportunities.query()) == before
                assert uow.opportunities.get("op-1") == moved
                assert list(uow.events.query()) == logged
                for kind in KINDS:
                    repository = getattr(uow, kind.attribute)
                    assert [repository.get(kind.key(item)) for item in samples[kind.attribute]] == (
                        samples[kind.attribute]
                    ), kind.name
            # ... and carries on where it stopped: versions and sequence numbers go on.
            with again.transaction() as uow:
                saved = uow.opportunities.save(moved.evolve(owner="bob"))
                later = uow.events.append(_event("op-1", name="opportunity_moved"))
            assert saved.version == moved.version + 1
            assert later.seq is not None
            assert all(e.seq is not None and e.seq < later.seq for e in logged)
            with pytest.raises(ConcurrencyError), again.transaction() as uow:
                uow.opportunities.save(moved.evolve(owner="cai"))  # the old version is stale
        finally:
            again.close()

    def test_of_two_saves_from_the_same_read_exactly_one_wins(
        self, storage: Storage, reopen: Reopen | None
    ) -> None:
        # Two storages on the same data (two units of work of one storage where nothing is kept
        # beyond it) save the same read at the same time: the second save starts while the
        # first's unit of work is still open. A backend must make one of them wait for the other
        # or refuse it; exactly one wins, the other raises ConcurrencyError, nothing is lost.
        other = storage if reopen is None else reopen(storage)
        try:
            with storage.transaction() as uow:
                read = uow.opportunities.add(_opp(1))
            outcomes = _two_saves_at_once(storage, other, read, self.concurrency_wait)
            assert sorted(outcomes.values()) == ["conflict", "saved"], outcomes
            winner = next(owner for owner, outcome in outcomes.items() if outcome == "saved")
            with storage.transaction() as uow:
                stored = uow.opportunities.get("op-1")
            assert (stored.version, stored.owner) == (2, winner)
        finally:
            if other is not storage:
                other.close()

    # -- the port's invariants (whoever writes, the storage refuses) -----------------------------------

    def test_a_formal_contract_is_never_saved_changed(self, storage: Storage) -> None:
        (contract,) = sample_aggregates()["contracts"]
        with storage.transaction() as uow:
            add_samples(uow, {"contracts": [contract]})
        with pytest.raises(ContractLockedError), storage.transaction() as uow:
            stored = uow.contracts.get(contract.id)
            uow.contracts.save(attrs.evolve(stored, terms="delivery by April"))
        with storage.transaction() as uow:
            assert uow.contracts.get(contract.id) == contract

    def test_an_approval_audit_only_grows(self, storage: Storage) -> None:
        (request,) = sample_aggregates()["approvals"]
        assert len(request.audit) >= 2
        with storage.transaction() as uow:
            uow.approvals.add(request)
        edited = attrs.evolve(request.audit[0], comment="never said that")
        for rewritten in (
            attrs.evolve(request, audit=(edited, *request.audit[1:])),
            attrs.evolve(request, audit=request.audit[:-1]),
        ):
            with pytest.raises(ValidationError) as refused, storage.transaction() as uow:
                uow.approvals.get(request.id)
                uow.approvals.save(rewritten)
            assert refused.value.field == "audit"
        with storage.transaction() as uow:
            assert uow.approvals.get(request.id) == request

    # -- the forecast ------------------------------------------------------------------------------

    # Inherited by one test class per backend, hence several "executors" by design.
    @settings(
        max_examples=25,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(data=opportunities(currency=st.sampled_from(["CNY", "JPY", "KWD"]), max_size=30))
    def test_the_stored_forecast_equals_the_pure_calculator(
        self, storage: Storage, data: list[Opportunity]
    ) -> None:
        # Each example writes in a unit of work that is rolled back, so the storage stays empty.
        with pytest.raises(_DeliberateRollbackError), storage.transaction() as uow:
            uow.opportunities.add_many(data)
            for by in (("owner",), ("team", "owner"), ()):
                stored = uow.opportunities.forecast(PLAN, as_of=AS_OF, by=by, currency="CNY")
                pure = forecast(data, PLAN, as_of=AS_OF, by=by, currency="CNY")
                assert stored.to_records() == pure.to_records()
                assert stored.excluded == pure.excluded
                assert stored.count == pure.count
            lines = list(uow.opportunities.forecast(PLAN, as_of=AS_OF, threshold=30).lines)
            pure_lines = list(forecast(data, PLAN, as_of=AS_OF, threshold=30).lines)
            assert [(line.opportunity.id, line.expected) for line in lines] == sorted(
                (line.opportunity.id, line.expected) for line in pure_lines
            )
            raise _DeliberateRollbackError

    def test_the_stored_forecast_refuses_unknown_stages(self, storage: Storage) -> None:
        with storage.transaction() as uow:
            uow.opportunities.add(_opp(1, stage="signed"))
        with pytest.raises(StageError), storage.transaction() as uow:
            uow.opportunities.forecast(PLAN, as_of=AS_OF)

    # -- optional: forecast pushdown -------------------------------------------------------------------

    def test_pushdown_rounds_each_opportunity_in_its_own_currency(self, storage: Storage) -> None:
        requires(storage, "forecast_pushdown")
        # Halves at each currency's minor unit: rounding the sum instead of each row shows.
        rows = [
            _opp(f"j{i}", amount=Money.of(1, "JPY"), stage="intent_confirmed", team=None)
            for i in range(3)
        ]
        rows += [
            _opp(f"k{i}", amount=Money.of("0.001", "KWD"), stage="intent_confirmed")
            for i in range(3)
        ]
        rows += [_opp(f"c{i}", amount=Money.of("0.05", "CNY"), stage="quotation") for i in range(3)]
        with storage.transaction() as uow:
            uow.opportunities.add_many(rows)
        with storage.transaction() as uow:
            for by in (("owner",), ("team",), ()):
                stored = uow.opportunities.forecast(PLAN, as_of=AS_OF, threshold=50, by=by)
                pure = forecast(rows, PLAN, as_of=AS_OF, threshold=50, by=by)
                assert stored.to_records() == pure.to_records()
                assert (stored.count, stored.excluded) == (pure.count, pure.excluded)

    def test_pushdown_keeps_probabilities_finer_than_a_database_factor(
        self, storage: Storage
    ) -> None:
        requires(storage, "forecast_pushdown")
        plan = StagePlan.from_dict(
            {
                "threshold": 30,
                "stages": [
                    {"key": "open", "name": "Open", "probability": "33.3333333333"},
                    {"key": "won", "name": "Won", "probability": 100, "outcome": "won"},
                    {"key": "lost", "name": "Lost", "probability": 0, "outcome": "lost"},
                ],
            }
        )
        rows = [_opp(i, amount=Money.of("999999.99", "CNY"), stage="open") for i in range(3)]
        with storage.transaction() as uow:
            uow.opportunities.add_many(rows)
        with storage.transaction() as uow:
            stored = uow.opportunities.forecast(plan, as_of=AS_OF)
        assert stored.to_records() == forecast(rows, plan, as_of=AS_OF).to_records()


# -- random command sequences against the reference model ---------------------------------------------


def storage_machine(
    factory: Callable[[ManualClock], Storage],
    cleanup: Callable[[Storage], None] = lambda storage: storage.close(),
) -> type[RuleBasedStateMachine]:
    """A hypothesis state machine that runs the same random commands against a backend (built by
    ``factory``) and the in-memory reference, and checks after every step that both hold the same
    opportunities and events and compute the same forecast; ``cleanup`` empties the backend after
    each example."""

    class StorageMachine(RuleBasedStateMachine):
        ids = Bundle("ids")

        def __init__(self) -> None:
            super().__init__()
            self.clock = ManualClock()
            self.backend = factory(self.clock)
            self.reference = MemoryStorage(clock=self.clock)
            self.counter = 0

        def both(self, action: Callable[[Any], Any]) -> Any:
            """Run ``action(uow)`` on both storages; both must succeed alike or fail alike."""
            outcomes = []
            for storage in (self.reference, self.backend):
                try:
                    with storage.transaction() as uow:
                        outcomes.append(("ok", action(uow)))
                except SalesflowError as error:
                    outcomes.append(("error", type(error)))
            assert outcomes[0] == outcomes[1], outcomes
            return outcomes[0]

        def current(self, id: str) -> Opportunity | None:
            with self.reference.transaction() as uow:
                return uow.opportunities.find(id)

        @rule(target=ids, opportunity=opportunities(max_size=1).filter(bool).map(lambda o: o[0]))
        def add(self, opportunity: Opportunity) -> str:
            self.counter += 1
            new = attrs.evolve(opportunity, id=f"op-{self.counter}")
            self.clock.advance(seconds=1)
            self.both(lambda uow: uow.opportunities.add(new))
            return new.id

        @rule(batch=opportunities(max_size=5), duplicate=st.booleans())
        def add_many(self, batch: list[Opportunity], duplicate: bool) -> None:
            rows = []
            for o in batch:
                self.counter += 1
                rows.append(attrs.evolve(o, id=f"op-{self.counter}"))
            if duplicate and rows:
                rows.append(rows[0])
            self.clock.advance(seconds=1)
            self.both(lambda uow: uow.opportunities.add_many(rows, batch_size=2))

        @rule(
            id=ids,
            owner=st.sampled_from(["ann", "bob", "dan"]),
            cents=st.integers(0, 10**9),
            stale=st.booleans(),
        )
        def save(self, id: str, owner: str, cents: int, stale: bool) -> None:
            stored = self.current(id)
            if stored is None:
                return
            changed = stored.evolve(
                owner=owner, amount=Money(Decimal(cents).scaleb(-2), stored.amount.currency)
            )
            if stale:
                changed = attrs.evolve(changed, version=stored.version - 1)
            self.clock.advance(seconds=1)
            self.both(lambda uow: uow.opportunities.save(changed))

        @rule(id=ids, stage=st.sampled_from(PLAN.keys), reason=st.sampled_from(PLAN.lost_reasons))
        def move(self, id: str, stage: str, reason: str) -> None:
            stored = self.current(id)
            if stored is None or stored.stage == stage:
                return
            why = reason if PLAN.is_lost(stage) else None
            moved = stored.move_to(stage, self.clock.advance(minutes=3), plan=PLAN, reason=why)
            self.both(lambda uow: uow.opportunities.save(moved))

        @rule(id=ids, stale=st.booleans())
        def delete(self, id: str, stale: bool) -> None:
            stored = self.current(id)
            version = 1 if stored is None else stored.version + (1 if stale else 0)
            self.both(lambda uow: uow.opportunities.delete(id, version=version))

        @rule(opportunity=opportunities(max_size=1).filter(bool).map(lambda o: o[0]))
        def failed_unit_of_work(self, opportunity: Opportunity) -> None:
            self.counter += 1
            new = attrs.evolve(opportunity, id=f"op-{self.counter}")

            def action(uow: Any) -> None:
                uow.opportunities.add(new)
                uow.events.append(_event(new.id))
                raise NotFoundError("test", "rollback")  # a SalesflowError: both must roll back

            self.both(action)

        @rule(id=ids, name=st.sampled_from(["opportunity_created", "opportunity_moved"]))
        def append_event(self, id: str, name: str) -> None:
            self.both(lambda uow: attrs.evolve(uow.events.append(_event(id, name=name)), seq=None))

        @invariant()
        def same_state(self) -> None:
            with self.reference.transaction() as ref, self.backend.transaction() as other:
                assert list(other.opportunities.query()) == list(ref.opportunities.query())
                # Sequence numbers may have gaps after rollbacks; the order and content must agree.
                strip = [attrs.evolve(e, seq=None) for e in other.events.query()]
                assert strip == [attrs.evolve(e, seq=None) for e in ref.events.query()]
                since = self.clock.now - timedelta(seconds=2)
                assert [o.id for o in other.opportunities.query(updated_since=since)] == [
                    o.id for o in ref.opportunities.query(updated_since=since)
                ]
                ours = other.opportunities.forecast(PLAN, as_of=AS_OF, currency="CNY")
                theirs = ref.opportunities.forecast(PLAN, as_of=AS_OF, currency="CNY")
                assert ours.to_records() == theirs.to_records()

        def teardown(self) -> None:
            cleanup(self.backend)

    StorageMachine.TestCase.settings = settings(
        max_examples=15,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    return StorageMachine
