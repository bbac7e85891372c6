"""salesflow inside the host application's database and transactions (issue 12).

On a caller's connection or ORM session salesflow joins the caller's transaction (a savepoint per
command) and never begins, commits, rolls back or reconfigures it; its events wait for the
caller's commit. A caller's engine is never configured: its own transactions stay as they were.
SQLite lock waits are bounded by the connections' ``timeout=``: a test that would block fails
with "database is locked" instead of hanging.
"""

from __future__ import annotations

import runpy
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, scoped_session, sessionmaker

import salesflow
from salesflow import Actor, Money, Opportunity
from salesflow.adapters.sql.storage import SqlStorage
from salesflow.errors import ConcurrencyError, StorageError, ValidationError
from salesflow.ports import Storage
from salesflow.testing.storage import ManualClock, Reopen, StorageContract

ROOT = Path(__file__).resolve().parents[2]
ADMIN = Actor("root", roles={"admin"})
LOCK_WAIT = 2  # seconds a SQLite connection waits for a lock before "database is locked"


def opp(n: int) -> Opportunity:
    return Opportunity(
        id=f"op-{n}", owner="ann", amount=Money.of("100", "CNY"), stage="initial_contact"
    )


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @salesflow.hookimpl
    def salesflow_handle_event(self, event: salesflow.Event) -> None:
        self.seen.append(event.subject_id)


def plugins(recorder: Recorder | None = None) -> Any:
    return salesflow.get_plugin_manager(
        load_entrypoints=False, plugins=[recorder] if recorder else []
    )


def sqlite_engine(path: Path) -> Engine:
    """A host's engine as a new user makes it: pysqlite defaults, a bounded lock wait."""
    return create_engine(f"sqlite:///{path}", connect_args={"timeout": LOCK_WAIT})


