"""The collections list (R16) and signed contracts feeding attainment (R15)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.analytics.performance import Target, attainment
from salesflow.analytics.receivables import (
    BUCKETS,
    ReceivablesTotal,
    ageing_bucket,
    receivables,
    signed_from_contracts,
)
from salesflow.domain.billing import ContractBilling, MilestoneSpec, Trigger
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.contracts import Contract
from salesflow.domain.money import Money
from salesflow.domain.quotes import Quote
from salesflow.errors import CurrencyMismatchError, InvalidTypeError, ValidationError

AS_OF = date(2026, 6, 30)


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


CATALOG = Catalog(
    products=[
        Product(sku="DAY", name="Project day", list_price=cny("100.00")),
        Product(sku="LICENCE", name="Licence", list_price=cny("0.01")),
    ]
)


def _quote(days: int, currency_catalog: Catalog = CATALOG) -> Quote:
    quote = Quote(id="Q", owner="ann", currency="CNY", quoted_on=date(2025, 11, 1))
    return quote.add_line(currency_catalog, "DAY", days).submit_for_approval().approve()


def formal(cid: str, owner: str, team: str | None, signed: date, days: int) -> Contract:
    """A formal contract of ``days`` project days (100.00 each)."""
    contract = Contract.from_quote(_quote(days), id=cid, owner=owner, team=team)
    return contract.submit().make_formal(signed)


def t(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def example() -> tuple[list[Contract], list[ContractBilling]]:
    """The worked example of the tests below (amounts in the comments)."""
    c1 = formal("C-1", "bob", "east", date(2026, 1, 10), 5)  # 500.00, nothing invoiced
    c3 = formal("C-3", "ann", "east", date(2026, 1, 10), 10)  # 1000.00
    b3 = ContractBilling.open(c3)
    b3 = b3.issue_invoice("I1", amount="500.00", issued_on="2026-01-15", due_on="2026-02-14")
    b3 = b3.record_payment("P1", "I1", "200.00", received_on="2026-02-20")
    b3 = b3.issue_invoice("I2", amount="300.00", issued_on="2026-05-31", due_on="2026-06-30")
    c2 = formal("C-2", "ann", None, date(2026, 3, 1), 20)  # 2000.00
    b2 = ContractBilling.open(c2)
    plan = [
        MilestoneSpec(name="deposit", share=50, due_on=date(2026, 3, 15)),
        MilestoneSpec(name="final", share=50, due_on=date(2026, 12, 31), trigger=Trigger("L1")),
    ]
    b2 = b2.attach_plan(plan, at=t(date(2026, 3, 1))).billing
    b2 = b2.issue_invoice("D1", milestone="deposit", issued_on="2026-03-15", due_on="2026-05-31")
    b2 = b2.issue_credit_note("N1", "D1", "100.00", issued_on="2026-04-01", reason="discount")
    b2 = b2.record_progress("L1", 100, at=t(date(2026, 6, 1))).billing
    b2 = b2.issue_invoice("F1", milestone="final", issued_on="2026-07-05", due_on="2026-08-05")
    c4 = formal("C-4", "cid", "west", date(2026, 2, 1), 3)  # 300.00, invoiced and paid
    b4 = ContractBilling.open(c4)
    b4 = b4.issue_invoice("I1", amount="300.00", issued_on="2026-02-01", due_on="2026-03-01")
    b4 = b4.record_payment("P1", "I1", "300.00", received_on="2026-03-01")
    c6 = formal("C-6", "eve", "west", date(2025, 12, 1), 1).terminate("2026-05-01", "cancelled")
    b6 = ContractBilling.open(c6)
    b6 = b6.issue_invoice("I1", amount="100.00", issued_on="2026-03-31", due_on="2026-04-30")
    c5 = Contract.from_quote(_quote(7), id="C-5", owner="ann")  # a draft: not listed
    return [c1, c2, c3, c4, c5, c6], [b2, b3, b4, b6]


def test_the_worked_example_row_by_row() -> None:
    contracts, billings = example()
    listed = receivables(contracts, billings, as_of=AS_OF)
    assert [r.contract_id for r in listed.rows] == ["C-6", "C-1", "C-3", "C-4", "C-2"]
    c6, c1, c3, c4, c2 = listed.rows
    assert (c6.state, c6.signed_on, c6.owner, c6.team) == (
        "terminated",
        date(2025, 12, 1),
        "eve",
        "west",
    )
    assert (c6.unpaid, c6.not_due, c6.ageing[2]) == (cny("100.00"), cny("0.00"), cny("100.00"))
    (late,) = c6.overdue_invoices
    assert (late.invoice_id, late.days_overdue, late.bucket, late.open) == (
        "I1",
        61,
        "61-90",
        cny("100.00"),
    )
    assert (c1.amount, c1.invoiced, c1.uninvoiced, c1.unpaid) == (
        cny("500.00"),
        cny("0.00"),
        cny("500.00"),
        cny("0.00"),
    )
    # C-3: 500 invoiced in January, due 14 February, 200 paid: 300 is 136 days overdue. 300 more
    # invoiced on 31 May is due today, so not overdue yet.
    assert (c3.invoiced, c3.paid, c3.uninvoiced, c3.unpaid) == (
        cny("800.00"),
        cny("200.00"),
        cny("200.00"),
        cny("600.00"),
    )
    assert (c3.not_due, c3.overdue) == (cny("300.00"), cny("300.00"))
    assert c3.ageing == (cny("0.00"), cny("0.00"), cny("0.00"), cny("300.00"))
    assert c3.max_days_overdue == 136
    assert (c4.uninvoiced, c4.unpaid, c4.overdue_invoices) == (cny("0.00"), cny("0.00"), ())
    # C-2: the deposit invoice (1000) less a 100 credit note is 30 days overdue; the final invoice
    # of 5 July does not count yet. Both milestones are due: the deposit by date (100 left after
    # the credit note), the final one because its trigger was met on 1 June.
    assert (c2.invoiced, c2.paid, c2.uninvoiced, c2.unpaid) == (
        cny("900.00"),
        cny("0.00"),
        cny("1100.00"),
        cny("900.00"),
    )
    assert c2.ageing == (cny("900.00"), cny("0.00"), cny("0.00"), cny("0.00"))
    assert [(m.name, m.uninvoiced, m.reached) for m in c2.due_milestones] == [
        ("deposit", cny("100.00"), False),
        ("final", cny("1000.00"), True),
    ]
    assert c2.team is None


def test_totals_per_owner_team_and_everyone_add_up() -> None:
    listed = receivables(*example(), as_of=AS_OF)
    totals = listed.totals
    assert [(r.kind, r.name) for r in totals.rows] == [
        ("owner", "ann"),
        ("owner", "bob"),
        ("owner", "cid"),
        ("owner", "eve"),
        ("team", "east"),
        ("team", "west"),
        ("team", None),
        ("total", "(all)"),
    ]
    ann = totals.owner("ann")
    assert (ann.count, ann.amount, ann.invoiced, ann.paid) == (
        2,
        cny("3000.00"),
        cny("1700.00"),
        cny("200.00"),
    )
    assert totals.team(None).amount == cny("2000.00")
    everyone = totals.everyone
    assert everyone.count == 5
    assert everyone.amount == cny("3900.00")
    assert everyone.uninvoiced + everyone.unpaid == everyone.amount - everyone.paid
    assert everyone.unpaid == everyone.not_due + everyone.overdue
    for group in (totals.owners, totals.teams):
        _same_sums(list(group), everyone)
    with pytest.raises(ValidationError):
        totals.owner("nobody")


def _same_sums(parts: list[ReceivablesTotal], whole: ReceivablesTotal) -> None:
    for name in ("amount", "invoiced", "paid", "uninvoiced", "unpaid", "not_due", "overdue"):
        assert (
            sum((getattr(p, name).amount for p in parts), Decimal(0)) == getattr(whole, name).amount
        )
    assert sum(p.count for p in parts) == whole.count
    for i in range(len(BUCKETS)):
        assert sum((p.ageing[i].amount for p in parts), Decimal(0)) == whole.ageing[i].amount


def test_filters_keep_what_is_not_invoiced_or_not_paid() -> None:
    contracts, billings = example()

    def ids(**flags: bool) -> list[str]:
        return [r.contract_id for r in receivables(contracts, billings, as_of=AS_OF, **flags).rows]

    assert ids(not_invoiced=True) == ["C-1", "C-3", "C-2"]
    assert ids(not_paid=True) == ["C-6", "C-3", "C-2"]
    assert ids(not_invoiced=True, not_paid=True) == ["C-6", "C-1", "C-3", "C-2"]
    filtered = receivables(contracts, billings, as_of=AS_OF, not_paid=True)
    assert filtered.totals.everyone.count == 3
    assert filtered.totals.everyone.amount == cny("3100.00")  # totals follow the filter


def test_documents_after_as_of_do_not_count_yet() -> None:
    contracts, billings = example()
    early = receivables(contracts, billings, as_of="2026-03-20").row("C-2")
    assert (early.invoiced, early.not_due, early.overdue) == (
        cny("1000.00"),
        cny("1000.00"),
        cny("0.00"),
    )
    assert [m.name for m in early.due_milestones] == []  # the deposit is fully invoiced then
    late = receivables(contracts, billings, as_of="2026-07-31").row("C-2")
    assert late.invoiced == cny("1900.00")
    assert late.due_milestones[0].uninvoiced == cny("100.00")
    before_trigger = receivables(contracts, billings, as_of="2026-05-31").row("C-2")
    assert [m.name for m in before_trigger.due_milestones] == ["deposit"]


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (1, "0-30"),
        (30, "0-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "90+"),
        (4000, "90+"),
    ],
)
def test_ageing_buckets(days: int, bucket: str) -> None:
    assert ageing_bucket(days) == bucket
    contract = formal("C-1", "ann", None, date(2026, 1, 1), 1)
    billing = ContractBilling.open(contract).issue_invoice(
        "I1", amount="100.00", issued_on="2026-01-01", due_on="2026-01-01"
    )
    row = receivables([contract], [billing], as_of=date(2026, 1, 1) + timedelta(days=days)).rows[0]
    assert row.ageing[BUCKETS.index(bucket)] == cny("100.00")
    assert row.overdue_invoices[0].days_overdue == days


def test_a_bucket_needs_at_least_one_day() -> None:
    with pytest.raises(ValidationError):
        ageing_bucket(0)


def test_it_prints_renders_and_converts() -> None:
    listed = receivables(*example(), as_of=AS_OF)
    text = str(listed)
    assert text.startswith("Receivables as of 2026-06-30 (CNY)")
    assert "C-6" in text
    assert "final" in text
    assert "<table" in listed._repr_html_()
    records = listed.to_records()
    assert records[0]["contract_id"] == "C-6"
    assert records[0]["overdue_61-90"] == Decimal("100.00")
    assert records[4]["due_milestones"] == ("deposit", "final")
    assert records[2]["overdue_invoices"] == ("I1",)
    assert all(not isinstance(v, float) for r in records for v in r.values())
    assert "(all)" in str(listed.totals)
    assert listed.totals.total_records()[-1]["amount"] == Decimal("3900.00")
    assert listed.total_records() == listed.totals.total_records()
    assert [r["name"] for r in listed.totals.to_records()] == ["ann", "bob", "cid", "eve"]
    assert [r["name"] for r in listed.totals.team_records()] == ["east", "west", None]
    assert len(listed) == 5
    assert [r.contract_id for r in listed] == [r["contract_id"] for r in records]


def test_an_empty_list_needs_a_currency() -> None:
    empty = receivables([], as_of=AS_OF, currency="CNY")
    assert empty.rows == ()
    assert empty.totals.everyone.amount == Money.zero("CNY")
    assert "(no rows)" in str(empty)
    with pytest.raises(ValidationError, match="currency"):
        receivables([], as_of=AS_OF)


def test_protocol_alikes_work_without_copying() -> None:
    invoice = SimpleNamespace(
        id="9",
        amount=cny("50.00"),
        issued_on=date(2026, 1, 1),
        due_on=date(2026, 1, 31),
        milestone=None,
    )
    payment = SimpleNamespace(invoice_id="9", amount=cny("20.00"), received_on=date(2026, 2, 1))
    billing = SimpleNamespace(
        contract_id="row-1", invoices=[invoice], credit_notes=[], payments=[payment], milestones=[]
    )
    contract = SimpleNamespace(
        id="row-1", owner="ann", amount=cny("80.00"), signed_on=date(2026, 1, 1)
    )
    unsigned = SimpleNamespace(id="row-2", owner="ann", amount=cny("80.00"), signed_on=None)
    row = receivables([contract, unsigned], {"row-1": billing}, as_of="2026-03-02").rows[0]
    assert (row.team, row.state) == (None, None)
    assert (row.uninvoiced, row.unpaid, row.ageing[0]) == (cny("30.00"), cny("30.00"), cny("30.00"))


def test_bad_input_is_refused() -> None:
    contracts, billings = example()
    dollar = SimpleNamespace(
        id="X", owner="ann", amount=Money.of("1", "USD"), signed_on=date(2026, 1, 1)
    )
    with pytest.raises(CurrencyMismatchError):
        receivables([*contracts, dollar], as_of=AS_OF)
    with pytest.raises(ValidationError, match="each contract once"):
        receivables([*contracts, contracts[0]], as_of=AS_OF)
    with pytest.raises(ValidationError, match="one billing per contract"):
        receivables(contracts, [*billings, billings[0]], as_of=AS_OF)
    with pytest.raises(InvalidTypeError):
        receivables(contracts, as_of=AS_OF, not_paid="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        receivables([SimpleNamespace(id="X")], as_of=AS_OF)
    with pytest.raises(InvalidTypeError, match="signed_on"):
        receivables(
            [SimpleNamespace(id="X", owner="a", amount=cny("1.00"), signed_on=t(AS_OF))],
            as_of=AS_OF,
        )
    too_much = SimpleNamespace(
        contract_id="C-1",
        invoices=[
            SimpleNamespace(
                id="1",
                amount=cny("600.00"),
                issued_on=date(2026, 1, 10),
                due_on=date(2026, 1, 10),
                milestone=None,
            )
        ],
        credit_notes=[],
        payments=[],
        milestones=[],
    )
    with pytest.raises(ValidationError, match="contract amount"):
        receivables(contracts, [too_much], as_of=AS_OF)
    orphan = SimpleNamespace(
        contract_id="C-1",
        invoices=[],
        credit_notes=[],
        payments=[
            SimpleNamespace(invoice_id="1", amount=cny("1.00"), received_on=date(2026, 1, 10))
        ],
        milestones=[],
    )
    with pytest.raises(ValidationError, match="invoice issued by"):
        receivables(contracts, [orphan], as_of=AS_OF)
    with pytest.raises(CurrencyMismatchError):
        receivables(contracts, as_of=AS_OF, currency="EUR")


# -- properties ---------------------------------------------------------------------------------------

TEMPLATES = [formal("T", "ann", None, date(2026, 1, 1), days) for days in (1, 3, 7, 12)]
OWNERS = ("ann", "bob", "cid")
TEAMS = ("east", "west", None)


@st.composite
def portfolios(draw: st.DrawFn) -> tuple[list[Contract], list[ContractBilling]]:
    """Up to 8 signed contracts with random billings built through the billing's own methods."""
    contracts: list[Contract] = []
    billings: list[ContractBilling] = []
    for i in range(draw(st.integers(0, 8))):
        template = draw(st.sampled_from(TEMPLATES))
        signed = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 90)))
        contract = attrs.evolve(
            template,
            id=f"C-{draw(st.integers(0, 99)):02d}-{i}",
            owner=draw(st.sampled_from(OWNERS)),
            team=draw(st.sampled_from(TEAMS)),
            signed_on=signed,
        )
        contracts.append(contract)
        if not draw(st.booleans()):
            continue
        billing = ContractBilling.open(contract)
        if draw(st.booleans()):
            billing = billing.attach_plan(
                [
                    MilestoneSpec(name="a", share=40, due_on=signed + timedelta(days=20)),
                    MilestoneSpec(
                        name="b",
                        share=60,
                        due_on=signed + timedelta(days=200),
                        trigger=Trigger("L1", 50),
                    ),
                ],
                at=t(signed),
            ).billing
        for n in range(draw(st.integers(0, 12))):
            kind = draw(st.sampled_from(["invoice", "milestone", "pay", "credit", "progress"]))
            cents = draw(st.integers(1, 100_000))
            day = signed + timedelta(days=draw(st.integers(0, 150)))
            amount = Money(Decimal(cents).scaleb(-2), "CNY")
            try:
                if kind == "invoice":
                    billing = billing.issue_invoice(
                        f"I{n}",
                        amount=amount,
                        issued_on=day,
                        due_on=day + timedelta(days=draw(st.integers(0, 60))),
                    )
                elif kind == "milestone" and billing.milestones:
                    name = draw(st.sampled_from([m.name for m in billing.milestones]))
                    billing = billing.issue_invoice(
                        f"I{n}", milestone=name, issued_on=day, due_on=day
                    )
                elif kind == "progress":
                    billing = billing.record_progress(
                        "L1", draw(st.integers(0, 100)), at=t(day)
                    ).billing
                elif billing.invoices:
                    target = draw(st.sampled_from(billing.invoices))
                    when = max(day, target.issued_on)
                    if kind == "pay":
                        billing = billing.record_payment(
                            f"P{n}", target.id, amount, received_on=when
                        )
                    else:
                        billing = billing.issue_credit_note(
                            f"N{n}", target.id, amount, issued_on=when, reason="x"
                        )
            except ValidationError:
                pass
        billings.append(billing)
    return contracts, billings


