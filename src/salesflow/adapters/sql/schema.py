"""The SQL schema, its version, and the upgrades between versions.

Every table carries ``info={"since": n}``: the schema version that introduced it. A schema
*step* brings the schema from version ``n - 1`` to ``n``: it creates the tables introduced in
``n``, then runs the version's extra step (:data:`UPGRADES`: new columns, data fills). Every step is
idempotent (a table or column that is there already is left alone, a data fill runs again), and the
version is recorded in the meta table only when its step has finished, so the stored version never
claims more than the database holds.

* On SQLite and PostgreSQL, whose schema changes are transactional, :func:`ensure_schema` runs every
  step in the caller's one transaction: an upgrade that fails changes nothing.
* MySQL and MariaDB commit each ``CREATE``/``ALTER TABLE`` at once, so no transaction can undo a
  half-done step there. :func:`ensure_schema_stepwise` runs each step in a transaction of its own,
  under a server lock (``GET_LOCK``) so that two processes do not upgrade at once, and records the
  version after each step: a step that failed midway leaves the previous version recorded and is
  completed (the tables and columns it made are kept, its data fills run again) by the next open.
  A fresh database records version 0 in its meta table before the first table is created, so a
  first creation that failed is resumed, never taken for a foreign database.

Tables salesflow is about to create that exist already (a table of the host's own that happens to
have salesflow's name) are checked: unless they have exactly salesflow's columns (left by a step
that failed midway) they are refused with :class:`~salesflow.errors.StorageError` naming them; the
``table_prefix=`` option keeps salesflow's tables apart. A database written by a newer salesflow is
refused with :class:`~salesflow.errors.SchemaVersionError`.

On MySQL and MariaDB the tables are created in ``utf8mb4`` (any character, emoji included, whatever
the database's default character set) with a binary *NO PAD* collation (``utf8mb4_nopad_bin`` on
MariaDB, ``utf8mb4_0900_bin`` on MySQL 8; ``utf8mb4_bin``, which ignores trailing spaces, only
where neither exists), so ids, keys and filters compare exactly, as on SQLite and PostgreSQL:
``'O-1'`` is not ``'o-1'`` nor ``'O-1 '``. Version 4 converts the tables of older databases.

Table names start with a prefix (``salesflow_`` by default) so that salesflow can live in an
embedding CRM's own database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
from sqlalchemy import (
    Column,
    Connection,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.schema import AddConstraint

from salesflow.adapters.sql.types import ExactDecimal, UTCDateTime
from salesflow.domain.money import currency_precision
from salesflow.domain.stages import REASON_MAX
from salesflow.errors import SchemaVersionError, StorageError
from salesflow.storage.kinds import KINDS, DocumentKind

__all__ = [
    "MYSQL_CHARSET",
    "MYSQL_COLLATIONS",
    "SCHEMA_VERSION",
    "UPGRADES",
    "Tables",
    "apply_step",
    "build_tables",
    "ddl_is_transactional",
    "ensure_schema",
    "ensure_schema_stepwise",
    "stored_version",
]

SCHEMA_VERSION = 5
"""The schema version this salesflow writes: 1 had opportunities and events; 2 added the document
tables (catalog, quotes, approval requests, ...) and the opportunities' ``minor_unit``; 3 added the
lost reason and note of a stage change (``reason``, ``note``); 4 made text compare exactly on
MySQL/MariaDB (``utf8mb4`` with a binary NO PAD collation) and fills ``minor_unit`` again where an
interrupted upgrade left it unfilled; 5 added the tables of the document kinds introduced with it
(``since=5`` in :data:`~salesflow.storage.kinds.KINDS`)."""

MYSQL_CHARSET = "utf8mb4"
"""The character set of salesflow's tables on MySQL/MariaDB: 4-byte UTF-8, so any character fits."""
MYSQL_COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin", "utf8mb4_bin")
"""The collations salesflow's MySQL/MariaDB tables use, the first the server has: binary (case
matters) and NO PAD (trailing spaces matter). ``utf8mb4_bin`` is PAD SPACE and only a fallback for
servers with neither NO PAD collation (MySQL 5.7)."""
SCHEMA_LOCK_TIMEOUT = 60
"""Seconds :func:`ensure_schema_stepwise` waits for another process's schema change to finish."""

log = logging.getLogger("salesflow.storage.sql")

ID = 128
TEXT = 255


@attrs.frozen
class Tables:
    """The tables of one prefix."""

    metadata: MetaData
    meta: Table
    opportunities: Table
    stage_changes: Table
    events: Table
    documents: dict[str, Table]
    """The table of each document kind, by its unit-of-work attribute."""


