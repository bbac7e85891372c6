"""Domain events: what happened, to what, by whom, when.

Every command of :class:`~salesflow.desk.SalesDesk` records its events in the storage's append-only
event log, in the same transaction as the change, and hands them to the ``salesflow_handle_event``
hook after the commit, so that a plugin can notify people. An event's ``data`` holds JSON values only
(text, ints, booleans, ``None``, lists and dicts of them): amounts are written as text so that they
stay exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from salesflow.domain.dates import to_aware_datetime
from salesflow.errors import InvalidTypeError, ValidationError

__all__ = ["Event"]


def _check_json(value: Any, path: str) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidTypeError(f"{path} key", key, "a string")
            _check_json(item, f"{path}.{key}")
        return
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
    _check_json(value, "data")
    return dict(value)


def _to_at(value: object) -> datetime:
    return to_aware_datetime(value, "at")


def _check_name(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(attribute.name, value, "a non-empty string")


@attrs.frozen(kw_only=True)
class Event:
    """Something that happened: ``opportunity_moved``, ``contract_formal``...

    ``seq`` is ``None`` until the event log stores the event; stored events are numbered in the
    order they were appended.
    """

    name: str = attrs.field(validator=_check_name)
    subject_kind: str = attrs.field(validator=_check_name)
    subject_id: str = attrs.field(validator=_check_name)
    at: datetime = attrs.field(converter=_to_at)
    actor: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict, converter=_to_data, hash=False)
    seq: int | None = None

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
