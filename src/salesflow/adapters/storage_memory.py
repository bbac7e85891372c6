"""The in-memory backend (``memory://``): the reference model every other backend is checked against.

It is :class:`~salesflow.storage.BaseStorage` over dicts: the base gives it the whole port
(repositories, revisions, unique keys, the port's invariants, units of work with savepoints undone
from the base's journal, one unit of work at a time), and this module only keeps records, and which
records hold each value of a unique key, so that checking one reads those alone. Records hold the
aggregates themselves (they are immutable), not their JSON. Nothing survives the process.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from salesflow.domain.events import Event
from salesflow.errors import ValidationError
from salesflow.plugins.hookspecs import StorageBackend, hookimpl
from salesflow.storage.base import BaseStorage, Clock, Record
from salesflow.storage.kinds import KINDS, DocumentKind

__all__ = ["MemoryStorage", "salesflow_register_storage_backends"]


class MemoryStorage(BaseStorage):
    """In-process storage for tests, notebooks and the conformance suite's reference model.

    Args:
        url: ``"memory://"``.
        clock: what "now" is for ``updated_at`` (the UTC wall clock by default).
    """

    def __init__(self, url: str = "memory://", *, clock: Clock | None = None) -> None:
        if url.split("://", 1)[0] != "memory" or url.split("://", 1)[1] not in ("", "/"):
            raise ValidationError("url", url, "'memory://'")
        super().__init__("memory://", clock=clock)
        self._tables: dict[str, dict[str, Record]] = {}
        self._holders: dict[tuple[str, str, str], set[str]] = {}
        """The keys of the records holding each value of a unique key's index, by (kind, index
        name, value): every add checks its unique keys, and scanning the whole kind each time
        would make a bulk add (a call import) quadratic."""
        self._events: list[Event] = []
        self._subjects: dict[tuple[str, str], list[Event]] = {}
        """Each subject's (kind, id) events, for the rule that they never go back."""
        self._sequence = itertools.count(1)

    # -- records -------------------------------------------------------------------------------------

    def _encode(self, kind: DocumentKind, item: Any) -> Any:
        return item

    def _decode(self, kind: DocumentKind, body: Any) -> Any:
        return body

    def _read(self, kind: str, key: str) -> Record | None:
        return self._tables.get(kind, {}).get(key)

    def _write(self, kind: str, record: Record, expected: int | None) -> bool:
        table = self._tables.setdefault(kind, {})
        stored = table.get(record.key)
        if (None if stored is None else stored.revision) != expected:
            return False
        if stored is not None:
            self._hold(kind, stored, False)
        table[record.key] = record
        self._hold(kind, record, True)
        return True

    def _delete(self, kind: str, key: str, expected: int) -> bool:
        table = self._tables.get(kind, {})
        stored = table.get(key)
        if stored is None or stored.revision != expected:
            return False
        del table[key]
        self._hold(kind, stored, False)
        return True

    def _hold(self, kind: str, record: Record, held: bool) -> None:
        """Note (or forget) which unique-key values ``record`` holds (text values only)."""
        for index in _UNIQUE.get(kind, ()):
            value = index.value(record.body)  # the body is the aggregate itself here
            if isinstance(value, str):
                keys = self._holders.setdefault((kind, index.name, value), set())
                if held:
                    keys.add(record.key)
                else:
                    keys.discard(record.key)

    def _scan(self, kind: str, filters: Mapping[str, Any]) -> Iterable[Record]:
        table = self._tables.get(kind, {})
        # A plain value: only the records holding it can match (the fewest of them are read).
        held = [
            self._holders.get((kind, index.name, value), set())
            for index in _UNIQUE.get(kind, ())
            if isinstance(value := filters.get(index.name), str)
        ]
        if held:
            return [table[key] for key in min(held, key=len)]
        return list(table.values())

    # -- events --------------------------------------------------------------------------------------

    def _append_event(self, event: Event) -> Event:
        stored = event.numbered(next(self._sequence))
        self._events.append(stored)
        self._subjects.setdefault((event.subject_kind, event.subject_id), []).append(stored)
        return stored

    def _scan_events(
        self,
        *,
        subject_kind: str | None,
        subject_id: str | None,
        name: str | None,
        after: int | None,
    ) -> Iterable[Event]:
        if subject_kind is not None and subject_id is not None:
            return list(self._subjects.get((subject_kind, subject_id), ()))
        return list(self._events)

    def _remove_event(self, seq: int) -> None:
        # Rolling back removes the newest events first: search from the end.
        for i in range(len(self._events) - 1, -1, -1):
            event = self._events[i]
            if event.seq == seq:
                del self._events[i]
                self._subjects[(event.subject_kind, event.subject_id)].remove(event)
                return

    def _last_event_at(self, subject_kind: str, subject_id: str) -> datetime | None:
        events = self._subjects.get((subject_kind, subject_id))
        return max(event.at for event in events) if events else None

    # -- the port ------------------------------------------------------------------------------------

    def destroy(self) -> None:
        """Forget every record and event (the storage stays open, and empty)."""
        with self._lock:
            self._tables.clear()
            self._holders.clear()
            self._events.clear()
            self._subjects.clear()


_UNIQUE = {
    kind.attribute: [kind.index(name) for name in dict.fromkeys(n for k in kind.unique for n in k)]
    for kind in KINDS
}
"""Per kind, the indexes of its unique keys."""


@hookimpl(trylast=True)
def salesflow_register_storage_backends() -> list[StorageBackend]:
    """The ``memory://`` backend."""
    return [
        StorageBackend(
            name="memory",
            schemes=("memory",),
            factory=MemoryStorage,
            description="in-process, nothing persists; the reference model",
        )
    ]
