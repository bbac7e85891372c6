"""The call centre on the desk: imports are linked, idempotent and honest; the library is audited."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import salesflow
from salesflow import Actor
from salesflow.analytics.calls import call_stats
from salesflow.domain.contacts import Contact
from salesflow.domain.phones import PhoneSettings
from salesflow.domain.tasks import FollowUpTask
from salesflow.errors import NotAuthorizedError, ValidationError
from salesflow.testing.storage import ManualClock

ZONE = ZoneInfo("Asia/Shanghai")
MANAGER = Actor("mia", roles={"sales_manager"}, teams={"east"})
ANN = Actor("ann", roles={"sales_rep"})
COLUMNS = [
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
]


def cdr(
    uid: str, rep: str, src: str, dst: str, context: str, start: str, billsec: int, disposition: str
) -> str:
    fields = {
        "accountcode": rep,
        "src": src,
        "dst": dst,
        "dcontext": context,
        "channel": "PJSIP/1001-00000001",
        "dstchannel": "PJSIP/trunk-00000002",
        "start": start,
        "answer": start if billsec else "",
        "end": start,
        "duration": str(billsec + 5),
        "billsec": str(billsec),
        "disposition": disposition,
        "uniqueid": uid,
        "userfield": f"rec/{uid}.wav" if billsec else "",
    }
    return ",".join(f'"{fields.get(c, "")}"' for c in COLUMNS)


ROWS = [
    # ann calls Wang's mobile, written nationally by the PBX: counted
    cdr(
        "1.1", "ann", "1001", "13800138000", "from-internal", "2026-11-24 09:00:00", 120, "ANSWERED"
    ),
    # Wang calls in and nobody answers: counted, and a follow-up task for Wang's owner (ann)
    cdr(
        "1.2",
        "ann",
        "013800138000",
        "60000000",
        "from-trunk",
        "2026-11-24 10:00:00",
        0,
        "NO ANSWER",
    ),
    # bob calls a number no contact has: uncounted, shown separately
    cdr(
        "1.3", "bob", "1002", "13999999999", "from-internal", "2026-11-24 11:00:00", 60, "ANSWERED"
    ),
    # bob calls Li's landline
    cdr(
        "1.4", "bob", "1002", "02188886666", "from-internal", "2026-11-24 12:00:00", 300, "ANSWERED"
    ),
]


@pytest.fixture
def desk(tmp_path: Path) -> salesflow.SalesDesk:
    desk = salesflow.open(
        f"sqlite:///{tmp_path / 'calls.db'}",
        clock=ManualClock(datetime(2026, 11, 25, 8, 0, tzinfo=UTC)),
        phones=PhoneSettings(default_region="CN", company_numbers=("010-6000-0000",)),
        timezone=ZONE,
        load_entrypoints=False,
    )
    desk.add_contact(
        ANN,
        Contact(
            id="wang",
            name="Wang Fang",
            owner="ann",
            industry="retail",
            region="Shanghai",
            phones=("+86 138 0013 8000",),
        ),
    )
    desk.add_contact(
        Actor("bob", roles={"sales_rep"}),
        Contact(
            id="li",
            name="Li Na",
            owner="bob",
            industry="energy",
            phones=("021-8888-6666", "139 1111 2222"),
        ),
    )
    return desk


def source(rows: list[str]) -> salesflow.CallSource:
    return salesflow.AsteriskCsvSource(
        io.StringIO("\n".join(rows) + "\n"),
        timezone=ZONE,
        column_mapping={"recording": "userfield"},
    )


def test_an_import_links_calls_counts_honestly_and_creates_follow_ups(
    desk: salesflow.SalesDesk,
) -> None:
    result = desk.import_calls(MANAGER, source(ROWS))
    report = result.value
    assert (report.fetched, report.imported, report.duplicates) == (4, 4, 0)
    assert (report.counted, report.uncounted) == (3, 1)
    # the missed call makes an open task; each answered call to a contact leaves a done one
    assert report.tasks_created == (
        "followup:asterisk-csv:1.1",
        "followup:asterisk-csv:1.2",
        "followup:asterisk-csv:1.4",
    )
    talked, task = desk.tasks(owner="ann")
    assert (task.contact_id, task.due, task.status.value) == ("wang", date(2026, 11, 24), "open")
    assert (talked.contact_id, talked.status.value, talked.call_id) == (
        "wang",
        "done",
        "asterisk-csv:1.1",
    )
    calls = {c.external_id: c for c in desk.calls()}
    assert calls["1.1"].contact_id == "wang"
    assert calls["1.1"].task_id == talked.id
    assert calls["1.2"].task_id == task.id
    assert calls["1.3"].contact_id is None
    assert calls["1.4"].contact_id == "li"
    # the open task is announced; the done ones are counted in the import's event
    assert [e.name for e in result.events] == ["task_created", "calls_imported"]
    assert result.events[-1].data["completed_follow_ups"] == 2
    stats = desk.call_stats()
    assert stats.to_records() == call_stats(desk.calls(), tz=ZONE).to_records()


def test_importing_the_same_calls_again_changes_nothing(desk: salesflow.SalesDesk) -> None:
    desk.import_calls(MANAGER, source(ROWS))
    before = (desk.calls(), desk.tasks())
    again = desk.import_calls(
        MANAGER,
        source(
            [
                *ROWS[:2],
                cdr(
                    "1.5",
                    "ann",
                    "1001",
                    "13800138000",
                    "from-internal",
                    "2026-11-24 15:00:00",
                    30,
                    "ANSWERED",
                ),
            ]
        ),
    )
    assert (again.value.imported, again.value.duplicates) == (1, 2)
    # the new answered call links to ann's open task for Wang (the missed call's): no new task
    assert again.value.tasks_created == ()
    assert desk.calls()[:4] == before[0]
    assert desk.tasks() == before[1]


def test_malformed_rows_reject_the_import_or_are_reported(desk: salesflow.SalesDesk) -> None:
    broken = [*ROWS[:2], '"ann","1001"', *ROWS[2:]]
    with pytest.raises(ValidationError, match="line 3"):
        desk.import_calls(MANAGER, source(broken))
    assert desk.calls() == []
    report = desk.import_calls(MANAGER, source(broken), on_error="skip").value
    assert report.imported == 4
    assert [row.line for row in report.errors] == [3]


def test_only_managers_import_and_curate(desk: salesflow.SalesDesk) -> None:
    with pytest.raises(NotAuthorizedError):
        desk.import_calls(ANN, source(ROWS))
    desk.import_calls(MANAGER, source(ROWS))
    with pytest.raises(NotAuthorizedError):
        desk.feature_call(ANN, "asterisk-csv:1.1")
    assert desk.library() == []


def test_the_best_call_library_files_by_industry_and_audits_removal(
    desk: salesflow.SalesDesk,
) -> None:
    desk.import_calls(MANAGER, source(ROWS))
    entry = desk.feature_call(
        MANAGER, "asterisk-csv:1.1", tags=["opening", "objection"], note="clear pitch"
    ).value
    assert (entry.industry, entry.region, entry.curated_by) == ("retail", "Shanghai", "mia")
    desk.feature_call(MANAGER, "asterisk-csv:1.4", tags=["closing"])
    assert [e.call_id for e in desk.library(industry="retail")] == ["asterisk-csv:1.1"]
    assert [e.call_id for e in desk.library(tags=["closing"])] == ["asterisk-csv:1.4"]
    with pytest.raises(ValidationError, match="not in the library yet"):
        desk.feature_call(MANAGER, "asterisk-csv:1.1")
    with pytest.raises(ValidationError, match="answered"):
        desk.feature_call(MANAGER, "asterisk-csv:1.2")  # missed: nothing to learn from
    removed = desk.unfeature_call(MANAGER, "asterisk-csv:1.1", reason="outdated pricing")
    assert removed.value == entry
    assert [e.call_id for e in desk.library()] == ["asterisk-csv:1.4"]
    (audit,) = desk.events(name="call_unfeatured")
    assert audit.actor == "mia"
    assert audit.data["reason"] == "outdated pricing"
    assert audit.data["entry"]["note"] == "clear pitch"


def test_completing_a_follow_up_task(desk: salesflow.SalesDesk) -> None:
    desk.import_calls(MANAGER, source(ROWS))
    done = desk.complete_task(
        ANN, "followup:asterisk-csv:1.2", note="called back, sent quote"
    ).value
    assert done.status.value == "done"
    assert done.closed_at == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    with pytest.raises(salesflow.errors.TransitionNotAllowedError):
        desk.complete_task(ANN, "followup:asterisk-csv:1.2")
    with pytest.raises(NotAuthorizedError):
        desk.complete_task(Actor("bob", roles={"sales_rep"}), "followup:asterisk-csv:1.2")
    task = FollowUpTask.create(
        id="t-9",
        owner="ann",
        contact_id="nobody",
        due=date(2026, 12, 1),
        at=datetime(2026, 11, 25, tzinfo=UTC),
    )
    with pytest.raises(salesflow.errors.NotFoundError):
        desk.add_task(ANN, task)


def test_sources_are_found_by_plugin_name(desk: salesflow.SalesDesk, twilio_calls: Path) -> None:
    twilio = desk.call_source("twilio-json", directory=twilio_calls)
    report = desk.import_calls(MANAGER, twilio).value
    assert report.source == "twilio-json"
    assert report.imported >= 2
    with pytest.raises(salesflow.errors.BackendNotFoundError, match="asterisk-csv"):
        desk.call_source("avaya")
