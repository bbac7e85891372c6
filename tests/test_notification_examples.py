"""The example notification plugins (examples/notifications_email, examples/notifications_webhook)
receive exactly the day's alerts, once: an SMTP server (aiosmtpd) and a webhook (http.server) run
locally on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

import salesflow
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.tasks import FollowUpTask
from salesflow.testing.cast import ROOT as ADMIN
from salesflow.testing.storage import ManualClock

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
for folder in ("notifications_email", "notifications_webhook"):
    sys.path.insert(0, str(EXAMPLES / folder / "src"))

from salesflow_email_alerts import EmailAlerts  # noqa: E402
from salesflow_webhook_alerts import WebhookAlerts  # noqa: E402

D = date(2026, 12, 1)
EXPECTED = {
    ("deal_slipping", "op-1"),
    ("deal_stalled", "op-1"),
    ("task_overdue", "t-1"),
}


def desk_with(plugin: object) -> Any:
    desk = salesflow.open(
        "memory://",
        plugins=[plugin],
        load_entrypoints=False,
        clock=ManualClock(datetime(2026, 12, 1, 7, tzinfo=UTC)),
    )
    moved = datetime(2026, 10, 1, 9, tzinfo=UTC)
    with desk.storage.transaction() as uow:
        uow.opportunities.add(
            Opportunity(
                id="op-1",
                owner="ann",
                team="east",
                stage="quotation",
                amount=Money.of("9000.00", "CNY"),
                expected_close=D - timedelta(days=2),
                history=(StageChange(moved, None, "quotation"),),
            )
        )
        uow.tasks.add_many(
            [
                FollowUpTask.create(
                    id="t-1", owner="ann", contact_id="c1", due=D - timedelta(days=1), at=moved
                ),
                FollowUpTask.create(
                    id="t-2", owner="bob", contact_id="c2", due=D, at=moved
                ),  # due today: no alert
            ]
        )
    return desk


# -- email -----------------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[Any]]]:
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(
                (
                    envelope.rcpt_tos,
                    email.message_from_bytes(envelope.content, policy=email.policy.default),
                )
            )
            return "250 OK"

    with socket.socket() as probe:  # aiosmtpd needs a port of its own to check it started
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def test_the_email_plugin_sends_exactly_the_days_alerts(smtp_server: tuple[int, list[Any]]) -> None:
    port, received = smtp_server
    mailer = EmailAlerts(
        host="127.0.0.1",
        port=port,
        sender="crm@example.com",
        addresses={"ann": "ann@example.com"},
        fallback="sales@example.com",
    )
    desk = desk_with(mailer)
    first = desk.run_daily(ADMIN, on=D)
    assert first.handler_errors == ()
    got = {(m["Subject"].split()[1].rstrip(":"), m["Subject"].split()[-1]) for _to, m in received}
    assert got == EXPECTED and len(received) == len(EXPECTED)
    assert all(to == ["ann@example.com"] for to, _m in received)
    keys = sorted(m["X-Salesflow-Alert"] for _to, m in received)
    assert keys == sorted(a.key for a in first.value)
    assert "1 day overdue" in next(m.get_content() for _t, m in received if "t-1" in m["Subject"])
    desk.run_daily(ADMIN, on=D)  # again: nothing new
    assert len(received) == len(EXPECTED)


# -- webhook ---------------------------------------------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    posted: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            posted.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", posted
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_webhook_plugin_posts_exactly_the_days_alerts(
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, posted = webhook
    desk = desk_with(WebhookAlerts(url))
    first = desk.run_daily(ADMIN, on=D)
    assert first.handler_errors == ()
    assert {(p["event"], p["alert"]["record_id"]) for p in posted} == EXPECTED
    assert len(posted) == len(EXPECTED)
    assert sorted(p["alert"]["key"] for p in posted) == sorted(a.key for a in first.value)
    assert all(p["alert"]["on"] == "2026-12-01" and p["seq"] is not None for p in posted)
    assert desk.run_daily(ADMIN, on=D).events == ()
    assert len(posted) == len(EXPECTED)


def test_the_webhook_refuses_a_url_that_is_not_http() -> None:
    with pytest.raises(ValueError, match="url"):
        WebhookAlerts("file:///etc/passwd")
