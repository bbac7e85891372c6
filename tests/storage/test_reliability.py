"""Reliability: killed processes, racing writers, malformed input, schema versions.

Child processes synchronise with the test over their standard streams (a line says "I got here"),
never with sleeps, so the tests are deterministic on a loaded machine.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

import salesflow
from salesflow import Actor, Money, Opportunity
from salesflow.adapters.sql.schema import SCHEMA_VERSION, UPGRADES, ensure_schema, stored_version
from salesflow.adapters.sql.storage import SqlStorage
from salesflow.domain.stages import StagePlan
from salesflow.errors import (
    BackendNotFoundError,
    InvalidTypeError,
    SchemaVersionError,
    StorageError,
    ValidationError,
)

ADMIN = Actor("root", roles={"admin"})

IMPORTER = textwrap.dedent(
    """
    import itertools, sys
    from decimal import Decimal
    from salesflow import Money, Opportunity
    from salesflow.adapters.sql.storage import SqlStorage

    storage = SqlStorage(sys.argv[1])

    def rows(start, stop=None):
        for i in itertools.count(start) if stop is None else range(start, stop):
            if i == start + 3000:
                print("inserting", flush=True)  # well inside the open transaction
            yield Opportunity(id=f"op-{i:08d}", owner="ann", amount=Money(Decimal(i), "CNY"), stage="quotation")

    if sys.argv[2] == "commit-first":
        with storage.transaction() as uow:
            uow.opportunities.add_many(rows(0, 1000))
        print("committed", flush=True)
    with storage.transaction() as uow:
        uow.opportunities.add_many(rows(10**6), batch_size=500)  # never ends: killed mid-way
    """
)


def _run_killed(db: Path, mode: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", IMPORTER, f"sqlite:///{db}", mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as child:
        assert child.stdout is not None
        expected = ["committed", "inserting"] if mode == "commit-first" else ["inserting"]
        for word in expected:
            assert child.stdout.readline().strip() == word
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize(("mode", "rows"), [("only", 0), ("commit-first", 1000)])
def test_a_killed_bulk_import_leaves_none_or_all_of_each_transaction(
    tmp_path: Path, mode: str, rows: int
) -> None:
    db = tmp_path / "killed.db"
    SqlStorage(f"sqlite:///{db}").close()
    _run_killed(db, mode)
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    storage = SqlStorage(f"sqlite:///{db}")
    with storage.transaction() as uow:
        assert uow.opportunities.count() == rows
        assert (
            uow.opportunities.add(
                Opportunity(id="after", owner="ann", amount=Money.of(1, "CNY"), stage="won")
            ).version
            == 1
        )
    storage.close()


Race = Callable[[str, list[list[str]], str], list[str]]

SAVER = textwrap.dedent(
    """
    import sys
    from salesflow.adapters.sql.storage import SqlStorage
    from salesflow.errors import ConcurrencyError

    storage = SqlStorage(sys.argv[1], create=False)
    with storage.transaction() as uow:
        read = uow.opportunities.get("op-1")
    print(f"read {read.version}", flush=True)
    sys.stdin.readline()  # wait until both processes hold the same version
    try:
        with storage.transaction() as uow:
            uow.opportunities.save(read.evolve(owner=sys.argv[2]))
        print("saved", flush=True)
    except ConcurrencyError as error:
        print(f"conflict {error.expected} {error.actual}", flush=True)
    """
)


def _race(url: str, race: Race) -> None:
    storage = SqlStorage(url)
    with storage.transaction() as uow:
        uow.opportunities.add(
            Opportunity(id="op-1", owner="ann", amount=Money.of(1, "CNY"), stage="quotation")
        )
    outcomes = race(SAVER, [[url, owner] for owner in ("bob", "cai")], ready="read 1")
    assert sorted(outcomes) == ["conflict 1 2", "saved"]
    winner = ("bob", "cai")[outcomes.index("saved")]
    with storage.transaction() as uow:
        stored = uow.opportunities.get("op-1")
    assert (stored.version, stored.owner) == (2, winner)  # the winner's update, not lost
    storage.drop_schema()
    storage.close()


def test_two_processes_saving_one_version_on_sqlite(tmp_path: Path, race: Race) -> None:
    _race(f"sqlite:///{tmp_path / 'race.db'}", race)


def test_two_processes_saving_one_version_on_postgres(postgres_url: str, race: Race) -> None:
    _race(postgres_url, race)


# -- malformed input ---------------------------------------------------------------------------------


def test_malformed_input_gets_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    desk = salesflow.open(f"sqlite:///{tmp_path / 'm.db'}", load_entrypoints=False)
    desk.add_opportunity(
        ADMIN, Opportunity(id="op-1", owner="ann", amount=Money.of(1, "CNY"), stage="won")
    )
    with pytest.raises(ValidationError, match="storage URL"):
        salesflow.open("salesflow.db", load_entrypoints=False)
    with pytest.raises(BackendNotFoundError, match=r"registered: .*memory"):
        salesflow.open("oracle://scott@tiger/db", load_entrypoints=False)
    with pytest.raises(ValidationError, match="database URL"):
        SqlStorage("sqlite+nonsense:///x.db")
    with pytest.raises(InvalidTypeError):
        desk.add_opportunity(ADMIN, {"id": "op-2"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Money.of("NaN", "CNY")
    with pytest.raises(InvalidTypeError):
        desk.forecast(as_of="2026-11-26")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError), desk.storage.transaction() as uow:
        list(uow.opportunities.query(close_from="2026-01-01"))  # type: ignore[arg-type]
    assert [o.id for o in desk.opportunities()] == ["op-1"]
    assert len(desk.events()) == 1


def test_amounts_beyond_mysql_scale_are_refused_not_rounded(mysql_url: str) -> None:
    storage = SqlStorage(mysql_url)
    try:
        # Money.of refuses 11 places; arithmetic results are exact and may have more.
        computed = Money.of("0.0000000001", "USD") * Decimal("0.1")
        tiny = Opportunity(id="op-1", owner="ann", amount=computed, stage="won")
        with pytest.raises(StorageError), storage.transaction() as uow:
            uow.opportunities.add(tiny)
        with storage.transaction() as uow:
            assert uow.opportunities.count() == 0
    finally:
        storage.drop_schema()
        storage.close()


# -- schema versions ---------------------------------------------------------------------------------


def test_a_fresh_database_records_the_schema_version(tmp_path: Path) -> None:
    storage = SqlStorage(f"sqlite:///{tmp_path / 's.db'}")
    with storage.transaction() as uow:
        version = uow.connection.execute(
            text("SELECT value FROM salesflow_meta WHERE key = 'schema_version'")
        ).scalar()
    assert version == str(SCHEMA_VERSION)
    assert storage.upgrade() == SCHEMA_VERSION  # opening again changes nothing
    storage.close()


def test_a_database_from_a_newer_salesflow_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    SqlStorage(url).close()
    with sqlite3.connect(tmp_path / "s.db") as raw:
        raw.execute("UPDATE salesflow_meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(SchemaVersionError) as info:
        SqlStorage(url)
    assert (info.value.found, info.value.supported) == (999, SCHEMA_VERSION)
    assert "upgrade salesflow" in str(info.value)


def test_salesflow_tables_without_their_meta_table_are_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "s.db") as raw:
        raw.execute("CREATE TABLE salesflow_opportunities (id TEXT)")
    with pytest.raises(StorageError, match="not created by salesflow"):
        SqlStorage(f"sqlite:///{tmp_path / 's.db'}")


def _version_one(url: str) -> None:
    """A database as a version-1 salesflow left it: no document tables, no minor_unit column,
    and two opportunities."""
    storage = SqlStorage(url, create=False)
    with storage.transaction() as uow:
        ensure_schema(uow.connection, storage.tables, target=1)
        for id, amount, code in (("op-1", "12.30", "CNY"), ("op-2", "1200", "JPY")):
            uow.opportunities.add(
                Opportunity(id=id, owner="ann", amount=Money.of(amount, code), stage="won")
            )
        uow.connection.execute(text("ALTER TABLE salesflow_opportunities DROP COLUMN minor_unit"))
    storage.close()


def _upgrade_checks(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _version_one(url)

    def broken(conn: object, tables: object) -> None:
        raise RuntimeError("disk full half-way through the upgrade")

    monkeypatch.setitem(UPGRADES, 2, broken)
    with pytest.raises(StorageError):
        SqlStorage(url)
    storage = SqlStorage(url, create=False)
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == 1  # nothing half-done
        assert (
            storage.tables.documents["quotes"].name not in inspect(uow.connection).get_table_names()
        )
    monkeypatch.undo()  # the real upgrade step again
    assert storage.upgrade() == 1  # upgraded from version 1
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == SCHEMA_VERSION
        assert uow.opportunities.get("op-1").amount == Money.of("12.30", "CNY")
        assert uow.quotes.count() == 0  # the new tables work
        places = dict(
            uow.connection.execute(text("SELECT id, minor_unit FROM salesflow_opportunities")).all()
        )
        assert places == {"op-1": 2, "op-2": 0}  # filled in from each row's currency
        places = dict(
            uow.connection.execute(text("SELECT id, minor_unit FROM salesflow_opportunities")).all()
        )
        assert places == {"op-1": 2, "op-2": 0}  # filled in from each row's currency
    storage.drop_schema()
    storage.close()


def test_an_older_schema_is_upgraded_in_one_transaction_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upgrade_checks(f"sqlite:///{tmp_path / 'old.db'}", monkeypatch)


def test_an_older_schema_is_upgraded_in_one_transaction_on_postgres(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upgrade_checks(postgres_url, monkeypatch)


def _version_two(url: str) -> None:
    """A database as a version-2 salesflow left it: stage changes without reason and note, and an
    opportunity that moved once."""
    storage = SqlStorage(url, create=False)
    with storage.transaction() as uow:
        ensure_schema(uow.connection, storage.tables, target=2)
        moved = Opportunity(
            id="op-1", owner="ann", amount=Money.of("10", "CNY"), stage="needs_analysis"
        ).move_to("quotation", datetime(2026, 10, 1, tzinfo=UTC))
        uow.opportunities.add(moved)
        for column in ("reason", "note"):
            uow.connection.execute(
                text(f"ALTER TABLE salesflow_stage_changes DROP COLUMN {column}")
            )
    storage.close()


@pytest.mark.parametrize("server", ["sqlite", "postgres", "mysql"])
def test_a_version_two_schema_gains_the_lost_reason_columns(
    server: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if server == "sqlite":
        url = f"sqlite:///{tmp_path / 'v2.db'}"
    else:
        url = request.getfixturevalue("postgres_url" if server == "postgres" else "mysql_url")
    _version_two(url)
    if server != "mysql":  # MySQL commits DDL at once: no transaction can undo an ALTER there

        def broken(conn: object, tables: object) -> None:
            raise RuntimeError("disk full half-way through the upgrade")

        monkeypatch.setitem(UPGRADES, 3, broken)
        with pytest.raises(StorageError):
            SqlStorage(url)
        monkeypatch.undo()
    storage = SqlStorage(url, create=False)
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == 2
    assert storage.upgrade() == 2  # upgraded from version 2
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == SCHEMA_VERSION == 3
        columns = {
            c["name"] for c in inspect(uow.connection).get_columns("salesflow_stage_changes")
        }
        assert {"reason", "note"} <= columns
        stored = uow.opportunities.get("op-1")
        assert [(c.to_stage, c.reason, c.note) for c in stored.history] == [
            ("quotation", None, None)
        ]
        lost = stored.move_to(
            "lost",
            datetime(2026, 11, 1, tzinfo=UTC),
            plan=StagePlan.default(),
            reason="no_budget",
            note="frozen",
        )
        uow.opportunities.save(lost)
    with storage.transaction() as uow:
        assert uow.opportunities.get("op-1").history[-1] == lost.history[-1]
    assert storage.upgrade() == SCHEMA_VERSION  # opening again changes nothing
    storage.drop_schema()
    storage.close()
