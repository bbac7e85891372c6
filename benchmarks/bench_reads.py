"""Read figures (issue 12): one opportunity with its history, read while another process writes.

    python benchmarks/bench_reads.py --postgres postgresql://postgres@127.0.0.1:5432/test

A scratch database gets an opportunity with 10 stage changes; a writer process moves another
opportunity in a loop (until told to stop) while this process reads the first one ``--n`` times
each way, interleaved, so that both ways meet the same load:

* ``desk.opportunity(id)``: a pooled connection, a transaction at the server's default isolation
  (READ COMMITTED), the opportunity joined to its history in one statement, domain objects built;
* baseline, raw psycopg on one open connection, same isolation: the same join in one statement,
  rows only (``fetchall``), then ``commit``;
* for comparison, raw psycopg reading the row and then the history in two statements, inside a
  REPEATABLE READ transaction (the other way to one snapshot).

Each figure is a latency percentile (p50, p99) and its ratio to the baseline's.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from harness import Report, parser

import salesflow
from salesflow import Actor, Money, Opportunity

ADMIN = Actor("root", roles={"admin"})
STAGES = ["needs_analysis", "intent_confirmed", "quotation", "initial_contact"]

WRITER = """
import sys
import salesflow
desk = salesflow.open(sys.argv[1], load_entrypoints=False)
root = salesflow.Actor("root", roles={"admin"})
stages = ["needs_analysis", "intent_confirmed", "quotation", "initial_contact"]
desk.move_opportunity(root, "op-write", stages[0])
print("writing", flush=True)
moves = 1
for line in sys.stdin:  # one move per line the parent sends; "stop" ends
    if line.strip() == "stop":
        break
    desk.move_opportunity(root, "op-write", stages[moves % len(stages)])
    moves += 1
    print(moves, flush=True)
"""

JOIN_SQL = """
SELECT o.*, h.at, h.from_stage, h.to_stage, h.reason, h.note
FROM salesflow_opportunities o
LEFT OUTER JOIN salesflow_stage_changes h ON h.opportunity_id = o.id
WHERE o.id = %s ORDER BY h.seq
"""


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def prepare(url: str) -> salesflow.SalesDesk:
    desk = salesflow.open(url, load_entrypoints=False)
    for id in ("op-read", "op-write"):
        desk.add_opportunity(
            ADMIN,
            Opportunity(
                id=id, owner="ann", amount=Money.of("125000", "CNY"), stage="initial_contact"
            ),
        )
    for i in range(10):
        desk.move_opportunity(ADMIN, "op-read", STAGES[i % len(STAGES)])
    assert len(desk.opportunity("op-read").history) == 10
    return desk


def measure(report: Report, url: str, n: int) -> None:
    import psycopg

    desk = prepare(url)
    raw = psycopg.connect(url)
    repeatable = psycopg.connect(url)
    repeatable.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ

    def ours() -> Any:
        return desk.opportunity("op-read")

    def raw_join() -> Any:
        rows = raw.execute(JOIN_SQL, ("op-read",)).fetchall()
        raw.commit()
        return rows

    def raw_two_statements() -> Any:
        row = repeatable.execute(
            "SELECT * FROM salesflow_opportunities WHERE id = %s", ("op-read",)
        ).fetchone()
        history = repeatable.execute(
            "SELECT at, from_stage, to_stage, reason, note FROM salesflow_stage_changes"
            " WHERE opportunity_id = %s ORDER BY seq",
            ("op-read",),
        ).fetchall()
        repeatable.commit()
        return row, history

    ways: dict[str, Callable[[], Any]] = {
        "ours": ours,
        "join": raw_join,
        "two": raw_two_statements,
    }
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for fn in ways.values():  # warm up: statement caches, pools
        for _ in range(50):
            fn()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline().strip() == "writing"
        gc.collect()
        gc.disable()
        for i in range(n):
            writer.stdin.write("move\n")  # keep the writer one move ahead of each round
            writer.stdin.flush()
            for name, fn in ways.items():
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
            if i % 50 == 49:
                gc.enable()
                gc.collect()
                gc.disable()
        gc.enable()
        writer.stdin.write("stop\n")
        writer.stdin.flush()
        out, _ = writer.communicate(timeout=600)
        moves = int(out.split()[-1]) if out.split() else 1
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.communicate()
    raw.close()
    repeatable.close()
    report.figure("concurrent writer's moves during the reads", f"{moves:,}")
    for p in (50, 99):
        base = percentile(samples["join"], p) * 1e6
        report.ratio(
            f"p{p} desk.opportunity (10 changes) vs raw psycopg join, READ COMMITTED",
            percentile(samples["ours"], p) * 1e6,
            base,
            unit="us",
        )
        report.ratio(
            f"p{p} raw row + history in REPEATABLE READ vs raw psycopg join",
            percentile(samples["two"], p) * 1e6,
            base,
            unit="us",
        )
    desk.close()


def main() -> None:
    """Run the figures and print the report."""
    p = parser(__doc__.splitlines()[0], 2_000)
    p.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="admin URL of a PostgreSQL server (a scratch database is made)",
    )
    args = p.parse_args()
    import psycopg

    name = f"sf_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{args.postgres.rsplit('/', 1)[0]}/{name}"
    report = Report(f"reads under a concurrent writer, PostgreSQL, n={args.n:,}")
    try:
        measure(report, url, args.n)
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report.print()


if __name__ == "__main__":
    os.environ.setdefault("SALESFLOW_DISABLE_PLUGIN_AUTOLOAD", "1")
    main()
