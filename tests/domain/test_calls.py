"""Calls: records, linking to contacts and tasks, missed-call follow-ups, the best-call library."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from salesflow.domain.actors import Actor
from salesflow.domain.calls import CallRecord, Direction, Disposition, MalformedRow, unique_calls
from salesflow.domain.contacts import Contact
from salesflow.domain.library import (
    BestCallLibrary,
    LibraryAuditRecord,
    LibraryEntry,
    feature_call,
    normalise_tags,
    search_library,
    unfeature_entry,
)
from salesflow.domain.linking import CallLinker, link_call
from salesflow.domain.money import Money
from salesflow.domain.phones import PhoneDirectory
from salesflow.domain.tasks import (
    FollowUpTask,
    OpenTasks,
    TaskStatus,
    follow_up_for_missed_call,
    followup_task_id,
)
from salesflow.errors import (
    InvalidTypeError,
    NotFoundError,
    TransitionNotAllowedError,
    ValidationError,
)

BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 24, 9, 30, tzinfo=BEIJING)


def call(**changes: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "source": "test",
        "external_id": "1",
        "direction": "outbound",
        "from_number": "1001",
        "to_number": "138 0013 8000",
        "started_at": T0,
        "disposition": "answered",
        "owner": "ann",
        "ring_seconds": 8,
        "talk_seconds": 120,
    }
    fields.update(changes)
    return CallRecord(**fields)


def missed(**changes: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "direction": "inbound",
        "from_number": "+86 138 0013 8000",
        "to_number": "010-6000 0000",
        "disposition": "no_answer",
        "talk_seconds": 0,
        "owner": None,
    }
    fields.update(changes)
    return call(**fields)


@pytest.fixture
def directory() -> PhoneDirectory:
    contacts = [
        Contact(
            id="c-li",
            name="Li Wei",
            owner="ann",
            industry="retail",
            region="Beijing",
            phones=("+86 138 0013 8000", "010-8888 7777"),
        ),
        Contact(id="c-wu", name="Wu Na", owner="bob", phones=("139 0013 9000",)),
        Contact(id="c-orphan", name="No Owner", phones=("137 0013 7000",)),
    ]
    return PhoneDirectory.build(contacts, default_region="CN", company_numbers=["010 6000 0000"])


def task(
    id: str, due: date, *, owner: str = "ann", contact_id: str = "c-li", **more: Any
) -> FollowUpTask:
    return FollowUpTask(id=id, owner=owner, contact_id=contact_id, due=due, **more)


# -- call records ----------------------------------------------------------------------------------


def test_a_call_record_converts_its_enums_and_derives_its_id_and_key() -> None:
    record = call()
    assert record.direction is Direction.OUTBOUND
    assert record.disposition is Disposition.ANSWERED
    assert record.id == "test:1"
    assert record.key == ("test", "1")
    assert record.counterpart_number == "138 0013 8000"
    assert record.company_side_number == "1001"
    assert record.answered and not record.missed
    assert record.duration_seconds == 128
    assert record.ended_at == T0 + timedelta(seconds=128)
    inbound = missed()
    assert inbound.counterpart_number == "+86 138 0013 8000"
    assert inbound.missed


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"started_at": datetime(2026, 11, 24, 9, 30)}, "started_at"),
        ({"started_at": "2026-11-24 09:30"}, "started_at"),
        ({"talk_seconds": 1.5}, "talk_seconds"),
        ({"talk_seconds": True}, "talk_seconds"),
        ({"ring_seconds": -1}, "ring_seconds"),
        ({"disposition": "no_answer"}, "talk_seconds"),
        ({"disposition": "hung_up"}, "disposition"),
        ({"direction": "sideways"}, "direction"),
        ({"direction": 1}, "direction"),
        ({"source": ""}, "source"),
        ({"external_id": None}, "external_id"),
        ({"from_number": None}, "from_number"),
        ({"owner": 7}, "owner"),
        ({"price": "1.00"}, "price"),
        ({"version": -1}, "version"),
    ],
)
def test_a_bad_call_record_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field) as info:
        call(**changes)
    assert info.value.field == field


def test_blank_optional_text_means_missing() -> None:
    record = call(owner="", recording="  ", contact_id="")
    assert (record.owner, record.recording, record.contact_id) == (None, None, None)


def test_a_call_record_round_trips_through_a_plain_record() -> None:
    record = call(
        recording="rec/1.wav",
        price=Money.of("-0.200", "USD"),
        contact_id="c-li",
        task_id="t-1",
        opportunity_id="op-1",
        version=3,
    )
    flat = record.to_record()
    assert flat["started_at"] == "2026-11-24T09:30:00+08:00"
    assert flat["price"] == "-0.200"
    assert CallRecord.from_record(flat) == record
    with pytest.raises(ValidationError, match="price_currency"):
        CallRecord.from_record({**flat, "price_currency": None})


def test_unique_calls_keeps_the_first_of_each_key() -> None:
    a, b = call(), call(external_id="2")
    again = call(talk_seconds=5)
    other_source = call(source="other")
    assert list(unique_calls([a, b, again, other_source, b])) == [a, b, other_source]


# -- contacts and tasks ------------------------------------------------------------------------------


def test_contacts_validate_and_round_trip() -> None:
    contact = Contact(id="c", name=" ", phones="138 0013 8000")
    assert contact.phones == ("138 0013 8000",)
    assert contact.name is None
    assert Contact.from_record(contact.to_record()) == contact
    assert Contact.from_record({"id": "c", "phones": "1; 2 ;"}).phones == ("1", "2")
    with pytest.raises(ValidationError, match="id"):
        Contact(id="")
    with pytest.raises(ValidationError, match=r"phones\[1\]"):
        Contact(id="c", phones=("1", ""))
    with pytest.raises(InvalidTypeError, match="industry"):
        Contact(id="c", industry=3)  # type: ignore[arg-type]


def test_a_task_is_created_open_and_completed_once() -> None:
    created = FollowUpTask.create(
        id="t", owner="ann", contact_id="c-li", due=date(2026, 11, 25), at=T0
    )
    assert created.status is TaskStatus.OPEN and created.is_open
    done = created.complete(T0 + timedelta(hours=2), note="sent the quote")
    assert done.status is TaskStatus.DONE
    assert done.closed_at == T0 + timedelta(hours=2)
    assert done.note == "sent the quote"
    assert created.is_open  # values never change in place
    with pytest.raises(TransitionNotAllowedError, match="complete"):
        done.complete(T0 + timedelta(hours=3))
    with pytest.raises(TransitionNotAllowedError, match="cancel"):
        done.cancel(T0 + timedelta(hours=3))
    cancelled = created.cancel(T0)
    assert cancelled.status is TaskStatus.CANCELLED
    with pytest.raises(ValidationError, match="at"):
        created.complete(T0 - timedelta(seconds=1))
    with pytest.raises(ValidationError, match="at"):
        created.complete(datetime(2026, 11, 25, 9))
    assert FollowUpTask.from_record(done.to_record()) == done


def test_task_fields_are_checked() -> None:
    with pytest.raises(ValidationError, match="due"):
        task("t", "tomorrow")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="due"):
        task("t", T0)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="closed_at"):
        task("t", date(2026, 1, 1), status="done")
    with pytest.raises(ValidationError, match="closed_at"):
        task("t", date(2026, 1, 1), closed_at=T0)
    with pytest.raises(ValidationError, match="status"):
        task("t", date(2026, 1, 1), status="waiting")
    with pytest.raises(ValidationError, match="owner"):
        task("t", date(2026, 1, 1), owner=" ")


# -- linking --------------------------------------------------------------------------------------------


def test_an_outbound_call_links_its_contact_by_the_to_number(directory: PhoneDirectory) -> None:
    result = link_call(call(to_number="0086 138 0013 8000"), directory)
    assert result.call.contact_id == "c-li"
    assert result.contact_match == "number"
    assert result.counted
    assert result.new_task is None


def test_an_inbound_call_links_by_the_from_number(directory: PhoneDirectory) -> None:
    inbound = call(direction="inbound", from_number="010 8888 7777", to_number="13900139000")
    assert link_call(inbound, directory).call.contact_id == "c-li"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("+86 139 9999 9999", "unknown_number"),
        ("8001", "unparseable_number"),
        ("01060000000", "company_number"),
    ],
)
def test_calls_to_other_numbers_link_nothing(
    directory: PhoneDirectory, number: str, reason: str
) -> None:
    result = link_call(call(to_number=number), directory)
    assert result.call.contact_id is None
    assert result.contact_match == reason
    assert not result.counted


def test_an_explicit_contact_id_wins(directory: PhoneDirectory) -> None:
    result = link_call(call(contact_id="c-wu"), directory)
    assert result.call.contact_id == "c-wu"
    assert result.contact_match == "contact_id"


def test_an_explicit_task_id_wins_and_brings_its_contact_and_opportunity(
    directory: PhoneDirectory,
) -> None:
    tasks = [
        task("t-near", date(2026, 11, 24)),
        task("t-wu", date(2026, 12, 1), owner="ann", contact_id="c-wu", opportunity_id="op-9"),
    ]
    result = link_call(call(task_id="t-wu", to_number="8001"), directory, tasks)
    assert result.call.task_id == "t-wu"
    assert result.call.contact_id == "c-wu"
    assert result.contact_match == "task"
    assert result.call.opportunity_id == "op-9"
    unknown = link_call(call(task_id="t-elsewhere"), directory, tasks)
    assert unknown.call.task_id == "t-elsewhere"


def test_the_owners_open_task_due_nearest_to_the_call_is_linked(directory: PhoneDirectory) -> None:
    tasks = [
        task("t-far", date(2026, 12, 20)),
        task("t-near-after", date(2026, 11, 26), opportunity_id="op-1"),
        task("t-near-before", date(2026, 11, 21)),
        task("t-done", date(2026, 11, 24), status="done", closed_at=T0 - timedelta(days=1)),
        task("t-bob", date(2026, 11, 24), owner="bob"),
        task("t-other-contact", date(2026, 11, 24), contact_id="c-wu"),
    ]
    result = link_call(call(), directory, tasks)
    assert result.call.task_id == "t-near-after"
    assert result.call.opportunity_id == "op-1"
    # Equally near before and after: the earlier (more overdue) one.
    tie = [task("b", date(2026, 11, 22)), task("a", date(2026, 11, 26))]
    assert link_call(call(), directory, tie).call.task_id == "b"
    # A call's own opportunity is kept.
    assert link_call(call(opportunity_id="op-x"), directory, tasks).call.opportunity_id == "op-x"


def test_the_call_date_is_taken_in_the_requested_zone(directory: PhoneDirectory) -> None:
    late = call(started_at=datetime(2026, 11, 24, 23, 30, tzinfo=UTC))  # 25th in Beijing
    tasks = [task("t-24", date(2026, 11, 24)), task("t-26", date(2026, 11, 26))]
    assert link_call(late, directory, tasks).call.task_id == "t-24"
    assert link_call(late, directory, tasks, tz=BEIJING).call.task_id == "t-24"
    tasks = [task("t-23", date(2026, 11, 23)), task("t-26", date(2026, 11, 26))]
    assert link_call(late, directory, tasks).call.task_id == "t-23"
    assert link_call(late, directory, tasks, tz=BEIJING).call.task_id == "t-26"


def test_a_missed_inbound_call_creates_a_task_for_the_contacts_owner(
    directory: PhoneDirectory,
) -> None:
    result = link_call(missed(opportunity_id="op-2"), directory)
    new = result.new_task
    assert new is not None
    assert new.owner == "ann"
    assert new.contact_id == "c-li"
    assert new.due == date(2026, 11, 24)
    assert new.status is TaskStatus.OPEN
    assert new.created_at == T0
    assert new.call_id == "test:1"
    assert new.opportunity_id == "op-2"
    assert new.id == followup_task_id(result.call) == "followup:test:1"
    assert result.call.task_id == new.id


def test_a_missed_call_reuses_the_owners_open_task(directory: PhoneDirectory) -> None:
    existing = task("t-open", date(2026, 11, 30))
    result = link_call(missed(owner="bob"), directory, [existing])
    assert result.new_task is None
    assert result.call.task_id == "t-open"


def test_answered_outbound_and_unknown_calls_create_no_task(directory: PhoneDirectory) -> None:
    assert link_call(missed(disposition="answered", talk_seconds=30), directory).new_task is None
    assert link_call(call(disposition="busy", talk_seconds=0), directory).new_task is None
    assert link_call(missed(from_number="+86 139 9999 9999"), directory).new_task is None
    assert link_call(missed(), directory, create_tasks=False).new_task is None


def test_a_missed_call_without_any_owner_is_flagged_not_forgotten(
    directory: PhoneDirectory,
) -> None:
    result = link_call(missed(from_number="137 0013 7000"), directory)
    assert result.new_task is None
    assert result.unassigned
    with_owner = link_call(missed(from_number="137 0013 7000", owner="cai"), directory)
    assert with_owner.new_task is not None and with_owner.new_task.owner == "cai"


def test_task_ids_come_from_the_callers_factory(directory: PhoneDirectory) -> None:
    result = link_call(missed(), directory, new_task_id=lambda c: f"T-{c.external_id}")
    assert result.new_task is not None and result.new_task.id == "T-1"


def test_the_linker_makes_one_task_for_repeated_missed_calls(directory: PhoneDirectory) -> None:
    linker = CallLinker(directory)
    calls = [missed(external_id=str(i), started_at=T0 + timedelta(minutes=i)) for i in range(3)]
    results = list(linker.link_all(calls))
    assert [r.new_task is not None for r in results] == [True, False, False]
    assert {r.call.task_id for r in results} == {"followup:test:0"}
    assert [t.id for t in linker.created_tasks] == ["followup:test:0"]
    assert linker.tasks.get("followup:test:0") is not None


def test_linking_is_pure_and_deterministic(directory: PhoneDirectory) -> None:
    tasks = OpenTasks([task("t", date(2026, 11, 24))])
    before = list(tasks)
    first = link_call(missed(), directory, tasks)
    assert list(tasks) == before
    assert link_call(missed(), directory, tasks) == first


def test_link_arguments_are_checked(directory: PhoneDirectory) -> None:
    with pytest.raises(InvalidTypeError):
        link_call("call", directory)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        link_call(call(), {})  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        OpenTasks(["t"])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="missed inbound"):
        follow_up_for_missed_call(call(), contact_id="c-li", owner="ann")


def test_open_tasks_replace_a_task_by_id() -> None:
    tasks = OpenTasks([task("t", date(2026, 11, 24))])
    assert tasks.nearest("ann", "c-li", date(2026, 11, 24)) is not None
    tasks.add(task("t", date(2026, 11, 24), status="done", closed_at=T0))
    assert tasks.nearest("ann", "c-li", date(2026, 11, 24)) is None
    assert tasks.get("t") is not None and len(tasks) == 1
    assert tasks.open_for("ann", "c-li") == []


# -- the best-call library -------------------------------------------------------------------------------


MANAGER = Actor("mgr", roles={"sales_manager"})


def good_call(**changes: Any) -> CallRecord:
    return call(recording="rec/1.wav", contact_id="c-li", **changes)


def test_featuring_needs_an_answered_call_with_a_recording() -> None:
    with pytest.raises(ValidationError, match="disposition"):
        feature_call(
            call(recording="r", disposition="busy", talk_seconds=0), curated_by=MANAGER, at=T0
        )
    with pytest.raises(ValidationError, match="recording"):
        feature_call(call(), curated_by=MANAGER, at=T0)
    with pytest.raises(ValidationError, match="at"):
        feature_call(good_call(), curated_by=MANAGER, at=datetime(2026, 11, 24))
    with pytest.raises(ValidationError, match="after the call started"):
        feature_call(good_call(), curated_by=MANAGER, at=T0 - timedelta(minutes=1))


def test_an_entry_keeps_who_curated_it_when_and_its_filing() -> None:
    contact = Contact(id="c-li", industry="retail", region="Beijing")
    entry = feature_call(
        good_call(),
        curated_by=MANAGER,
        at=T0,
        tags=["Objection  Handling", "opening"],
        note="calm close",
        contact=contact,
    )
    assert entry.call_id == "test:1"
    assert entry.recording == "rec/1.wav"
    assert (entry.curated_by, entry.curated_at) == ("mgr", T0)
    assert (entry.industry, entry.region) == ("retail", "Beijing")
    assert entry.tags == frozenset({"objection handling", "opening"})
    assert entry.owner == "ann"
    explicit = feature_call(
        good_call(), curated_by="mgr", at=T0, industry="energy", contact=contact
    )
    assert explicit.industry == "energy"
    with pytest.raises(ValidationError, match="contact"):
        feature_call(good_call(), curated_by="mgr", at=T0, contact=Contact(id="c-wu"))
    assert LibraryEntry.from_record(entry.to_record()) == entry


def test_unfeaturing_is_audited_with_a_reason() -> None:
    entry = feature_call(good_call(), curated_by=MANAGER, at=T0)
    later = T0 + timedelta(days=3)
    audit = unfeature_entry(entry, by="director", at=later, reason="customer asked")
    assert (audit.action, audit.actor, audit.at, audit.reason) == (
        "unfeatured",
        "director",
        later,
        "customer asked",
    )
    assert audit.entry == entry and audit.call_id == entry.call_id
    assert LibraryAuditRecord.from_record(audit.to_record()) == audit
    with pytest.raises(ValidationError, match="reason"):
        unfeature_entry(entry, by="director", at=later, reason=" ")
    with pytest.raises(ValidationError, match="at"):
        unfeature_entry(entry, by="director", at=T0 - timedelta(seconds=1), reason="x")


def test_the_library_features_searches_and_unfeatures_with_an_audit_trail() -> None:
    library = BestCallLibrary()
    library = library.feature(
        good_call(),
        curated_by=MANAGER,
        at=T0,
        industry="Retail",
        region="Beijing",
        tags=["opening"],
    )
    library = library.feature(
        good_call(external_id="2"),
        curated_by=MANAGER,
        at=T0 + timedelta(hours=1),
        industry="retail",
        region="Shanghai",
        tags=["opening", "pricing"],
    )
    library = library.feature(
        good_call(external_id="3"),
        curated_by=MANAGER,
        at=T0 + timedelta(hours=2),
        industry="energy",
        region="Beijing",
        tags=["pricing"],
    )
    assert len(library) == 3 and "test:2" in library
    assert [e.call_id for e in library.search(industry="RETAIL")] == ["test:2", "test:1"]
    assert [e.call_id for e in library.search(region="beijing")] == ["test:3", "test:1"]
    assert [e.call_id for e in library.search(tags=["Pricing"])] == ["test:3", "test:2"]
    assert [e.call_id for e in library.search(industry="retail", tags=["opening", "pricing"])] == [
        "test:2"
    ]
    assert library.search(industry="finance") == []
    with pytest.raises(TransitionNotAllowedError):
        library.feature(good_call(), curated_by=MANAGER, at=T0)

    after = library.unfeature(
        "test:1", by=MANAGER, at=T0 + timedelta(days=1), reason="outdated pricing"
    )
    assert "test:1" not in after and len(after) == 2
    assert [a.action for a in after.audit] == ["featured", "featured", "featured", "unfeatured"]
    assert after.audit[:3] == library.audit  # the trail only grows
    assert after.audit[-1].entry == library.get("test:1")
    with pytest.raises(NotFoundError):
        after.unfeature("test:1", by=MANAGER, at=T0 + timedelta(days=2), reason="again")


def test_search_library_works_on_any_entries() -> None:
    entries = [
        LibraryEntry(call_id="a", recording="r", curated_by="m", curated_at=T0, tags={"x"}),
        LibraryEntry(call_id="b", recording="r", curated_by="m", curated_at=T0, tags={"x", "y"}),
    ]
    assert [e.call_id for e in search_library(entries, tags="x")] == ["a", "b"]
    with pytest.raises(ValidationError, match="tags"):
        normalise_tags(["ok", ""])
    with pytest.raises(InvalidTypeError, match="industry"):
        search_library([], industry=3)  # type: ignore[arg-type]


def test_malformed_rows_become_located_validation_errors() -> None:
    row = MalformedRow(
        source="s", location="f.csv line 3", field="billsec", value="x", expected="digits", line=3
    )
    error = row.to_error()
    assert isinstance(error, ValidationError)
    assert (error.field, error.value, error.where) == ("billsec", "x", "f.csv line 3")
    assert "f.csv line 3" in str(error)
    assert row.message == "f.csv line 3: invalid billsec: 'x' (expected digits)"
    assert MalformedRow(source="s", location="p", field="f", value={"a": 1}).value == "{'a': 1}"


def test_values_are_frozen() -> None:
    record = call()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.owner = "bob"  # type: ignore[misc]
