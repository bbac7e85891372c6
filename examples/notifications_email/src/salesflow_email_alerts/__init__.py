"""An example salesflow plugin: every alert of the daily run goes by email to the record's owner.

``desk.run_daily(admin, on=day)`` emits one event per alert (``deal_slipping``, ``deal_stalled``,
``task_overdue``, ``approval_overdue``, ``invoice_overdue``, ``funnel_deviation``) after its
commit; this plugin turns each into an email sent through :mod:`smtplib`::

    mailer = EmailAlerts(host="smtp.example.com", port=25, sender="crm@example.com",
                         addresses={"ann": "ann@example.com"}, fallback="sales@example.com")
    desk = salesflow.open(url, plugins=[mailer])
"""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from email.message import EmailMessage

import salesflow
from salesflow.domain.alerts import ALERT_NAMES

__all__ = ["EmailAlerts"]


class EmailAlerts:
    """Send each alert to its owner's address (``addresses``), else to ``fallback``."""

    def __init__(
        self,
        *,
        host: str,
        port: int = 25,
        sender: str,
        addresses: Mapping[str, str] | None = None,
        fallback: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.addresses = dict(addresses or {})
        self.fallback = fallback
        self.timeout = timeout

    def message(self, event: salesflow.Event) -> EmailMessage | None:
        """The email for ``event``, or ``None`` when it is no alert or has nobody to go to."""
        if event.name not in ALERT_NAMES:
            return None
        data = event.data
        to = self.addresses.get(data.get("owner") or "", self.fallback)
        if to is None:
            return None
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = f"[salesflow] {event.name}: {data['record_kind']} {data['record_id']}"
        message["X-Salesflow-Alert"] = data["key"]
        message.set_content(
            f"{data['reason']}\n\nDue: {data['due']}\nOwner: {data.get('owner')}\n"
            f"Team: {data.get('team')}\nAlert: {data['key']}\n"
        )
        return message

    @salesflow.hookimpl
    def salesflow_handle_event(self, event: salesflow.Event) -> None:
        """Send ``event`` by email if it is an alert (a failure is logged by the desk and
        reported in the command's ``handler_errors``; the alerts stay emitted)."""
        message = self.message(event)
        if message is None:
            return
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(message)
