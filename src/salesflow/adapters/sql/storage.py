"""The SQL storage: one adapter on SQLAlchemy Core for SQLite, PostgreSQL and MySQL/MariaDB.

* **SQLite** (``sqlite:///path.db``, the embedded default): WAL journal, foreign keys on, and
  write transactions that start with ``BEGIN IMMEDIATE`` so that two writers queue instead of
  failing half-way. Amounts are exact decimal text, and forecast sums run in SQL through two small
  exact functions registered on each connection (SQLite has no decimal arithmetic of its own).
* **PostgreSQL** (``postgresql://``, psycopg 3, extra ``postgres``): ``NUMERIC`` amounts, bulk saves
  through ``COPY``.
* **MySQL / MariaDB** (``mysql://``, PyMySQL, extra ``mysql``): ``DECIMAL(38, 10)`` amounts.

The storage also wraps the caller's SQLAlchemy ``Engine``, ``Connection`` or ORM ``Session``, so
that an embedding CRM shares its own database and transactions: inside the caller's transaction a
unit of work is a savepoint, its commit callbacks wait for the caller's commit, and nothing of the
caller's (transaction, isolation, engine hooks) is changed; see :meth:`SqlStorage.transaction`.

Every read of an opportunity is one statement (the row joined to its stage history), so it sees one
snapshot on every database at every isolation level.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Numeric,
    Transaction,
    and_,
    bindparam,
    case,
    cast,
    create_engine,
    event,
    exc,
    exists,
    extract,
    func,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, scoped_session

from salesflow.adapters.sql.documents import SqlDocuments
from salesflow.adapters.sql.schema import (
    SCHEMA_VERSION,
    Tables,
    build_tables,
    ddl_is_transactional,
    ensure_schema,
    ensure_schema_stepwise,
    stored_version,
)
from salesflow.adapters.sql.types import sqlite_datetime
from salesflow.analytics.forecast import Forecast, forecast, forecast_from_totals
from salesflow.domain.events import Event
from salesflow.domain.money import Money, RateSource, currency_exponent, currency_precision
from salesflow.domain.numbers import EXACT, ZERO
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.stages import StagePlan
from salesflow.errors import (
    ConcurrencyError,
    InvalidTypeError,
    MissingDependencyError,
    NotFoundError,
    SalesflowError,
    StorageError,
    ValidationError,
)
from salesflow.ports import FORECAST_PUSHDOWN, WINDOW_PUSHDOWN
from salesflow.storage.invariants import check_forward, check_history, check_new
from salesflow.storage.kinds import kind_of
from salesflow.storage.queries import opportunity_filter

__all__ = [
    "PUSHDOWN_ATTRIBUTES",
    "SqlEvents",
    "SqlOpportunities",
    "SqlStorage",
    "SqlUnitOfWork",
    "is_sql_target",
]

Clock = Callable[[], datetime]

_COLUMNS = (
    "id",
    "version",
    "owner",
    "team",
    "name",
    "account",
    "industry",
    "region",
    "amount",
    "currency",
    "minor_unit",
    "stage",
    "expected_close",
    "created",
    "history_length",
    "updated_at",
)
"""The opportunity table's columns, in the order rows are built (see SqlOpportunities._row)."""

PUSHDOWN_ATTRIBUTES = frozenset({"owner", "team", "industry", "region", "account", "stage", "name"})
"""Grouping attributes the database can forecast by; other groupings compute in Python."""

_DRIVERS = {
    "postgresql": ("postgresql+psycopg", "psycopg", "postgres"),
    "postgres": ("postgresql+psycopg", "psycopg", "postgres"),
    "mysql": ("mysql+pymysql", "pymysql", "mysql"),
    "mariadb": ("mariadb+pymysql", "pymysql", "mysql"),
}
_PAGE = 2_000
_FACTOR_QUANTUM = Decimal("1e-10")
"""The scale of the probability factors the database forecast multiplies by (NUMERIC(20, 10))."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


# -- SQLite: exact decimal arithmetic as SQL functions ------------------------------------------------


def _sf_weighted(amount: str, factor: str | None, currency: str) -> str | None:
    if factor is None:
        return None
    quantum = currency_exponent(currency)
    weighted = EXACT.multiply(Decimal(amount), Decimal(factor))
    return str(weighted.quantize(quantum, ROUND_HALF_UP, EXACT))


class _DecimalSum:
    """``sf_decimal_sum(text)``: the exact sum of decimal text, as text."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total = EXACT.add(self.total, Decimal(value))

    def finalize(self) -> str:
        return str(self.total)


_CONFIGURED: weakref.WeakSet[Engine] = weakref.WeakSet()
_FUNCTIONS = "salesflow_functions"
"""Marks (in the pool's record of a DB-API connection) a SQLite connection that has our functions."""
_LEGACY = getattr(sqlite3, "LEGACY_TRANSACTION_CONTROL", -1)
_BEGINS = {"": "BEGIN", "DEFERRED": "BEGIN DEFERRED", "IMMEDIATE": "BEGIN IMMEDIATE"}
_BEGINS["EXCLUSIVE"] = "BEGIN EXCLUSIVE"
_READS = ("SELECT", "PRAGMA", "EXPLAIN")


def _add_functions(dbapi_connection: Any) -> None:
    dbapi_connection.create_function("sf_weighted", 3, _sf_weighted, deterministic=True)
    dbapi_connection.create_aggregate("sf_decimal_sum", 1, _DecimalSum)