def _table_options() -> dict[str, Any]:
    """Every table's options: on MySQL/MariaDB utf8mb4 with a binary collation (made the best
    collation the server has by :func:`_use_best_collation` before any table is created)."""
    options: dict[str, Any] = {}
    for dialect in ("mysql", "mariadb"):
        options[f"{dialect}_charset"] = MYSQL_CHARSET
        options[f"{dialect}_collate"] = MYSQL_COLLATIONS[-1]
    return options


_COLUMN_TYPES: dict[str, Any] = {
    "text": String(TEXT),
    "int": Integer,
    "date": Date,
    "datetime": UTCDateTime,
}


def _document_table(md: MetaData, prefix: str, kind: DocumentKind) -> Table:
    name = f"{prefix}{kind.attribute}"
    columns: list[Any] = [
        Column("id", String(ID), primary_key=True),
        Column("revision", Integer, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
        # MySQL's TEXT stops at 64 KB; a large quote is more.
        Column("body", Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb"), nullable=False),
    ]
    for index in kind.indexes:
        columns.append(Column(f"ix_{index.name}", _COLUMN_TYPES[index.type]))
        columns.append(Index(f"{name}_{index.name}", f"ix_{index.name}"))
    for names in kind.unique:
        columns.append(
            UniqueConstraint(*(f"ix_{n}" for n in names), name=f"{name}_{'_'.join(names)}_key")
        )
    return Table(name, md, *columns, info={"since": kind.since}, **_table_options())


def build_tables(prefix: str = "salesflow_") -> Tables:
    """The table definitions for ``prefix``."""
    md = MetaData()
    meta = Table(
        f"{prefix}meta",
        md,
        Column("key", String(64), primary_key=True),
        Column("value", String(TEXT), nullable=False),
        info={"since": 1},
        **_table_options(),
    )
    opportunities = Table(
        f"{prefix}opportunities",
        md,
        Column("id", String(ID), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("owner", String(ID), nullable=False),
        Column("team", String(ID)),
        Column("name", String(TEXT)),
        Column("account", String(TEXT)),
        Column("industry", String(ID)),
        Column("region", String(ID)),
        Column("amount", ExactDecimal, nullable=False),
        Column("currency", String(3), nullable=False),
        # The currency's decimal places, stored so that SQL rounds each row without a lookup.
        Column("minor_unit", SmallInteger, nullable=False),
        Column("stage", String(ID), nullable=False),
        Column("expected_close", Date),
        Column("created", Date),
        Column("history_length", Integer, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
        Index(f"{prefix}opp_owner", "owner"),
        Index(f"{prefix}opp_team", "team"),
        Index(f"{prefix}opp_stage", "stage"),
        Index(f"{prefix}opp_close", "expected_close"),
        Index(f"{prefix}opp_updated", "updated_at"),
        info={"since": 1},
        **_table_options(),
    )
    stage_changes = Table(
        f"{prefix}stage_changes",
        md,
        Column(
            "opportunity_id",
            String(ID),
            ForeignKey(f"{prefix}opportunities.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("at", UTCDateTime, nullable=False),
        Column("from_stage", String(ID)),
        Column("to_stage", String(ID), nullable=False),
        # Why a deal was lost (version 3): a code of the plan's lost reasons, and a free note.
        Column("reason", String(REASON_MAX)),
        Column("note", Text),
        info={"since": 1},
        **_table_options(),
    )
    events = Table(
        f"{prefix}events",
        md,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("name", String(ID), nullable=False),
        Column("subject_kind", String(64), nullable=False),
        Column("subject_id", String(ID), nullable=False),
        Column("actor", String(ID)),
        Column("at", UTCDateTime, nullable=False),
        Column("data", Text, nullable=False),
        Index(f"{prefix}events_subject", "subject_kind", "subject_id"),
        info={"since": 1},
        **_table_options(),
    )
    documents = {kind.attribute: _document_table(md, prefix, kind) for kind in KINDS}
    return Tables(md, meta, opportunities, stage_changes, events, documents)


def _columns(conn: Connection, table: str) -> set[str]:
    return {c["name"].lower() for c in inspect(conn).get_columns(table)}


def _add_minor_unit(conn: Connection, tables: Tables) -> None:
    """Version 2 rounds forecast sums in SQL by each row's minor unit: add the column to a version-1
    table (if a step that failed midway has not already) and fill it."""
    t = tables.opportunities
    if "minor_unit" not in _columns(conn, t.name):
        conn.execute(
            text(f"ALTER TABLE {t.name} ADD COLUMN minor_unit SMALLINT NOT NULL DEFAULT 2")
        )
    _fill_minor_unit(conn, tables)


def _fill_minor_unit(conn: Connection, tables: Tables) -> None:
    """Set every opportunity's ``minor_unit`` from its currency, where it is not that already (a
    data fill: running it again is harmless, and it finishes what an interrupted run left)."""
    t = tables.opportunities
    for code in list(conn.execute(select(t.c.currency).distinct()).scalars()):
        places = currency_precision(code)
        conn.execute(
            update(t)
            .where(t.c.currency == code, t.c.minor_unit != places)
            .values(minor_unit=places)
        )


def _add_lost_reasons(conn: Connection, tables: Tables) -> None:
    """Version 3 records why a deal was lost on its stage change: add the ``reason`` and ``note``
    columns (empty: the moves stored before had none) to a version-2 table."""
    t = tables.stage_changes
    present = _columns(conn, t.name)
    for name in ("reason", "note"):
        if name not in present:
            kind = t.c[name].type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {t.name} ADD COLUMN {name} {kind}"))


def _is_mysql(conn: Connection) -> bool:
    return conn.dialect.name in ("mysql", "mariadb")


def _use_best_collation(conn: Connection, tables: Tables) -> str:
    """Make every table of ``tables`` be created with the first of :data:`MYSQL_COLLATIONS` the
    server has; return it (MySQL/MariaDB only)."""
    available = set(
        conn.execute(
            text(
                "SELECT COLLATION_NAME FROM information_schema.COLLATIONS "
                "WHERE CHARACTER_SET_NAME = :charset"
            ),
            {"charset": MYSQL_CHARSET},
        ).scalars()
    )
    collation = next((c for c in MYSQL_COLLATIONS if c in available), MYSQL_COLLATIONS[-1])
    for table in tables.metadata.tables.values():
        for dialect in ("mysql", "mariadb"):
            table.dialect_options[dialect]["collate"] = collation
    return collation


def _convert(conn: Connection, tables: Tables, names: list[str], collation: str) -> None:
    """Convert the tables ``names`` to :data:`MYSQL_CHARSET` and ``collation``. MySQL/MariaDB
    refuse to change the collation of a column a foreign key joins, so the stage changes' key to
    the opportunities is dropped first and added again after (also when a conversion that stopped
    midway left it dropped: every part of this is safe to run again)."""
    changes = tables.stage_changes
    (key,) = changes.foreign_key_constraints
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    joined = {changes.name, tables.opportunities.name}
    keys: list[str] = []
    if joined <= existing:
        keys = [
            str(fk["name"])
            for fk in inspector.get_foreign_keys(changes.name)
            if fk["referred_table"] == tables.opportunities.name
        ]
        if joined & set(names):
            for name in keys:
                conn.execute(text(f"ALTER TABLE `{changes.name}` DROP FOREIGN KEY `{name}`"))
            keys = []
    for name in names:
        if name in existing:
            conn.execute(
                text(
                    f"ALTER TABLE `{name}` CONVERT TO CHARACTER SET {MYSQL_CHARSET} "
                    f"COLLATE {collation}"
                )
            )
    if joined <= existing and not keys:
        conn.execute(AddConstraint(key))


def _make_text_exact(conn: Connection, tables: Tables) -> None:
    """On MySQL/MariaDB, convert those of salesflow's tables that are not in :data:`MYSQL_CHARSET`
    and the best binary NO PAD collation (:data:`MYSQL_COLLATIONS`) to them. Converting to a
    stricter collation never makes two stored keys equal. Run before any table is created as well
    (a new table's foreign key needs the collation of the table it refers to), and by version 4."""
    collation = _use_best_collation(conn, tables)
    names = [t.name for t in tables.metadata.sorted_tables]
    stale: set[str] = set()
    for query in (
        "SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN :names",
        "SELECT TABLE_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN :names "
        "AND COLLATION_NAME IS NOT NULL",
    ):
        statement = text(query).bindparams(bindparam("names", expanding=True))
        for name, found in conn.execute(statement, {"names": names}):
            if found != collation:
                stale.add(name)
    _convert(conn, tables, sorted(stale), collation)


def _exact_text(conn: Connection, tables: Tables) -> None:
    """Version 4: on MySQL/MariaDB, text compares exactly (case and trailing spaces count) and any
    character fits, whatever the database's defaults (:func:`_make_text_exact`). Then fill
    ``minor_unit`` again where an upgrade to version 2 interrupted by an older salesflow left it
    unfilled."""
    if _is_mysql(conn):
        _make_text_exact(conn, tables)
    _fill_minor_unit(conn, tables)


# Extra steps of an upgrade to version n, after its new tables are created. Each is idempotent:
# on MySQL/MariaDB a step that failed midway runs again, over what it had done.
UPGRADES: dict[int, Callable[[Connection, Tables], None]] = {
    2: _add_minor_unit,
    3: _add_lost_reasons,
    4: _exact_text,
}


def ddl_is_transactional(dialect: str) -> bool:
    """Whether a transaction can roll back schema changes on ``dialect`` (SQLAlchemy's name):
    SQLite and PostgreSQL can, MySQL and MariaDB commit each ``CREATE``/``ALTER TABLE`` at once."""
    return dialect not in ("mysql", "mariadb")


def _foreign_tables(conn: Connection, candidates: list[Table]) -> dict[str, tuple[str, ...]]:
    """Those of ``candidates`` that exist with columns other than salesflow's: name -> columns."""
    inspector = inspect(conn)
    existing = {name.lower(): name for name in inspector.get_table_names()}
    foreign: dict[str, tuple[str, ...]] = {}
    for table in candidates:
        name = existing.get(table.name.lower())
        if name is None:
            continue
        have = tuple(c["name"] for c in inspector.get_columns(name))
        if {c.lower() for c in have} != {c.name.lower() for c in table.columns}:
            foreign[name] = have
    return foreign


def _refuse_foreign(tables: Tables, foreign: dict[str, tuple[str, ...]]) -> StorageError:
    described = "; ".join(
        f"{name} (columns {', '.join(columns)}; salesflow's are "
        f"{', '.join(c.name for c in tables.metadata.tables[name].columns)})"
        if name in tables.metadata.tables
        else f"{name} (columns {', '.join(columns)})"
        for name, columns in sorted(foreign.items())
    )
    return StorageError(
        f"the database has tables named like salesflow's that were not created by salesflow: "
        f"{described}. salesflow leaves them alone and does not open this database with its "
        f"tables named {tables.meta.name.removesuffix('meta')}*: pass table_prefix= (for example "
        "table_prefix='sf_') to give salesflow's tables names of their own"
    )


def _meta_value(conn: Connection, tables: Tables, key: str) -> str | None:
    meta = tables.meta
    value = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
    return None if value is None else str(value)


def _set_meta(conn: Connection, tables: Tables, key: str, value: str | None) -> None:
    meta = tables.meta
    if value is None:
        conn.execute(meta.delete().where(meta.c.key == key))
    elif _meta_value(conn, tables, key) is None:
        conn.execute(meta.insert().values(key=key, value=value))
    else:
        conn.execute(meta.update().where(meta.c.key == key).values(value=value))


def stored_version(conn: Connection, tables: Tables) -> int | None:
    """The schema version recorded in the database: ``None`` for a database without salesflow's
    tables, 0 for a first creation that has not finished. Tables named like salesflow's whose
    columns are not salesflow's raise :class:`~salesflow.errors.StorageError` naming them."""
    names = {name.lower() for name in inspect(conn).get_table_names()}
    meta = tables.meta
    if meta.name.lower() not in names:
        ours = [t for t in tables.metadata.sorted_tables if t.name.lower() in names]
        if not ours:
            return None
        foreign = _foreign_tables(conn, ours)
        if foreign:
            raise _refuse_foreign(tables, foreign)
        raise StorageError(
            f"the database has salesflow's tables ({', '.join(t.name for t in ours)}) but no "
            f"{meta.name} table, which records their schema version, so salesflow cannot tell "
            f"what they hold: they were not created by salesflow's schema steps, or {meta.name} "
            "was dropped. Restore it from a backup, or pass table_prefix= to start anew beside them"
        )
    foreign = _foreign_tables(conn, [meta])
    if foreign:
        raise _refuse_foreign(tables, foreign)
    value = _meta_value(conn, tables, "schema_version")
    if value is None:
        return 0  # a first creation that failed before it recorded a version: resumed
    try:
        return int(value)
    except ValueError:
        raise StorageError(
            f"{meta.name} records the schema version {value!r}, which is not a number"
        ) from None


def _start(conn: Connection, tables: Tables, found: int | None) -> int:
    """Check what is there before a schema change; return the version to start from."""
    if found is not None and found > SCHEMA_VERSION:
        raise SchemaVersionError(found, SCHEMA_VERSION)
    current = found or 0
    new = [t for t in tables.metadata.sorted_tables if t.info["since"] > current]
    foreign = _foreign_tables(conn, new)
    if foreign:
        raise _refuse_foreign(tables, foreign)
    if _is_mysql(conn):
        _make_text_exact(conn, tables)
    if found is None:
        tables.meta.create(conn, checkfirst=True)
        _set_meta(conn, tables, "schema_version", "0")
    return current


def apply_step(conn: Connection, tables: Tables, version: int) -> None:
    """Bring the schema from ``version - 1`` to ``version``: create the tables introduced in it
    (those that exist are kept) and run its extra step; then record the version."""
    for table in tables.metadata.sorted_tables:
        if table.info["since"] == version:
            table.create(conn, checkfirst=True)
    step = UPGRADES.get(version)
    if step is not None:
        step(conn, tables)
    _set_meta(conn, tables, "schema_version", str(version))


def ensure_schema(conn: Connection, tables: Tables, *, target: int = SCHEMA_VERSION) -> int:
    """Create or upgrade the schema to ``target`` on ``conn``, inside the caller's transaction;
    return the version found before (0 for a fresh database). Where the server commits schema
    changes at once (see :func:`ddl_is_transactional`), use :func:`ensure_schema_stepwise`."""
    found = stored_version(conn, tables)
    if found is not None and found >= target:
        if found > SCHEMA_VERSION:
            raise SchemaVersionError(found, SCHEMA_VERSION)
        return found
    current = _start(conn, tables, found)
    for version in range(current + 1, target + 1):
        apply_step(conn, tables, version)
    return current


@contextmanager
def _schema_lock(conn: Connection, tables: Tables) -> Iterator[None]:
    """Hold the server's named lock for the schema of ``tables`` in this database (MySQL's
    ``GET_LOCK``): a second process opening the database meanwhile waits, then finds it done."""
    name = {"name": f":{tables.meta.name}"}
    with conn.begin():
        got = conn.execute(
            text("SELECT GET_LOCK(LEFT(CONCAT(DATABASE(), :name), 64), :timeout)"),
            {**name, "timeout": SCHEMA_LOCK_TIMEOUT},
        ).scalar()
    if got != 1:
        raise StorageError(
            f"another connection has been changing salesflow's schema ({tables.meta.name}) for "
            f"more than {SCHEMA_LOCK_TIMEOUT} seconds; open the database again when it is done"
        )
    try:
        yield
    finally:
        try:
            with conn.begin():
                conn.execute(text("SELECT RELEASE_LOCK(LEFT(CONCAT(DATABASE(), :name), 64))"), name)
        except Exception:  # pragma: no cover - a dead connection: the server frees its locks
            conn.invalidate()


def ensure_schema_stepwise(
    conn: Connection, tables: Tables, *, target: int = SCHEMA_VERSION, where: str = "the database"
) -> int:
    """Create or upgrade the schema to ``target`` where schema changes commit at once (MySQL,
    MariaDB): one transaction per step, each recording its version when it is done, under a
    server lock. ``conn`` must not be in a transaction (its schema changes would commit it).
    Return the version found before (0 for a fresh database).

    A step that fails raises :class:`~salesflow.errors.StorageError` saying which; the version
    before it stays recorded and the next call completes the step."""
    if conn.in_transaction():
        raise StorageError(
            f"the schema of {where} needs changes, and MySQL/MariaDB commit a schema change at "
            "once, which would commit the transaction this connection is in: open salesflow's "
            "storage once on an Engine, or on a connection outside a transaction, to create or "
            "upgrade its tables"
        )
    with _schema_lock(conn, tables):
        with conn.begin():
            found = stored_version(conn, tables)
            if found is not None and found >= target:
                if found > SCHEMA_VERSION:
                    raise SchemaVersionError(found, SCHEMA_VERSION)
                return found
            current = _start(conn, tables, found)
            interrupted = _meta_value(conn, tables, "schema_step")
        if interrupted is not None:
            log.warning(
                "completing the schema step to version %s of %s, which was interrupted",
                interrupted,
                where,
            )
        for version in range(current + 1, target + 1):
            try:
                with conn.begin():
                    _set_meta(conn, tables, "schema_step", str(version))
                    apply_step(conn, tables, version)
                    _set_meta(conn, tables, "schema_step", None)
            except Exception as error:
                raise StorageError(
                    f"changing the schema of {where} to version {version} failed: {error!r}. "
                    "MySQL/MariaDB commit schema changes at once, so what this step had changed "
                    f"stays; {tables.meta.name} still records version {version - 1}, and the "
                    "next open completes the step (its tables and columns are kept, its data "
                    "fills run again) once the cause is fixed"
                ) from error
    return current
