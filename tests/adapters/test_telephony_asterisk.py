"""The asterisk-csv call source: Master.csv rows become CallRecords; bad rows are reported."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from salesflow.adapters.telephony_asterisk import ASTERISK_COLUMNS, AsteriskCsvSource
from salesflow.analytics.calls import call_stats
from salesflow.domain.calls import CallSource, Direction, Disposition
from salesflow.domain.contacts import Contact
from salesflow.domain.linking import CallLinker
from salesflow.domain.phones import PhoneDirectory
from salesflow.errors import InvalidTypeError, ValidationError
from salesflow.testing.telephony import CallSourceContract

BEIJING = timezone(timedelta(hours=8))


def cdr(**fields: Any) -> str:
    """One Master.csv line as Asterisk writes it: text quoted, the two durations bare."""
    row: dict[str, Any] = {
        "accountcode": "ann",
        "src": "1001",
        "dst": "13800138000",
        "dcontext": "from-internal",
        "clid": '"Li Wei" <1001>',
        "channel": "PJSIP/1001-00000012",
        "dstchannel": "PJSIP/trunk-00000013",
        "lastapp": "Dial",
        "lastdata": "PJSIP/13800138000@trunk,60",
        "start": "2026-11-24 09:30:05",
        "answer": "2026-11-24 09:30:17",
        "end": "2026-11-24 09:34:41",
        "duration": 276,
        "billsec": 264,
        "disposition": "ANSWERED",
        "amaflags": "DOCUMENTATION",
        "uniqueid": "1763947805.18",
        "userfield": "",
    }
    row.update(fields)
    if "start" in fields and "end" not in fields:
        # The end follows the start, as Asterisk logs it (an end before the start is malformed).
        try:
            start = datetime.fromisoformat(str(fields["start"]).strip())
            seconds = int(row["duration"])
        except ValueError:
            pass
        else:
            row["end"] = (start + timedelta(seconds=seconds)).isoformat(sep=" ")
    cells = []
    for name in ASTERISK_COLUMNS:
        value = row[name]
        if name in ("duration", "billsec") and isinstance(value, int):
            cells.append(str(value))
        else:
            cells.append('"' + str(value).replace('"', '""') + '"')
    return ",".join(cells)


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


GOOD = (
    cdr(),
    cdr(
        accountcode="bob",
        src="+86 139 0013 9000",
        dst="02160000000",
        dcontext="from-trunk",
        channel="PJSIP/trunk-00000020",
        dstchannel="PJSIP/1002-00000021",
        start="2026-11-24 10:00:00",
        answer="",
        duration=20,
        billsec=0,
        disposition="NO ANSWER",
        uniqueid="1763949600.20",
    ),
    cdr(
        src="1001",
        dst="021-8888-7777",
        start="2026-11-24 11:15:00",
        duration=31,
        billsec=0,
        disposition="BUSY",
        uniqueid="1763954100.21",
    ),
    cdr(
        start="2026-11-25 08:00:00",
        duration=9,
        billsec=0,
        disposition="CONGESTION",
        uniqueid="1764028800.22",
    ),
)


@pytest.fixture
def master(tmp_path: Path) -> Path:
    return write(tmp_path / "Master.csv", *GOOD)


def test_rows_map_to_call_records(master: Path) -> None:
    source = AsteriskCsvSource(master, timezone="Asia/Shanghai")
    first, second, third, fourth = source.fetch(None, None)
    assert first.source == "asterisk-csv"
    assert first.external_id == "1763947805.18"
    assert first.id == "asterisk-csv:1763947805.18"
    assert first.started_at == datetime(2026, 11, 24, 9, 30, 5, tzinfo=BEIJING)
    assert first.started_at.utcoffset() == timedelta(hours=8)
    assert (first.talk_seconds, first.ring_seconds) == (264, 12)
    assert first.disposition is Disposition.ANSWERED
    assert first.direction is Direction.OUTBOUND
    assert (first.from_number, first.to_number) == ("1001", "13800138000")
    assert first.owner == "ann"
    assert (first.contact_id, first.task_id, first.recording) == (None, None, None)
    assert second.direction is Direction.INBOUND
    assert second.disposition is Disposition.NO_ANSWER
    assert (second.talk_seconds, second.ring_seconds) == (0, 20)
    assert second.owner == "bob"
    assert third.disposition is Disposition.BUSY
    assert fourth.disposition is Disposition.FAILED
    assert source.errors == ()


def test_the_timezone_is_required_and_checked(master: Path) -> None:
    with pytest.raises(TypeError):
        AsteriskCsvSource(master)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="timezone"):
        AsteriskCsvSource(master, timezone="Mars/Olympus")
    with pytest.raises(InvalidTypeError, match="timezone"):
        AsteriskCsvSource(master, timezone=8)  # type: ignore[arg-type]
    utc = AsteriskCsvSource(master, timezone=UTC)
    assert next(utc.fetch(None, None)).started_at == datetime(2026, 11, 24, 9, 30, 5, tzinfo=UTC)


def test_the_repeated_hour_takes_its_first_occurrence(tmp_path: Path) -> None:
    path = write(tmp_path / "Master.csv", cdr(start="2026-11-01 01:30:00"))
    (record,) = AsteriskCsvSource(path, timezone="America/New_York").fetch(None, None)
    assert record.started_at.utcoffset() == timedelta(hours=-4)


def test_owner_from_the_channel_and_through_a_mapping(master: Path) -> None:
    by_channel = AsteriskCsvSource(master, timezone="Asia/Shanghai", owner_key="channel")
    assert [r.owner for r in by_channel.fetch(None, None)] == ["1001", "1002", "1001", "1001"]
    mapped = AsteriskCsvSource(
        master, timezone="Asia/Shanghai", owner_key="channel", owners={"1001": "u-ann"}
    )
    assert [r.owner for r in mapped.fetch(None, None)] == ["u-ann", None, "u-ann", "u-ann"]
    custom = AsteriskCsvSource(master, timezone="Asia/Shanghai", owners=lambda f: f["src"][-4:])
    assert next(r.owner for r in custom.fetch(None, None)) == "1001"
    with pytest.raises(ValidationError, match="owner_key"):
        AsteriskCsvSource(master, timezone="UTC", owner_key="src")  # type: ignore[arg-type]


def test_direction_from_contexts_a_callable_or_a_column(tmp_path: Path, master: Path) -> None:
    contexts = AsteriskCsvSource(master, timezone="UTC", inbound_contexts={"from-internal"})
    assert [r.direction for r in contexts.fetch(None, None)][:2] == ["inbound", "outbound"]
    always_in = AsteriskCsvSource(master, timezone="UTC", direction=lambda f: "in")
    assert {r.direction for r in always_in.fetch(None, None)} == {Direction.INBOUND}
    path = write(
        tmp_path / "dir.csv", cdr(userfield="OUT"), cdr(userfield="sideways", uniqueid="2")
    )
    column = AsteriskCsvSource(path, timezone="UTC", column_mapping={"direction": "userfield"})
    records = list(column.fetch(None, None, on_error="skip"))
    assert [r.direction for r in records] == ["outbound"]
    assert [(e.field, e.line) for e in column.errors] == [("direction", 2)]


def test_a_customised_layout_with_a_header_and_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "cdr-custom.csv"
    path.write_text(
        "calldate,src,dst,disposition,duration,billsec,uniqueid,recordingfile,dcontext,cnum\n"
        "2026-11-24 09:30:05,1001,13800138000,ANSWERED,70,60,u1,rec/u1.wav,from-internal,ann\n"
        "2026-11-24 09:40:05,13800138000,6000,NO ANSWER,15,0,u2,,from-trunk,bob\n",
        encoding="utf-8",
    )
    source = AsteriskCsvSource(
        path,
        timezone="Asia/Shanghai",
        header=True,
        column_mapping={"start": "calldate", "recording": "recordingfile", "owner": "cnum"},
    )
    first, second = source.fetch(None, None)
    assert (first.recording, first.owner, first.talk_seconds, first.ring_seconds) == (
        "rec/u1.wav",
        "ann",
        60,
        10,
    )
    assert (second.recording, second.owner, second.direction) == (None, "bob", Direction.INBOUND)
    assert source.errors == ()


def test_positions_and_standard_names_in_the_mapping(tmp_path: Path) -> None:
    path = write(tmp_path / "Master.csv", cdr(userfield="rec/1.wav") + ',"task-7"')
    source = AsteriskCsvSource(
        path, timezone="UTC", column_mapping={"recording": "userfield", "task_id": 18}
    )
    (record,) = source.fetch(None, None)
    assert (record.recording, record.task_id) == ("rec/1.wav", "task-7")


@pytest.mark.parametrize(
    ("mapping", "header", "field"),
    [
        ({"colour": 3}, False, "column_mapping"),
        ({"recording": -1}, False, "column_mapping['recording']"),
        ({"recording": "recordingfile"}, False, "column_mapping['recording']"),
        ({"recording": 1.5}, False, "column_mapping['recording']"),
    ],
)
def test_bad_mappings_are_refused(
    master: Path, mapping: dict[str, Any], header: bool, field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        AsteriskCsvSource(master, timezone="UTC", column_mapping=mapping, header=header)
    assert info.value.field == field


def test_a_header_without_the_needed_columns_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("src,dst\n1,2\n", encoding="utf-8")
    source = AsteriskCsvSource(path, timezone="UTC", header=True)
    assert list(source.fetch(None, None, on_error="skip")) == []
    assert [e.field for e in source.errors] == ["columns"]
    with pytest.raises(ValidationError, match="columns"):
        list(source.fetch(None, None))


BAD = (
    ('"ann","1001","138"', "columns"),
    (cdr(start="yesterday", uniqueid="b1"), "start"),
    (cdr(billsec="ten", uniqueid="b2"), "billsec"),
    (cdr(duration=5, billsec=9, uniqueid="b3"), "billsec"),
    (cdr(disposition="HUNG UP", uniqueid="b4"), "disposition"),
    (cdr(disposition="NO ANSWER", uniqueid="b5"), "talk_seconds"),
    (cdr(uniqueid=""), "uniqueid"),
    (cdr(duration=-3, uniqueid="b6"), "duration"),
)


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    lines = [GOOD[0]]
    for line, _field in BAD:
        lines.append(line)
    lines.append(GOOD[1])
    return write(tmp_path / "Master.csv", *lines)


def test_malformed_rows_are_reported_with_their_line_and_skipped(messy: Path) -> None:
    source = AsteriskCsvSource(messy, timezone="Asia/Shanghai")
    records = list(source.fetch(None, None, on_error="skip"))
    assert [r.external_id for r in records] == ["1763947805.18", "1763949600.20"]
    assert [(e.line, e.field) for e in source.errors] == [
        (i + 2, field) for i, (_line, field) in enumerate(BAD)
    ]
    assert all(e.location == f"Master.csv line {e.line}" for e in source.errors)
    assert source.errors[1].value == "yesterday"


def test_malformed_rows_reject_the_batch_when_asked(messy: Path) -> None:
    source = AsteriskCsvSource(messy, timezone="Asia/Shanghai")
    batch = source.fetch(None, None)
    with pytest.raises(
        ValidationError, match=r"Master.csv line 2: .*\(and 7 more malformed rows"
    ) as info:
        next(batch)
    assert info.value.field == "columns"
    assert len(source.errors) == 8


def test_absurd_durations_and_an_end_before_the_start_are_malformed_rows(tmp_path: Path) -> None:
    absurd = (
        (cdr(duration=86_401, billsec=0, uniqueid="a1"), "duration"),
        (cdr(duration="99999999999999999999999", billsec=0, uniqueid="a2"), "duration"),
        (cdr(duration="9" * 5000, billsec=0, uniqueid="a3"), "duration"),
        (cdr(end="2026-11-24 09:00:00", uniqueid="a4"), "end"),
        (cdr(end="tomorrow", uniqueid="a5"), "end"),
    )
    path = write(tmp_path / "Master.csv", GOOD[0], *(line for line, _ in absurd), GOOD[1])
    source = AsteriskCsvSource(path, timezone="Asia/Shanghai")
    records = list(source.fetch(None, None, on_error="skip"))
    assert [r.external_id for r in records] == ["1763947805.18", "1763949600.20"]
    assert [(e.line, e.field) for e in source.errors] == [
        (i + 2, field) for i, (_line, field) in enumerate(absurd)
    ]
    # A day is the limit; a blank end (a customised log without it) is not checked.
    edge = write(
        tmp_path / "Edge.csv",
        cdr(duration=86_400, billsec=86_400, end="", uniqueid="e1"),
    )
    (record,) = AsteriskCsvSource(edge, timezone="UTC").fetch(None, None)
    assert record.talk_seconds == 86_400


def test_line_numbers_survive_quoted_newlines_and_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "Master.csv",
        cdr(clid='"Li\nWei" <1001>'),
        "",
        cdr(start="bad", uniqueid="x"),
    )
    source = AsteriskCsvSource(path, timezone="UTC")
    assert len(list(source.fetch(None, None, on_error="skip"))) == 1
    assert [e.line for e in source.errors] == [4]


def test_repeated_uniqueids_get_numbered_and_exact_repeats_are_one_call(tmp_path: Path) -> None:
    leg1 = cdr(uniqueid="q.1", dst="6001", billsec=0, duration=15, disposition="NO ANSWER")
    leg2 = cdr(uniqueid="q.1", dst="6002", start="2026-11-24 09:30:20")
    path = write(tmp_path / "Master.csv", leg1, leg2, leg1, cdr(uniqueid="q.1", dst="6003"))
    source = AsteriskCsvSource(path, timezone="UTC")
    records = list(source.fetch(None, None))
    assert [r.external_id for r in records] == ["q.1", "q.1#2", "q.1#3"]
    assert [r.to_number for r in records] == ["6001", "6002", "6003"]
    assert source.duplicates == 1
    # Numbering does not depend on the window.
    later = list(source.fetch(datetime(2026, 11, 24, 9, 30, 10, tzinfo=UTC), None))
    assert [r.external_id for r in later] == ["q.1#2"]


def test_the_window_skips_rows_without_reporting_them(tmp_path: Path) -> None:
    path = write(
        tmp_path / "Master.csv",
        cdr(uniqueid="a", start="2026-11-24 09:00:00"),
        cdr(uniqueid="b", start="2026-11-24 10:00:00", billsec="oops"),
        cdr(uniqueid="c", start="2026-11-24 11:00:00"),
    )
    source = AsteriskCsvSource(path, timezone="UTC")
    at = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert [r.external_id for r in source.fetch(at, None)] == ["c"]
    assert source.errors == ()
    assert [r.external_id for r in source.fetch(None, at, on_error="skip")] == ["a"]
    assert [e.field for e in source.errors] == ["billsec"]


def test_open_files_are_read_from_their_position_every_fetch() -> None:
    text = "\n".join(GOOD) + "\n"
    handle = io.StringIO("junk line that is skipped by seeking\n" + text)
    handle.readline()
    source = AsteriskCsvSource(handle, timezone="UTC")
    assert len(list(source.fetch(None, None))) == 4
    assert len(list(source.fetch(None, None))) == 4
    assert not handle.closed

    class Pipe(io.StringIO):
        def seekable(self) -> bool:
            return False

    piped = AsteriskCsvSource(Pipe(text), timezone="UTC")
    assert len(list(piped.fetch(None, None))) == 4
    assert len(list(piped.fetch(None, None))) == 4
    with pytest.raises(InvalidTypeError, match="path"):
        AsteriskCsvSource(42, timezone="UTC")  # type: ignore[arg-type]


def test_a_stray_byte_does_not_lose_the_call(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(cdr(clid="Caf\u00e9").encode("latin-1") + b"\n")
    (record,) = AsteriskCsvSource(path, timezone="UTC").fetch(None, None)
    assert record.external_id == "1763947805.18"


def test_a_name_tells_two_pbxs_apart(master: Path) -> None:
    source = AsteriskCsvSource(master, timezone="UTC", name="asterisk-csv:beijing")
    record = next(source.fetch(None, None))
    assert record.key == ("asterisk-csv:beijing", "1763947805.18")
    with pytest.raises(ValidationError, match="name"):
        AsteriskCsvSource(master, timezone="UTC", name="Beijing PBX")


def test_imported_calls_link_and_count(master: Path) -> None:
    contacts = [
        Contact(id="c-li", owner="ann", phones=("+86 138 0013 8000",)),
        Contact(id="c-wu", owner="bob", phones=("139-0013-9000",)),
    ]
    directory = PhoneDirectory.build(contacts, default_region="CN")
    linker = CallLinker(directory)
    linked = [
        r.call
        for r in linker.link_all(
            AsteriskCsvSource(master, timezone="Asia/Shanghai").fetch(None, None)
        )
    ]
    assert [c.contact_id for c in linked] == ["c-li", "c-wu", None, "c-li"]
    assert [t.owner for t in linker.created_tasks] == ["bob"]  # the missed call from Wu Na
    stats = call_stats(linked)
    assert stats.group("ann").calls == 2
    assert stats.group("ann").uncounted == 1
    assert stats.group("bob").calls == 1


class TestAsteriskCsvContract(CallSourceContract):
    """The builtin Asterisk source passes the conformance kit."""

    @pytest.fixture
    def source(self, master: Path) -> CallSource:
        return AsteriskCsvSource(master, timezone="Asia/Shanghai")

    @pytest.fixture
    def malformed_source(self, messy: Path) -> tuple[CallSource, int]:
        return AsteriskCsvSource(messy, timezone="Asia/Shanghai"), len(BAD)


def test_a_field_beyond_the_csv_field_limit_is_a_malformed_row_at_its_line(tmp_path: Path) -> None:
    import csv

    from salesflow.tabular import CSV_FIELD_LIMIT

    process_limit = csv.field_size_limit()
    path = write(
        tmp_path / "Master.csv",
        cdr(uniqueid="1.1"),
        cdr(uniqueid="1.2", userfield="u" * (CSV_FIELD_LIMIT + 1)),
        cdr(uniqueid="1.3", userfield="u" * 200_000),  # beyond Python's default, within ours
        cdr(uniqueid="1.4", lastdata="PJSIP/\x00@trunk", clid="x", accountcode="a\x00n"),
    )
    source = AsteriskCsvSource(path, timezone="Asia/Shanghai")
    with pytest.raises(ValidationError, match=r"Master\.csv line 2"):
        list(source.fetch(None, None))
    records = list(source.fetch(None, None, on_error="skip"))
    assert [r.external_id for r in records] == ["1.1", "1.3"]
    assert [(e.line, e.field) for e in source.errors] == [(2, "field"), (4, "owner")]
    assert csv.field_size_limit() == process_limit
