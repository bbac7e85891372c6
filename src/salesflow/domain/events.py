"""Domain events: what happened, to what, by whom, when.

Every command of :class:`~salesflow.desk.SalesDesk` records its events in the storage's append-only
event log, in the same transaction as the change, and hands them to the ``salesflow_handle_event``
hook after the commit, so that a plugin can notify people. An event's ``data`` holds JSON values only
(text, ints, booleans, ``None``, lists and dicts of them): amounts are written as text so that they
stay exact. Its text follows the text rules of :mod:`salesflow.domain.checks` (no NUL, no lone
surrogate; a value at most :data:`~salesflow.domain.checks.MAX_TEXT_LENGTH` characters, a key at
most :data:`~salesflow.domain.checks.MAX_NAME_LENGTH`), and the whole of it, written as JSON, takes
at most :data:`~salesflow.domain.checks.MAX_EVENT_DATA_BYTES` bytes (MariaDB's ``TEXT`` column).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from salesflow.domain.checks import (
    MAX_EVENT_DATA_BYTES,
    MAX_NAME_LENGTH,
    MAX_TEXT_LENGTH,
    as_datetime,
    check_code,
    check_id,
    check_optional_id,
    check_string,
)
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = ["Event"]


_MAX_CHAR_BYTES = 6
"""The most one character of text takes in the JSON of an event's data: a control character is
escaped as ``\\u001f``; any other takes at most 4 bytes of UTF-8 (lone surrogates are refused)."""


def _check_json(value: Any, path: str) -> int:
    """Refuse ``value`` unless it is JSON within the text rules; return an upper bound of the
    bytes it takes written as JSON (UTF-8, the separators ``json.dumps`` uses)."""
    if value is None or isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return len(int.__repr__(value))
    if isinstance(value, str):
        check_string(value, path, MAX_TEXT_LENGTH)
        return 2 + _MAX_CHAR_BYTES * len(value)
    if isinstance(value, list | tuple):
        size = 2
        for i, item in enumerate(value):
            size += 2 + _check_json(item, f"{path}[{i}]")
        return size
    if isinstance(value, Mapping):
        # json.dumps writes dicts only: another mapping is beyond any bound, so that measuring
        # leaves it to json.dumps to refuse, as it always did.
        size = 2 if isinstance(value, dict) else MAX_EVENT_DATA_BYTES + 1
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidTypeError(f"{path} key", key, "a string")
            check_string(key, f"{path} key", MAX_NAME_LENGTH)
            size += 6 + _MAX_CHAR_BYTES * len(key) + _check_json(item, f"{path}.{key}")
        return size
    raise InvalidTypeError(
        path,
        value,
        "JSON values only: text, int, bool, None, lists and dicts (write amounts as text)",
    )


def _to_data(value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidTypeError("data", value, "a mapping")
    data = dict(value)
    bound = _check_json(data, "data")
    # Writing the JSON out to measure it costs more than the rest of an event: only data that
    # might not fit is measured.
    if bound > MAX_EVENT_DATA_BYTES:
        size = len(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        if size > MAX_EVENT_DATA_BYTES:
            raise ValidationError(
                "data",
                f"{size:,} bytes of JSON",
                f"at most {MAX_EVENT_DATA_BYTES:,} bytes of JSON (UTF-8)",
            )
    return data


@attrs.frozen(kw_only=True)
class Event:
    """Something that happened: ``opportunity_moved``, ``contract_formal``...

    ``seq`` is ``None`` until the event log stores the event; stored events are numbered in the
    order they were appended.
    """

    name: str = attrs.field(validator=check_id)
    subject_kind: str = attrs.field(validator=check_code)
    subject_id: str = attrs.field(validator=check_id)
    at: datetime = attrs.field(converter=as_datetime)
    actor: str | None = attrs.field(default=None, validator=check_optional_id)
    data: dict[str, Any] = attrs.field(factory=dict, converter=_to_data, hash=False)
    seq: int | None = None

    def numbered(self, seq: int) -> Event:
        """This event as the event log stores it: the same event, numbered ``seq``.

        Every field was checked when this event was made and none changes, so nothing is checked
        (or its data measured) again, as ``attrs.evolve`` would; the data is copied, as the
        constructor copies it, so that the two events never share a dict."""
        stored = copy.copy(self)
        # The attrs way to set a field of a frozen instance (see attrs' "Immutability").
        object.__setattr__(stored, "data", dict(self.data))
        object.__setattr__(stored, "seq", seq)
        return stored

    def to_dict(self) -> dict[str, Any]:
        """This event as a JSON-ready dict (``at`` in ISO 8601)."""
        return {
            "seq": self.seq,
            "name": self.name,
            "subject_kind": self.subject_kind,
            "subject_id": self.subject_id,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "data": self.data,
        }
