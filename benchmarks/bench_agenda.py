"""Benchmark: desk.agenda() and run_daily() on SQLite and PostgreSQL, against raw SQL.

A company of 50 reps in 5 teams: ``--size`` opportunities (half of them open), five calls per
opportunity (a year of them, a third linked to a deal) and a follow-up task per four opportunities.
The issue's figure is ``--size 200000`` (1,000,000 calls, 50,000 tasks); the default, 4,000, runs in
well under a minute. Timed, on each backend:

* ``desk.agenda(rep)``, ``desk.agenda(manager)`` and ``desk.run_daily(admin)`` (a fresh day each
  run, so each one emits its day's alerts);
* the baseline: the same selections written as raw SQL in the same run (the open deals with their
  stage changes, the open tasks due by the day, the scope's tasks, the calls of the stalled window,
  the contracts and billings, the pending approvals), rows fetched but not decoded.

The ratio is what reading documents into domain objects and computing the agenda costs over
fetching the same rows. ``--postgres URL`` (an admin URL; a scratch database is made and dropped)
adds the PostgreSQL figures.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Report, best_time

import salesflow
from salesflow import Actor
from salesflow.domain.calls import CallRecord, Direction, Disposition
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.tasks import FollowUpTask

D = date(2026, 12, 1)
REPS = [f"rep{i:02d}" for i in range(50)]
TEAM = {rep: f"team{i % 5}" for i, rep in enumerate(REPS)}
OPEN = ["initial_contact", "needs_analysis", "intent_confirmed", "quotation"]
ADMIN = Actor("scheduler", roles={"admin"})
REP = Actor("rep00", roles={"sales_rep"}, teams={"team0"})
MANAGER = Actor("boss0", roles={"sales_manager"}, teams={"team0"})


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def company(size: int, seed: int = 7) -> tuple[list[Opportunity], list[CallRecord], list[Any]]:
    """``size`` opportunities, ``5 * size`` calls and ``size // 4`` tasks, seeded."""
    rng = random.Random(seed)
    opps = []
    for i in range(size):
        rep = REPS[i % 50]
        stage = rng.choice(OPEN) if rng.random() < 0.5 else rng.choice(["won", "lost", "won"])
        moved = D - timedelta(days=rng.randint(0, 120))
        history: tuple[StageChange, ...] = (StageChange(at(moved), None, stage),)
        if stage == "lost":
            history = (StageChange(at(moved), None, stage, reason="price"),)
        opps.append(
            Opportunity(
                id=f"op{i:07d}",
                owner=rep,
                team=TEAM[rep],
                stage=stage,
                amount=Money.of(f"{rng.randint(1, 500) * 1000}.00", "CNY"),
                expected_close=D + timedelta(days=rng.randint(-90, 120)),
                created=moved - timedelta(days=rng.randint(0, 60)),
                history=history,
            )
        )
    calls = []
    for i in range(5 * size):
        deal = opps[rng.randrange(size)]
        calls.append(
            CallRecord(
                id=f"pbx:{i}",
                source="pbx",
                external_id=str(i),
                owner=deal.owner,
                direction=Direction.OUTBOUND,
                disposition=Disposition.ANSWERED,
                started_at=at(D - timedelta(days=rng.randint(0, 364)), 9 + i % 8),
                talk_seconds=rng.randint(10, 900),
                from_number="+8613800138000",
                to_number="+862188886666",
                opportunity_id=deal.id if i % 3 == 0 else None,
            )
        )
    tasks = []
    for i in range(size // 4):
        deal = opps[rng.randrange(size)]
        task = FollowUpTask.create(
            id=f"t{i:07d}",
            owner=deal.owner,
            contact_id=f"c{i}",
            due=D + timedelta(days=rng.randint(-30, 30)),
            at=at(D - timedelta(days=rng.randint(1, 90))),
            opportunity_id=deal.id if i % 2 else None,
        )
        if i % 5 < 2 and task.created_at is not None:
            task = task.complete(task.created_at + timedelta(days=1))
        tasks.append(task)
    return opps, calls, tasks


def seed(desk: Any, data: tuple[list[Opportunity], list[CallRecord], list[Any]]) -> None:
    opps, calls, tasks = data
    with desk.storage.transaction() as uow:
        uow.opportunities.add_many(opps)
        uow.calls.add_many(calls)
        uow.tasks.add_many(tasks)


def raw_selection(engine: Any, day: date, owners: list[str] | None, teams: list[str] | None) -> int:
    """The agenda's selections as raw SQL: rows fetched, not decoded. Returns the row count."""
    from sqlalchemy import bindparam, text

    open_stages = OPEN
    start = at(day - timedelta(days=21), 0)
    end = at(day + timedelta(days=2), 0)
    where_owner = "" if owners is None else " AND ix_owner IN :owners"
    opp_scope = ""
    if owners is not None:
        opp_scope = " AND (o.owner IN :owners" + (" OR o.team IN :teams)" if teams else ")")
    queries = [
        (
            "SELECT o.*, s.at, s.to_stage FROM salesflow_opportunities o"
            " LEFT JOIN salesflow_stage_changes s ON s.opportunity_id = o.id"
            f" WHERE o.stage IN :stages{opp_scope}",
            {"stages": open_stages},
        ),
        (
            "SELECT id, body FROM salesflow_tasks WHERE ix_status = 'open' AND ix_due < :due"
            + where_owner,
            {"due": day + timedelta(days=1)},
        ),
        ("SELECT id, body FROM salesflow_tasks WHERE 1 = 1" + where_owner, {}),
        (
            "SELECT id, body FROM salesflow_calls WHERE ix_started_at >= :start"
            " AND ix_started_at < :end" + where_owner,
            {"start": start, "end": end},
        ),
        ("SELECT id, body FROM salesflow_contracts WHERE 1 = 1" + where_owner, {}),
        ("SELECT id, body FROM salesflow_billings WHERE 1 = 1" + where_owner, {}),
        ("SELECT id, body FROM salesflow_approvals WHERE ix_state = 'pending'", {}),
    ]
    rows = 0
    with engine.connect() as conn:
        for sql, params in queries:
            statement = text(sql)
            expanding = [
                bindparam(name, expanding=True)
                for name in ("stages", "owners", "teams")
                if f":{name}" in sql
            ]
            if expanding:
                statement = statement.bindparams(*expanding)
            values = dict(params)
            if ":owners" in sql:
                values["owners"] = owners
            if ":teams" in sql:
                values["teams"] = teams
            rows += len(conn.execute(statement, values).fetchall())
    return rows


def figures(report: Report, label: str, url: str, data: Any, repeat: int) -> None:
    from sqlalchemy import create_engine

    desk = salesflow.open(url, load_entrypoints=False, clock=lambda: at(D + timedelta(days=400)))
    started = time.perf_counter()
    seed(desk, data)
    report.figure(f"{label}: seeding", f"{time.perf_counter() - started:.1f} s")
    engine = create_engine(url)
    team0 = [r for r in REPS if TEAM[r] == "team0"]
    rep_raw, _ = best_time(lambda: raw_selection(engine, D, ["rep00"], None), repeat)
    rep_ours, agenda = best_time(lambda: desk.agenda(REP, on=D), repeat)
    report.ratio(f"{label}: desk.agenda(rep), {len(agenda)} items", rep_ours, rep_raw)
    team_raw, _ = best_time(lambda: raw_selection(engine, D, [*team0, "boss0"], ["team0"]), repeat)
    team_ours, agenda = best_time(lambda: desk.agenda(MANAGER, on=D), repeat)
    report.ratio(f"{label}: desk.agenda(manager of 10), {len(agenda)} items", team_ours, team_raw)
    all_raw, _ = best_time(lambda: raw_selection(engine, D, None, None), repeat)
    days = iter(range(repeat + 1))
    daily_ours, result = best_time(
        lambda: desk.run_daily(ADMIN, on=D + timedelta(days=next(days))), repeat
    )
    report.ratio(f"{label}: run_daily(), {len(result.value)} alerts", daily_ours, all_raw)
    again, _ = best_time(lambda: desk.run_daily(ADMIN, on=D), 1)
    report.ratio(f"{label}: run_daily() again the same day (emits 0)", again, all_raw)
    engine.dispose()
    desk.close()


def main() -> None:
    """Run the figures and print the report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=4_000, help="opportunities (default 4,000)")
    p.add_argument("--n", type=int, help="the same as --size (for run_all.py)")
    p.add_argument("--repeat", type=int, default=3, help="timing runs; the best counts")
    p.add_argument("--postgres", help="admin URL of a PostgreSQL server (a scratch database)")
    args = p.parse_args()
    size = args.n or args.size
    data = company(size)
    report = Report(
        f"agenda: {size:,} opportunities, {len(data[1]):,} calls, {len(data[2]):,} tasks, 50 reps"
    )
    with tempfile.TemporaryDirectory() as tmp:
        figures(report, "SQLite", f"sqlite:///{tmp}/agenda.db", data, args.repeat)
    if args.postgres:
        import psycopg

        name = f"sf_agenda_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"{args.postgres.rsplit('/', 1)[0]}/{name}"
            figures(report, "PostgreSQL", url, data, args.repeat)
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report.print()


if __name__ == "__main__":
    os.environ.setdefault("SALESFLOW_DISABLE_PLUGIN_AUTOLOAD", "1")
    main()