def _prepare_sqlite(dbapi_connection: Any, *, wal: bool) -> None:
    """Set up a new connection of salesflow's own engine (never one of the caller's)."""
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see "begin"):
    # otherwise a SAVEPOINT outside BEGIN starts a transaction that RELEASE commits. Safe here
    # only because the connection is new: on an open transaction this assignment commits it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    if wal:
        cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()
    _add_functions(dbapi_connection)


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    """Make transactions, savepoints and exact sums work on every connection of ``engine``, an
    engine salesflow made from a URL (a caller's engine is never configured: see
    :meth:`SqlStorage.transaction`). Every transaction begins ``IMMEDIATE``: it takes the write
    lock up front, so that two writers queue (``busy_timeout``) instead of one failing when both
    try to turn a read lock into a write lock."""
    if engine in _CONFIGURED:
        return
    _CONFIGURED.add(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        _prepare_sqlite(dbapi_connection, wal=wal)
        record.info[_FUNCTIONS] = True

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_driver(conn: Connection) -> Any:
    """The ``sqlite3`` connection under ``conn``, with salesflow's SQL functions registered (once
    per DB-API connection: adding functions changes nothing else on a caller's connection)."""
    info = conn.connection.info
    driver = conn.connection.driver_connection
    if _FUNCTIONS not in info:
        _add_functions(driver)
        info[_FUNCTIONS] = True
    return driver


def _sqlite_join(conn: Connection) -> None:
    """Make the caller's transaction on ``conn`` real in SQLite before a savepoint joins it.

    ``sqlite3`` in its default (legacy) mode sends ``BEGIN`` lazily, just before the first
    INSERT/UPDATE/DELETE, so a SQLAlchemy transaction that has only read has no SQLite
    transaction yet, and a SAVEPOINT there would start one that its RELEASE commits. Sending the
    very ``BEGIN`` the driver would send itself (its ``isolation_level``, read, never changed)
    opens the caller's transaction as the driver would: the caller's commit or rollback ends it.
    A connection in autocommit (``isolation_level = None`` without a ``BEGIN`` of the caller's,
    or ``autocommit=True``) has no transaction to join: each savepoint then commits on release.
    """
    driver = _sqlite_driver(conn)
    if driver.in_transaction or getattr(driver, "autocommit", _LEGACY) != _LEGACY:
        return
    level = driver.isolation_level
    begin = None if level is None else _BEGINS.get(level.upper())
    if begin is not None:
        conn.exec_driver_sql(begin)


_LOCKING: weakref.WeakKeyDictionary[Connection, bool] = weakref.WeakKeyDictionary()
"""Connections of a caller's SQLite engine in one of salesflow's own units of work, and whether
they still wait for their first write (see :func:`_lock_at_first_write`)."""


def _lock_at_first_write(conn: Connection) -> None:
    """For the unit of work starting on ``conn`` (until its entry in :data:`_LOCKING` turns
    ``False``): before the first statement that writes, ``BEGIN IMMEDIATE`` (waiting, up to the
    connection's timeout, for any other writer).

    So a unit of work of salesflow's own on a caller's engine reads without the write lock (never
    blocked by, and never blocking, a reader or a writer; with the driver's defaults each
    statement sees the last commit) and holds the write lock from its first write to its commit,
    so that concurrent writers queue instead of failing. Where the engine itself began the
    transaction (a ``begin`` hook of the caller's sending ``BEGIN``, or ``autocommit=False``),
    that deferred transaction has run only salesflow's reads: it is ended and ``BEGIN IMMEDIATE``
    takes its place (a deferred transaction that has read cannot wait for the write lock: it
    fails with "database is locked" as soon as another connection writes).
    """
    if conn not in _LOCKING:  # one listener per connection object, whatever its units of work
        event.listen(conn, "before_cursor_execute", _before_first_write)
    _LOCKING[conn] = True


def _before_first_write(conn: Connection, cursor: Any, statement: str, *_args: Any) -> None:
    if _LOCKING.get(conn) and not statement.lstrip()[:7].upper().startswith(_READS):
        _LOCKING[conn] = False
        if cursor.connection.in_transaction:
            cursor.execute("COMMIT")  # nothing written yet: this ends a read snapshot only
        cursor.execute("BEGIN IMMEDIATE")


def _engine_for(url: str, options: dict[str, Any]) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in _DRIVERS and parsed.drivername == backend:
        parsed = parsed.set(drivername=_DRIVERS[backend][0])
    if backend in _DRIVERS:
        module, extra = _DRIVERS[backend][1], _DRIVERS[backend][2]
        try:
            __import__(module)
        except ImportError as error:
            raise MissingDependencyError(module, extra, f"the {backend} backend") from error
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            options = {"poolclass": StaticPool, **options}
            options.setdefault("connect_args", {"check_same_thread": False})
        engine = create_engine(parsed, **options)
        _configure_sqlite(engine, wal=True)
        return engine
    if backend in ("mysql", "mariadb"):
        options.setdefault("pool_pre_ping", True)
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return create_engine(parsed, **options)


def is_sql_target(target: object) -> bool:
    """Whether ``target`` is an SQLAlchemy ``Engine``, ``Connection``, ORM ``Session`` or
    ``scoped_session``: what :class:`SqlStorage` (and :func:`salesflow.open`) take besides a URL."""
    if isinstance(target, Engine | Connection):
        return True
    if isinstance(target, str):
        return False
    from sqlalchemy.orm import Session, scoped_session

    return isinstance(target, Session | scoped_session)


def _session_engine(session: Any) -> Engine:
    try:
        bind = session.get_bind()
    except exc.UnboundExecutionError as error:
        raise ValidationError(
            "target", session, "a Session bound to an engine (sessionmaker(engine))"
        ) from error
    return bind if isinstance(bind, Engine) else bind.engine


def _driver_errors(action: str) -> Any:
    """Wrap driver errors in StorageError (the original chained)."""

    @contextmanager
    def wrapper() -> Iterator[None]:
        try:
            yield
        except exc.SQLAlchemyError as error:
            raise StorageError(f"{action} failed: {error.__class__.__name__}: {error}") from error

    return wrapper()


def _canonical(amount: Decimal, currency: str, fixed_scale: bool) -> Decimal:
    """Drop the padding zeros of a fixed-scale DECIMAL column, keeping the currency's places."""
    if not fixed_scale:
        return amount
    normal = amount.normalize()
    if normal.as_tuple().exponent > -currency_precision(currency):  # type: ignore[operator]
        return normal.quantize(currency_exponent(currency))
    return normal


_READ = tuple(c for c in _COLUMNS if c not in ("minor_unit", "history_length", "updated_at"))
"""The opportunity columns a read selects, in this order (see SqlOpportunities._with_history)."""


def _opportunity(row: Any, history: list[StageChange], fixed_scale: bool) -> Opportunity:
    """The opportunity of a row in :data:`_READ` order, with its ``history``."""
    id, version, owner, team, name, account, industry, region, amount, currency = row[:10]
    stage, expected_close, created = row[10:13]
    return Opportunity(
        id=id,
        owner=owner,
        amount=Money(_canonical(amount, currency, fixed_scale), currency),
        stage=stage,
        name=name,
        account=account,
        team=team,
        industry=industry,
        region=region,
        expected_close=expected_close,
        created=created,
        history=tuple(history),
        version=version,
    )


_WINDOW_SLACK = timedelta(days=2)
"""How much wider than a window's days its stage changes are selected: more than any UTC offset."""


def _window_clauses(
    t: Any,
    h: Any,
    created: tuple[date | None, date | None] | None,
    closed: tuple[date | None, date | None] | None,
    closed_stages: Sequence[str],
) -> list[Any]:
    """The conditions of :meth:`SqlOpportunities.query_window` (a superset of the exact rules
    of :mod:`salesflow.analytics.windows`)."""
    changes = h.alias("window_changes")

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=UTC)

    def moved_between(start: date | None, end: date | None) -> list[Any]:
        found = []
        if start is not None:
            found.append(changes.c.at >= midnight(start) - _WINDOW_SLACK)
        if end is not None:
            found.append(changes.c.at < midnight(end) + _WINDOW_SLACK)
        return found

    def days(column: Any, start: date | None, end: date | None) -> list[Any]:
        found = [column.is_not(None)]
        if start is not None:
            found.append(column >= start)
        if end is not None:
            found.append(column <= end)
        return found

    clauses: list[Any] = []
    if created is not None:
        start, end = created
        # The creation day: the created date, else the day of the first stage change.
        first = exists().where(
            changes.c.opportunity_id == t.c.id, changes.c.seq == 0, *moved_between(start, end)
        )
        clauses.append(
            or_(and_(*days(t.c.created, start, end)), and_(t.c.created.is_(None), first))
        )
    if closed is not None:
        start, end = closed
        into = [changes.c.opportunity_id == t.c.id, changes.c.to_stage.in_(list(closed_stages))]
        # The close day: the last move into a closed stage, else the expected close.
        moved = exists().where(*into, *moved_between(start, end))
        never = ~exists().where(*into)
        clauses.append(or_(moved, and_(never, *days(t.c.expected_close, start, end))))
    return clauses


