"""Opportunities: validation, stage moves with history, parsing records."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import attrs
import pytest

from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, StageError, ValidationError

PLAN = StagePlan.default()


def opp(**changes: object) -> Opportunity:
    fields: dict[str, object] = {
        "id": "op-1",
        "owner": "ann",
        "amount": Money.of("1000", "CNY"),
        "stage": "quotation",
        "expected_close": date(2026, 12, 15),
    }
    fields.update(changes)
    return Opportunity(**fields)  # type: ignore[arg-type]


def test_a_valid_opportunity() -> None:
    o = opp(team="east", industry="retail", created=date(2026, 9, 1))
    assert o.version == 0
    assert o.history == ()
    assert o.amount == Money.of("1000", "CNY")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", ""),
        ("id", 7),
        ("owner", None),
        ("stage", ""),
        ("amount", Decimal("5")),
        ("amount", Money.of("-1", "CNY")),
        ("team", 3),
        ("expected_close", datetime(2026, 1, 1, tzinfo=UTC)),
        ("expected_close", "not a date"),
        ("version", -1),
        ("history", "nope"),
    ],
)
def test_bad_fields_are_named(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        opp(**{field: value})
    assert info.value.field == field
    assert "op-1" in str(info.value) or field == "id"


def test_string_dates_are_normalised_on_construction() -> None:
    assert opp(expected_close="2026-12-15").expected_close == date(2026, 12, 15)


def test_move_to_appends_history_and_returns_a_new_value() -> None:
    o = opp(stage="needs_analysis")
    at = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    moved = o.move_to("quotation", at, plan=PLAN)
    assert o.stage == "needs_analysis"
    assert moved.stage == "quotation"
    assert moved.history == (StageChange(at, "needs_analysis", "quotation"),)
    won = moved.move_to("won", date(2026, 11, 20))
    assert won.history[-1].at == datetime(2026, 11, 20, tzinfo=UTC)
    assert [c.to_stage for c in won.history] == ["quotation", "won"]


def test_move_to_refuses_unknown_stage_same_stage_and_going_back_in_time() -> None:
    o = opp(stage="needs_analysis")
    with pytest.raises(StageError):
        o.move_to("signed", date(2026, 11, 1), plan=PLAN)
    with pytest.raises(StageError):
        o.move_to("needs_analysis", date(2026, 11, 1))
    moved = o.move_to("quotation", date(2026, 11, 5))
    with pytest.raises(ValidationError, match="at or after the last move"):
        moved.move_to("won", date(2026, 11, 4))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        opp().move_to("won", datetime(2026, 11, 1, 10, 0))


def test_history_must_be_consistent() -> None:
    a = StageChange(datetime(2026, 1, 1, tzinfo=UTC), None, "initial_contact")
    b = StageChange(datetime(2026, 2, 1, tzinfo=UTC), "initial_contact", "quotation")
    assert opp(history=[a, b]).history == (a, b)  # a list is accepted and stored as a tuple
    with pytest.raises(ValidationError, match="time order"):
        opp(history=(b, attrs.evolve(a, from_stage="quotation", to_stage="quotation")))
    with pytest.raises(ValidationError, match="where the previous change ended"):
        opp(history=(a, attrs.evolve(b, from_stage="needs_analysis")))
    with pytest.raises(ValidationError, match="current stage"):
        opp(stage="won", history=(a, b))
    with pytest.raises(InvalidTypeError):
        opp(history=("x",))


def test_history_compares_aware_times_across_zones() -> None:
    east = timezone(timedelta(hours=8))
    a = StageChange(datetime(2026, 1, 1, 8, 0, tzinfo=east), None, "initial_contact")  # 00:00 UTC
    b = StageChange(datetime(2026, 1, 1, 0, 30, tzinfo=UTC), "initial_contact", "quotation")
    assert opp(history=(a, b)).history[1] == b


def test_evolve_validates_and_protects_history() -> None:
    o = opp()
    assert o.evolve(amount=Money.of("5", "CNY")).amount == Money.of("5", "CNY")
    with pytest.raises(ValidationError):
        o.evolve(amount=Money.of("-5", "CNY"))
    with pytest.raises(ValidationError, match="move_to"):
        o.evolve(stage="won")


def test_from_record_parses_text() -> None:
    record = {
        "id": " op-9 ",
        "owner": "bob",
        "amount": "12345.678",
        "currency": "usd",
        "stage": "Quotation",
        "expected_close": "12/01/2026",
        "created": "2026-10-02",
        "team": "",
        "extra": "ignored",
    }
    o = Opportunity.from_record(record, plan=PLAN)
    assert o.id == "op-9"
    assert o.amount == Money.of("12345.678", "USD")
    assert o.stage == "quotation"
    assert o.expected_close == date(2026, 12, 1)
    assert o.created == date(2026, 10, 2)
    assert o.team is None
    assert Opportunity.from_record(
        {**record, "expected_close": "01/12/2026"}, plan=PLAN, dayfirst=True
    ).expected_close == date(2026, 12, 1)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": "12,5"}, "amount"),
        ({"amount": ""}, "amount"),
        ({"currency": None}, "currency"),
        ({"stage": "Signed"}, "stage"),
        ({"expected_close": "31/31/2026"}, "expected_close"),
        ({"owner": "  "}, "owner"),
    ],
)
def test_from_record_names_the_field_and_row(changes: dict[str, object], field: str) -> None:
    record = {"id": "op-9", "owner": "bob", "amount": "1", "currency": "CNY", "stage": "quotation"}
    record.update(changes)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        Opportunity.from_record(record, plan=PLAN, where="line 7")
    assert info.value.field == field
    assert str(info.value).startswith("line 7: ")


def test_from_record_takes_the_currency_argument_when_the_row_has_none() -> None:
    o = Opportunity.from_record(
        {"id": "a", "owner": "b", "amount": "3", "stage": "won"}, currency="JPY"
    )
    assert o.amount == Money.of("3", "JPY")


def test_record_round_trip() -> None:
    o = opp(
        name="Deal",
        account="Acme",
        team="east",
        industry="retail",
        region="Beijing",
        created=date(2026, 1, 2),
    )
    assert Opportunity.from_record(o.to_record(), plan=PLAN) == o


# -- lost reasons ----------------------------------------------------------------------------------


def test_a_move_to_lost_records_the_reason_and_note() -> None:
    o = opp()
    lost = o.move_to("lost", date(2026, 11, 20), plan=PLAN, reason="price", note="  20 % too dear ")
    assert lost.stage == "lost"
    assert lost.history[-1] == StageChange(
        datetime(2026, 11, 20, tzinfo=UTC),
        "quotation",
        "lost",
        reason="price",
        note="20 % too dear",
    )
    assert lost.history[-1].to_dict()["reason"] == "price"
    assert (
        o.move_to("lost", date(2026, 11, 20), plan=PLAN, reason="timing").history[-1].note is None
    )


@pytest.mark.parametrize(
    ("stage", "reason", "note", "field", "value"),
    [
        ("lost", None, None, "reason", None),  # no reason
        ("lost", None, "why", "reason", None),
        ("lost", "too_expensive", None, "reason", "too_expensive"),  # not a code of the plan
        ("won", "price", None, "reason", "price"),  # a reason on a move that is not a loss
        ("needs_analysis", None, "just a note", "note", "just a note"),
    ],
)
def test_a_move_with_a_missing_or_misplaced_reason_is_refused_and_changes_nothing(
    stage: str, reason: str | None, note: str | None, field: str, value: str | None
) -> None:
    o = opp()
    before = attrs.evolve(o)
    with pytest.raises(ValidationError) as info:
        o.move_to(stage, date(2026, 11, 20), plan=PLAN, reason=reason, note=note)
    assert (info.value.field, info.value.value) == (field, value)
    if field == "reason" and stage == "lost":
        assert str(list(PLAN.lost_reasons)) in str(info.value)  # the codes allowed
    assert o == before and o.history == ()


def test_the_reasons_are_the_plans() -> None:
    plan = PLAN.with_lost_reasons(["budget_cut", "went_dark"])
    assert opp().move_to("lost", date(2026, 11, 20), plan=plan, reason="went_dark").stage == "lost"
    with pytest.raises(ValidationError, match="budget_cut"):
        opp().move_to("lost", date(2026, 11, 20), plan=plan, reason="price")


def test_stage_change_checks_reason_and_note() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="beside a lost reason"):
        StageChange(at, "quotation", "lost", note="orphan note")
    with pytest.raises(InvalidTypeError):
        StageChange(at, "quotation", "lost", reason=3)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        StageChange(at, "quotation", "lost", reason=" price")
    with pytest.raises(ValidationError, match="at most 2000"):
        StageChange(at, "quotation", "lost", reason="price", note="x" * 2001)
    assert StageChange(at, "quotation", "lost", reason="price", note="  ").note is None


def test_from_record_reads_the_lost_reason_of_an_imported_lost_deal() -> None:
    record = {
        "id": "op-9",
        "owner": "bob",
        "amount": "1",
        "currency": "CNY",
        "stage": "Lost",
        "expected_close": "2026-10-31",
        "lost_reason": " competitor ",
    }
    o = Opportunity.from_record(record, plan=PLAN)
    assert o.history == (
        StageChange(datetime(2026, 10, 31, tzinfo=UTC), None, "lost", reason="competitor"),
    )
    blank = Opportunity.from_record({**record, "lost_reason": ""}, plan=PLAN)
    assert blank.history == ()  # no recorded reason
    # Without a plan the default plan's reasons apply (and the stage must be a key).
    dated_by_creation = {**record, "stage": "lost", "expected_close": "", "created": "2026-02-01"}
    assert Opportunity.from_record(dated_by_creation).history[0].at == datetime(
        2026, 2, 1, tzinfo=UTC
    )
    for changes, field in (
        ({"lost_reason": "too_expensive"}, "reason"),
        ({"stage": "quotation"}, "reason"),  # a reason for a deal that is not lost
        ({"expected_close": ""}, "lost_reason"),  # no date to date the loss by
    ):
        with pytest.raises(ValidationError) as info:
            Opportunity.from_record({**record, **changes}, plan=PLAN, where="line 3")
        assert info.value.field == field
        assert str(info.value).startswith("line 3: ")
