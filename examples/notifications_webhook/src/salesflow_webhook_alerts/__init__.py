"""An example salesflow plugin: every alert of the daily run is posted as JSON to a webhook.

``desk.run_daily(admin, on=day)`` emits one event per alert after its commit; this plugin posts
each one (``{"event": ..., "alert": {...}}``) to ``url`` with :mod:`urllib.request`, for a chat
channel, a ticketing system or your own service::

    desk = salesflow.open(url, plugins=[WebhookAlerts("https://hooks.example.com/sales")])
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any

import salesflow
from salesflow.domain.alerts import ALERT_NAMES

__all__ = ["WebhookAlerts"]


class WebhookAlerts:
    """Post each alert as JSON to ``url`` (with ``headers``, e.g. an authorization token)."""

    def __init__(
        self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 10.0
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url: {url!r} (expected an http:// or https:// URL)")
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout

    @staticmethod
    def payload(event: salesflow.Event) -> dict[str, Any]:
        """What is posted for ``event``."""
        return {
            "event": event.name,
            "seq": event.seq,
            "at": event.at.isoformat(),
            "alert": event.data,
        }

    @salesflow.hookimpl
    def salesflow_handle_event(self, event: salesflow.Event) -> None:
        """Post ``event`` if it is an alert; a non-2xx answer raises (the desk logs it and
        reports it in the command's ``handler_errors``)."""
        if event.name not in ALERT_NAMES:
            return
        body = json.dumps(self.payload(event), ensure_ascii=False, sort_keys=True).encode("utf-8")
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **self.headers},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()
