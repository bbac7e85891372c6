"""Document repositories of the SQL storage: one table per aggregate kind.

A row holds the aggregate as a JSON document (:mod:`salesflow.storage.codec`), its storage
revision, when it was last written, and one column per indexed field of its kind
(:mod:`salesflow.storage.kinds`). Queries page with a keyset over (order column, id), so no cursor
is held open and memory stays flat. Writes keep the port's invariants through the kind's rules
(:mod:`salesflow.storage.invariants`), as every backend does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, and_, bindparam, exc, func, or_, select

from salesflow.errors import (
    ConcurrencyError,
    InvalidTypeError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from salesflow.ports import Between
from salesflow.storage import codec
from salesflow.storage.kinds import DocumentKind
from salesflow.storage.queries import check_filters

if TYPE_CHECKING:
    from salesflow.adapters.sql.storage import SqlStorage

__all__ = ["SqlDocuments"]

_PAGE = 1_000


class SqlDocuments:
    """The repository of one document kind, on one unit of work's connection."""

    def __init__(
        self,
        storage: SqlStorage,
        conn: Connection,
        kind: DocumentKind,
        revisions: dict[tuple[str, str], int],
        loaded: dict[tuple[str, str], tuple[int, Any]] | None = None,
    ) -> None:
        self._storage = storage
        self._conn = conn
        self._kind = kind
        self._table: Table = storage.tables.documents[kind.attribute]
        self._cls = kind.load_type()
        self._seen = revisions
        # What this unit of work read or wrote, by revision: a save checks its rule against the
        # stored document without reading it again (a revision names one body: every write bumps
        # it, and the UPDATE is guarded by it).
        self._loaded = {} if loaded is None else loaded

    # -- rows --------------------------------------------------------------------------------------

    def _check(self, item: Any) -> str:
        if not isinstance(item, self._cls):
            raise InvalidTypeError(self._kind.name, item, f"a {self._cls.__name__}")
        return self._kind.key(item)

    def _values(self, item: Any, key: str, revision: int) -> dict[str, Any]:
        values: dict[str, Any] = {
            "id": key,
            "revision": revision,
            "updated_at": self._storage.clock(),
            "body": codec.dumps(item),
        }
        for index in self._kind.indexes:
            values[f"ix_{index.name}"] = index.value(item)
        return values

    def _load(self, body: str) -> Any:
        try:
            return codec.loads(body, self._cls)
        except Exception as error:
            raise StorageError(
                f"a stored {self._kind.name} cannot be read back: {error!r}"
            ) from error

    def _statement(self, name: str, build: Any) -> Any:
        return self._storage.statement((self._kind.attribute, name), build)

    def _revision(self, key: str) -> int | None:
        t = self._table
        query = self._statement(
            "revision", lambda: select(t.c.revision).where(t.c.id == bindparam("key"))
        )
        return self._conn.execute(query, {"key": key}).scalar()

    def _stored(self, key: str, expected: int) -> Any:
        """The stored aggregate ``key``, which must still be at revision ``expected``."""
        known = self._loaded.get((self._kind.attribute, key))
        if known is not None and known[0] == expected:
            return known[1]
        t = self._table
        query = self._statement(
            "find", lambda: select(t.c.revision, t.c.body).where(t.c.id == bindparam("key"))
        )
        try:
            row = self._conn.execute(query, {"key": key}).first()
        except exc.SQLAlchemyError as error:
            raise StorageError(f"reading a {self._kind.name} failed: {error}") from error
        if row is None or row.revision != expected:
            raise ConcurrencyError(
                self._kind.name, key, expected, None if row is None else row.revision
            )
        return self._load(row.body)

    def _clash(self, item: Any, key: str) -> tuple[str, int] | None:
        """An other row with the same unique key as ``item``, if any."""
        t = self._table
        for names in self._kind.unique:
            clauses = [t.c[f"ix_{n}"] == self._kind.index(n).value(item) for n in names]
            row = self._conn.execute(
                select(t.c.id, t.c.revision).where(t.c.id != key, *clauses)
            ).first()
            if row is not None:
                return row.id, row.revision
        return None

    # -- reads -------------------------------------------------------------------------------------

    def find(self, id: str) -> Any:
        """The aggregate ``id``, or ``None``."""
        if not isinstance(id, str):
            raise InvalidTypeError("id", id, "a string")
        t = self._table
        try:
            query = self._statement(
                "find", lambda: select(t.c.revision, t.c.body).where(t.c.id == bindparam("key"))
            )
            row = self._conn.execute(query, {"key": id}).first()
        except exc.SQLAlchemyError as error:
            raise StorageError(f"reading a {self._kind.name} failed: {error}") from error
        if row is None:
            return None
        self._seen[(self._kind.attribute, id)] = row.revision
        found = self._load(row.body)
        self._loaded[(self._kind.attribute, id)] = (row.revision, found)
        return found

    def get(self, id: str) -> Any:
        """The aggregate ``id``; :class:`~salesflow.errors.NotFoundError` if there is none."""
        found = self.find(id)
        if found is None:
            raise NotFoundError(self._kind.name, id)
        return found

    def _where(self, filters: dict[str, Any]) -> list[Any]:
        t = self._table
        clauses: list[Any] = []
        for name, wanted in filters.items():
            column = t.c[f"ix_{name}"]
            if isinstance(wanted, Between):
                if wanted.low is not None:
                    clauses.append(column >= wanted.low)
                if wanted.high is not None:
                    clauses.append(column < wanted.high)
                clauses.append(column.is_not(None))
            elif isinstance(wanted, list | tuple | set | frozenset):
                clauses.append(column.in_([_plain(v) for v in wanted]))
            elif wanted is None:
                clauses.append(column.is_(None))
            else:
                clauses.append(column == _plain(wanted))
        return clauses

    def query(self, *, order_by: str | None = None, **filters: Any) -> Iterator[Any]:
        """Stream the aggregates matching ``filters``, a page at a time."""
        check_filters(self._kind, filters, order_by)
        t = self._table
        clauses = self._where(filters)
        if order_by is None:
            yield from self._pages(clauses, None)
            return
        column = t.c[f"ix_{order_by}"]
        # Rows with a value in (value, id) order, then those without one by id.
        yield from self._pages([*clauses, column.is_not(None)], column)
        yield from self._pages([*clauses, column.is_(None)], None)

    def _pages(self, clauses: list[Any], column: Any) -> Iterator[Any]:
        t = self._table
        last: tuple[Any, str] | None = None
        order = [t.c.id] if column is None else [column, t.c.id]
        while True:
            page = (
                select(t.c.body, t.c.revision, *order).where(*clauses).order_by(*order).limit(_PAGE)
            )
            if last is not None:
                value, key = last
                if column is None:
                    page = page.where(t.c.id > key)
                else:
                    page = page.where(or_(column > value, and_(column == value, t.c.id > key)))
            try:
                rows = self._conn.execute(page).all()
            except exc.SQLAlchemyError as error:
                raise StorageError(f"querying {self._kind.attribute} failed: {error}") from error
            for row in rows:
                self._seen[(self._kind.attribute, row.id)] = row.revision
                yield self._load(row.body)
            if len(rows) < _PAGE:
                return
            tail = rows[-1]
            last = (None, tail.id) if column is None else (tail[2], tail.id)

    def count(self, **filters: Any) -> int:
        """How many aggregates match ``filters``."""
        check_filters(self._kind, filters)
        t = self._table
        return int(
            self._conn.execute(
                select(func.count()).select_from(t).where(*self._where(filters))
            ).scalar_one()
        )

    def ids(self, **filters: Any) -> Iterator[str]:
        """The ids of the aggregates matching ``filters``, in id order, without decoding them."""
        check_filters(self._kind, filters)
        t = self._table
        last: str | None = None
        while True:
            page = select(t.c.id).where(*self._where(filters)).order_by(t.c.id).limit(_PAGE * 10)
            if last is not None:
                page = page.where(t.c.id > last)
            keys = list(self._conn.execute(page).scalars())
            yield from keys
            if len(keys) < _PAGE * 10:
                return
            last = keys[-1]

    # -- writes ------------------------------------------------------------------------------------

    def add(self, item: Any) -> Any:
        """Store a new aggregate at revision 1 (if the kind's add rule allows it)."""
        key = self._check(item)
        if self._kind.add_rule is not None:
            self._kind.add_rule(item)
        stored = self._revision(key)
        clash = (key, stored) if stored is not None else self._clash(item, key)
        if clash is not None:
            raise ConcurrencyError(self._kind.name, clash[0], 0, clash[1])
        try:
            self._conn.execute(self._table.insert(), [self._values(item, key, 1)])
        except exc.IntegrityError as error:
            raise ConcurrencyError(self._kind.name, key, 0, None) from error
        except exc.SQLAlchemyError as error:
            raise StorageError(f"adding a {self._kind.name} failed: {error}") from error
        self._seen[(self._kind.attribute, key)] = 1
        return item

    def add_many(self, items: Iterable[Any], *, batch_size: int = 5_000) -> int:
        """Store many new aggregates in batches; a duplicate id or unique key raises
        :class:`~salesflow.errors.ConcurrencyError` naming it."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError("batch_size", batch_size, "a positive int")
        count = 0
        batch: list[dict[str, Any]] = []
        rule = self._kind.add_rule
        for item in items:
            key = self._check(item)
            if rule is not None:
                rule(item)
            batch.append(self._values(item, key, 1))
            if len(batch) >= batch_size:
                count += self._insert(batch)
                batch = []
        if batch:
            count += self._insert(batch)
        return count

    def _insert(self, rows: list[dict[str, Any]]) -> int:
        keys = [row["id"] for row in rows]
        seen: set[str] = set()
        for key in keys:
            if key in seen:
                raise ConcurrencyError(self._kind.name, key, 0, None)
            seen.add(key)
        conn = self._conn
        dbapi = self._storage.dbapi
        try:
            with conn.begin_nested():  # keeps the transaction usable to name the duplicate
                self._storage.bulk_insert(conn, self._table, rows)
        except (exc.IntegrityError, dbapi.IntegrityError) as error:
            t = self._table
            existing = conn.execute(select(t.c.id, t.c.revision).where(t.c.id.in_(keys))).first()
            if existing is not None:
                raise ConcurrencyError(
                    self._kind.name, existing.id, 0, existing.revision
                ) from error
            raise ConcurrencyError(
                self._kind.name, f"one of {keys[0]}..{keys[-1]}", 0, None
            ) from error
        except (exc.SQLAlchemyError, dbapi.Error) as error:
            raise StorageError(f"bulk insert of {self._kind.attribute} failed: {error}") from error
        for key in keys:
            self._seen[(self._kind.attribute, key)] = 1
        return len(rows)

    def _expected(self, key: str) -> int:
        expected = self._seen.get((self._kind.attribute, key))
        if expected is None:
            raise ValidationError(
                self._kind.name,
                key,
                "an aggregate read in this unit of work (get it before saving)",
            )
        return expected

    def save(self, item: Any) -> Any:
        """Store a change if the stored revision is still the one read (and the kind's save rule
        allows the change from what is stored)."""
        key = self._check(item)
        expected = self._expected(key)
        if self._kind.save_rule is not None:
            self._kind.save_rule(self._stored(key, expected), item)
        clash = self._clash(item, key)
        if clash is not None:
            raise ConcurrencyError(self._kind.name, clash[0], 0, clash[1])
        t = self._table
        values = self._values(item, key, expected + 1)
        del values["id"]
        try:
            update = self._statement(
                "update",
                lambda: t.update().where(
                    t.c.id == bindparam("key"), t.c.revision == bindparam("expected")
                ),
            )
            updated = self._conn.execute(update, {**values, "key": key, "expected": expected})
        except exc.SQLAlchemyError as error:
            raise StorageError(f"saving a {self._kind.name} failed: {error}") from error
        if updated.rowcount != 1:
            raise ConcurrencyError(self._kind.name, key, expected, self._revision(key))
        self._seen[(self._kind.attribute, key)] = expected + 1
        self._loaded[(self._kind.attribute, key)] = (expected + 1, item)
        return item

    def delete(self, id: str) -> None:
        """Delete an aggregate read in this unit of work, if nobody saved it since."""
        expected = self._expected(id)
        if self._kind.delete_rule is not None:
            self._kind.delete_rule(self._stored(id, expected))
        t = self._table
        deleted = self._conn.execute(t.delete().where(t.c.id == id, t.c.revision == expected))
        if deleted.rowcount != 1:
            raise ConcurrencyError(self._kind.name, id, expected, self._revision(id))
        del self._seen[(self._kind.attribute, id)]


def _plain(value: Any) -> Any:
    # Enums are indexed by their text value (see Index.value).
    from enum import Enum

    return value.value if isinstance(value, Enum) else value
