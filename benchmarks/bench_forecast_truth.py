"""Forecast truth figures (issue 16): the range of 100,000 open deals, exact and simulated; the
reconstruction of a past forecast from stage history against a raw SQL query.

    python benchmarks/bench_forecast_truth.py                  # 100,000 deals; 100,000 with history
    python benchmarks/bench_forecast_truth.py --full           # 1,000,000 opportunities with history
    python benchmarks/bench_forecast_truth.py --postgres postgresql://postgres@127.0.0.1:5432/test

Baselines, measured in the same run:
* range: the exact distribution (dynamic programming over the grid of amounts, FFT convolution)
  is the baseline of the seeded simulation (10,000 draws); the simulation's error is reported as
  the largest distance between the level a simulated quantile reaches in the exact distribution
  and its nominal level, beside the DKW bound it must stay within;
* reconstruction: one raw SQL statement (through the driver, no salesflow) that finds each
  opportunity's stage on the day from the stage-change table and sums the weighted amounts per
  owner, against ``desk.forecast_lines(day, reconstruct=True)`` summed per owner. Both must give
  the same sums (checked).
"""

from __future__ import annotations

import sqlite3
import tempfile
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from harness import Report, best_time, parser

import salesflow
from salesflow import Money, Opportunity
from salesflow.adapters.sql.storage import _DecimalSum, _sf_weighted
from salesflow.analytics.forecast_range import forecast_range

PLAN = salesflow.StagePlan.default()
DAY = date(2026, 10, 15)  # the past day whose forecast is rebuilt

RECONSTRUCT_SQL = """
WITH last AS (
  SELECT opportunity_id, MAX(seq) AS seq FROM salesflow_stage_changes
  WHERE at < :cutoff GROUP BY opportunity_id
),
state AS (
  SELECT o.owner AS owner, o.amount AS amount, o.currency AS currency,
         o.minor_unit AS minor_unit,
         CASE WHEN l.seq IS NOT NULL THEN c.to_stage
              WHEN f.opportunity_id IS NULL THEN o.stage
              ELSE f.from_stage END AS stage
  FROM salesflow_opportunities o
  LEFT JOIN last l ON l.opportunity_id = o.id
  LEFT JOIN salesflow_stage_changes c ON c.opportunity_id = l.opportunity_id AND c.seq = l.seq
  LEFT JOIN salesflow_stage_changes f ON f.opportunity_id = o.id AND f.seq = 0
  WHERE o.created IS NULL OR o.created <= :day
)
SELECT owner, {total} FROM state WHERE stage = 'quotation' GROUP BY owner
"""
SQLITE_TOTAL = "sf_decimal_sum(sf_weighted(amount, '0.7', currency))"
PG_TOTAL = "sum(round(amount * 0.7, minor_unit))"


def range_figures(report: Report, n: int, repeat: int) -> None:
    import numpy as np

    # Amounts on a grid of 1,000 (50 sizes) in the four open stages: exact stays feasible.
    deals = [
        Opportunity(
            id=f"r{i}",
            owner="ann",
            amount=Money.of(1000 * (1 + (i * 7919) % 50), "CNY"),
            stage=PLAN.open_stages[i % 4].key,
            expected_close=date(2026, 12, 1),
        )
        for i in range(n)
    ]
    exact_time, exact = best_time(
        lambda: forecast_range(deals, PLAN, method="exact", max_bins=50_000_000), repeat
    )
    sim_time, simulated = best_time(
        lambda: forecast_range(deals, PLAN, method="simulate", samples=10_000, seed=1), repeat
    )
    e, s = exact.row(), simulated.row()
    assert e.mean == s.mean
    values, pmf = e.support
    cdf = np.cumsum(pmf)
    worst = 0.0
    for level, got in ((0.1, s.p10), (0.5, s.p50), (0.9, s.p90)):
        units = int(got.amount * 100)
        reached = float(cdf[values <= units][-1])
        below = float(cdf[values < units][-1]) if (values < units).any() else 0.0
        worst = max(worst, max(0.0, level - reached), max(0.0, below - level))
    report.ratio(f"range of {n:,} deals: simulation (10,000 draws) vs exact", sim_time, exact_time)
    report.figure(
        "range: exact P10 / P50 / P90",
        f"{e.p10.amount:,} / {e.p50.amount:,} / {e.p90.amount:,}",
        f"mean {e.mean:,}",
    )
    report.figure(
        "range: simulated P10 / P50 / P90",
        f"{s.p10.amount:,} / {s.p50.amount:,} / {s.p90.amount:,}",
        f"level error {worst:.4f} (DKW bound {s.error_bound})",
    )