class SqlOpportunities:
    """The opportunity repository of :class:`SqlStorage` (one unit of work's connection)."""

    def __init__(self, storage: SqlStorage, conn: Connection) -> None:
        self._storage = storage
        self._conn = conn
        self._t = storage.tables.opportunities
        self._h = storage.tables.stage_changes

    # -- rows ------------------------------------------------------------------------------------

    def _row(
        self, o: Opportunity, version: int, now: Any, *, text: bool = False
    ) -> tuple[Any, ...]:
        """The row of ``o`` in :data:`_COLUMNS` order; with ``text`` the amount and dates are the
        text SQLite stores (as SQLAlchemy's types write it), for the raw bulk path."""
        amount: Any = o.amount.amount
        close: Any = o.expected_close
        created: Any = o.created
        if text:
            amount = str(amount)
            close = close and close.isoformat()
            created = created and created.isoformat()
        return (
            o.id,
            version,
            o.owner,
            o.team,
            o.name,
            o.account,
            o.industry,
            o.region,
            amount,
            o.amount.currency,
            currency_precision(o.amount.currency),
            o.stage,
            close,
            created,
            len(o.history),
            now,
        )

    def _values(self, o: Opportunity, version: int, now: datetime) -> dict[str, Any]:
        return dict(zip(_COLUMNS, self._row(o, version, now), strict=True))

    def _changes(self, o: Opportunity, start: int = 0) -> list[dict[str, Any]]:
        return [
            {
                "opportunity_id": o.id,
                "seq": seq,
                "at": change.at,
                "from_stage": change.from_stage,
                "to_stage": change.to_stage,
                "reason": change.reason,
                "note": change.note,
            }
            for seq, change in enumerate(o.history[start:], start)
        ]

    def _with_history(self, opportunities: Any) -> Any:
        """One statement: the rows of ``opportunities`` (a table or a subquery of it), each joined
        to its stage changes in order (one row per change; one row with empty change columns
        when there are none), columns in :data:`_READ` order. One statement reads one snapshot on
        every database and at every isolation level, so an opportunity is never seen with a
        history of another moment."""
        h = self._h
        return (
            select(
                *(opportunities.c[name] for name in _READ),
                h.c.at,
                h.c.from_stage,
                h.c.to_stage,
                h.c.reason,
                h.c.note,
            )
            .select_from(opportunities.outerjoin(h, h.c.opportunity_id == opportunities.c.id))
            .order_by(opportunities.c.id, h.c.seq)
        )

    def _build(self, rows: Iterable[Any]) -> list[Opportunity]:
        """The opportunities of rows made by :meth:`_with_history` (consecutive rows of one id)."""
        fixed = self._storage.fixed_scale
        built: list[Opportunity] = []
        first: Any = None
        history: list[StageChange] = []
        for row in rows:
            if first is None or row[0] != first[0]:
                if first is not None:
                    built.append(_opportunity(first, history, fixed))
                first, history = row, []
            at, from_stage, to_stage, reason, note = row[-5:]
            if to_stage is not None:
                history.append(StageChange(at, from_stage, to_stage, reason=reason, note=note))
        if first is not None:
            built.append(_opportunity(first, history, fixed))
        return built

    def _stored_version(self, id: str) -> int | None:
        return self._conn.execute(select(self._t.c.version).where(self._t.c.id == id)).scalar()

    # -- reads ------------------------------------------------------------------------------------

    def find(self, id: str) -> Opportunity | None:
        """The opportunity ``id``, or ``None``."""
        if not isinstance(id, str):
            raise InvalidTypeError("id", id, "a string")
        t = self._t
        statement = self._storage.statement(
            ("opportunities", "find"),
            lambda: self._with_history(t).where(t.c.id == bindparam("id")),
        )
        with _driver_errors("reading an opportunity"):
            built = self._build(self._conn.execute(statement, {"id": id}).all())
        return built[0] if built else None

    def get(self, id: str) -> Opportunity:
        """The opportunity ``id``; :class:`~salesflow.errors.NotFoundError` if there is none."""
        found = self.find(id)
        if found is None:
            raise NotFoundError("opportunity", id)
        return found

    def _where(
        self,
        owner: str | Sequence[str] | None,
        team: str | Sequence[str] | None,
        stage: str | Sequence[str] | None,
        close_from: date | None,
        close_until: date | None,
        updated_since: datetime | None,
    ) -> list[Any]:
        opportunity_filter(owner, team, stage, close_from, close_until, updated_since)
        t = self._t
        clauses: list[Any] = []
        for column, wanted in ((t.c.owner, owner), (t.c.team, team), (t.c.stage, stage)):
            if wanted is not None:
                clauses.append(
                    column == wanted if isinstance(wanted, str) else column.in_(list(wanted))
                )
        if close_from is not None:
            clauses.append(t.c.expected_close >= close_from)
        if close_until is not None:
            clauses.append(t.c.expected_close <= close_until)
        if updated_since is not None:
            clauses.append(t.c.updated_at > updated_since)
        return clauses

    def query(
        self,
        *,
        owner: str | Sequence[str] | None = None,
        team: str | Sequence[str] | None = None,
        stage: str | Sequence[str] | None = None,
        close_from: date | None = None,
        close_until: date | None = None,
        updated_since: datetime | None = None,
    ) -> Iterator[Opportunity]:
        """Stream matching opportunities ordered by id, a page at a time (keyset pagination, so
        no server-side cursor is held open and memory stays flat). Each page is one statement
        (the opportunities with their stage changes), so each opportunity is read whole, as it
        was committed."""
        clauses = self._where(owner, team, stage, close_from, close_until, updated_since)
        yield from self._paged(clauses, "querying opportunities")

    def _paged(self, clauses: list[Any], action: str) -> Iterator[Opportunity]:
        """The opportunities matching ``clauses`` ordered by id, a page (one statement) at a time:
        each page after the first starts after the last id read (keyset pagination)."""
        t = self._t
        first = select(t).where(*clauses).order_by(t.c.id).limit(_PAGE)
        statement = self._with_history(first.subquery("o"))
        later = self._with_history(first.where(t.c.id > bindparam("last")).subquery("o"))
        parameters: dict[str, Any] = {}
        while True:
            with _driver_errors(action):
                built = self._build(self._conn.execute(statement, parameters).all())
            yield from built
            if len(built) < _PAGE:
                return
            statement, parameters = later, {"last": built[-1].id}

    def query_window(
        self,
        *,
        created: tuple[date | None, date | None] | None = None,
        closed: tuple[date | None, date | None] | None = None,
        closed_stages: Sequence[str] = (),
        owner: str | Sequence[str] | None = None,
        team: str | Sequence[str] | None = None,
        stage: str | Sequence[str] | None = None,
        close_from: date | None = None,
        close_until: date | None = None,
        updated_since: datetime | None = None,
    ) -> Iterator[Opportunity]:
        """The opportunities of :meth:`query` that may have been created in ``created`` or
        closed (moved into one of ``closed_stages``) in ``closed``, selected in the database
        (see :data:`~salesflow.ports.WINDOW_PUSHDOWN`). Stage changes are compared as instants
        two days wider on each side than the window's days, so that a move's day in any time
        zone is kept; the caller checks each row's days exactly."""
        clauses = self._where(owner, team, stage, close_from, close_until, updated_since)
        clauses.extend(_window_clauses(self._t, self._h, created, closed, closed_stages))
        yield from self._paged(clauses, "querying opportunities in a window")

    def count(
        self,
        *,
        owner: str | Sequence[str] | None = None,
        team: str | Sequence[str] | None = None,
        stage: str | Sequence[str] | None = None,
        close_from: date | None = None,
        close_until: date | None = None,
        updated_since: datetime | None = None,
    ) -> int:
        """How many opportunities match the filters of :meth:`query`."""
        clauses = self._where(owner, team, stage, close_from, close_until, updated_since)
        with _driver_errors("counting opportunities"):
            return int(
                self._conn.execute(
                    select(func.count()).select_from(self._t).where(*clauses)
                ).scalar_one()
            )

    # -- writes -----------------------------------------------------------------------------------

    def add(self, opportunity: Opportunity) -> Opportunity:
        """Store a new opportunity at version 1."""
        if not isinstance(opportunity, Opportunity):
            raise InvalidTypeError("opportunity", opportunity, "an Opportunity")
        check_new("opportunity", opportunity)
        with _driver_errors("adding an opportunity"):
            stored = self._stored_version(opportunity.id)
            if stored is not None:
                raise ConcurrencyError("opportunity", opportunity.id, 0, stored)
            now = self._storage.clock()
            try:
                self._conn.execute(self._t.insert(), [self._values(opportunity, 1, now)])
            except exc.IntegrityError as error:
                raise ConcurrencyError("opportunity", opportunity.id, 0, None) from error
            if opportunity.history:
                self._conn.execute(self._h.insert(), self._changes(opportunity))
        return attrs.evolve(opportunity, version=1)

    def add_many(self, opportunities: Iterable[Opportunity], *, batch_size: int = 10_000) -> int:
        """Store many new opportunities in batches; a duplicate id raises
        :class:`~salesflow.errors.ConcurrencyError` naming it (and the unit of work rolls back)."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError("batch_size", batch_size, "a positive int")
        count = 0
        batch: list[Opportunity] = []
        for opportunity in opportunities:
            if not isinstance(opportunity, Opportunity):
                raise InvalidTypeError("opportunity", opportunity, "an Opportunity")
            check_new("opportunity", opportunity)
            batch.append(opportunity)
            if len(batch) >= batch_size:
                count += self._insert_batch(batch)
                batch = []
        if batch:
            count += self._insert_batch(batch)
        return count

    def _insert_batch(self, batch: list[Opportunity]) -> int:
        ids = [o.id for o in batch]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            duplicate = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise ConcurrencyError("opportunity", duplicate, 0, None)
        now = self._storage.clock()
        conn = self._conn
        dbapi = self._storage.dbapi
        try:
            # A savepoint per batch keeps the transaction usable after a duplicate key, so that
            # the duplicate can be named (PostgreSQL aborts a transaction on any error).
            with conn.begin_nested():
                storage = self._storage
                if storage.dialect == "sqlite":
                    stamp = sqlite_datetime(now)
                    rows = [self._row(o, 1, stamp, text=True) for o in batch]
                elif storage.dialect == "postgresql":
                    naive = now.astimezone(UTC).replace(tzinfo=None)
                    rows = [self._row(o, 1, naive) for o in batch]
                else:  # through SQLAlchemy's type processing, which wants the aware time
                    rows = [self._row(o, 1, now) for o in batch]
                storage.bulk_insert_rows(conn, self._t, _COLUMNS, rows)
                changes = [c for o in batch if o.history for c in self._changes(o)]
                if changes:
                    self._storage.bulk_insert(conn, self._h, changes)
        except (exc.IntegrityError, dbapi.IntegrityError) as error:
            existing = conn.execute(
                select(self._t.c.id, self._t.c.version).where(self._t.c.id.in_(ids))
            ).first()
            if existing is None:
                raise StorageError(f"bulk insert failed: {error}") from error
            raise ConcurrencyError("opportunity", existing.id, 0, existing.version) from error
        except (exc.SQLAlchemyError, dbapi.Error) as error:
            raise StorageError(f"bulk insert failed: {error}") from error
        return len(batch)

    def save(self, opportunity: Opportunity) -> Opportunity:
        """Store a change if the stored version is still ``opportunity.version``."""
        if not isinstance(opportunity, Opportunity):
            raise InvalidTypeError("opportunity", opportunity, "an Opportunity")
        t, conn = self._t, self._conn
        with _driver_errors("saving an opportunity"):
            row = conn.execute(
                select(t.c.version, t.c.history_length, t.c.updated_at).where(
                    t.c.id == opportunity.id
                )
            ).first()
            if row is None or row.version != opportunity.version:
                raise ConcurrencyError(
                    "opportunity",
                    opportunity.id,
                    opportunity.version,
                    None if row is None else row.version,
                )
            if row.history_length:
                stored = self.get(opportunity.id)
                check_history(stored, opportunity)
            now = self._storage.clock()
            check_forward(f"opportunity {opportunity.id!r}", "clock", now, row.updated_at)
            version = opportunity.version + 1
            values = self._values(opportunity, version, now)
            del values["id"]
            updated = conn.execute(
                t.update()
                .where(and_(t.c.id == opportunity.id, t.c.version == opportunity.version))
                .values(**values)
            )
            if updated.rowcount != 1:
                raise ConcurrencyError(
                    "opportunity",
                    opportunity.id,
                    opportunity.version,
                    self._stored_version(opportunity.id),
                )
            new_changes = self._changes(opportunity, row.history_length)
            if new_changes:
                conn.execute(self._h.insert(), new_changes)
        return attrs.evolve(opportunity, version=version)

    def delete(self, id: str, *, version: int) -> None:
        """Delete opportunity ``id`` (and its history) if it is still at ``version``."""
        t = self._t
        with _driver_errors("deleting an opportunity"):
            self._conn.execute(self._h.delete().where(self._h.c.opportunity_id == id))
            deleted = self._conn.execute(
                t.delete().where(and_(t.c.id == id, t.c.version == version))
            )
            if deleted.rowcount != 1:
                raise ConcurrencyError("opportunity", id, version, self._stored_version(id))

    # -- forecast -----------------------------------------------------------------------------------

    def forecast(
        self,
        plan: StagePlan,
        *,
        as_of: date,
        threshold: Decimal | int | str | None = None,
        by: Sequence[str] | str = ("owner",),
        fiscal_year_start: int = 1,
        rates: RateSource | None = None,
        currency: str | None = None,
    ) -> Forecast:
        """The forecast of every stored opportunity, summed by the database (GROUP BY) when the
        grouping is by stored columns and no conversion is asked; otherwise computed in Python
        over a stream of the rows. Both give exactly the pure calculator's result."""
        group_by = (by,) if isinstance(by, str) else tuple(by)
        source = _Stored(self._storage)
        if rates is not None or not set(group_by) <= PUSHDOWN_ATTRIBUTES:
            return forecast(
                source,
                plan,
                as_of=as_of,
                threshold=threshold,
                by=group_by,
                fiscal_year_start=fiscal_year_start,
                rates=rates,
                currency=currency,
            )
        if not isinstance(plan, StagePlan):
            raise InvalidTypeError("plan", plan, "a StagePlan")
        limit = plan.threshold if threshold is None else threshold
        counted = {s.key: EXACT.divide(s.probability, 100) for s in plan.forecast_stages(limit)}
        if self._storage.dialect != "sqlite" and any(
            factor != factor.quantize(_FACTOR_QUANTUM, context=EXACT) for factor in counted.values()
        ):
            # A probability with more than 8 decimals does not fit the NUMERIC(20, 10) factor
            # literal exactly: computed in Python then, so that the result stays exact.
            return forecast(
                source,
                plan,
                as_of=as_of,
                threshold=threshold,
                by=group_by,
                fiscal_year_start=fiscal_year_start,
                currency=currency,
            )
        totals: list[tuple[Any, ...]] = []
        stages: dict[str, int] = {}
        with _driver_errors("forecasting"):
            for stage, month, group, code, total, count in self._stage_totals(counted, group_by):
                stages[stage] = stages.get(stage, 0) + count
                if stage in counted:
                    totals.append((month, group, code, total, count))
            fallback = currency
            if fallback is None and not totals:
                fallback = self._conn.execute(select(self._t.c.currency).limit(1)).scalar()
        return forecast_from_totals(
            totals,
            plan,
            as_of=as_of,
            threshold=threshold,
            by=group_by,
            fiscal_year_start=fiscal_year_start,
            excluded={key: n for key, n in stages.items() if key in plan and key not in counted},
            unknown_stages=sorted(key for key in stages if key not in plan),
            currency=fallback,
            source=source,
        )

    def _stage_totals(
        self, counted: dict[str, Decimal], group_by: tuple[str, ...]
    ) -> Iterator[tuple[str, int | None, Any, str, Decimal, int]]:
        """One scan: per stage, expected-close month, group and currency, the sum of the rounded
        weighted amounts (stages that count) and the number of opportunities (all stages)."""
        t = self._t
        month = (
            cast(extract("year", t.c.expected_close), Integer) * 12
            + cast(extract("month", t.c.expected_close), Integer)
            - 1
        )
        bucket = case((t.c.expected_close.is_(None), null()), else_=month)
        if self._storage.dialect == "sqlite":
            factor = case(
                {k: literal(str(v)) for k, v in counted.items()}, value=t.c.stage, else_=null()
            )
            total = func.sf_decimal_sum(func.sf_weighted(t.c.amount, factor, t.c.currency))
        else:
            factor = case(
                {k: literal(v, Numeric(20, 10)) for k, v in counted.items()},
                value=t.c.stage,
                else_=null(),
            )
            total = func.sum(func.round(t.c.amount * factor, t.c.minor_unit))
        groups = [t.c[name] for name in group_by]
        query = select(t.c.stage, bucket, *groups, t.c.currency, total, func.count()).group_by(
            t.c.stage, bucket, *groups, t.c.currency
        )
        fixed = self._storage.fixed_scale
        width = len(group_by)
        for row in self._conn.execute(query):
            stage, month, *rest = row
            group = () if not width else rest[0] if width == 1 else tuple(rest[:width])
            code, total_value, count = rest[width:]
            amount = (
                ZERO if total_value is None else _canonical(Decimal(str(total_value)), code, fixed)
            )
            yield stage, month, group, code, amount, int(count)