@given(portfolios(), st.dates(date(2025, 12, 1), date(2026, 12, 31)), st.booleans(), st.booleans())
def test_rows_and_totals_always_add_up_and_stay_in_signing_order(
    portfolio: tuple[list[Contract], list[ContractBilling]],
    as_of: date,
    not_invoiced: bool,
    not_paid: bool,
) -> None:
    contracts, billings = portfolio
    listed = receivables(
        contracts,
        billings,
        as_of=as_of,
        not_invoiced=not_invoiced,
        not_paid=not_paid,
        currency="CNY",
    )
    rows = listed.rows
    assert [(r.signed_on, r.contract_id) for r in rows] == sorted(
        (r.signed_on, r.contract_id) for r in rows
    )
    zero = cny("0")
    for r in rows:
        assert r.uninvoiced + r.unpaid == r.amount - r.paid
        assert zero <= r.paid <= r.invoiced <= r.amount
        assert r.unpaid == r.not_due + r.overdue
        assert r.overdue == sum(r.ageing, zero)
        assert r.overdue == sum((i.open for i in r.overdue_invoices), zero)
        assert all(
            i.days_overdue >= 1 and ageing_bucket(i.days_overdue) == i.bucket
            for i in r.overdue_invoices
        )
        if not_invoiced or not_paid:
            assert (not_invoiced and r.uninvoiced > zero) or (not_paid and r.unpaid > zero)
    everyone = listed.totals.everyone
    assert everyone.count == len(rows)
    assert everyone.amount == sum((r.amount for r in rows), zero)
    assert everyone.paid == sum((r.paid for r in rows), zero)
    assert everyone.uninvoiced + everyone.unpaid == everyone.amount - everyone.paid
    _same_sums(list(listed.totals.owners), everyone)
    _same_sums(list(listed.totals.teams), everyone)


