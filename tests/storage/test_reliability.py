"""Reliability: killed processes, racing writers, malformed input, schema versions.

Child processes synchronise with the test over their standard streams (a line says "I got here"),
never with sleeps, so the tests are deterministic on a loaded machine.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

import salesflow
from salesflow import Actor, Money, Opportunity
from salesflow.adapters.sql.schema import SCHEMA_VERSION, UPGRADES, ensure_schema, stored_version
from salesflow.adapters.sql.storage import SqlStorage
from salesflow.analytics.forecast import forecast
from salesflow.domain.contacts import Contact
from salesflow.domain.stages import StagePlan
from salesflow.errors import (
    BackendNotFoundError,
    InvalidTypeError,
    NotFoundError,
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
    storage.destroy()
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
        storage.destroy()
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


SERVERS = ("sqlite", "postgres", "mysql")


def _server_url(server: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if server == "sqlite":
        return f"sqlite:///{tmp_path / f'{server}.db'}"
    return str(request.getfixturevalue("postgres_url" if server == "postgres" else "mysql_url"))


def _prefix() -> str:
    """A table prefix of its own: the servers' databases are shared by the run's tests."""
    return f"u{uuid.uuid4().hex[:8]}_"


def _sql(url: str, *statements: str, prefix: str = "salesflow_") -> list[Any]:
    """Run ``statements`` in one transaction; return the last one's rows (if it has any)."""
    storage = SqlStorage(url, create=False, table_prefix=prefix)
    rows: list[Any] = []
    try:
        with storage.transaction() as uow:
            for statement in statements:
                result = uow.connection.execute(text(statement))
                rows = list(result.all()) if result.returns_rows else []
    finally:
        storage.close()
    return rows


def _drop_all(url: str, prefix: str, *extra: str) -> None:
    storage = SqlStorage(url, create=False, table_prefix=prefix)
    with storage.transaction() as uow:
        storage.tables.metadata.drop_all(uow.connection)
        for name in extra:
            uow.connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
    storage.close()


ROWS = (("op-1", "12.30", "CNY"), ("op-2", "1201", "JPY"), ("op-3", "1.235", "KWD"))
"""Version-1 rows whose forecast shows a minor unit left unfilled: 70 % of 1201 JPY is 841 JPY,
not 840.70, and of 1.235 KWD 0.865 KWD, not 0.86."""


def _version_one(url: str, prefix: str = "salesflow_") -> None:
    """A database as a version-1 salesflow left it: no document tables, no minor_unit column,
    and three opportunities."""
    storage = SqlStorage(url, create=False, table_prefix=prefix)
    with storage.transaction() as uow:
        ensure_schema(uow.connection, storage.tables, target=1)
        for id, amount, code in ROWS:
            uow.opportunities.add(
                Opportunity(
                    id=id,
                    owner="ann",
                    amount=Money.of(amount, code),
                    stage="quotation",
                    expected_close=date(2026, 12, 1),
                )
            )
        uow.connection.execute(text(f"ALTER TABLE {prefix}opportunities DROP COLUMN minor_unit"))
    storage.close()


def _places(uow: Any, prefix: str) -> dict[str, int]:
    query = text(f"SELECT id, minor_unit FROM {prefix}opportunities")
    return {id: int(places) for id, places in uow.connection.execute(query).all()}


def _check_upgraded(storage: SqlStorage, prefix: str) -> None:
    """The schema is current, honest and complete: the minor units are filled in, the new tables
    work, no step is left half-done, and the stored forecast is the pure one."""
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == SCHEMA_VERSION
        step = uow.connection.execute(
            text(f"SELECT value FROM {prefix}meta WHERE {_key(storage)} = 'schema_step'")
        ).scalar()
        assert step is None
        assert _places(uow, prefix) == {"op-1": 2, "op-2": 0, "op-3": 3}
        assert uow.opportunities.get("op-1").amount == Money.of("12.30", "CNY")
        assert uow.quotes.count() == 0  # the new tables work
        stored = list(uow.opportunities.query())
        for currency in ("JPY", "KWD"):
            ours = uow.opportunities.forecast(PLAN, as_of=date(2026, 11, 26), currency=currency)
            pure = forecast(
                [o for o in stored if o.amount.currency == currency],
                PLAN,
                as_of=date(2026, 11, 26),
                currency=currency,
            )
            assert (
                ours.to_records()
                == forecast(stored, PLAN, as_of=date(2026, 11, 26), currency=currency).to_records()
            )
            assert pure.total in (Money.of(841, "JPY"), Money.of("0.865", "KWD"))