class _Stored:
    """The stored opportunities as a re-iterable source (each iteration reads in a fresh unit of
    work), so that a forecast's drill-down streams from the database."""

    def __init__(self, storage: SqlStorage) -> None:
        self._storage = storage

    def __iter__(self) -> Iterator[Opportunity]:
        with self._storage.transaction() as uow:
            yield from uow.opportunities.query()


class SqlEvents:
    """The append-only event log of :class:`SqlStorage`."""

    def __init__(self, storage: SqlStorage, conn: Connection) -> None:
        self._conn = conn
        self._t = storage.tables.events
        self._latest: dict[tuple[str, str], Any] = {}
        t = self._t
        # Built once: a fresh statement per event costs more than the insert itself.
        self._insert = storage.statement(("events", "insert"), self._t.insert)
        self._insert_all = storage.statement(
            ("events", "insert_all"),
            lambda: t.insert().returning(t.c.seq, sort_by_parameter_order=True),
        )
        self._last_at = storage.statement(
            ("events", "last_at"),
            lambda: select(func.max(t.c.at)).where(
                t.c.subject_kind == bindparam("kind"), t.c.subject_id == bindparam("id")
            ),
        )

    def forget(self) -> None:
        """Forget the latest times remembered (a savepoint undid some appends)."""
        self._latest.clear()

    def append_all(self, events: Sequence[Event]) -> list[Event]:
        """Store ``events`` in order, as :meth:`append` does each, in one statement where the
        database returns the sequence numbers of a multi-row insert (one round trip for a
        command's events instead of one each)."""
        dialect = self._conn.dialect
        if len(events) < 2 or not dialect.insert_executemany_returning_sort_by_parameter_order:
            return [self.append(each) for each in events]
        rows = []
        for each in events:
            rows.append(self._row(each))
            self._latest[(each.subject_kind, each.subject_id)] = each.at
        with _driver_errors("appending events"):
            result = self._conn.execute(self._insert_all, rows)
            seqs = [int(row[0]) for row in result]
        if len(seqs) != len(events):
            raise StorageError("the database did not return the new events' sequence numbers")
        return [e.numbered(seq) for e, seq in zip(events, seqs, strict=True)]

    def _row(self, event: Event) -> dict[str, Any]:
        """The row of ``event``, refused (ValidationError on ``at``) if it is dated before the
        latest event of its subject (remembered, else read)."""
        if not isinstance(event, Event):
            raise InvalidTypeError("event", event, "an Event")
        subject = (event.subject_kind, event.subject_id)
        with _driver_errors("appending an event"):
            if subject in self._latest:
                last = self._latest[subject]
            else:
                last = self._conn.execute(
                    self._last_at, {"kind": event.subject_kind, "id": event.subject_id}
                ).scalar()
        check_forward(f"{event.subject_kind} {event.subject_id!r}", "at", event.at, last)
        return {
            "name": event.name,
            "subject_kind": event.subject_kind,
            "subject_id": event.subject_id,
            "actor": event.actor,
            "at": event.at,
            "data": json.dumps(event.data, sort_keys=True, ensure_ascii=False),
        }

    def append(self, event: Event) -> Event:
        """Store ``event`` and return it with its sequence number; refused (ValidationError on
        ``at``) if it is dated before the latest stored event of its subject."""
        row = self._row(event)
        with _driver_errors("appending an event"):
            result = self._conn.execute(self._insert, row)
            key = result.inserted_primary_key
            if key is None or key[0] is None:
                raise StorageError("the database did not return the new event's sequence number")
        # The unit of work holds the write lock (or its row versions): the subject's latest time
        # is now this one, with no need to ask again for the next event of the command.
        self._latest[(event.subject_kind, event.subject_id)] = event.at
        return event.numbered(int(key[0]))

    def query(
        self,
        *,
        subject_kind: str | None = None,
        subject_id: str | None = None,
        name: str | None = None,
        after: int | None = None,
    ) -> Iterator[Event]:
        """Stream stored events in sequence order, a page at a time."""
        t = self._t
        clauses = []
        for column, wanted in (
            (t.c.subject_kind, subject_kind),
            (t.c.subject_id, subject_id),
            (t.c.name, name),
        ):
            if wanted is not None:
                clauses.append(column == wanted)
        last = after
        while True:
            page = select(t).where(*clauses).order_by(t.c.seq).limit(_PAGE)
            if last is not None:
                page = page.where(t.c.seq > last)
            with _driver_errors("querying events"):
                rows = self._conn.execute(page).all()
            for row in rows:
                yield Event(
                    seq=row.seq,
                    name=row.name,
                    subject_kind=row.subject_kind,
                    subject_id=row.subject_id,
                    actor=row.actor,
                    at=row.at,
                    data=json.loads(row.data),
                )
            if len(rows) < _PAGE:
                return
            last = rows[-1].seq


