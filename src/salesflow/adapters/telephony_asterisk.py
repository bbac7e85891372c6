"""The ``asterisk-csv`` call source: Asterisk's cdr-csv call detail records (``Master.csv``).

Asterisk's ``cdr_csv`` module writes one line per call leg, **without a header row**, in the
columns of :data:`ASTERISK_COLUMNS`::

    "","1001","13800138000","from-internal","Li Wei <1001>","PJSIP/1001-00000012",
    "PJSIP/trunk-00000013","Dial","PJSIP/13800138000@trunk,60","2026-11-24 09:30:05",
    "2026-11-24 09:30:17","2026-11-24 09:34:41",276,264,"ANSWERED","DOCUMENTATION",
    "1763947805.18",""

How a row becomes a :class:`~salesflow.domain.calls.CallRecord` (decisions pinned by tests):

* ``external_id`` is ``uniqueid``. Asterisk can log several legs of one channel under the same
  uniqueid (a queue ringing agents in turn): the second distinct row with a uniqueid gets
  ``"<uniqueid>#2"``, the third ``"#3"``, numbered in file order, which an append-only log keeps
  stable. A row repeated exactly (a file concatenated twice) is the same call and is skipped
  (counted in :attr:`~salesflow.adapters.telephony.CallSourceBase.duplicates`).
* ``started_at`` is ``start``, a naive local time in the CSV, read in the configured ``timezone``
  (``"UTC"`` when cdr.conf has ``usegmtime=yes``). In the hour repeated when clocks go back, the
  first occurrence is taken (``fold=0``).
* ``talk_seconds`` is ``billsec``; ``ring_seconds`` is ``duration - billsec``. Absurd values are
  malformed rows: ``duration`` or ``billsec`` that is not whole seconds from 0 to a day
  (:data:`~salesflow.adapters.telephony.MAX_CALL_SECONDS`), ``billsec`` above ``duration``, and
  an ``end`` (when the file has the column and the cell is not blank) before ``start``.
* ``disposition``: ``ANSWERED`` -> answered, ``NO ANSWER`` -> no_answer, ``BUSY`` -> busy,
  ``FAILED`` and ``CONGESTION`` -> failed.
* ``direction``: inbound when ``dcontext`` is one of ``inbound_contexts`` (the contexts where calls
  from the trunk arrive), outbound otherwise; a ``direction`` column or callable overrides this.
* ``from_number`` / ``to_number`` are ``src`` / ``dst`` as logged (normalised later, when linked).
* ``owner``: by default the ``accountcode`` (Asterisk's per-device billing code, commonly set to the
  user); with ``owner_key="channel"``, the device in the rep's channel (``PJSIP/1001-00000012`` ->
  ``1001``: ``channel`` of an outbound call, ``dstchannel`` of an inbound one). ``owners`` maps that
  key to the CRM's user id (a key it does not list gives no owner), or is a callable that gets the
  row's fields.
* ``recording``, ``task_id``, ``opportunity_id``, ``contact_id``, ``owner`` and ``direction`` are read
  from columns when ``column_mapping`` names them (e.g. ``{"recording": "userfield"}`` when the
  dialplan stores MixMonitor's file name there).
* Recordings: with ``monitor_dir`` (Asterisk's monitor folder, ``/var/spool/asterisk/monitor``),
  the ``recording`` reference is the file's path in that folder as the row gives it, and
  :meth:`AsteriskCsvSource.fetch_recording` reads it from there. A reference that leaves the
  folder (``../``, an absolute path elsewhere, a symbolic link out of it) is refused.

A customised CSV (cdr_custom, FreePBX exports) is read through ``column_mapping`` (field name ->
0-based column position, or column name) and, when its first line names the columns,
``header=True``.

Text follows the domain's rules (:mod:`salesflow.domain.checks`: no NUL, no lone surrogate, the
length limit of each field), and a CSV field longer than
:data:`~salesflow.tabular.CSV_FIELD_LIMIT` is a malformed row at its line: like any other bad row,
it is refused with ``on_error="raise"`` and reported in ``errors`` with ``on_error="skip"``. The
limit is set around each row read, not for the whole process (see :func:`salesflow.tabular.next_row`).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO, Any, Literal

from salesflow.adapters.telephony import MAX_CALL_SECONDS, CallSourceBase, check_seconds
from salesflow.domain.calls import CallRecord, Direction, Disposition, _source_record
from salesflow.errors import InvalidTypeError, NotFoundError, ValidationError
from salesflow.tabular import csv_error, next_row

__all__ = [
    "ASTERISK_COLUMNS",
    "DEFAULT_INBOUND_CONTEXTS",
    "EXTRA_FIELDS",
    "AsteriskCsvSource",
    "OwnerRule",
]

ASTERISK_COLUMNS: tuple[str, ...] = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
)
"""The columns of Asterisk's cdr-csv ``Master.csv``, in order."""

