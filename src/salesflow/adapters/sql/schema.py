"""The SQL schema, its version, and the upgrades between versions.

Every table carries ``info={"since": n}``: the schema version that introduced it. Opening a
database creates a fresh schema at :data:`SCHEMA_VERSION`, upgrades an older one inside one
transaction (creating the tables introduced since, then running the version's extra steps), and
refuses a newer one with :class:`~salesflow.errors.SchemaVersionError`.

Table names start with a prefix (``salesflow_`` by default) so that salesflow can live in an
embedding CRM's own database.
"""

from __future__ import annotations

from collections.abc import Callable
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
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql

from salesflow.adapters.kinds import KINDS, DocumentKind
from salesflow.adapters.sql.types import ExactDecimal, UTCDateTime
from salesflow.domain.money import currency_precision
from salesflow.domain.stages import REASON_MAX
from salesflow.errors import SchemaVersionError, StorageError

__all__ = ["SCHEMA_VERSION", "Tables", "build_tables", "ensure_schema"]

SCHEMA_VERSION = 3
"""The schema version this salesflow writes: 1 had opportunities and events; 2 added the document
tables (catalog, quotes, approval requests, ...) and the opportunities' ``minor_unit``; 3 added the
lost reason and note of a stage change (``reason``, ``note``)."""

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
    return Table(name, md, *columns, info={"since": kind.since})


def build_tables(prefix: str = "salesflow_") -> Tables:
    """The table definitions for ``prefix``."""
    md = MetaData()
    meta = Table(
        f"{prefix}meta",
        md,
        Column("key", String(64), primary_key=True),
        Column("value", String(TEXT), nullable=False),
        info={"since": 1},
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
    )
    documents = {kind.attribute: _document_table(md, prefix, kind) for kind in KINDS}
    return Tables(md, meta, opportunities, stage_changes, events, documents)


def _add_minor_unit(conn: Connection, tables: Tables) -> None:
    """Version 2 rounds forecast sums in SQL by each row's minor unit: add and fill the column in
    a version-1 table."""
    t = tables.opportunities
    if "minor_unit" in {c["name"] for c in inspect(conn).get_columns(t.name)}:
        return
    conn.execute(text(f"ALTER TABLE {t.name} ADD COLUMN minor_unit SMALLINT NOT NULL DEFAULT 2"))
    odd: dict[str, int] = {}
    for (code,) in conn.execute(select(t.c.currency).distinct()):
        places = currency_precision(code)
        if places != 2:
            odd[code] = places
    for code, places in odd.items():
        conn.execute(update(t).where(t.c.currency == code).values(minor_unit=places))


def _add_lost_reasons(conn: Connection, tables: Tables) -> None:
    """Version 3 records why a deal was lost on its stage change: add the ``reason`` and ``note``
    columns (empty: the moves stored before had none) to a version-2 table."""
    t = tables.stage_changes
    present = {c["name"] for c in inspect(conn).get_columns(t.name)}
    for name in ("reason", "note"):
        if name not in present:
            kind = t.c[name].type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {t.name} ADD COLUMN {name} {kind}"))


# Extra steps of an upgrade to version n, after its new tables are created.
UPGRADES: dict[int, Callable[[Connection, Tables], None]] = {
    2: _add_minor_unit,
    3: _add_lost_reasons,
}


def stored_version(conn: Connection, tables: Tables) -> int | None:
    """The schema version recorded in the database, or ``None`` for a database without salesflow."""
    names = set(inspect(conn).get_table_names())
    if tables.meta.name not in names:
        ours = {t.name for t in tables.metadata.sorted_tables} & names
        if ours:
            raise StorageError(
                f"the database has salesflow tables ({', '.join(sorted(ours))}) but no "
                f"{tables.meta.name} table: it was not created by salesflow"
            )
        return None
    value = conn.execute(
        select(tables.meta.c.value).where(tables.meta.c.key == "schema_version")
    ).scalar()
    if value is None:
        raise StorageError(f"{tables.meta.name} has no schema_version")
    return int(value)


def ensure_schema(conn: Connection, tables: Tables, *, target: int = SCHEMA_VERSION) -> int:
    """Create or upgrade the schema to ``target`` on ``conn`` (inside the caller's transaction);
    return the version found before (0 for a fresh database)."""
    found = stored_version(conn, tables)
    if found is not None and found > SCHEMA_VERSION:
        raise SchemaVersionError(found, SCHEMA_VERSION)
    current = 0 if found is None else found
    if current >= target:
        return current
    for version in range(current + 1, target + 1):
        for table in tables.metadata.sorted_tables:
            if table.info["since"] == version:
                table.create(conn, checkfirst=True)
        step = UPGRADES.get(version)
        if step is not None:
            step(conn, tables)
    meta = tables.meta
    if current == 0:
        conn.execute(meta.insert().values(key="schema_version", value=str(target)))
    else:
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(target)))
    return current