class SqlUnitOfWork:
    """A unit of work of :class:`SqlStorage`: one connection, one transaction (or savepoint)."""

    def __init__(self, storage: SqlStorage, conn: Connection) -> None:
        self.connection = conn
        """The SQLAlchemy connection of this unit of work (to join it with your own statements)."""
        self.opportunities = SqlOpportunities(storage, conn)
        self.events = SqlEvents(storage, conn)
        self.callbacks: list[Callable[[], None]] = []
        self._storage = storage
        self._revisions: dict[tuple[str, str], int] = {}
        self._loaded: dict[tuple[str, str], tuple[int, Any]] = {}

    def __getattr__(self, name: str) -> SqlDocuments:
        # One repository per document kind, made on first use.
        repository = SqlDocuments(
            self._storage, self.connection, kind_of(name), self._revisions, self._loaded
        )
        setattr(self, name, repository)
        return repository

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the outermost commit."""
        self.callbacks.append(callback)


class SqlStorage:
    """Storage in a SQL database through SQLAlchemy Core.

    Args:
        target: a database URL (``sqlite:///salesflow.db``, ``postgresql://user@host/db``,
            ``mysql://root@host/db``), or the caller's SQLAlchemy ``Engine``, ``Connection`` or
            ORM ``Session`` (or ``scoped_session``). On an engine salesflow checks out
            connections and runs transactions of its own; on a connection in a transaction, and
            on a session (each unit of work takes ``session.connection()``, so the session's
            current transaction is the one joined), it joins the caller's transaction: see
            :meth:`transaction`.
        table_prefix: the prefix of salesflow's table names.
        clock: what "now" is for ``updated_at`` (UTC wall clock by default).
        create: create or upgrade the schema on open (otherwise the schema must be current). On
            a caller's connection or session this runs in the caller's transaction: create the
            schema at start-up on the engine instead (``SqlStorage(engine).close()``).
        engine_options: passed to ``sqlalchemy.create_engine`` when ``target`` is a URL.
    """

    capabilities: frozenset[str] = frozenset({FORECAST_PUSHDOWN, WINDOW_PUSHDOWN})
    """The forecast runs in the database (``GROUP BY``), and so does the selection of a time
    window: ``{"forecast_pushdown", "window_pushdown"}``."""

    def __init__(
        self,
        target: str | Engine | Connection | Session | scoped_session[Any],
        *,
        table_prefix: str = "salesflow_",
        clock: Clock | None = None,
        create: bool = True,
        **engine_options: Any,
    ) -> None:
        if not isinstance(table_prefix, str) or not table_prefix.replace("_", "").isalnum():
            raise ValidationError("table_prefix", table_prefix, "letters, digits and underscores")
        self._owned = isinstance(target, str)
        self._connection: Connection | None = None
        self._session: Any = None
        """The caller's session (or scoped_session): each unit of work joins its transaction."""
        if isinstance(target, str):
            try:
                self._engine = _engine_for(target, dict(engine_options))
            except exc.ArgumentError as error:
                raise ValidationError("url", target, f"a database URL ({error})") from None
        elif not is_sql_target(target):
            raise InvalidTypeError(
                "target", target, "a URL, or an SQLAlchemy Engine, Connection or Session"
            )
        elif engine_options:
            raise ValidationError(
                "engine_options",
                sorted(engine_options),
                "none: they configure the engine salesflow makes from a URL",
            )
        elif isinstance(target, Engine):
            self._engine = target
        elif isinstance(target, Connection):
            self._engine = target.engine
            self._connection = target
        else:
            self._engine = _session_engine(target)
            self._session = target
        # A caller's engine, connection or session is never configured: nothing of theirs changes.
        self.url = self._engine.url.render_as_string(hide_password=True)
        self.dialect = self._engine.dialect.name
        # The driver's own DB-API module: its errors escape SQLAlchemy on the raw bulk paths.
        self.dbapi: Any = self._engine.dialect.loaded_dbapi
        self.fixed_scale = self.dialect in ("mysql", "mariadb")
        self.tables: Tables = build_tables(table_prefix)
        self.clock: Clock = clock or _utc_now
        self._local = threading.local()
        self._statements: dict[tuple[str, ...], Any] = {}
        if create:
            try:
                self._refuse_committing_ddl()
                self.upgrade()
            except BaseException:
                self.close()  # the caller never gets this storage, so nothing else would
                raise

    def _refuse_committing_ddl(self) -> None:
        """Refuse to change the schema inside the caller's open transaction on MySQL/MariaDB,
        where a schema change commits the open transaction (before anything changes)."""
        conn = self._connection
        if conn is None or not conn.in_transaction() or ddl_is_transactional(self.dialect):
            return
        with self.transaction() as uow, _driver_errors("reading the schema version"):
            found = stored_version(uow.connection, self.tables)
        if found is None or found < SCHEMA_VERSION:
            state = "missing" if found is None else f"at version {found}"
            raise StorageError(
                f"the salesflow schema of {self.url} is {state}, and {self.dialect} commits a "
                "schema change at once, which would commit your open transaction: create or "
                "upgrade it first with SqlStorage(engine) (or on a connection outside a "
                "transaction)"
            )

    # -- schema ---------------------------------------------------------------------------------------

    def upgrade(self) -> int:
        """Create or upgrade the schema; return the version found (0 if new).

        On SQLite and PostgreSQL every step runs in one transaction: a failure changes nothing.
        MySQL and MariaDB commit schema changes at once, so there each step runs in a transaction
        of its own and records its version when done; a failed step is completed by the next
        call (see :mod:`salesflow.adapters.sql.schema`). Tables of the same names that salesflow
        did not create are refused with :class:`~salesflow.errors.StorageError`.
        """
        transactional = ddl_is_transactional(self.dialect)
        try:
            if transactional:
                with self.transaction() as uow, _driver_errors("creating the schema"):
                    return ensure_schema(uow.connection, self.tables)
            with self.transaction() as uow, _driver_errors("reading the schema version"):
                found = stored_version(uow.connection, self.tables)
            if found is not None and found == SCHEMA_VERSION:
                return found  # the usual open: nothing to change, no lock taken
            conn = self._connection if self._connection is not None else self._connect()
            try:
                with _driver_errors("changing the schema"):
                    return ensure_schema_stepwise(conn, self.tables, where=self.url)
            finally:
                if conn is not self._connection:
                    conn.close()
        except SalesflowError:
            raise
        except Exception as error:
            outcome = "was rolled back" if transactional else "stopped"
            raise StorageError(
                f"upgrading the schema of {self.url} failed and {outcome}: {error!r}"
            ) from error

    def destroy(self) -> None:
        """Delete everything this storage holds, for tests and uninstalling: drop every salesflow
        table (with its data). The storage has no schema afterwards: close it (or
        :meth:`upgrade` to start again)."""
        with self.transaction() as uow, _driver_errors("dropping the schema"):
            self.tables.metadata.drop_all(uow.connection)

    # -- transactions -----------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[SqlUnitOfWork]:
        """Open a unit of work: everything it writes commits together or not at all.

        * Inside another unit of work of this storage (same thread): a savepoint of that one.
        * On a caller's ``Connection`` or ``Session`` in a transaction: a savepoint in the
          caller's transaction, which salesflow joins and never begins, commits, rolls back or
          reconfigures. The commit callbacks (the desk's events) wait for the caller's commit and
          are dropped when the caller rolls back (or rolls back a savepoint of theirs around it).
        * Otherwise a transaction of salesflow's own, on a connection it checks out (or on a
          caller's connection that has no transaction open), committed here; then the callbacks
          run. On SQLite: ``BEGIN IMMEDIATE`` on an engine salesflow made; on a caller's engine,
          no lock for reading and ``BEGIN IMMEDIATE`` at the first write
          (:func:`_lock_at_first_write`), so the caller's own transactions are never changed.
        """
        current: SqlUnitOfWork | None = getattr(self._local, "uow", None)
        if current is not None:
            revisions = dict(current._revisions)
            done = len(current.callbacks)
            try:
                with current.connection.begin_nested():
                    yield current
            except BaseException:
                # The savepoint undid the rows; undo what this unit of work remembers of them,
                # and forget the callbacks (events) of what was undone.
                current._revisions.clear()
                current._revisions.update(revisions)
                current.events.forget()
                del current.callbacks[done:]
                raise
            return
        caller = self._caller_connection()
        conn = caller if caller is not None else self._connect()
        try:
            joined = caller is not None and conn.in_transaction()
            transaction: Transaction
            with _driver_errors("beginning a unit of work"):
                if joined:
                    if self.dialect == "sqlite":
                        _sqlite_join(conn)
                    enclosing = _open_savepoints(conn)
                    transaction = conn.begin_nested()
                else:
                    if self.dialect == "sqlite":
                        _sqlite_driver(conn)  # before BEGIN: nothing to undo if it fails
                    transaction = conn.begin()
                    if self.dialect == "sqlite" and not self._owned:
                        _lock_at_first_write(conn)
            uow = SqlUnitOfWork(self, conn)
            self._local.uow = uow
            try:
                yield uow
            except BaseException:
                transaction.rollback()
                raise
            finally:
                self._local.uow = None
            with _driver_errors("committing"):
                transaction.commit()
            if joined:
                _after_outer_commit(conn, uow.callbacks, enclosing, self._current_session())
            else:
                for callback in uow.callbacks:
                    callback()
        finally:
            if conn in _LOCKING:
                _LOCKING[conn] = False
            if caller is None:
                conn.close()

    def _caller_connection(self) -> Connection | None:
        """The caller's connection to work on (a session's, for its current transaction), or
        ``None`` when salesflow checks out connections of its own."""
        if self._session is not None:
            with _driver_errors("joining the session's transaction"):
                connection: Connection = self._session.connection()
                return connection
        return self._connection

    def _current_session(self) -> Any:
        """The caller's session (the current one of a ``scoped_session``), or ``None``."""
        from sqlalchemy.orm import scoped_session

        session = self._session
        if isinstance(session, scoped_session):
            session = session()  # the registry's current session (this thread's, this request's)
        return session

    def _connect(self) -> Connection:
        with _driver_errors(f"connecting to {self.url}"):
            return self._engine.connect()

    def close(self) -> None:
        """Dispose of the engine's connections (an engine or connection passed in is left alone)."""
        if self._owned:
            self._engine.dispose()

    def statement(self, key: tuple[str, ...], build: Callable[[], Any]) -> Any:
        """The statement ``build()`` makes, built once per storage and kept under ``key``.

        Constructing a SQLAlchemy statement (and its cache key) per call costs more than running a
        small one; repositories keep their hot statements here, with bound parameters.
        """
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = build()
        return found

    # -- bulk paths --------------------------------------------------------------------------------------

    def bulk_insert(self, conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` (dicts of Python values) into ``table`` the fastest way the driver has;
        see :meth:`bulk_insert_rows`."""
        if not rows:
            return
        columns = tuple(rows[0])
        if self.dialect == "sqlite":
            converted = [tuple(_sqlite_value(v) for v in row.values()) for row in rows]
        elif self.dialect == "postgresql":
            converted = [tuple(_utc_naive(v) for v in row.values()) for row in rows]
        else:
            converted = [tuple(row.values()) for row in rows]
        self.bulk_insert_rows(conn, table, columns, converted)

    def bulk_insert_rows(
        self, conn: Connection, table: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        """Insert ``rows`` (tuples in ``columns`` order) into ``table``: on SQLite the text its
        types store, by one raw ``executemany``; on PostgreSQL Python values with naive UTC
        datetimes, by ``COPY``; elsewhere Python values, through SQLAlchemy's type processing."""
        if not rows:
            return
        names = ", ".join(f'"{c}"' for c in columns)
        if self.dialect == "postgresql":
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
            return
        if self.dialect == "sqlite":
            marks = ", ".join("?" for _ in columns)
            conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', rows)
            return
        conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


def _utc_naive(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _sqlite_value(value: Any) -> Any:
    # The same text SQLAlchemy's SQLite types write, so rows read back identically.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return sqlite_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _open_savepoints(conn: Connection) -> frozenset[str]:
    """The names of the caller's savepoints open on ``conn``: rolling back to any of them undoes
    what is written now. (SQLAlchemy keeps them on its NestedTransaction objects, not publicly.)"""
    names: set[str] = set()
    nested: Any = conn.get_nested_transaction()
    while nested is not None:
        name = getattr(nested, "_savepoint", None)
        if isinstance(name, str):
            names.add(name)
        nested = getattr(nested, "_previous_nested", None)
    return frozenset(names)


Callbacks = list[Callable[[], None]]


class _Pending:
    """The callbacks of salesflow's units of work inside the caller's transaction on one connection,
    waiting for its commit: run then, in order; dropped when the transaction rolls back, and those
    written inside a savepoint of the caller's when that savepoint rolls back.

    Listens once per connection (so the caller's connection gains no listener per command); holds
    no reference to the connection, which holds it through its listeners."""

    def __init__(self, conn: Connection, *, on_commit: bool) -> None:
        self.waiting: list[tuple[frozenset[str], Callbacks]] = []
        event.listen(conn, "rollback", self.forget)
        event.listen(conn, "rollback_savepoint", self.rolled_back_to)
        if on_commit:
            event.listen(conn, "commit", self.run)

    def forget(self, *_args: Any) -> None:
        self.waiting.clear()

    def rolled_back_to(self, _conn: Any, name: str, *_args: Any) -> None:
        self.waiting = [entry for entry in self.waiting if name not in entry[0]]

    def run(self, *_args: Any) -> None:
        waiting, self.waiting = self.waiting, []
        for _enclosing, callbacks in waiting:
            for callback in callbacks:
                callback()


_PENDING: weakref.WeakKeyDictionary[Connection, _Pending] = weakref.WeakKeyDictionary()
_SESSIONS: weakref.WeakKeyDictionary[Any, weakref.WeakSet[_Pending]] = weakref.WeakKeyDictionary()


def _session_waiting(session: Any) -> weakref.WeakSet[_Pending]:
    """What waits for ``session``'s commit: run by its ``after_commit`` event (after the database
    committed), for the session's own transaction only, not for a savepoint it releases."""
    found = _SESSIONS.get(session)
    if found is None:
        waiting: weakref.WeakSet[_Pending] = weakref.WeakSet()
        found = _SESSIONS[session] = waiting

        def committed(committing: Any) -> None:
            if not committing.in_nested_transaction():
                for pending in list(waiting):
                    pending.run()

        event.listen(session, "after_commit", committed)
    return found


def _after_outer_commit(
    conn: Connection, callbacks: Callbacks, enclosing: frozenset[str], session: Any
) -> None:
    """Run ``callbacks`` when the caller's transaction on ``conn`` commits (after ``session``'s
    commit when the caller gave a session; at the connection's COMMIT otherwise); forget them on
    rollback, or when a savepoint in ``enclosing`` is rolled back to."""
    if not callbacks:
        return
    if conn.dialect.name == "sqlite" and not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
        # An autocommit connection: the savepoint's release was the commit.
        for callback in callbacks:
            callback()
        return
    pending = _PENDING.get(conn)
    if pending is None:
        pending = _PENDING[conn] = _Pending(conn, on_commit=session is None)
    if session is not None:
        _session_waiting(session).add(pending)
    pending.waiting.append((enclosing, callbacks))
