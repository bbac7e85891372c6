"""Alerts: the agenda items that are worth telling someone about, once a day.

:meth:`SalesDesk.run_daily <salesflow.commands.agenda.AgendaCommands.run_daily>` turns the day's
agenda into :class:`Alert` values, stores each one it emits (so that a second run on the same day
emits nothing new) and hands one event per alert to the ``salesflow_handle_event`` hook. An alert's
:attr:`Alert.key` is ``"<on>/<name>/<record kind>/<record id>"``: one alert per day, reason and
record. The names are :data:`ALERT_NAMES`.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any, Final

import attrs

from salesflow.domain.checks import (
    MAX_ID_LENGTH,
    as_date,
    as_datetime,
    check_choice,
    check_code,
    check_id,
    check_optional_id,
    check_text,
)

__all__ = ["ALERT_NAMES", "Alert"]

ALERT_NAMES: Final = (
    "deal_slipping",
    "deal_stalled",
    "task_overdue",
    "approval_overdue",
    "invoice_overdue",
    "funnel_deviation",
)
"""The events :meth:`~salesflow.commands.agenda.AgendaCommands.run_daily` emits: a deal whose
expected close is near or past, a deal without activity, an overdue follow-up task, an approval
past its step's SLA, an overdue invoice, a rep's funnel off target."""


@attrs.frozen(kw_only=True)
class Alert:
    """One alert emitted on day ``on``: which (``name``), about what (``record_kind`` and
    ``record_id``, with ``parent_id`` the contract of an invoice), whose (``owner``, ``team``),
    why (``reason``), due when (``due``), and when it was emitted (``emitted_at``)."""

    on: date = attrs.field(converter=as_date)
    name: str = attrs.field(validator=check_choice, metadata={"choices": ALERT_NAMES})
    record_kind: str = attrs.field(validator=check_code)
    record_id: str = attrs.field(validator=check_id)
    reason: str = attrs.field(validator=check_text)
    due: date = attrs.field(converter=as_date)
    emitted_at: datetime = attrs.field(converter=as_datetime)
    owner: str | None = attrs.field(default=None, validator=check_optional_id)
    team: str | None = attrs.field(default=None, validator=check_optional_id)
    parent_id: str | None = attrs.field(default=None, validator=check_optional_id)

    @property
    def key(self) -> str:
        """``"<on>/<name>/<record kind>/<record id>"``: what makes an alert once a day (a key
        longer than an id may be is shortened to a digest of it)."""
        return self.key_of(self.on, self.name, self.record_kind, self.record_id, self.parent_id)

    @staticmethod
    def key_of(
        on: date, name: str, record_kind: str, record_id: str, parent_id: str | None = None
    ) -> str:
        """The key of the alert ``name`` about a record on day ``on`` (see :attr:`key`)."""
        record = record_id if parent_id is None else f"{parent_id}/{record_id}"
        key = f"{on.isoformat()}/{name}/{record_kind}/{record}"
        if len(key) <= MAX_ID_LENGTH:
            return key
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return f"{on.isoformat()}/{name}/#{digest}"

    def to_dict(self) -> dict[str, Any]:
        """This alert as JSON values (dates in ISO 8601): what the event carries."""
        return {
            "key": self.key,
            "on": self.on.isoformat(),
            "name": self.name,
            "record_kind": self.record_kind,
            "record_id": self.record_id,
            "parent_id": self.parent_id,
            "owner": self.owner,
            "team": self.team,
            "reason": self.reason,
            "due": self.due.isoformat(),
        }
