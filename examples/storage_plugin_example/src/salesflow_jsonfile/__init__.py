"""An example salesflow storage backend: every record and event in one JSON file.

``salesflow.open("jsonfile:///path/to/crm.json")``. Built on :class:`salesflow.storage.BaseStorage`:
this module implements the seven primitives on a dict and the transaction hooks; the base derives
the repositories, revision checks, unique keys, the port's invariants and savepoints. A unit of
work takes an exclusive lock (a ``.lock`` file beside the store, so processes queue), loads the
file, and on commit writes a new file and renames it over the old one: a crash leaves the last
committed state, and a failed unit of work simply drops what it loaded.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import attrs

import salesflow
from salesflow.errors import StorageError, ValidationError
from salesflow.storage import BaseStorage, Record

__all__ = ["JsonFileStorage", "salesflow_register_storage_backends"]


def _empty() -> dict[str, Any]:
    return {"records": {}, "events": [], "next_seq": 1}


class JsonFileStorage(BaseStorage):
    """Storage in one JSON file: ``jsonfile:///absolute/path.json`` (or ``jsonfile://relative``)."""

    def __init__(self, url: str, *, clock: Callable[[], datetime] | None = None) -> None:
        scheme, _, path = url.partition("://")
        if scheme != "jsonfile" or not path:
            raise ValidationError("url", url, "jsonfile:///path/to/store.json")
        super().__init__(url, clock=clock)
        self.path = Path(path)
        self._state: dict[str, Any] = _empty()
        self._lock_file: IO[str] | None = None

    # -- transactions: lock and load, then write atomically (or drop) --------------------------------

    def _begin(self) -> None:
        try:
            self._lock_file = open(f"{self.path}.lock", "a")  # noqa: SIM115 (held until the end)
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            exists = self.path.exists()
            self._state = json.loads(self.path.read_text("utf-8")) if exists else _empty()
        except (OSError, ValueError) as error:
            self._release()
            raise StorageError(f"opening {self.path} failed: {error}") from error

    def _commit(self) -> None:
        temporary = Path(f"{self.path}.tmp")
        try:
            temporary.write_text(json.dumps(self._state, ensure_ascii=False), "utf-8")
            os.replace(temporary, self.path)
        except OSError as error:
            raise StorageError(f"writing {self.path} failed: {error}") from error
        finally:
            self._release()

    def _rollback(self) -> None:
        self._release()  # nothing was written: the file still holds the last commit

    def _release(self) -> None:
        self._state = _empty()
        if self._lock_file is not None:
            self._lock_file.close()  # which unlocks it
            self._lock_file = None

    # -- records: [revision, body, updated_at] by kind and key ---------------------------------------

    def _table(self, kind: str) -> dict[str, list[Any]]:
        table: dict[str, list[Any]] = self._state["records"].setdefault(kind, {})
        return table

    def _read(self, kind: str, key: str) -> Record | None:
        row = self._table(kind).get(key)
        return None if row is None else _record(key, row)

    def _write(self, kind: str, record: Record, expected: int | None) -> bool:
        table = self._table(kind)
        stored = table.get(record.key)
        if (None if stored is None else stored[0]) != expected:
            return False
        table[record.key] = [record.revision, record.body, record.updated_at.isoformat()]
        return True

    def _delete(self, kind: str, key: str, expected: int) -> bool:
        table = self._table(kind)
        if key not in table or table[key][0] != expected:
            return False
        del table[key]
        return True

    def _scan(self, kind: str, filters: Mapping[str, Any]) -> Iterable[Record]:
        # No indexed values are kept (Record.indexes is None): the base decodes to filter.
        return [_record(key, row) for key, row in self._table(kind).items()]

    # -- the event log: a list of Event.to_dict() --------------------------------------------------

    def _append_event(self, event: salesflow.Event) -> salesflow.Event:
        stored = attrs.evolve(event, seq=self._state["next_seq"])
        self._state["next_seq"] += 1
        self._state["events"].append(stored.to_dict())
        return stored

    def _scan_events(
        self,
        *,
        subject_kind: str | None,
        subject_id: str | None,
        name: str | None,
        after: int | None,
    ) -> Iterable[salesflow.Event]:
        return [_event(row) for row in self._state["events"]]

    def _remove_event(self, seq: int) -> None:
        self._state["events"] = [row for row in self._state["events"] if row["seq"] != seq]


def _record(key: str, row: list[Any]) -> Record:
    revision, body, updated_at = row
    return Record(
        key=key, revision=revision, body=body, updated_at=datetime.fromisoformat(updated_at)
    )


def _event(row: dict[str, Any]) -> salesflow.Event:
    return salesflow.Event(**{**row, "at": datetime.fromisoformat(row["at"])})


@salesflow.hookimpl
def salesflow_register_storage_backends() -> list[salesflow.StorageBackend]:
    """The ``jsonfile://`` backend."""
    return [
        salesflow.StorageBackend(
            name="jsonfile",
            schemes=("jsonfile",),
            factory=JsonFileStorage,
            description="one JSON file (an example of salesflow.storage.BaseStorage)",
        )
    ]
