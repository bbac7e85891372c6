"""CallListSource: records built elsewhere, imported like any source's (it passes the kit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import salesflow
from salesflow.adapters.telephony import CallListSource
from salesflow.domain.calls import CallRecord, CallSource, Direction, Disposition
from salesflow.errors import InvalidTypeError, ValidationError
from salesflow.testing.telephony import CallSourceContract

START = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def record(n: int, *, source: str = "pbx", **fields: object) -> CallRecord:
    values: dict[str, object] = {
        "source": source,
        "external_id": f"c{n}",
        "direction": Direction.OUTBOUND,
        "from_number": "1001",
        "to_number": f"1380013800{n % 10}",
        "started_at": START + timedelta(minutes=n),
        "disposition": Disposition.ANSWERED,
        "talk_seconds": 30 + n,
        "owner": "ann",
    }
    values.update(fields)
    return CallRecord(**values)  # type: ignore[arg-type]


class TestCallListContract(CallSourceContract):
    """A list of records passes the conformance kit like any source."""

    @pytest.fixture
    def source(self) -> CallSource:
        return CallListSource([record(n) for n in range(4)], name="pbx")

    @pytest.fixture
    def malformed_source(self) -> tuple[CallSource, int]:
        # A repeat of a key with other values is a malformed row (the kit's wording: two rows).
        changed = [record(1, talk_seconds=1), record(2, owner="bob")]
        return CallListSource([*(record(n) for n in range(4)), *changed], name="pbx"), 2


def test_the_records_of_another_source_are_refused_naming_it() -> None:
    source = CallListSource([record(1), record(2, source="twilio-json")], name="pbx")
    with pytest.raises(ValidationError) as refused:
        list(source.fetch())
    assert (refused.value.field, refused.value.value) == ("source", "twilio-json")


@pytest.mark.parametrize("calls", [record(1), 7, None])
def test_something_other_than_records_is_refused(calls: object) -> None:
    with pytest.raises(InvalidTypeError) as refused:
        CallListSource(calls, name="pbx")  # type: ignore[arg-type]
    assert refused.value.field == "calls"


def test_a_repeat_is_one_call_and_a_changed_repeat_is_a_malformed_row() -> None:
    same = CallListSource([record(1), record(1), record(2)], name="pbx")
    assert [c.external_id for c in same.fetch()] == ["c1", "c2"]
    assert same.duplicates == 1
    changed = CallListSource([record(1), record(1, talk_seconds=5)], name="pbx")
    assert [c.external_id for c in changed.fetch(on_error="skip")] == ["c1"]
    assert len(changed.errors) == 1


def test_a_desk_imports_the_list_once() -> None:
    desk = salesflow.open("memory://", load_entrypoints=False)
    manager = salesflow.Actor("mia", roles={"sales_manager"})
    calls = [record(n) for n in range(3)]
    first = desk.import_calls(manager, salesflow.CallListSource(calls, name="pbx")).value
    assert first.imported == 3
    again = desk.import_calls(manager, CallListSource(calls, name="pbx")).value
    assert (again.imported, again.duplicates) == (0, 3)
    assert [c.id for c in desk.calls()] == ["pbx:c0", "pbx:c1", "pbx:c2"]