def _ours(desk: Any) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for line in desk.forecast_lines(DAY, reconstruct=True):
        if line.stage == "quotation":
            sums[line.owner] = sums.get(line.owner, Decimal(0)) + line.weighted.amount
    return sums


def reconstruction_figures(
    report: Report,
    opportunities: list[Opportunity],
    repeat: int,
    folder: Path,
    postgres: str | None,
) -> None:
    n = len(opportunities)
    cutoff = DAY + timedelta(days=1)

    path = folder / f"truth-{uuid.uuid4().hex}.db"
    desk = salesflow.open(f"sqlite:///{path}", load_entrypoints=False)
    with desk.storage.transaction() as uow:
        uow.opportunities.add_many(opportunities)

    def raw_sqlite() -> dict[str, Decimal]:
        conn = sqlite3.connect(path)
        conn.create_function("sf_weighted", 3, _sf_weighted, deterministic=True)
        conn.create_aggregate("sf_decimal_sum", 1, _DecimalSum)
        rows = conn.execute(
            RECONSTRUCT_SQL.format(total=SQLITE_TOTAL),
            {"cutoff": f"{cutoff.isoformat()} 00:00:00.000000", "day": DAY.isoformat()},
        ).fetchall()
        conn.close()
        return {owner: Decimal(total) for owner, total in rows}

    raw_time, raw = best_time(raw_sqlite, repeat)
    ours_time, ours = best_time(lambda: _ours(desk), 1)
    assert ours == raw, "reconstruction and raw SQL disagree"
    report.ratio(
        f"SQLite reconstruction of {DAY} for {n:,} opportunities vs raw SQL", ours_time, raw_time
    )
    desk.close()
    if postgres is None:
        return
    import psycopg

    name = f"sf_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{postgres.rsplit('/', 1)[0]}/{name}"
    try:
        desk = salesflow.open(url, load_entrypoints=False)
        with desk.storage.transaction() as uow:
            uow.opportunities.add_many(opportunities)

        def raw_pg() -> dict[str, Decimal]:
            sql = RECONSTRUCT_SQL.format(total=PG_TOTAL).replace(":cutoff", "%(cutoff)s")
            sql = sql.replace(":day", "%(day)s")
            with psycopg.connect(url) as conn:
                rows = conn.execute(sql, {"cutoff": cutoff, "day": DAY}).fetchall()
            return {owner: Decimal(total) for owner, total in rows}

        raw_time, raw = best_time(raw_pg, repeat)
        ours_time, ours = best_time(lambda: _ours(desk), 1)
        assert ours == raw, "reconstruction and raw SQL disagree (PostgreSQL)"
        report.ratio(
            f"PostgreSQL reconstruction of {DAY} for {n:,} vs raw SQL", ours_time, raw_time
        )
        desk.close()
    finally:
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    p = parser(__doc__.splitlines()[0], 100_000)
    p.add_argument("--full", action="store_true", help="1,000,000 opportunities with history")
    p.add_argument("--history-n", type=int, help="opportunities with history (default --n)")
    p.add_argument("--postgres", help="admin URL of a PostgreSQL server (a scratch database)")
    args = p.parse_args()
    report = Report("Forecast truth: range and reconstruction")
    range_figures(report, args.n, args.repeat)
    size = 1_000_000 if args.full else (args.history_n or args.n)
    print(f"  (reconstruction size: {size:,} opportunities with history)", flush=True)
    opportunities = salesflow.generate_pipeline(size, seed=16, owners=40, teams=4, months=12)
    with tempfile.TemporaryDirectory() as folder:
        reconstruction_figures(report, opportunities, args.repeat, Path(folder), args.postgres)
    report.print()


if __name__ == "__main__":
    main()