@given(portfolios())
def test_on_a_late_enough_day_the_list_agrees_with_the_billings(
    portfolio: tuple[list[Contract], list[ContractBilling]],
) -> None:
    contracts, billings = portfolio
    listed = receivables(contracts, billings, as_of=date(2027, 12, 31), currency="CNY")
    assert len(listed) == len(contracts)
    by_id = {b.contract_id: b for b in billings}
    for row in listed.rows:
        billing = by_id.get(row.contract_id)
        if billing is None:
            assert row.invoiced == cny("0.00")
            continue
        assert (row.invoiced, row.paid, row.uninvoiced, row.unpaid) == (
            billing.invoiced,
            billing.paid,
            billing.uninvoiced,
            billing.unpaid,
        )
        assert [m.name for m in row.due_milestones] == [
            m.name for m in billing.due_milestones(date(2027, 12, 31))
        ]


# -- signed contracts feed attainment (R15) -------------------------------------------------------------


def test_signed_contracts_feed_attainment() -> None:
    contracts, _ = example()
    deals = list(signed_from_contracts(contracts))
    assert [(d.source, d.owner, d.amount, d.signed_on) for d in deals] == [
        ("C-1", "bob", cny("500.00"), date(2026, 1, 10)),
        ("C-2", "ann", cny("2000.00"), date(2026, 3, 1)),
        ("C-3", "ann", cny("1000.00"), date(2026, 1, 10)),
        ("C-4", "cid", cny("300.00"), date(2026, 2, 1)),
        ("C-6", "eve", cny("100.00"), date(2025, 12, 1)),  # terminated, but it was signed
    ]  # C-5 is a draft: not signed
    result = attainment(
        [
            Target(owner="ann", period="2026-Q1", amount=cny("4000.00")),
            Target(owner="bob", period="2026-Q1", amount=cny("500.00")),
        ],
        signed_from_contracts(contracts),
        {"ann": cny("600.00")},
        period="2026-Q1",
        teams={"east": ["ann", "bob"]},
    )
    ann = result.row("ann")
    assert (ann.signed, ann.gap, ann.projected, ann.attainment) == (
        cny("3000.00"),
        cny("1000.00"),
        cny("3600.00"),
        Decimal("75.0"),
    )
    assert result.row("bob").attainment == Decimal("100.0")
    assert result.row("east", "team").signed == cny("3500.00")
    assert result.total.signed == cny("3800.00")  # cid's 300 too; eve's signed in 2025-Q4
    with pytest.raises(InvalidTypeError):
        signed_from_contracts(42)  # type: ignore[arg-type]