def _key(storage: SqlStorage) -> str:
    """The meta table's ``key`` column, quoted as the server wants a reserved word."""
    return "`key`" if storage.dialect in ("mysql", "mariadb") else '"key"'


PLAN = StagePlan.default()


def _broken(conn: object, tables: object) -> None:
    raise RuntimeError("disk full half-way through the upgrade")


@pytest.mark.parametrize("server", SERVERS)
def test_an_older_schema_is_upgraded_and_a_failed_upgrade_never_lies_about_its_version(
    server: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _server_url(server, tmp_path, request)
    prefix = _prefix()
    _version_one(url, prefix)
    monkeypatch.setitem(UPGRADES, 2, _broken)
    with pytest.raises(StorageError):
        SqlStorage(url, table_prefix=prefix)
    storage = SqlStorage(url, create=False, table_prefix=prefix)
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == 1  # never more than is there
        quotes = storage.tables.documents["quotes"].name
        created = quotes in inspect(uow.connection).get_table_names()
    # SQLite and PostgreSQL roll the whole upgrade back; MariaDB keeps what the step made.
    assert created is (server == "mysql")
    monkeypatch.undo()  # the real upgrade step again
    assert storage.upgrade() == 1  # upgraded from version 1
    _check_upgraded(storage, prefix)
    assert storage.upgrade() == SCHEMA_VERSION  # opening again changes nothing
    storage.destroy()
    storage.close()


def _version_two(url: str, prefix: str) -> None:
    """A database as a version-2 salesflow left it: stage changes without reason and note, and an
    opportunity that moved once."""
    storage = SqlStorage(url, create=False, table_prefix=prefix)
    with storage.transaction() as uow:
        ensure_schema(uow.connection, storage.tables, target=2)
        moved = Opportunity(
            id="op-1", owner="ann", amount=Money.of("10", "CNY"), stage="needs_analysis"
        ).move_to("quotation", datetime(2026, 10, 1, tzinfo=UTC))
        uow.opportunities.add(moved)
        for column in ("reason", "note"):
            uow.connection.execute(text(f"ALTER TABLE {prefix}stage_changes DROP COLUMN {column}"))
    storage.close()


@pytest.mark.parametrize("server", SERVERS)
def test_a_version_two_schema_gains_the_lost_reason_columns(
    server: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _server_url(server, tmp_path, request)
    prefix = _prefix()
    _version_two(url, prefix)
    monkeypatch.setitem(UPGRADES, 3, _broken)
    with pytest.raises(StorageError):
        SqlStorage(url, table_prefix=prefix)
    monkeypatch.undo()
    storage = SqlStorage(url, create=False, table_prefix=prefix)
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == 2
    assert storage.upgrade() == 2  # upgraded from version 2
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == SCHEMA_VERSION
        columns = {c["name"] for c in inspect(uow.connection).get_columns(f"{prefix}stage_changes")}
        assert {"reason", "note"} <= columns
        stored = uow.opportunities.get("op-1")
        assert [(c.to_stage, c.reason, c.note) for c in stored.history] == [
            ("quotation", None, None)
        ]
        lost = stored.move_to(
            "lost",
            datetime(2026, 11, 1, tzinfo=UTC),
            plan=PLAN,
            reason="no_budget",
            note="frozen",
        )
        uow.opportunities.save(lost)
    with storage.transaction() as uow:
        assert uow.opportunities.get("op-1").history[-1] == lost.history[-1]
    assert storage.upgrade() == SCHEMA_VERSION  # opening again changes nothing
    storage.destroy()
    storage.close()


def test_an_upgrade_that_failed_midway_on_mariadb_is_completed_by_the_next_open(
    mysql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The reported case: MariaDB commits each CREATE/ALTER TABLE at once, and the data fill of
    # version 2 fails (here a trigger refuses it) after the document tables and the minor_unit
    # column exist.
    prefix = _prefix()
    _version_one(mysql_url, prefix)
    trigger = f"{prefix}refuse"
    _sql(
        mysql_url,
        f"CREATE TRIGGER {trigger} BEFORE UPDATE ON {prefix}opportunities FOR EACH ROW "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'disk full half-way'",
    )
    with pytest.raises(StorageError) as failed:
        SqlStorage(mysql_url, table_prefix=prefix)
    assert "version 2" in str(failed.value)
    storage = SqlStorage(mysql_url, create=False, table_prefix=prefix)
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == 1  # honest: step 2 unfinished
        names = set(inspect(uow.connection).get_table_names())
        step_two = {t.name for t in storage.tables.metadata.sorted_tables if t.info["since"] <= 2}
        assert step_two <= names  # kept
        assert set(_places(uow, prefix).values()) == {2}  # the column is there, not filled
    _sql(mysql_url, f"DROP TRIGGER {trigger}")  # the cause is fixed
    with caplog.at_level(logging.WARNING, logger="salesflow.storage.sql"):
        assert storage.upgrade() == 1
    assert "completing the schema step to version 2" in caplog.text
    _check_upgraded(storage, prefix)
    storage.destroy()
    storage.close()


def test_a_failed_first_creation_on_mariadb_does_not_poison_later_opens(
    mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = _prefix()
    monkeypatch.setitem(UPGRADES, 3, _broken)
    with pytest.raises(StorageError):
        SqlStorage(mysql_url, table_prefix=prefix)
    monkeypatch.undo()
    storage = SqlStorage(mysql_url, table_prefix=prefix)  # resumes the creation
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == SCHEMA_VERSION
        uow.opportunities.add(
            Opportunity(id="op-1", owner="ann", amount=Money.of(1, "CNY"), stage="won")
        )
        assert uow.quotes.count() == 0
    storage.destroy()
    storage.close()
    # What an older salesflow left when its first creation failed: a meta table with no version.
    prefix = _prefix()
    half = SqlStorage(mysql_url, create=False, table_prefix=prefix)
    with half.transaction() as uow:
        half.tables.meta.create(uow.connection)
        half.tables.opportunities.create(uow.connection)
    half.close()
    storage = SqlStorage(mysql_url, table_prefix=prefix)
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == SCHEMA_VERSION
        assert uow.opportunities.count() == 0
    storage.destroy()
    storage.close()


def test_mariadb_schema_changes_never_commit_the_callers_transaction(mysql_url: str) -> None:
    prefix = _prefix()
    engine = SqlStorage(mysql_url, create=False)._engine
    with engine.connect() as conn, conn.begin():
        with pytest.raises(StorageError):
            SqlStorage(conn, table_prefix=prefix)
        assert f"{prefix}meta" not in inspect(conn).get_table_names()
    SqlStorage(engine, table_prefix=prefix)  # on the Engine: created
    with engine.connect() as conn, conn.begin():
        storage = SqlStorage(conn, table_prefix=prefix)  # current: nothing to change
        with storage.transaction() as uow:
            uow.opportunities.add(
                Opportunity(id="op-1", owner="ann", amount=Money.of(1, "CNY"), stage="won")
            )
    _drop_all(mysql_url, prefix)
    engine.dispose()


def test_two_processes_creating_one_mariadb_schema_at_once_both_succeed(mysql_url: str) -> None:
    prefix = _prefix()
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def open_it() -> None:
        start.wait()
        try:
            SqlStorage(mysql_url, table_prefix=prefix).close()
            outcomes.append("opened")
        except Exception as error:
            outcomes.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert outcomes == ["opened", "opened"]
    _drop_all(mysql_url, prefix)


@pytest.mark.parametrize("server", SERVERS)
def test_a_host_table_named_like_salesflows_is_refused_not_taken_over(
    server: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = _server_url(server, tmp_path, request)
    fresh, older = _prefix(), _prefix()
    _version_one(url, older)
    for prefix in (fresh, older):
        _sql(
            url,
            f"CREATE TABLE {prefix}quotes (quote_no INTEGER PRIMARY KEY, customer VARCHAR(80))",
            f"INSERT INTO {prefix}quotes VALUES (1, 'ACME')",
        )
        with pytest.raises(StorageError) as refused:
            SqlStorage(url, table_prefix=prefix)
        assert f"{prefix}quotes" in str(refused.value)
        assert "quote_no" in str(refused.value)
        assert "table_prefix=" in str(refused.value)
        assert _sql(url, f"SELECT quote_no, customer FROM {prefix}quotes") == [(1, "ACME")]
    storage = SqlStorage(url, create=False, table_prefix=older)
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == 1  # nothing was changed
    storage.close()
    storage = SqlStorage(url, create=False, table_prefix=fresh)
    with storage.transaction() as uow:
        assert inspect(uow.connection).get_table_names().count(f"{fresh}meta") == 0
    storage.close()
    _drop_all(url, fresh, f"{fresh}quotes")
    _drop_all(url, older, f"{older}quotes")


def test_a_mariadb_database_in_utf8mb3_stores_emoji(mysql_url: str) -> None:
    import pymysql

    server = make_url(mysql_url)
    name = f"{server.database}_mb3"
    admin = pymysql.connect(host=server.host, port=server.port or 3306, user="root", password="")
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci"
            )
        desk = salesflow.open(
            server.set(database=name).render_as_string(hide_password=False),
            load_entrypoints=False,
        )
        launch = Opportunity(
            id="op-🚀",
            owner="ann",
            name="Launch 🚀 华为 ERP",
            amount=Money.of(1, "CNY"),
            stage="won",
        )
        desk.add_opportunity(ADMIN, launch)
        assert desk.opportunity("op-🚀").name == "Launch 🚀 华为 ERP"
        assert [e.subject_id for e in desk.events()] == ["op-🚀"]
        desk.storage.close()
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def test_an_older_mariadb_schema_is_converted_to_exact_comparisons(mysql_url: str) -> None:
    prefix = _prefix()
    old = SqlStorage(mysql_url, create=False, table_prefix=prefix)
    for table in old.tables.metadata.tables.values():  # as salesflow <= 0.x made them
        for option in ("mysql_charset", "mysql_collate", "mariadb_charset", "mariadb_collate"):
            del table.dialect_kwargs[option]
    with old.transaction() as uow:
        old.tables.metadata.create_all(uow.connection)
        uow.connection.execute(old.tables.meta.insert().values(key="schema_version", value="3"))
        moved = Opportunity(
            id="O-1", owner="mia", amount=Money.of(1, "JPY"), stage="quotation"
        ).move_to("lost", datetime(2026, 11, 1, tzinfo=UTC), plan=PLAN, reason="price")
        uow.opportunities.add(moved)
    old.close()
    collations = (
        "SELECT DISTINCT COLLATION_NAME FROM information_schema.COLUMNS WHERE "
        f"TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '{prefix}%' AND COLLATION_NAME IS NOT NULL"
    )
    assert [c for (c,) in _sql(mysql_url, collations)] != ["utf8mb4_nopad_bin"]
    storage = SqlStorage(mysql_url, table_prefix=prefix)
    assert [c for (c,) in _sql(mysql_url, collations)] == ["utf8mb4_nopad_bin"]
    with storage.transaction() as uow:
        assert stored_version(uow.connection, storage.tables) == SCHEMA_VERSION
        (key,) = inspect(uow.connection).get_foreign_keys(f"{prefix}stage_changes")
        assert key["referred_table"] == f"{prefix}opportunities"
        assert uow.opportunities.get("O-1").history == moved.history
        assert uow.opportunities.find("o-1") is None
        assert uow.opportunities.find("O-1 ") is None
        assert list(uow.opportunities.query(owner="MIA")) == []
        uow.opportunities.add(attrs.evolve(moved, id="o-1", owner="MIA", history=(), version=0))
    with storage.transaction() as uow:
        assert [o.owner for o in uow.opportunities.query(owner="MIA")] == ["MIA"]
        uow.opportunities.delete("O-1", version=1)  # the foreign key still cascades
    storage.destroy()
    storage.close()


def test_ids_keys_and_filters_compare_exactly_on_every_backend(open_desk: Any) -> None:
    desk = open_desk()

    def add(id: str, owner: str) -> None:
        desk.add_opportunity(
            ADMIN, Opportunity(id=id, owner=owner, amount=Money.of(1, "CNY"), stage="quotation")
        )

    add("O-1", "mia")
    for other in ("o-1", "O-1 "):
        with pytest.raises(NotFoundError):
            desk.opportunity(other)
    assert desk.opportunities(owner="MIA") == []
    assert desk.opportunities(owner="mia ") == []
    add("o-1", "MIA")  # another id: no ConcurrencyError
    add("O-1 ", "mia ")  # a trailing space makes another id too
    assert sorted(o.id for o in desk.opportunities()) == ["O-1", "O-1 ", "o-1"]
    assert [o.id for o in desk.opportunities(owner="MIA")] == ["o-1"]
    assert [o.id for o in desk.opportunities(owner="mia")] == ["O-1"]
    assert desk.opportunity("O-1 ").owner == "mia "
    with desk.storage.transaction() as uow:  # document keys and indexed fields too
        uow.contacts.add(Contact(id="K-1", name="Wang", owner="mia"))
        uow.contacts.add(Contact(id="k-1", name="Wang", owner="MIA"))
    with desk.storage.transaction() as uow:
        assert uow.contacts.find("K-1 ") is None
        assert uow.contacts.get("k-1").owner == "MIA"
        assert [c.id for c in uow.contacts.query(owner="mia")] == ["K-1"]