EXTRA_FIELDS: tuple[str, ...] = (
    "recording",
    "task_id",
    "opportunity_id",
    "contact_id",
    "owner",
    "direction",
)
"""Fields a customised CSV may carry; ``column_mapping`` says where."""

DEFAULT_INBOUND_CONTEXTS: frozenset[str] = frozenset(
    {
        "from-trunk",
        "from-pstn",
        "from-external",
        "from-did",
        "from-did-direct",
        "inbound",
        "incoming",
    }
)
"""Dialplan contexts in which calls from outside arrive (stock Asterisk and FreePBX names)."""

OwnerRule = Mapping[str, str] | Callable[[Mapping[str, str]], str | None] | None
"""How a row's owner is found: ``None`` (the key itself), a mapping key -> user id, or a callable
that gets the row's fields (name -> text) and returns a user id or ``None``."""

_DISPOSITIONS = {
    "ANSWERED": Disposition.ANSWERED,
    "NO ANSWER": Disposition.NO_ANSWER,
    "BUSY": Disposition.BUSY,
    "FAILED": Disposition.FAILED,
    "CONGESTION": Disposition.FAILED,
}
_DIRECTIONS = {
    "inbound": Direction.INBOUND,
    "in": Direction.INBOUND,
    "incoming": Direction.INBOUND,
    "outbound": Direction.OUTBOUND,
    "out": Direction.OUTBOUND,
    "outgoing": Direction.OUTBOUND,
}
_KNOWN_FIELDS = frozenset(ASTERISK_COLUMNS) | frozenset(EXTRA_FIELDS)
_ALWAYS_NEEDED = ("src", "dst", "start", "duration", "billsec", "disposition", "uniqueid")


def _to_timezone(value: object) -> tzinfo:
    if isinstance(value, tzinfo):
        return value
    if not isinstance(value, str):
        raise InvalidTypeError(
            "timezone", value, "an IANA zone name such as 'Asia/Shanghai' or a tzinfo"
        )
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "timezone", value, "an IANA zone name such as 'Asia/Shanghai'"
        ) from None


def _peer(channel: str) -> str:
    """The device of a channel name: ``PJSIP/1001-00000012`` -> ``1001``,
    ``Local/200@from-internal-0000001a;1`` -> ``200``."""
    text = channel.strip()
    if "/" not in text:
        return ""
    resource = text.split("/", 1)[1].split(";", 1)[0]
    if "@" in resource:
        return resource.split("@", 1)[0]
    head, _, tail = resource.rpartition("-")
    return head if head and tail else resource


