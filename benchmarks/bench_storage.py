"""Storage figures (issue 3): bulk save, forecast pushdown, CSV import memory.

    python benchmarks/bench_storage.py                 # 1,000,000 opportunities, SQLite
    python benchmarks/bench_storage.py --postgres postgresql://postgres@127.0.0.1:5432/test

Baselines, measured in the same run:
* bulk save: raw ``sqlite3`` ``executemany`` of the same rows (converted from the same Opportunity
  objects) into an identical table, in one transaction; on PostgreSQL raw psycopg ``COPY`` and
  ``executemany``;
* forecast: the same ``GROUP BY`` statement run through the raw driver (on SQLite with the same two
  exact SQL functions, without which SQLite sums floats), and loading every row into Python;
* memory: peak RSS of a child process importing a CSV of 100,000 and of N rows.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from harness import Report, best_time, parser

import salesflow
from salesflow import Opportunity
from salesflow.adapters.sql.storage import SqlStorage, _DecimalSum, _sf_weighted
from salesflow.domain.money import currency_precision

AS_OF = date(2026, 11, 26)

GROUP_BY_SQL = """
SELECT stage,
       CASE WHEN expected_close IS NULL THEN NULL
            ELSE CAST(strftime('%Y', expected_close) AS INTEGER) * 12
                 + CAST(strftime('%m', expected_close) AS INTEGER) - 1 END AS month,
       owner, currency,
       sf_decimal_sum(sf_weighted(amount, CASE stage WHEN 'quotation' THEN '0.7' END, currency)),
       count(*)
FROM salesflow_opportunities
GROUP BY 1, 2, 3, 4
"""

PG_GROUP_BY_SQL = """
SELECT stage,
       CASE WHEN expected_close IS NULL THEN NULL
            ELSE CAST(EXTRACT(year FROM expected_close) AS INTEGER) * 12
                 + CAST(EXTRACT(month FROM expected_close) AS INTEGER) - 1 END AS month,
       owner, currency,
       sum(round(amount * CASE stage WHEN 'quotation' THEN 0.7 END, minor_unit)),
       count(*)
