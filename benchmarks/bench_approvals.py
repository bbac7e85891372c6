"""Approval figures (issue 5): durable approval decisions per second.

    python benchmarks/bench_approvals.py                # 2,000 decisions on SQLite
    python benchmarks/bench_approvals.py --postgres postgresql://postgres@127.0.0.1:5432/test

Each decision is one ``SalesDesk.approve()``: its own transaction, committed (SQLite in WAL mode with
its default synchronous setting; PostgreSQL with its defaults), that reads the request and its
quote, checks the rules, and writes the request (with its new audit entry), the approved quote and
the decision's events to the audit log.

Baseline, in the same run and database: raw driver SQL writing the same rows one transaction at a
time (update the request's row and the quote's row with the same JSON, insert the same event rows),
with everything precomputed: what the database alone costs. The two sides run in turns, a hundred
decisions each, so that a disk busy with something else at one moment slows both alike.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from harness import Report, parser

import salesflow
from salesflow import Actor, Money
from salesflow.adapters.sql.storage import SqlStorage
from salesflow.domain.catalog import Catalog, Product
from salesflow.domain.quotes import Quote

REP = Actor("ann", roles={"sales_rep"})
MANAGER = Actor("mia", roles={"sales_manager"})
TARGET = 3.0  # issue 17: at most 3x raw driver SQL (was SQLite 8.25x, PostgreSQL 6.2x)
CATALOG = Catalog(products=[Product(sku="P", name="Product", list_price=Money.of("100.00", "CNY"))])


def prepare(url: str, n: int) -> salesflow.SalesDesk:
    """A desk with ``n`` quotes waiting for a sales manager's approval."""
    desk = salesflow.open(url, load_entrypoints=False)
    desk.update_catalog(Actor("root", roles={"admin"}), CATALOG)
    for i in range(n):
        quote = Quote(id=f"Q-{i:06d}", owner="ann", currency="CNY", quoted_on=date(2026, 11, 26))
        desk.create_quote(REP, quote.add_line(CATALOG, "P", 5, discount=15))
        desk.submit_quote(REP, quote.id)
    return desk


def decide_all(desk: salesflow.SalesDesk, indexes: range) -> float:
    """Seconds to approve the waiting quotes ``indexes``, one command (transaction) each."""
    start = time.perf_counter()
    for i in indexes:
        desk.approve(MANAGER, f"quote:Q-{i:06d}", role="sales_manager", version=1)
    return time.perf_counter() - start


CHUNK = 100
"""Decisions timed in turn with as many raw transactions: a machine whose disk is busy at one
moment slows both sides alike, instead of whichever side ran then."""


def alternate(
    desk: salesflow.SalesDesk, n: int, raw: Callable[[int, int], float]
) -> tuple[float, float]:
    """Seconds of ``approve()`` and of ``raw(start, stop)`` over ``n`` decisions, in turns."""
    ours = theirs = 0.0
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        ours += decide_all(desk, range(start, stop))
        theirs += raw(start, stop)
    return ours, theirs


def raw_rows(
    desk: salesflow.SalesDesk, n: int
) -> list[tuple[str, str, str, str, list[tuple[Any, ...]]]]:
    """What each decision writes, precomputed: request id and JSON, quote id and JSON, events."""
    from salesflow.storage import codec

    rows = []
    now = datetime.now(UTC)
    for i in range(n):
        request = desk.approval(f"quote:Q-{i:06d}")
        quote = desk.quote(f"Q-{i:06d}")
        events = [
            (
                name,
                "quote",
                quote.id,
                "mia",
                now.replace(tzinfo=None),
                json.dumps({"request": request.id}),
            )
            for name in ("approval_granted", "approval_completed", "quote_approved")
        ]
        rows.append((request.id, codec.dumps(request), quote.id, codec.dumps(quote), events))
    return rows


def raw_sqlite(conn: Any, rows: list[tuple[str, str, str, str, list[tuple[Any, ...]]]]) -> float:
    start = time.perf_counter()
    for request_id, request, quote_id, quote, events in rows:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "UPDATE salesflow_approvals SET body = ?, revision = revision + 1 WHERE id = ?",
            (request, request_id),
        )
        conn.execute(
            "UPDATE salesflow_quotes SET body = ?, revision = revision + 1 WHERE id = ?",
            (quote, quote_id),
        )
        conn.executemany(
            "INSERT INTO salesflow_events (name, subject_kind, subject_id, actor, at, data) VALUES (?, ?, ?, ?, ?, ?)",
            [(*e[:4], e[4].isoformat(" "), e[5]) for e in events],
        )
        conn.execute("COMMIT")
    return time.perf_counter() - start


def raw_postgres(conn: Any, rows: list[tuple[str, str, str, str, list[tuple[Any, ...]]]]) -> float:
    start = time.perf_counter()
    for request_id, request, quote_id, quote, events in rows:
        with conn.transaction():
            conn.execute(
                "UPDATE salesflow_approvals SET body = %s, revision = revision + 1 WHERE id = %s",
                (request, request_id),
            )
            conn.execute(
                "UPDATE salesflow_quotes SET body = %s, revision = revision + 1 WHERE id = %s",
                (quote, quote_id),
            )
            conn.cursor().executemany(
                "INSERT INTO salesflow_events (name, subject_kind, subject_id, actor, at, data) VALUES (%s, %s, %s, %s, %s, %s)",
                events,
            )
    return time.perf_counter() - start


def main() -> None:
    """Run every figure and print the report."""
    p = parser(__doc__.splitlines()[0], 2_000)
    p.add_argument(
        "--postgres", help="admin URL of a PostgreSQL server (a scratch database is made)"
    )
    args = p.parse_args()
    report = Report(f"approvals, n={args.n:,} decisions")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "approvals.db"
        desk = prepare(f"sqlite:///{path}", args.n)
        rows = raw_rows(desk, args.n)
        import sqlite3

        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        ours, raw = alternate(desk, args.n, lambda a, b: raw_sqlite(conn, rows[a:b]))
        conn.close()
        report.figure("SQLite decisions per second", f"{args.n / ours:,.0f}/s")
        report.ratio("SQLite approve() vs raw SQL, a transaction each", ours, raw, TARGET)
        desk.close()
    if args.postgres:
        import psycopg

        name = f"sf_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{args.postgres.rsplit('/', 1)[0]}/{name}"
        try:
            desk = prepare(url, args.n)
            rows = raw_rows(desk, args.n)
            with psycopg.connect(url) as conn:
                ours, raw = alternate(desk, args.n, lambda a, b: raw_postgres(conn, rows[a:b]))
            report.figure("PostgreSQL decisions per second", f"{args.n / ours:,.0f}/s")
            report.ratio("PostgreSQL approve() vs raw SQL, a transaction each", ours, raw, TARGET)
            storage = desk.storage
            assert isinstance(storage, SqlStorage)
            desk.close()
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report.print()


if __name__ == "__main__":
    os.environ.setdefault("SALESFLOW_DISABLE_PLUGIN_AUTOLOAD", "1")
    main()
