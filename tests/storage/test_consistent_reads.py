"""Reads see one committed state per aggregate (issue 12): an opportunity and its stage history
are read in one snapshot on every backend, while another process keeps moving it.

The writer moves one opportunity MOVES times (each move writes the stage and a history entry in
one transaction, and adds one to the version); the reader reads it, alone and in a list, up to
READS times or until it has seen the last move. Every read must be a committed state: the history
ends in the current stage, has exactly ``version - 1`` entries, and versions never go back.
Bounded by counts, never by time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import salesflow
from salesflow import Actor, Money, Opportunity

Race = Callable[[str, list[list[str]], str], list[str]]

ADMIN = Actor("root", roles={"admin"})
MOVES = 500
READS = 5_000

CHILD = """
import json, sys
import salesflow
role, url, prefix, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
desk = salesflow.open(url, load_entrypoints=False, table_prefix=prefix)
root = salesflow.Actor("root", roles={"admin"})
stages = ["needs_analysis", "intent_confirmed", "quotation", "initial_contact"]
# The reader reads the state before the race first, so that it sees the writer's work begin even
# where the writer may hold the database for the whole race (salesflow's own SQLite files).
first = desk.opportunity("op-race").version if role == "reader" else None
print("ready", flush=True)
sys.stdin.readline()
if role == "writer":
    for i in range(count):
        desk.move_opportunity(root, "op-race", stages[i % len(stages)])
    print(json.dumps({"moves": count}))
else:
    final = count + 2  # version 2 before the race, one more per move
    errors, versions, reads, last = [], {first}, 0, first
    while reads < 5000 and last < final:
        try:
            if reads % 2:
                found = desk.opportunity("op-race")
            else:
                found = [o for o in desk.opportunities() if o.id == "op-race"][0]
            assert found.history[-1].to_stage == found.stage, "history ends elsewhere"
            assert len(found.history) == found.version - 1, "history and version disagree"
            assert found.version >= last, "the version went back"
            last = found.version
            versions.add(found.version)
        except Exception as error:
            errors.append(repr(error))
        reads += 1
    print(json.dumps({"reads": reads, "errors": errors[:5], "failed": len(errors),
                      "versions": len(versions), "last": last}))
"""


def race_reads(race: Race, url: str, prefix: str) -> dict[str, object]:
    desk = salesflow.open(url, load_entrypoints=False, table_prefix=prefix)
    try:
        desk.add_opportunity(
            ADMIN,
            Opportunity(
                id="op-race", owner="ann", amount=Money.of("1000", "CNY"), stage="initial_contact"
            ),
        )
        desk.move_opportunity(ADMIN, "op-race", "quotation")  # version 2, one history entry
        writer, reader = race(
            CHILD,
            [["writer", url, prefix, str(MOVES)], ["reader", url, prefix, str(MOVES)]],
            "ready",
        )
        assert json.loads(writer) == {"moves": MOVES}
        final = desk.opportunity("op-race")
        assert final.version == MOVES + 2
        assert len(final.history) == MOVES + 1
        outcome: dict[str, object] = json.loads(reader)
        return outcome
    finally:
        if not url.startswith("sqlite"):
            desk.storage.destroy()
        desk.close()


def check(outcome: dict[str, object]) -> None:
    print(outcome)  # reads, distinct versions seen, failures (pytest -s shows it)
    assert outcome["failed"] == 0, outcome["errors"]
    assert outcome["versions"] > 1, "the reader never overlapped the writer"  # type: ignore[operator]


def prefix() -> str:
    return f"r{uuid.uuid4().hex[:8]}_"


def test_reads_are_consistent_on_postgres(race: Race, postgres_url: str) -> None:
    check(race_reads(race, postgres_url, prefix()))


def test_reads_are_consistent_on_mysql(race: Race, mysql_url: str) -> None:
    check(race_reads(race, mysql_url, prefix()))


def test_reads_are_consistent_on_sqlite(race: Race, tmp_path: Path) -> None:
    check(race_reads(race, f"sqlite:///{tmp_path / 'race.db'}", "salesflow_"))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_one_statement_reads_an_opportunity_with_its_history(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The read path itself: one SELECT per opportunity read (so one snapshot), whatever the
    length of its history, and one per page of a list."""
    from sqlalchemy import event

    url = (
        f"sqlite:///{tmp_path / 'one.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    desk = salesflow.open(url, load_entrypoints=False, table_prefix=prefix())
    try:
        for n in range(3):
            desk.add_opportunity(
                ADMIN,
                Opportunity(
                    id=f"op-{n}", owner="ann", amount=Money.of("5", "CNY"), stage="initial_contact"
                ),
            )
        for stage in ("needs_analysis", "quotation", "intent_confirmed"):
            desk.move_opportunity(ADMIN, "op-1", stage)
        statements: list[str] = []
        engine = desk.storage._engine  # type: ignore[attr-defined]

        def record(_c: object, _cur: object, statement: str, *_args: object) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            one = desk.opportunity("op-1")
            assert [c.to_stage for c in one.history] == [
                "needs_analysis",
                "quotation",
                "intent_confirmed",
            ]
            assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
            statements.clear()
            listed = desk.opportunities()
            assert [(o.id, len(o.history)) for o in listed] == [
                ("op-0", 0),
                ("op-1", 3),
                ("op-2", 0),
            ]
            assert listed[1] == one
            assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
        finally:
            event.remove(engine, "before_cursor_execute", record)
    finally:
        if backend != "sqlite":
            desk.storage.destroy()
        desk.close()
