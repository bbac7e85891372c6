"""Benchmark: the collections list, receivables(), against a hand-written loop.

N signed contracts (40 reps in 5 teams), each with a three-milestone billing plan, five invoices,
payments (full, partial, none) and an occasional credit note. ``receivables()`` is timed beside a
plain loop over the same objects that computes the same figures (invoiced, paid, not due and the
four ageing buckets, overdue invoices, due milestones, the order by signing date and the totals per
owner, team and everyone), in the same run; the ratio is the calculator's overhead (target: at most
1.5x). Reading every row object afterwards is timed separately (rows are built on first read).
Run ``python benchmarks/bench_receivables.py --n 5000`` for a quick look; the default is 100,000.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Report, best_time, parser

from salesflow.analytics.receivables import receivables
from salesflow.domain.billing import (
    BillingLine,
    ContractBilling,
    CreditNote,
    Invoice,
    Milestone,
    Payment,
)
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.contracts import Contract, ContractState
from salesflow.domain.money import Money
from salesflow.domain.quotes import Quote

TARGET = 1.5
ZERO = Decimal(0)
AS_OF = date(2026, 12, 31)
START = date(2025, 1, 1)


def _quotes(count: int) -> list[Quote]:
    products = [
        Product(sku=f"P{i}", name=f"Product {i}", list_price=Money.of(f"{97 + i * 131}.37", "CNY"))
        for i in range(8)
    ]
    catalog = Catalog(products=products)
    quotes = []
    for q in range(count):
        quote = Quote(id=f"Q{q}", owner="rep", currency="CNY", quoted_on=date(2025, 1, 1))
        quote = quote.add_lines(
            catalog,
            [{"sku": f"P{(q + k) % 8}", "quantity": 1 + (q * 7 + k) % 11} for k in range(3)],
        )
        quotes.append(quote.set_tax_rate(13).submit_for_approval().approve())
    return quotes


def build(n: int) -> tuple[list[Contract], list[ContractBilling]]:
    """N formal contracts and their billings (deterministic)."""
    quotes = _quotes(25)
    contracts: list[Contract] = []
    billings: list[ContractBilling] = []
    shapes: dict[str, Any] = {}
    for i in range(n):
        quote = quotes[i % len(quotes)]
        signed = START + timedelta(days=(i * 7919) % 700)
        contract = Contract(
            id=f"C{i:07d}",
            owner=f"rep-{i % 40:02d}",
            team=f"team-{i % 5}",
            quote=quote,
            state=ContractState.FORMAL,
            signed_on=signed,
        )
        contracts.append(contract)
        amount = contract.amount
        cached = shapes.get(quote.id)
        if cached is None:
            # Contracts of one quote share amounts: split them once.
            m1, m2, m3 = amount.allocate([30, 30, 40])
            lines = tuple(
                BillingLine(
                    line_id=line.id,
                    item_id=line.item_id,
                    sku=line.sku,
                    amount=line.net + line.tax,
                    quantity=line.quantity,
                )
                for line in contract.lines
            )
            cached = shapes[quote.id] = (
                m1,
                m2,
                m3,
                m2.allocate([1, 1]),
                m3.allocate([1, 1]),
                lines,
            )
        m1, m2, m3, halves, parts, lines = cached
        milestones = (
            Milestone(name="deposit", due_on=signed + timedelta(days=10), amount=m1, share=30),
            Milestone(name="delivery", due_on=signed + timedelta(days=90), amount=m2, share=30),
            Milestone(name="acceptance", due_on=signed + timedelta(days=200), amount=m3, share=40),
        )
        plan = [("deposit", m1), ("delivery", halves[0]), ("delivery", halves[1])]
        plan += [("acceptance", parts[0]), ("acceptance", parts[1])]
        invoices = []
        payments = []
        notes = []
        for k, (name, money) in enumerate(plan):
            issued = signed + timedelta(days=10 + 40 * k)
            inv = Invoice(
                id=f"I{k}",
                amount=money,
                issued_on=issued,
                due_on=issued + timedelta(days=30),
                milestone=name,
            )
            invoices.append(inv)
            kind = (i + k) % 4
            if kind == 0:
                payments.append(
                    Payment(id=f"P{k}", invoice_id=inv.id, amount=money, received_on=inv.due_on)
                )
            elif kind == 1:
                half = Money(money.amount // 2, money.currency)
                if half:
                    payments.append(
                        Payment(id=f"P{k}", invoice_id=inv.id, amount=half, received_on=issued)
                    )
            elif kind == 2 and (i + k) % 12 == 2:
                cent = Money(money.quantum, money.currency)
                notes.append(
                    CreditNote(
                        id=f"N{k}", invoice_id=inv.id, amount=cent, issued_on=issued, reason="fix"
                    )
                )
        billings.append(
            ContractBilling(
                contract_id=contract.id,
                owner=contract.owner,
                currency=contract.currency,
                amount=amount,
                signed_on=signed,
                lines=lines,
                milestones=milestones,
                invoices=tuple(invoices),
                credit_notes=tuple(notes),
                payments=tuple(payments),
            )
        )
    return contracts, billings


def hand(contracts: list[Contract], billings: list[ContractBilling]) -> tuple[list[Any], Any]:
    """The same list and totals, written by hand with dicts and lists."""
    by_id = {b.contract_id: b for b in billings}
    today = AS_OF.toordinal()
    rows = []
    for c in contracts:
        if c.signed_on is None:
            continue
        amount = c.amount.amount
        invoiced = paid = not_due = ZERO
        buckets = [ZERO, ZERO, ZERO, ZERO]
        late = []
        due = []
        b = by_id.get(c.id)
        if b is not None:
            left: dict[str, list[Any]] = {}
            for inv in b.invoices:
                if inv.issued_on <= AS_OF:
                    a = inv.amount.amount
                    invoiced += a
                    left[inv.id] = [a, inv.due_on, inv.milestone, a]
            for cn in b.credit_notes:
                if cn.issued_on <= AS_OF:
                    a = cn.amount.amount
                    invoiced -= a
                    left[cn.invoice_id][0] -= a
                    left[cn.invoice_id][3] -= a
            for p in b.payments:
                if p.received_on <= AS_OF:
                    a = p.amount.amount
                    paid += a
                    left[p.invoice_id][0] -= a
            for inv_id, (rest, due_on, _m, _net) in left.items():
                if rest:
                    days = today - due_on.toordinal()
                    if days <= 0:
                        not_due += rest
                    else:
                        late.append((inv_id, due_on, rest, days))
                        buckets[min((days - 1) // 30, 3)] += rest
            per: dict[str, Decimal] = {}
            for _r, _d, name, net in left.values():
                if name is not None:
                    per[name] = per.get(name, ZERO) + net
            for ms in b.milestones:
                reached = ms.reached_at is not None and ms.reached_at.date() <= AS_OF
                if ms.due_on <= AS_OF or reached:
                    rest = ms.amount.amount - per.get(ms.name, ZERO)
                    if rest > 0:
                        due.append((ms.name, ms.due_on, ms.amount.amount, rest, reached))
        rows.append(
            (
                c.signed_on,
                c.id,
                c.owner,
                c.team,
                amount,
                invoiced,
                paid,
                not_due,
                *buckets,
                late,
                due,
            )
        )
    rows.sort(key=itemgetter(0, 1))
    totals: dict[Any, list[Any]] = {}
    for r in rows:
        for key in (("owner", r[2]), ("team", r[3]), ("all", None)):
            sums = totals.setdefault(key, [0, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO])
            sums[0] += 1
            for i in range(1, 9):
                sums[i] += r[i + 3]
    return rows, totals


def main() -> None:
    args = parser(__doc__ or "", 100_000).parse_args()
    n = args.n
    print(f"building {n:,} contracts with 5 invoices each ...", flush=True)
    contracts, billings = build(n)
    report = Report(f"receivables over {n:,} contracts, 5 invoices each")

    def ours() -> Any:
        return receivables(contracts, billings, as_of=AS_OF)

    hand_time, (rows, totals) = best_time(lambda: hand(contracts, billings), args.repeat)
    our_time, result = best_time(ours, args.repeat)
    # Same answer, or the comparison means nothing.
    assert len(result) == len(rows)
    everyone = result.totals.everyone
    assert everyone.invoiced.amount == totals[("all", None)][2]
    assert everyone.paid.amount == totals[("all", None)][3]
    assert everyone.overdue.amount == sum(totals[("all", None)][5:9], ZERO)
    report.ratio("receivables()", our_time, hand_time, TARGET)

    def with_rows() -> Any:
        listed = receivables(contracts, billings, as_of=AS_OF)
        return listed.rows

    rows_time, _ = best_time(with_rows, args.repeat)
    report.ratio("receivables() + reading every row", rows_time, hand_time)
    report.figure("contracts per second", f"{n / our_time:,.0f}")
    report.print()


if __name__ == "__main__":
    main()