FROM salesflow_opportunities
GROUP BY 1, 2, 3, 4
"""


def pipeline(n: int) -> list[Opportunity]:
    """n opportunities, 40 owners, 12 months, no history (as a pipeline export)."""
    return salesflow.generate_pipeline(
        n, seed=11, owners=40, teams=4, months=12, with_history=False
    )


def rows_of(opportunities: list[Opportunity]) -> list[tuple[Any, ...]]:
    """The rows a raw insert writes: the same columns and text forms as SqlStorage."""
    return [
        (
            o.id,
            1,
            o.owner,
            o.team,
            o.name,
            o.account,
            o.industry,
            o.region,
            str(o.amount.amount),
            o.amount.currency,
            currency_precision(o.amount.currency),
            o.stage,
            None if o.expected_close is None else o.expected_close.isoformat(),
            None if o.created is None else o.created.isoformat(),
            0,
            "2026-11-26 09:00:00.000000",
        )
        for o in opportunities
    ]


def sqlite_figures(
    report: Report, opportunities: list[Opportunity], repeat: int, folder: Path
) -> None:
    n = len(opportunities)

    def ours() -> SqlStorage:
        path = folder / f"ours-{uuid.uuid4().hex}.db"
        storage = SqlStorage(f"sqlite:///{path}")
        with storage.transaction() as uow:
            uow.opportunities.add_many(opportunities)
        return storage

    def raw() -> Path:
        path = folder / f"raw-{uuid.uuid4().hex}.db"
        SqlStorage(f"sqlite:///{path}").close()  # the identical empty schema
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO salesflow_opportunities (id, version, owner, team, name, account, industry,"
            " region, amount, currency, minor_unit, stage, expected_close, created, history_length,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows_of(opportunities),
        )
        conn.execute("COMMIT")
        conn.close()
        return path

    raw_time, raw_path = best_time(raw, repeat)
    ours_time, storage = best_time(ours, repeat)
    report.ratio(f"SQLite bulk save of {n:,} vs raw executemany", ours_time, raw_time, 1.5)

    def stored_forecast() -> salesflow.Forecast:
        with storage.transaction() as uow:
            return uow.opportunities.forecast(salesflow.StagePlan.default(), as_of=AS_OF)

    def raw_group_by() -> list[Any]:
        conn = sqlite3.connect(raw_path)
        conn.create_function("sf_weighted", 3, _sf_weighted, deterministic=True)
        conn.create_aggregate("sf_decimal_sum", 1, _DecimalSum)
        rows = conn.execute(GROUP_BY_SQL).fetchall()
        conn.close()
        return rows

    def in_python() -> salesflow.Forecast:
        with storage.transaction() as uow:
            return salesflow.forecast(uow.opportunities.query(), as_of=AS_OF)

    raw_time, _ = best_time(raw_group_by, repeat)
    ours_time, pushed = best_time(stored_forecast, repeat)
    load_time, loaded = best_time(in_python, 1)
    assert pushed.to_records() == loaded.to_records(), "pushdown and Python disagree"
    assert pushed.to_records() == salesflow.forecast(opportunities, as_of=AS_OF).to_records()
    report.ratio("SQLite forecast pushdown vs raw SQL GROUP BY", ours_time, raw_time, 1.3)
    report.ratio("SQLite forecast pushdown vs loading rows into Python", ours_time, load_time)
    storage.close()


def postgres_figures(
    report: Report, opportunities: list[Opportunity], repeat: int, admin_url: str
) -> None:
    import psycopg

    n = len(opportunities)
    name = f"sf_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin_url.rsplit('/', 1)[0]}/{name}"
    try:
        storage = SqlStorage(url)
        columns = (
            "id, version, owner, team, name, account, industry, region, amount, currency,"
            " minor_unit, stage, expected_close, created, history_length, updated_at"
        )
        rows = [
            (
                o.id,
                1,
                o.owner,
                o.team,
                o.name,
                o.account,
                o.industry,
                o.region,
                o.amount.amount,
                o.amount.currency,
                currency_precision(o.amount.currency),
                o.stage,
                o.expected_close,
                o.created,
                0,
                "2026-11-26 09:00:00",
            )
            for o in opportunities
        ]

        def truncate() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE salesflow_opportunities CASCADE")

        def raw_copy() -> None:
            truncate()
            with (
                psycopg.connect(url) as conn,
                conn.cursor().copy(f"COPY salesflow_opportunities ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)

        def raw_executemany() -> None:
            truncate()
            marks = ", ".join(["%s"] * 16)
            with psycopg.connect(url) as conn:
                conn.cursor().executemany(
                    f"INSERT INTO salesflow_opportunities ({columns}) VALUES ({marks})", rows
                )

        def ours() -> None:
            truncate()
            with storage.transaction() as uow:
                uow.opportunities.add_many(opportunities)

        copy_time, _ = best_time(raw_copy, repeat)
        many_time, _ = best_time(raw_executemany, 1)
        ours_time, _ = best_time(ours, repeat)
        report.ratio(
            f"PostgreSQL bulk save of {n:,} vs raw psycopg COPY", ours_time, copy_time, 1.5
        )
        report.ratio(
            f"PostgreSQL bulk save of {n:,} vs raw psycopg executemany", ours_time, many_time
        )

        def raw_group_by() -> list[Any]:
            with psycopg.connect(url) as conn:
                return conn.execute(PG_GROUP_BY_SQL).fetchall()

        def stored_forecast() -> salesflow.Forecast:
            with storage.transaction() as uow:
                return uow.opportunities.forecast(salesflow.StagePlan.default(), as_of=AS_OF)

        def in_python() -> salesflow.Forecast:
            with storage.transaction() as uow:
                return salesflow.forecast(uow.opportunities.query(), as_of=AS_OF)

        raw_time, _ = best_time(raw_group_by, repeat)
        ours_time, pushed = best_time(stored_forecast, repeat)
        load_time, loaded = best_time(in_python, 1)
        assert pushed.to_records() == loaded.to_records(), "pushdown and Python disagree"
        report.ratio("PostgreSQL forecast pushdown vs raw SQL GROUP BY", ours_time, raw_time, 1.3)
        report.ratio(
            "PostgreSQL forecast pushdown vs loading rows into Python", ours_time, load_time
        )
        storage.close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


IMPORT_CHILD = """
import sys
# A forked child inherits its parent's peak RSS (the parent holds a million opportunities): reset
# the high-water mark first, then read this process's own peak (VmHWM) at the end.
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")
import salesflow
desk = salesflow.open(sys.argv[1], load_entrypoints=False)
result = desk.import_opportunities(salesflow.Actor("root", roles={"admin"}), sys.argv[2], batch_size=10_000)
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(result.value, peak_kb)
"""


def import_rss(report: Report, sizes: list[int], folder: Path) -> None:
    for size in sizes:
        csv_path = folder / f"pipeline-{size}.csv"
        # Written in chunks so that the parent does not hold the whole pipeline either.
        with csv_path.open("w", encoding="utf-8") as handle:
            for start in range(0, size, 100_000):
                chunk = salesflow.generate_pipeline(
                    min(100_000, size - start), seed=start, owners=40, with_history=False
                )
                chunk = [o.evolve(id=f"OPP-{start + i:08d}") for i, o in enumerate(chunk)]
                text = io_csv(chunk)
                handle.write(text if start == 0 else text.split("\n", 1)[1])
        db = folder / f"import-{size}.db"
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_CHILD, f"sqlite:///{db}", str(csv_path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert int(out[0]) == size
        report.figure(
            f"peak RSS importing a {size:,}-row CSV into SQLite",
            f"{int(out[1]) / 1024:,.0f} MB",
            "target < 250 MB, flat in N",
        )


def io_csv(opportunities: list[Opportunity]) -> str:
    import io

    buffer = io.StringIO()
    salesflow.write_opportunities(opportunities, buffer)
    return buffer.getvalue()


def main() -> None:
    """Run every figure and print the report."""
    p = parser(__doc__.splitlines()[0], 1_000_000)
    p.add_argument(
        "--postgres", help="admin URL of a PostgreSQL server (a scratch database is made)"
    )
    p.add_argument("--skip-rss", action="store_true", help="skip the CSV import memory figure")
    args = p.parse_args()
    report = Report(f"storage, n={args.n:,}")
    opportunities = pipeline(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sqlite_figures(report, opportunities, args.repeat, folder)
        if args.postgres:
            postgres_figures(report, opportunities, args.repeat, args.postgres)
        del opportunities
        if not args.skip_rss:
            import_rss(report, sorted({min(100_000, args.n), args.n}), folder)
    report.figure(
        "peak RSS of this benchmark process",
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB",
    )
    report.print()


if __name__ == "__main__":
    os.environ.setdefault("SALESFLOW_DISABLE_PLUGIN_AUTOLOAD", "1")
    main()
