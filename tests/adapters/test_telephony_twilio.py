"""The twilio-json call source: Call resource pages, paging, status mapping, exact prices."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from salesflow.adapters.telephony_twilio import TwilioJsonSource, TwilioPageDirectory, page_key
from salesflow.domain.calls import CallSource, Direction, Disposition
from salesflow.domain.money import Money
from salesflow.errors import InvalidTypeError, NotFoundError, ValidationError
from salesflow.testing.telephony import CallSourceContract

BASE = "/2010-04-01/Accounts/AC1/Calls.json"


def twilio_call(sid: str, **fields: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "sid": sid,
        "status": "completed",
        "direction": "outbound-api",
        "from": "+14155550100",
        "to": "+14155552671",
        "start_time": "Tue, 24 Nov 2026 01:30:00 +0000",
        "end_time": "Tue, 24 Nov 2026 01:35:10 +0000",
        "date_created": "Tue, 24 Nov 2026 01:29:58 +0000",
        "duration": "300",
        "price": "-0.0130",
        "price_unit": "USD",
    }
    call.update(fields)
    return call


def page(number: int, calls: list[dict[str, Any]], last: bool = False) -> dict[str, Any]:
    return {
        "calls": calls,
        "page": number,
        "page_size": 2,
        "uri": f"{BASE}?PageSize=2&Page={number}",
        "next_page_uri": None if last else f"{BASE}?Page={number + 1}&PageSize=2",
    }


PAGES = [
    page(
        0,
        [
            twilio_call("CA1"),
            twilio_call(
                "CA2",
                status="no-answer",
                direction="inbound",
                start_time="Tue, 24 Nov 2026 02:00:00 +0000",
                end_time="Tue, 24 Nov 2026 02:00:25 +0000",
                duration="25",
                price=None,
                price_unit="USD",
            ),
        ],
    ),
    page(
        1,
        [
            twilio_call(
                "CA3",
                status="busy",
                start_time="Tue, 24 Nov 2026 03:00:00 +0000",
                end_time="Tue, 24 Nov 2026 03:00:04 +0000",
                duration=None,
            )
        ],
    ),
    page(
        2,
        [
            twilio_call(
                "CA4",
                status="canceled",
                direction="outbound-dial",
                start_time=None,
                date_created="Tue, 24 Nov 2026 04:00:00 +0000",
                end_time=None,
                duration="0",
            )
        ],
        last=True,
    ),
]


def loader(pages: list[dict[str, Any]]) -> Any:
    by_key = {page_key(p["uri"]): p for p in pages}
    requested: list[str] = []

    def load(uri: str) -> dict[str, Any]:
        requested.append(uri)
        return by_key[page_key(uri)]

    load.requested = requested  # type: ignore[attr-defined]
    return load


def test_pages_are_followed_through_the_loader() -> None:
    load = loader(PAGES)
    source = TwilioJsonSource(f"{BASE}?Page=0&PageSize=2", load_page=load)
    records = list(source.fetch(None, None))
    assert [r.external_id for r in records] == ["CA1", "CA2", "CA3", "CA4"]
    assert source.pages_read == 3
    assert load.requested == [
        f"{BASE}?Page=0&PageSize=2",
        f"{BASE}?Page=1&PageSize=2",
        f"{BASE}?Page=2&PageSize=2",
    ]
    # A page object works as a start too.
    assert len(list(TwilioJsonSource(PAGES[0], load_page=load).fetch(None, None))) == 4


def test_statuses_directions_times_and_durations_map() -> None:
    ca1, ca2, ca3, ca4 = TwilioJsonSource(PAGES[0], load_page=loader(PAGES)).fetch(None, None)
    assert ca1.disposition is Disposition.ANSWERED and ca1.direction is Direction.OUTBOUND
    assert ca1.started_at == datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
    assert (ca1.talk_seconds, ca1.ring_seconds) == (300, 10)
    assert ca1.price == Money(Decimal("-0.0130"), "USD")
    assert ca2.disposition is Disposition.NO_ANSWER and ca2.direction is Direction.INBOUND
    assert (ca2.talk_seconds, ca2.ring_seconds, ca2.price) == (0, 25, None)
    assert ca3.disposition is Disposition.BUSY
    assert (ca3.talk_seconds, ca3.ring_seconds) == (0, 4)
    assert ca4.disposition is Disposition.NO_ANSWER and ca4.direction is Direction.OUTBOUND
    assert ca4.started_at == datetime(2026, 11, 24, 4, tzinfo=UTC)


def test_owners_and_recordings_come_from_the_caller() -> None:
    source = TwilioJsonSource(
        PAGES[0],
        load_page=loader(PAGES),
        owners={"+14155550100": "ann"},
        recordings=lambda call: f"rec/{call['sid']}.mp3" if call["status"] == "completed" else None,
    )
    records = list(source.fetch(None, None))
    assert [r.owner for r in records] == ["ann", None, "ann", "ann"]
    assert [r.recording for r in records] == ["rec/CA1.mp3", None, None, None]
    with pytest.raises(InvalidTypeError, match="owners"):
        TwilioJsonSource(PAGES[0], owners=["ann"])  # type: ignore[arg-type]


def test_calls_that_have_not_ended_wait_for_the_next_fetch() -> None:
    ringing = [page(0, [twilio_call("CA1"), twilio_call("CA9", status="in-progress")], last=True)]
    source = TwilioJsonSource(ringing[0])
    assert [r.external_id for r in source.fetch(None, None)] == ["CA1"]
    assert source.in_progress == ("CA9",)
    assert source.errors == ()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"status": "exploded"}, "status"),
        ({"direction": "sideways"}, "direction"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"start_time": None, "date_created": None}, "date_created"),
        ({"duration": "4.5"}, "duration"),
        ({"duration": None}, "duration"),
        ({"duration": "99999999999999999999999"}, "duration"),
        ({"duration": "9" * 5000}, "duration"),
        ({"duration": 10**5000}, "duration"),
        ({"duration": "86401"}, "duration"),
        ({"duration": -5}, "duration"),
        ({"duration": "-5"}, "duration"),
        ({"end_time": "Mon, 01 Jan 1990 00:00:00 +0000"}, "end_time"),
        ({"end_time": "Thu, 26 Nov 2026 01:35:10 +0000"}, "end_time"),
        ({"price_unit": "XYZ"}, "currency"),
        ({"price": 0.2}, "price"),
        ({"price": "1e400"}, "price"),
        ({"price": "-1000000000000000"}, "price"),
        ({"sid": ""}, "sid"),
        ({"from": 14155550100}, "from"),
    ],
)
def test_malformed_calls_are_reported_with_their_place(changes: dict[str, Any], field: str) -> None:
    data = page(0, [twilio_call("CA1"), {**twilio_call("CA2"), **changes}], last=True)
    source = TwilioJsonSource(data)
    assert [r.external_id for r in source.fetch(None, None, on_error="skip")] == ["CA1"]
    (error,) = source.errors
    assert error.field == field
    assert error.location == "page 0 calls[1]"
    with pytest.raises(ValidationError, match=r"page 0 calls\[1\]"):
        list(source.fetch(None, None))


def test_rfc2822_minus_zero_means_utc() -> None:
    data = page(0, [twilio_call("CA1", start_time="Tue, 24 Nov 2026 01:30:00 -0000")], last=True)
    (record,) = TwilioJsonSource(data).fetch(None, None)
    assert record.started_at == datetime(2026, 11, 24, 1, 30, tzinfo=UTC)


def test_paging_problems_are_reported_not_looped() -> None:
    looping = copy.deepcopy(PAGES[:2])
    looping[1]["next_page_uri"] = looping[0]["uri"]
    source = TwilioJsonSource(looping[0], load_page=loader(looping))
    assert len(list(source.fetch(None, None, on_error="skip"))) == 3
    assert [e.field for e in source.errors] == ["next_page_uri"]
    no_loader = TwilioJsonSource(PAGES[0])
    assert len(list(no_loader.fetch(None, None, on_error="skip"))) == 2
    assert [e.expected for e in no_loader.errors] == ["a page loader (load_page=)"]
    broken = TwilioJsonSource({"calls": "none", "page": 0})
    assert list(broken.fetch(None, None, on_error="skip")) == []
    assert [e.field for e in broken.errors] == ["calls"]
    with pytest.raises(ValidationError, match="load_page"):
        TwilioJsonSource(f"{BASE}?Page=0")
    with pytest.raises(ValidationError, match="start"):
        TwilioJsonSource()


def test_conflicting_repeats_of_a_sid_are_reported() -> None:
    data = page(
        0, [twilio_call("CA1"), twilio_call("CA1"), twilio_call("CA1", duration="301")], last=True
    )
    source = TwilioJsonSource(data)
    assert [r.external_id for r in source.fetch(None, None, on_error="skip")] == ["CA1"]
    assert source.duplicates == 1
    assert [e.field for e in source.errors] == ["external_id"]


def test_a_page_directory_links_saved_files(tmp_path: Path) -> None:
    for i, data in enumerate(PAGES):
        (tmp_path / f"p{i}.json").write_text(json.dumps(data), encoding="utf-8")
    (tmp_path / "single.json").write_text(json.dumps(twilio_call("CA7")), encoding="utf-8")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    directory = TwilioPageDirectory(tmp_path)
    assert len(directory) == 3
    assert directory.heads == [page_key(PAGES[0]["uri"])]
    assert directory.skipped_files == ["single.json"]
    assert [name for name, _ in directory.problems] == ["broken.json"]
    assert directory(f"https://api.twilio.com{BASE}?Page=1&PageSize=2")["page"] == 1
    with pytest.raises(NotFoundError):
        directory(f"{BASE}?Page=9")
    source = TwilioJsonSource(directory=tmp_path)
    records = list(source.fetch(None, None, on_error="skip"))
    assert [r.external_id for r in records] == ["CA1", "CA2", "CA3", "CA4"]
    assert [(e.location, e.field) for e in source.errors] == [("broken.json", "page")]
    with pytest.raises(NotFoundError):
        TwilioJsonSource(directory=tmp_path / "missing")


# -- the real Twilio sample pages (../shared/data/twilio-calls) ---------------------------------------


@pytest.mark.realdata
def test_the_sample_pages_import(twilio_calls: Path) -> None:
    source = TwilioJsonSource(directory=twilio_calls)
    records = list(source.fetch(None, None))
    assert source.errors == ()
    # Five list pages (three empty, two full); both full pages list the same two calls.
    assert source.pages_read == 5
    assert source.duplicates == 2
    assert sorted(source.directory.skipped_files) == sorted(  # type: ignore[union-attr]
        p.name for p in twilio_calls.glob("*.json") if "read" not in p.name
    )
    outbound, inbound = records
    assert outbound.external_id == "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    assert outbound.direction is Direction.OUTBOUND
    assert outbound.disposition is Disposition.ANSWERED
    assert outbound.started_at == datetime(2019, 10, 18, 17, 2, tzinfo=UTC)
    assert (outbound.talk_seconds, outbound.ring_seconds) == (4, 56)
    assert (outbound.from_number, outbound.to_number) == ("+13051416799", "+13051913581")
    assert outbound.price == Money(Decimal("-0.200"), "USD")
    assert inbound.external_id == "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0"
    assert inbound.direction is Direction.INBOUND
    assert inbound.talk_seconds == 3
    assert inbound.price == Money(Decimal("-0.100"), "JPY")
    assert inbound.price.amount.as_tuple().exponent == -3  # kept exactly as reported


@pytest.mark.realdata
def test_the_sample_pages_page_correctly(twilio_calls: Path) -> None:
    first = json.loads((twilio_calls / "call_read_full_page1.json").read_text(encoding="utf-8"))
    second = json.loads((twilio_calls / "call_read_full_page2.json").read_text(encoding="utf-8"))
    assert first["next_page_uri"] is None  # the sample's first page is the last of its listing
    assert second["page"] == 1 and second["previous_page_uri"]
    load = loader([second])
    chained = dict(first, next_page_uri=second["uri"])
    source = TwilioJsonSource(chained, load_page=load)
    records = list(source.fetch(None, None))
    assert source.pages_read == 2
    assert load.requested == [second["uri"]]
    assert len(records) == 2 and source.duplicates == 2
    only_first = TwilioJsonSource(first)
    assert len(list(only_first.fetch(None, None))) == 2
    assert only_first.pages_read == 1


@pytest.mark.realdata
def test_the_sample_single_call_resources_map(twilio_calls: Path) -> None:
    cancel = json.loads((twilio_calls / "call_cancel.json").read_text(encoding="utf-8"))
    (record,) = TwilioJsonSource(cancel).fetch(None, None)
    assert record.disposition is Disposition.NO_ANSWER
    assert (record.talk_seconds, record.ring_seconds) == (0, 15)
    assert record.price == Money(Decimal("-0.03000"), "USD")
    assert record.started_at == datetime(2010, 8, 31, 20, 36, 29, tzinfo=UTC)


class TestTwilioJsonContract(CallSourceContract):
    """The builtin Twilio source passes the conformance kit."""

    @pytest.fixture
    def source(self) -> CallSource:
        return TwilioJsonSource(PAGES[0], load_page=loader(PAGES))

    @pytest.fixture
    def malformed_source(self) -> tuple[CallSource, int]:
        pages = copy.deepcopy(PAGES)
        pages[1]["calls"].append(twilio_call("CA8", status="exploded"))
        pages[2]["calls"].append({"sid": "CA9", "status": "completed", "direction": "inbound"})
        return TwilioJsonSource(pages[0], load_page=loader(pages)), 2


class TestTwilioSamplePagesContract(CallSourceContract):
    """The conformance kit on the real sample pages (skipped where the data is absent)."""

    @pytest.fixture
    def source(self, twilio_calls: Path) -> CallSource:
        return TwilioJsonSource(directory=twilio_calls)

    @pytest.fixture
    def malformed_source(self, twilio_calls: Path) -> tuple[CallSource, int]:
        first = json.loads((twilio_calls / "call_read_full_page1.json").read_text(encoding="utf-8"))
        bad = dict(first["calls"][0], sid="CAbad", start_time="18/10/2019 17:02")
        return TwilioJsonSource(dict(first, calls=[*first["calls"], bad])), 1


def test_a_truncated_or_missing_page_is_reported_and_the_rest_imported(tmp_path: Path) -> None:
    for i, data in enumerate(PAGES):
        (tmp_path / f"p{i}.json").write_text(json.dumps(data), encoding="utf-8")
    # The middle page was cut off while saving: not JSON any more.
    text = (tmp_path / "p1.json").read_text(encoding="utf-8")
    (tmp_path / "p1.json").write_text(text[: len(text) // 2], encoding="utf-8")
    source = TwilioJsonSource(directory=tmp_path)
    records = list(source.fetch(None, None, on_error="skip"))
    assert [r.external_id for r in records] == ["CA1", "CA2", "CA4"]  # page 1 held CA3
    locations = [e.location for e in source.errors]
    assert locations == ["p1.json", f"page {PAGES[0]['next_page_uri']}"]
    assert all(e.field == "page" for e in source.errors)
    with pytest.raises(ValidationError, match=r"p1\.json"):
        list(source.fetch(None, None))
    # A loader that cannot find a page (a page URI typed wrong, a page that expired) is reported
    # the same way, and the other chains are read.
    load = loader(PAGES)
    missing = TwilioJsonSource([f"{BASE}?Page=7", f"{BASE}?Page=2&PageSize=2"], load_page=load)
    assert [r.external_id for r in missing.fetch(None, None, on_error="skip")] == ["CA4"]
    ((error),) = missing.errors
    assert (error.location, error.field) == (f"page {BASE}?Page=7", "page")
    assert "KeyError" in error.expected