class AsteriskCsvSource(CallSourceBase):
    """Calls from an Asterisk cdr-csv file (see the module documentation for the mapping).

    Args:
        path: the CSV file: a path, or an open text file (read from its current position; a file
            that cannot seek is read into memory once, so that every fetch sees the same rows).
        timezone: the zone of the CSV's times (an IANA name or a ``tzinfo``); required, because the
            file does not say.
        column_mapping: field name -> 0-based column position or column name, for customised
            layouts and for the extra fields (:data:`EXTRA_FIELDS`).
        header: the first line names the columns (column names in ``column_mapping`` refer to it).
        owner_key: ``"accountcode"`` or ``"channel"``: what identifies the rep in a row.
        owners: how the key becomes an owner (see :data:`OwnerRule`).
        inbound_contexts: the ``dcontext`` values of inbound calls.
        direction: a callable row fields -> ``"inbound"``/``"outbound"`` that overrides
            ``inbound_contexts``.
        encoding: the file's encoding (undecodable bytes become U+FFFD, so a stray byte in a
            caller name never loses a call).
        name: the source name (default ``"asterisk-csv"``), to tell several PBXs apart.
        monitor_dir: Asterisk's monitor folder, where the recordings the ``recording`` column
            names are (see :meth:`fetch_recording`).
    """

    name = "asterisk-csv"

    def __init__(
        self,
        path: str | os.PathLike[str] | IO[str],
        *,
        timezone: str | tzinfo,
        column_mapping: Mapping[str, int | str] | None = None,
        header: bool = False,
        owner_key: Literal["accountcode", "channel"] = "accountcode",
        owners: OwnerRule = None,
        inbound_contexts: Iterable[str] = DEFAULT_INBOUND_CONTEXTS,
        direction: Callable[[Mapping[str, str]], str] | None = None,
        encoding: str = "utf-8",
        name: str | None = None,
        monitor_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(name=name)
        if monitor_dir is not None and not isinstance(monitor_dir, str | os.PathLike):
            raise InvalidTypeError("monitor_dir", monitor_dir, "a folder path or None")
        self._monitor = None if monitor_dir is None else Path(monitor_dir)
        self._tz = _to_timezone(timezone)
        if not isinstance(header, bool):
            raise InvalidTypeError("header", header, "True or False")
        self._header = header
        self._mapping = self._check_mapping(column_mapping, header)
        if owner_key not in ("accountcode", "channel"):
            raise ValidationError("owner_key", owner_key, "'accountcode' or 'channel'")
        self._owner_key = owner_key
        if owners is not None and not (isinstance(owners, Mapping) or callable(owners)):
            raise InvalidTypeError("owners", owners, "a mapping key -> user id, a callable or None")
        self._owners = owners
        if isinstance(inbound_contexts, str):
            inbound_contexts = (inbound_contexts,)
        self._inbound = frozenset(c.strip() for c in inbound_contexts)
        if direction is not None and not callable(direction):
            raise InvalidTypeError("direction", direction, "a callable row fields -> direction")
        self._direction = direction
        if not isinstance(encoding, str):
            raise InvalidTypeError("encoding", encoding, "an encoding name such as 'utf-8'")
        self._encoding = encoding
        self._path: Path | None = None
        self._file: IO[str] | None = None
        self._start = 0
        if isinstance(path, str | os.PathLike):
            self._path = Path(path)
            self._label = self._path.name
        elif hasattr(path, "read"):
            self._label = os.path.basename(str(getattr(path, "name", "<stream>")))
            if path.seekable():
                self._file, self._start = path, path.tell()
            else:
                self._file = io.StringIO(path.read())
        else:
            raise InvalidTypeError("path", path, "a path or an open text file")

    def fetch_recording(self, reference: str) -> bytes:
        """The bytes of the recording file ``reference`` names in the monitor folder.

        Raises:
            NotFoundError: no ``monitor_dir`` was given, or the file does not exist.
            ValidationError: ``reference`` is not a path inside the monitor folder.
        """
        if not isinstance(reference, str) or not reference.strip():
            raise InvalidTypeError("reference", reference, "a recording file name")
        if self._monitor is None:
            raise NotFoundError("recording", reference, f"{self.name!r} has no monitor_dir")
        folder = self._monitor.resolve()
        # resolve() follows symbolic links, so a link out of the folder is caught here too.
        path = (folder / reference).resolve()
        if not path.is_relative_to(folder) or path == folder:
            raise ValidationError(
                "reference", reference, f"a file inside the monitor folder {str(folder)!r}"
            )
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError("recording", reference, f"not in {str(folder)!r}") from None
        except IsADirectoryError:
            raise ValidationError("reference", reference, "a recording file") from None

    @staticmethod
    def _check_mapping(
        mapping: Mapping[str, int | str] | None, header: bool
    ) -> dict[str, int | str]:
        if mapping is None:
            return {}
        if not isinstance(mapping, Mapping):
            raise InvalidTypeError("column_mapping", mapping, "a mapping field -> column")
        checked: dict[str, int | str] = {}
        for field, column in mapping.items():
            if field not in _KNOWN_FIELDS:
                raise ValidationError(
                    "column_mapping", field, f"field names among {sorted(_KNOWN_FIELDS)}"
                )
            if type(column) is int:
                if column < 0:
                    raise ValidationError(
                        f"column_mapping[{field!r}]", column, "a 0-based column position"
                    )
            elif not isinstance(column, str) or not column.strip():
                raise InvalidTypeError(
                    f"column_mapping[{field!r}]", column, "a column position or column name"
                )
            elif not header and column not in ASTERISK_COLUMNS:
                raise ValidationError(
                    f"column_mapping[{field!r}]",
                    column,
                    "a standard cdr-csv column name (or header=True to use the file's names)",
                )
            checked[field] = column
        return checked

    def _positions(self, names: tuple[str, ...]) -> dict[str, int]:
        positions = {name: i for i, name in enumerate(names) if name in _KNOWN_FIELDS}
        for field, column in self._mapping.items():
            if isinstance(column, int):
                positions[field] = column
            elif column in names:
                positions[field] = names.index(column)
            else:
                raise ValidationError(
                    f"column_mapping[{field!r}]", column, f"one of the file's columns {list(names)}"
                )
        needed = list(_ALWAYS_NEEDED)
        if "direction" not in positions and self._direction is None:
            needed.append("dcontext")
        if "owner" not in positions and not callable(self._owners):
            needed.extend(("accountcode",) if self._owner_key == "accountcode" else ("channel",))
            if self._owner_key == "channel":
                needed.append("dstchannel")
        missing = [f for f in needed if f not in positions]
        if missing:
            raise ValidationError("columns", missing, f"columns for {', '.join(missing)}")
        return positions

    def _open(self) -> AbstractContextManager[IO[str]]:
        if self._path is not None:
            return open(self._path, newline="", encoding=self._encoding, errors="replace")
        assert self._file is not None
        self._file.seek(self._start)
        # The caller opened the file, so leaving the block must not close it.
        return nullcontext(self._file)

    def read_calls(self, since: datetime | None, until: datetime | None) -> Iterator[CallRecord]:
        """Read the file; rows that started outside ``[since, until)`` are skipped unparsed."""
        with self._open() as handle:
            reader = csv.reader(handle)
            previous = 0
            if self._header:
                try:
                    names = tuple(c.strip() for c in next_row(reader))
                except StopIteration:
                    return
                except csv.Error as exc:
                    where = f"{self._label} line 1"
                    self.report(where, csv_error(exc, where), 1)
                    return
                previous = reader.line_num
            else:
                names = ASTERISK_COLUMNS
            try:
                positions = self._positions(names)
            except ValidationError as exc:
                self.report(f"{self._label} line {1 if self._header else 0}", exc, None)
                return
            yield from self._rows(reader, previous, positions, since, until)

    def _rows(
        self,
        reader: Any,
        previous: int,
        positions: dict[str, int],
        since: datetime | None,
        until: datetime | None,
    ) -> Iterator[CallRecord]:
        label = self._label
        tz = self._tz
        name = self.name
        width = max(positions[f] for f in _ALWAYS_NEEDED) + 1
        i_src, i_dst, i_start = positions["src"], positions["dst"], positions["start"]
        i_duration, i_billsec = positions["duration"], positions["billsec"]
        i_disposition, i_uid = positions["disposition"], positions["uniqueid"]
        i_context = positions.get("dcontext")
        optional = {f: positions.get(f) for f in ("recording", "task_id", "opportunity_id")}
        i_contact = positions.get("contact_id")
        i_end = positions.get("end")
        # Fast paths for the stock layout (decided once, not per row): the direction from
        # dcontext, the owner from accountcode as the key or through a mapping, no extra fields.
        by_context = "direction" not in positions and self._direction is None
        inbound_contexts = self._inbound
        owners = self._owners
        i_account = (
            positions["accountcode"]
            if "owner" not in positions
            and self._owner_key == "accountcode"
            and (owners is None or isinstance(owners, Mapping))
            else None
        )
        extras = any(i is not None for i in optional.values()) or i_contact is not None
        inbound, outbound = Direction.INBOUND, Direction.OUTBOUND
        occurrences: dict[str, list[int]] = {}
        while True:
            try:
                row = next_row(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = reader.line_num
                where = f"{label} line {line}"
                self.report(where, csv_error(exc, where), line)
                previous = line
                continue
            line = previous + 1
            previous = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            try:
                if len(row) < width:
                    raise ValidationError("columns", len(row), f"at least {width} columns")
                uid = row[i_uid].strip()
                if not uid:
                    raise ValidationError("uniqueid", row[i_uid], "the call's uniqueid")
                # Rows number their uniqueid before anything else is checked, so that the ids of
                # the other rows do not depend on the window or on which rows are valid.
                digest = hash(tuple(row))
                seen = occurrences.get(uid)
                repeat = False
                if seen is None:
                    occurrences[uid] = [digest]
                    external = uid
                elif digest in seen:
                    repeat, external = True, uid
                else:
                    seen.append(digest)
                    external = f"{uid}#{len(seen)}"
                try:
                    started = datetime.fromisoformat(row[i_start].strip())
                except ValueError:
                    started = _local_time(row[i_start], tz, "start")  # raises, naming the field
                if started.tzinfo is None:
                    started = started.replace(tzinfo=tz)
                if (since is not None and started < since) or (
                    until is not None and started >= until
                ):
                    continue
                if repeat:
                    self._duplicates += 1
                    continue
                duration = _seconds(row[i_duration], "duration")
                billsec = _seconds(row[i_billsec], "billsec")
                if billsec > duration:
                    raise ValidationError("billsec", billsec, f"at most duration ({duration})")
                end = row[i_end].strip() if i_end is not None and i_end < len(row) else ""
                if end and _local_time(end, tz, "end") < started:
                    raise ValidationError(
                        "end", end, f"a time at or after the start ({row[i_start].strip()})"
                    )
                disposition = _DISPOSITIONS.get(row[i_disposition].strip().upper())
                if disposition is None:
                    raise ValidationError(
                        "disposition",
                        row[i_disposition],
                        "ANSWERED, NO ANSWER, BUSY, FAILED or CONGESTION",
                    )
                if by_context and i_context is not None and i_context < len(row):
                    context = row[i_context].strip()
                    direction = inbound if context in inbound_contexts else outbound
                else:
                    direction = self._direction_of(row, positions, i_context)
                if i_account is not None:
                    key = row[i_account].strip() if i_account < len(row) else ""
                    if owners is None:
                        owner = key or None
                    else:
                        assert isinstance(owners, Mapping)
                        owner = owners.get(key) if key else None
                else:
                    owner = self._owner_of(row, positions, direction)
                linked = (
                    {
                        "recording": _cell(row, optional["recording"]),
                        "task_id": _cell(row, optional["task_id"]),
                        "opportunity_id": _cell(row, optional["opportunity_id"]),
                        "contact_id": _cell(row, i_contact),
                    }
                    if extras
                    else {}
                )
                record = _source_record(
                    source=name,
                    external_id=external,
                    direction=direction,
                    from_number=row[i_src].strip(),
                    to_number=row[i_dst].strip(),
                    started_at=started,
                    disposition=disposition,
                    owner=owner,
                    ring_seconds=duration - billsec,
                    talk_seconds=billsec,
                    **linked,
                )
            except ValidationError as exc:
                self.report(f"{label} line {line}", exc, line)
                continue
            yield record

    def _fields(self, row: list[str], positions: dict[str, int]) -> dict[str, str]:
        return {f: row[i].strip() for f, i in positions.items() if i < len(row)}

    def _direction_of(
        self, row: list[str], positions: dict[str, int], i_context: int | None
    ) -> Direction:
        i_direction = positions.get("direction")
        if i_direction is not None:
            text = _cell(row, i_direction)
        elif self._direction is not None:
            text = self._direction(self._fields(row, positions))
        else:
            assert i_context is not None
            if i_context >= len(row):
                raise ValidationError("dcontext", None, "the destination context")
            inbound = row[i_context].strip() in self._inbound
            return Direction.INBOUND if inbound else Direction.OUTBOUND
        found = _DIRECTIONS.get(text.strip().lower()) if isinstance(text, str) else None
        if found is None:
            raise ValidationError("direction", text, "'inbound' or 'outbound'")
        return found

    def _owner_of(
        self, row: list[str], positions: dict[str, int], direction: Direction
    ) -> str | None:
        i_owner = positions.get("owner")
        if i_owner is not None:
            return _cell(row, i_owner)
        owners = self._owners
        if owners is not None and not isinstance(owners, Mapping):
            owner = owners(self._fields(row, positions))
            if owner is not None and not isinstance(owner, str):
                raise InvalidTypeError("owner", owner, "a user id (str) or None from owners()")
            return owner or None
        if self._owner_key == "accountcode":
            key = _cell(row, positions["accountcode"]) or ""
        else:
            column = "channel" if direction is Direction.OUTBOUND else "dstchannel"
            key = _peer(_cell(row, positions[column]) or "")
        if owners is None:
            return key or None
        return owners.get(key) if key else None

    def __repr__(self) -> str:
        return f"<AsteriskCsvSource {self.name!r} {self._label!r} tz={self._tz}>"


_SECONDS_DIGITS = len(str(MAX_CALL_SECONDS))


def _seconds(cell: str, field: str) -> int:
    """A cell of whole seconds. Plain digits (every row Asterisk writes) skip check_seconds,
    which words the refusals of anything else."""
    text = cell.strip()
    if len(text) <= _SECONDS_DIGITS and text.isdigit() and text.isascii():
        seconds = int(text)
        if seconds <= MAX_CALL_SECONDS:
            return seconds
    return check_seconds(cell, field)


def _local_time(text: str, tz: tzinfo, field: str) -> datetime:
    """A CDR time (``2026-11-24 09:30:05``), read in ``tz`` unless it carries an offset."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(field, text.strip(), "a time like 2026-11-24 09:30:05") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _cell(row: list[str], index: int | None) -> str | None:
    if index is None or index >= len(row):
        return None
    return row[index].strip() or None