@pytest.fixture(params=["sqlite", "postgres"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The host's engine with a ``deal`` table of its own and salesflow's schema, on SQLite and
    on PostgreSQL (a schema of its own in the run's database, dropped afterwards)."""
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "crm.db")
    else:
        schema = f"h{uuid.uuid4().hex[:8]}"
        url = request.getfixturevalue("postgres_url")
        admin = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with admin.begin() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        engine = create_engine(
            url.replace("postgresql://", "postgresql+psycopg://"),
            connect_args={"options": f"-csearch_path={schema}"},
        )
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE deal (id VARCHAR(20) PRIMARY KEY)"))
    SqlStorage(engine).close()
    yield engine
    engine.dispose()


def stored(engine: Engine) -> tuple[list[str], list[str]]:
    """The deals and opportunities committed in ``engine``'s database (read afresh)."""
    with engine.connect() as conn:
        deals = [row[0] for row in conn.execute(text("SELECT id FROM deal ORDER BY id"))]
    with Session(engine) as session:
        desk = salesflow.SalesDesk(SqlStorage(session), plugin_manager=plugins())
        opportunities = [o.id for o in desk.opportunities()]
    return deals, opportunities


# -- the reported case: an ORM session's rollback ------------------------------------------------


def test_an_orm_session_rollback_keeps_neither_row(host: Engine) -> None:
    recorder = Recorder()
    session = Session(host)
    session.execute(text("INSERT INTO deal (id) VALUES ('D-1')"))
    desk = salesflow.SalesDesk(SqlStorage(session.connection()), plugin_manager=plugins(recorder))
    desk.add_opportunity(ADMIN, opp(1))
    session.rollback()
    session.close()
    assert stored(host) == ([], [])
    assert recorder.seen == []


def test_an_orm_session_commit_keeps_both_and_then_hands_out_the_events(host: Engine) -> None:
    seen_committed: list[tuple[str, list[str]]] = []

    class AfterCommit:
        @salesflow.hookimpl
        def salesflow_handle_event(self, event: salesflow.Event) -> None:
            # Runs after the database committed: another connection already sees the row.
            seen_committed.append((event.subject_id, stored(host)[1]))

    with Session(host) as session:
        session.execute(text("INSERT INTO deal (id) VALUES ('D-2')"))
        desk = salesflow.open(session, plugins=[AfterCommit()], load_entrypoints=False)
        desk.add_opportunity(ADMIN, opp(2))
        assert seen_committed == []
        session.commit()
    assert seen_committed == [("op-2", ["op-2"])]
    assert stored(host) == (["D-2"], ["op-2"])


def test_a_failed_command_undoes_only_itself(host: Engine) -> None:
    recorder = Recorder()
    with Session(host) as session:
        desk = salesflow.SalesDesk(SqlStorage(session), plugin_manager=plugins(recorder))
        session.execute(text("INSERT INTO deal (id) VALUES ('D-3')"))
        desk.add_opportunity(ADMIN, opp(3))
        with pytest.raises(ConcurrencyError):
            desk.add_opportunity(ADMIN, opp(3))  # a duplicate: this command alone rolls back
        desk.add_opportunity(ADMIN, opp(4))  # the transaction is still usable (PostgreSQL too)
        session.commit()
    assert stored(host) == (["D-3"], ["op-3", "op-4"])
    assert recorder.seen == ["op-3", "op-4"]


def test_a_rolled_back_savepoint_of_the_callers_drops_the_events_inside_it(host: Engine) -> None:
    recorder = Recorder()
    with Session(host) as session:
        desk = salesflow.SalesDesk(SqlStorage(session), plugin_manager=plugins(recorder))
        desk.add_opportunity(ADMIN, opp(5))
        nested = session.begin_nested()
        desk.add_opportunity(ADMIN, opp(6))
        nested.rollback()
        with session.begin_nested():
            desk.add_opportunity(ADMIN, opp(7))  # released: kept with the transaction
        session.commit()
    assert stored(host)[1] == ["op-5", "op-7"]
    assert recorder.seen == ["op-5", "op-7"]


def test_a_connection_in_a_transaction_is_joined_and_left_to_the_caller(host: Engine) -> None:
    recorder = Recorder()
    with host.connect() as conn:
        level = conn.get_isolation_level()
        desk = salesflow.SalesDesk(SqlStorage(conn), plugin_manager=plugins(recorder))
        with conn.begin() as outer:
            conn.execute(text("INSERT INTO deal (id) VALUES ('D-8')"))
            desk.add_opportunity(ADMIN, opp(8))
            assert conn.in_transaction() and outer.is_active  # nothing committed or ended
            assert recorder.seen == []
            outer.rollback()
        assert recorder.seen == []
        assert conn.get_isolation_level() == level
        if host.dialect.name == "sqlite":
            assert conn.connection.driver_connection.isolation_level == ""  # type: ignore[union-attr]
        with conn.begin():
            conn.execute(text("INSERT INTO deal (id) VALUES ('D-9')"))
            desk.add_opportunity(ADMIN, opp(9))
        assert recorder.seen == ["op-9"]
    assert stored(host) == (["D-9"], ["op-9"])


def test_a_scoped_session_joins_the_current_sessions_transaction(host: Engine) -> None:
    recorder = Recorder()
    registry = scoped_session(sessionmaker(host))
    desk = salesflow.SalesDesk(SqlStorage(registry, create=False), plugin_manager=plugins(recorder))
    for n, keep in ((10, False), (11, True)):  # two "requests"
        registry.execute(text(f"INSERT INTO deal (id) VALUES ('D-{n}')"))
        desk.add_opportunity(ADMIN, opp(n))
        if keep:
            registry.commit()
        else:
            registry.rollback()
        registry.remove()
    assert stored(host) == (["D-11"], ["op-11"])
    assert recorder.seen == ["op-11"]


# -- salesflow.open() takes what SqlStorage takes ------------------------------------------------


def test_open_takes_an_engine_a_connection_and_a_session(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "crm.db")
    with salesflow.open(engine, load_entrypoints=False) as desk:
        desk.add_opportunity(ADMIN, opp(1))
    with engine.connect() as conn:
        desk = salesflow.open(conn, load_entrypoints=False)
        desk.add_opportunity(ADMIN, opp(2))  # no transaction open: one of salesflow's own
        assert not conn.in_transaction()
    with Session(engine) as session:
        desk = salesflow.open(session, load_entrypoints=False)
        desk.add_opportunity(ADMIN, opp(3))
        session.commit()
    storage = salesflow.open_storage(engine)
    assert isinstance(storage, SqlStorage) and storage.url == f"sqlite:///{tmp_path / 'crm.db'}"
    assert [o.id for o in salesflow.SalesDesk(storage).opportunities()] == ["op-1", "op-2", "op-3"]
    with pytest.raises(ValidationError, match="SQLAlchemy Engine"):
        salesflow.open(object(), load_entrypoints=False)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="engine_options"):
        SqlStorage(engine, echo=True)
    engine.dispose()


# -- SQLite: the host's transactions keep their own locking --------------------------------------


def test_wrapping_an_engine_changes_none_of_its_connections(tmp_path: Path) -> None:
    """The reported case: a read-only ORM session left open held BEGIN IMMEDIATE (salesflow had
    hooked every transaction of the engine) and blocked the desk until "database is locked"."""
    engine = sqlite_engine(tmp_path / "crm.db")
    with engine.connect() as conn:
        before = conn.connection.driver_connection.isolation_level  # type: ignore[union-attr]
    salesflow.open(engine, load_entrypoints=False).add_opportunity(ADMIN, opp(1))
    statements = traced(engine)
    with Session(engine) as reader:  # a read-only ORM session, left open
        reader.execute(text("SELECT count(*) FROM salesflow_opportunities")).scalar()
        driver = reader.connection().connection.driver_connection
        assert driver.isolation_level == before  # type: ignore[union-attr]
        assert not [s for s in statements if s.startswith("BEGIN")]
        # It holds no lock: the desk writes while it is open.
        salesflow.open(engine, load_entrypoints=False).add_opportunity(ADMIN, opp(2))
    engine.dispose()


def test_a_hosts_open_read_transaction_and_a_desk_write_do_not_wait_for_each_other(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crm.db"
    salesflow.open(f"sqlite:///{path}", load_entrypoints=False).close()  # WAL, as salesflow sets
    engine = sqlite_engine(path)
    desk = salesflow.open(engine, load_entrypoints=False)
    host = sqlite3.connect(path, timeout=LOCK_WAIT, isolation_level=None)
    try:
        host.execute("BEGIN")  # a read transaction, held open
        assert host.execute("SELECT count(*) FROM salesflow_opportunities").fetchone() == (0,)
        desk.add_opportunity(ADMIN, opp(1))  # not blocked by the reader
        assert desk.opportunity("op-1").version == 1
        # The reader keeps its snapshot, and was not blocked either.
        assert host.execute("SELECT count(*) FROM salesflow_opportunities").fetchone() == (0,)
        host.execute("COMMIT")
        assert host.execute("SELECT count(*) FROM salesflow_opportunities").fetchone() == (1,)
    finally:
        host.close()
        engine.dispose()


def test_a_desk_read_does_not_wait_for_a_hosts_write_transaction(tmp_path: Path) -> None:
    path = tmp_path / "crm.db"
    salesflow.open(f"sqlite:///{path}", load_entrypoints=False).close()
    engine = sqlite_engine(path)
    desk = salesflow.open(engine, load_entrypoints=False)
    desk.add_opportunity(ADMIN, opp(1))
    with Session(engine) as writer:  # the host writes and has not committed yet
        writer.execute(text("UPDATE salesflow_opportunities SET name = 'x'"))
        assert [o.name for o in desk.opportunities()] == [None]  # reads, without a lock
        assert desk.opportunity("op-1").name is None
        writer.rollback()
    engine.dispose()


def test_a_desk_write_in_the_hosts_transaction_does_not_block_other_readers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crm.db"
    salesflow.open(f"sqlite:///{path}", load_entrypoints=False).close()
    engine = sqlite_engine(path)
    with Session(engine) as session:
        desk = salesflow.open(session, create=False, load_entrypoints=False)
        desk.add_opportunity(ADMIN, opp(1))  # holds the write lock until the session ends
        other = salesflow.open(engine, create=False, load_entrypoints=False)
        assert other.opportunities() == []  # another reader: not blocked, sees nothing uncommitted
        session.commit()
    assert [o.id for o in other.opportunities()] == ["op-1"]
    engine.dispose()


def traced(engine: Engine) -> list[str]:
    """Every statement SQLite runs on ``engine``'s connections from now on (the driver's trace,
    which also shows the BEGINs sent straight to the driver)."""
    statements: list[str] = []
    engine.dispose()  # new connections, each traced from its start
    event.listen(
        engine, "connect", lambda dbapi, _record: dbapi.set_trace_callback(statements.append)
    )
    return statements


def test_salesflow_takes_the_write_lock_only_when_it_writes(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "crm.db")
    desk = salesflow.open(engine, load_entrypoints=False)
    desk.add_opportunity(ADMIN, opp(1))
    statements = traced(engine)
    desk.opportunity("op-1")
    desk.opportunities()
    assert not [s for s in statements if s.startswith("BEGIN")]  # reads take no lock
    desk.move_opportunity(ADMIN, "op-1", "quotation")
    begins = [i for i, s in enumerate(statements) if s.startswith("BEGIN")]
    assert [statements[i] for i in begins] == ["BEGIN IMMEDIATE"]  # one, at the first write
    assert statements[begins[0] + 1].startswith("UPDATE")
    engine.dispose()


QUEUE_CHILD = """
import sys
from sqlalchemy import create_engine
import salesflow
from sqlalchemy import event
url, name, recipe = sys.argv[1], sys.argv[2], sys.argv[3] == "recipe"
engine = create_engine(url, connect_args={"timeout": 60})  # a caller's engine
if recipe:  # SQLAlchemy's pysqlite recipe: the engine sends its own (deferred) BEGIN
    event.listen(engine, "connect", lambda dbapi, _r: setattr(dbapi, "isolation_level", None))
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
desk = salesflow.open(engine, create=False, load_entrypoints=False)
root = salesflow.Actor("root", roles={"admin"})
print("ready", flush=True)
sys.stdin.readline()
for n in range(60):
    o = salesflow.Opportunity(id=f"{name}-{n}", owner="ann", amount=salesflow.Money.of("1", "CNY"),
                              stage="initial_contact")
    desk.add_opportunity(root, o)
    desk.move_opportunity(root, o.id, "quotation")
print(len(desk.opportunities()))
"""


@pytest.mark.parametrize("engine_setup", ["defaults", "recipe"])
def test_writers_on_a_callers_engine_queue_instead_of_failing(
    tmp_path: Path, race: Any, engine_setup: str
) -> None:
    """Read-then-write commands of two processes on a caller's engine: each takes the write lock
    with BEGIN IMMEDIATE at its first write, so one waits for the other (a deferred transaction
    that has read fails at once with "database is locked" instead), whether the engine has the
    driver's defaults or sends a BEGIN of its own."""
    path = tmp_path / "crm.db"
    salesflow.open(f"sqlite:///{path}", load_entrypoints=False).close()
    url = f"sqlite:///{path}"
    outcomes = race(QUEUE_CHILD, [[url, "a", engine_setup], [url, "b", engine_setup]], "ready")
    assert max(int(n) for n in outcomes) == 120  # the last to finish sees both
    with salesflow.open(url, load_entrypoints=False) as desk:
        assert [o.stage for o in desk.opportunities()] == ["quotation"] * 120


class TestSqliteOnACallersEngine(StorageContract):
    """The conformance kit on a caller's SQLite engine (pysqlite's defaults, SQLite's rollback
    journal, nothing configured by salesflow): its own transactions there read without the write
    lock and take it at their first write."""

    @pytest.fixture
    def engines(self, tmp_path: Path) -> Iterator[list[Engine]]:
        made: list[Engine] = []
        yield made
        for engine in made:
            engine.dispose()

    @pytest.fixture
    def storage(self, clock: ManualClock, tmp_path: Path, engines: list[Engine]) -> Storage:
        engines.append(sqlite_engine(tmp_path / "host.db"))
        return SqlStorage(engines[-1], clock=clock)

    @pytest.fixture
    def reopen(self, clock: ManualClock, tmp_path: Path, engines: list[Engine]) -> Reopen:
        def reopen(_storage: Storage) -> Storage:
            engines.append(sqlite_engine(tmp_path / "host.db"))
            return SqlStorage(engines[-1], clock=clock)

        return reopen


# -- MySQL/MariaDB: a schema change would commit the caller's transaction -------------------------


def test_mysql_refuses_to_create_the_schema_inside_the_callers_transaction(mysql_url: str) -> None:
    engine = create_engine(mysql_url.replace("mysql://", "mysql+pymysql://"))
    prefix = f"e{uuid.uuid4().hex[:8]}_"
    table = f"{prefix}deal"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (id VARCHAR(20) PRIMARY KEY)"))
    try:
        with engine.connect() as conn, conn.begin() as outer:
            conn.execute(text(f"INSERT INTO {table} (id) VALUES ('D-1')"))
            with pytest.raises(StorageError, match="would commit your open transaction"):
                SqlStorage(conn, table_prefix=prefix)
            outer.rollback()
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0
        storage = SqlStorage(engine, table_prefix=prefix)  # at start-up, then joined freely
        with engine.connect() as conn, conn.begin() as outer:
            conn.execute(text(f"INSERT INTO {table} (id) VALUES ('D-2')"))
            desk = salesflow.SalesDesk(
                SqlStorage(conn, table_prefix=prefix), plugin_manager=plugins()
            )
            desk.add_opportunity(ADMIN, opp(2))
            outer.rollback()
        assert salesflow.SalesDesk(storage, plugin_manager=plugins()).opportunities() == []
        storage.destroy()
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


# -- the recipes of the storage guide -------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def recipe_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm.db'}"
        return
    import psycopg

    base = request.getfixturevalue("postgres_url")
    schema = f"x{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}?options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_the_orm_session_recipe(recipe_url: str) -> None:
    example = runpy.run_path(str(ROOT / "examples" / "embedding" / "orm_session.py"))
    assert example["main"](recipe_url) == {
        "deals": ["D-2"],
        "opportunities": ["D-2"],
        "events": ["opportunity_created D-2"],
    }


def test_the_request_scope_recipe(recipe_url: str) -> None:
    example = runpy.run_path(str(ROOT / "examples" / "embedding" / "request_scope.py"))
    assert example["main"](recipe_url) == {
        "opportunities": ["OPP-1"],
        "notes": 1,
        "events": ["opportunity_created OPP-1"],
    }
