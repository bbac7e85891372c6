"""Periods (months, fiscal quarters) and stage plans (R1)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.domain.actors import Actor, Role
from salesflow.domain.periods import Period, month_index
from salesflow.domain.stages import Outcome, Stage, StagePlan
from salesflow.errors import InvalidTypeError, StageError, ValidationError
from salesflow.testing.strategies import stage_plans

# -- periods -------------------------------------------------------------------------------------


def test_month_period() -> None:
    p = Period.containing(date(2026, 11, 26))
    assert p == Period.month(2026, 11)
    assert p.label == "2026-11"
    assert (p.start, p.end) == (date(2026, 11, 1), date(2026, 11, 30))
    assert p.next() == Period.month(2026, 12)
    assert p.next().next() == Period.month(2027, 1)
    assert p.previous() == Period.month(2026, 10)
    assert Period.month(2028, 2).end == date(2028, 2, 29)


def test_calendar_quarters() -> None:
    q = Period.containing(date(2026, 11, 26), "quarter")
    assert q.label == "2026-Q4"
    assert (q.start, q.end) == (date(2026, 10, 1), date(2026, 12, 31))
    assert q.next().label == "2027-Q1"
    assert q.contains(date(2026, 10, 1))
    assert not q.contains(date(2027, 1, 1))


def test_fiscal_quarters_are_named_after_the_year_they_end_in() -> None:
    q = Period.containing(date(2026, 4, 15), "quarter", fiscal_year_start=4)
    assert q.label == "FY2027-Q1"
    assert (q.start, q.end) == (date(2026, 4, 1), date(2026, 6, 30))
    jan = Period.containing(date(2027, 1, 5), "quarter", fiscal_year_start=4)
    assert jan.label == "FY2027-Q4"
    year = Period.year(2027, fiscal_year_start=4)
    assert (year.start, year.end) == (date(2026, 4, 1), date(2027, 3, 31))
    assert year.label == "FY2027"


def test_parse_round_trips_labels() -> None:
    for period in (
        Period.month(2026, 1),
        Period.quarter(2026, 3),
        Period.quarter(2027, 2, fiscal_year_start=7),
        Period.year(2026),
    ):
        assert Period.parse(period.label, fiscal_year_start=period.fiscal_year_start) == period
    assert repr(Period.month(2026, 11)) == "Period.parse('2026-11')"


@pytest.mark.parametrize("text", ["2026-13", "26-11", "2026/11", "Q4", "2026-Q5"])
def test_parse_refuses_bad_labels(text: str) -> None:
    with pytest.raises(ValidationError):
        Period.parse(text)


def test_bad_fiscal_start_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        Period.quarter(2026, 1, fiscal_year_start=13)
    assert info.value.field == "fiscal_year_start"


@given(st.dates(date(1990, 1, 1), date(2100, 12, 31)), st.integers(1, 12))
def test_every_date_lies_in_its_fiscal_quarter_and_year(day: date, start: int) -> None:
    quarter = Period.containing(day, "quarter", fiscal_year_start=start)
    year = Period.containing(day, "year", fiscal_year_start=start)
    assert quarter.start <= day <= quarter.end
    assert year.start <= day <= year.end
    assert year.start.month == start
    assert year.end.year == year.fiscal_year
    assert quarter.fiscal_year == year.fiscal_year
    assert Period.parse(quarter.label, fiscal_year_start=start) == quarter
    assert month_index(quarter.end) - month_index(quarter.start) == 2


# -- stage plans ---------------------------------------------------------------------------------


def test_default_plan_is_the_requirements_plan() -> None:
    plan = StagePlan.default()
    assert plan.keys == (
        "initial_contact",
        "needs_analysis",
        "intent_confirmed",
        "quotation",
        "won",
        "lost",
    )
    assert [plan.probability(k) for k in plan.keys] == [10, 30, 50, 70, 100, 0]
    assert plan.threshold == Decimal(70)
    assert plan.is_won("won") and plan.is_lost("lost") and plan.is_open("quotation")
    assert plan.won_stage.key == "won"
    assert [s.key for s in plan.forecast_stages()] == ["quotation"]
    assert [s.key for s in plan.forecast_stages(50)] == ["intent_confirmed", "quotation"]
    assert plan.index("quotation") == 3
    assert "quotation" in plan and "signed" not in plan
    assert len(plan) == 6


def test_plan_round_trips_through_json() -> None:
    plan = StagePlan.default().with_threshold(50)
    text = json.dumps(plan.to_dict())
    assert StagePlan.from_dict(json.loads(text)) == plan


def test_unknown_stage_key_raises_stage_error() -> None:
    with pytest.raises(StageError) as info:
        StagePlan.default()["signed"]
    assert info.value.value == "signed"
    assert "quotation" in str(info.value)


def test_resolve_accepts_keys_and_display_names() -> None:
    plan = StagePlan.default()
    assert plan.resolve("quotation").key == "quotation"
    assert plan.resolve(" Intent Confirmed ").key == "intent_confirmed"
    with pytest.raises(StageError):
        plan.resolve("Signed")


def _stages() -> list[dict[str, object]]:
    stages: list[dict[str, object]] = [
        {"key": "open", "probability": 40},
        {"key": "won", "probability": 100, "outcome": "won"},
        {"key": "lost", "probability": 0, "outcome": "lost"},
    ]
    return stages


@pytest.mark.parametrize(
    ("stages", "field"),
    [
        ([{"key": "a", "probability": 10}, {"key": "a", "probability": 20}], "stages[1].key"),
        ([{"key": "a", "probability": 120}], "stages[0]: probability"),
        ([{"key": "a", "probability": -1}], "stages[0]: probability"),
        (
            [{"key": "a", "probability": 10}, {"key": "l", "probability": 0, "outcome": "lost"}],
            "stages",
        ),
    ],
)
def test_invalid_plans_name_the_problem(stages: list[dict[str, object]], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        StagePlan.from_dict({"stages": stages})
    assert field.split(":")[0] in str(info.value)


def test_won_stage_must_be_100_and_lost_0() -> None:
    base = _stages()
    base[1] = {"key": "won", "probability": 90, "outcome": "won"}
    with pytest.raises(ValidationError, match="100 for the won stage"):
        StagePlan.from_dict({"stages": base})
    base = _stages()
    base[2] = {"key": "lost", "probability": 5, "outcome": "lost"}
    with pytest.raises(ValidationError, match="0 for a lost stage"):
        StagePlan.from_dict({"stages": base})


def test_exactly_one_won_and_at_least_one_lost() -> None:
    two_won = [*_stages(), {"key": "won2", "probability": 100, "outcome": "won"}]
    with pytest.raises(ValidationError, match="exactly one stage"):
        StagePlan.from_dict({"stages": two_won})
    no_lost = _stages()[:2]
    with pytest.raises(ValidationError, match="at least one lost stage"):
        StagePlan.from_dict({"stages": no_lost})


def test_plan_dict_shape_is_checked() -> None:
    with pytest.raises(ValidationError, match="only the keys"):
        StagePlan.from_dict({"stages": _stages(), "treshold": 70})
    with pytest.raises(InvalidTypeError):
        StagePlan.from_dict({"stages": "won,lost"})
    with pytest.raises(ValidationError, match="outcome"):
        StagePlan.from_dict(
            {"stages": [*_stages(), {"key": "x", "probability": 1, "outcome": "meh"}]}
        )
    with pytest.raises(ValidationError, match="threshold"):
        StagePlan.from_dict({"stages": _stages(), "threshold": 101})


def test_float_probability_is_refused() -> None:
    with pytest.raises(InvalidTypeError):
        Stage(key="a", name="A", probability=0.7)  # type: ignore[arg-type]


def test_stage_outcome_accepts_enum_and_text() -> None:
    assert Stage(key="w", name="W", probability=100, outcome=Outcome.WON).is_won
    assert Stage(key="w", name="W", probability=100, outcome="won").is_won


@given(stage_plans())
def test_generated_plans_round_trip(plan: StagePlan) -> None:
    assert StagePlan.from_dict(plan.to_dict()) == plan
    assert sum(1 for s in plan if s.is_won) == 1
    assert all(s.probability == 0 for s in plan if s.is_lost)


# -- actors --------------------------------------------------------------------------------------


def test_actor_roles_and_teams() -> None:
    rep = Actor("u1", roles={Role.SALES_REP}, teams="east")
    assert rep.has_role("sales_rep")
    assert rep.in_team("east") and not rep.in_team("west") and not rep.in_team(None)
    assert Actor("nobody").roles == frozenset()
    with pytest.raises(ValidationError):
        Actor("")
    with pytest.raises(ValidationError):
        Actor("u2", roles={""})
    with pytest.raises(InvalidTypeError):
        Actor("u3", roles=5)  # type: ignore[arg-type]


# -- lost reasons ----------------------------------------------------------------------------------


def test_the_default_lost_reasons() -> None:
    assert StagePlan.default().lost_reasons == (
        "price",
        "competitor",
        "no_budget",
        "no_decision",
        "timing",
        "product_fit",
        "other",
    )
    assert [s.key for s in StagePlan.default().lost_stages] == ["lost"]


def test_a_plan_with_custom_lost_reasons_round_trips_through_json() -> None:
    data = {"stages": _stages(), "threshold": 40, "lost_reasons": ["budget_cut", "went_dark"]}
    plan = StagePlan.from_dict(data)
    assert plan.lost_reasons == ("budget_cut", "went_dark")
    assert plan.to_dict()["lost_reasons"] == ["budget_cut", "went_dark"]
    again = StagePlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan and again.lost_reasons == plan.lost_reasons
    assert plan.with_threshold(50).lost_reasons == plan.lost_reasons
    assert plan != plan.with_lost_reasons(["went_dark", "budget_cut"])  # order is display order
    assert (
        StagePlan.from_dict({"stages": _stages()}).lost_reasons == StagePlan.default().lost_reasons
    )


@pytest.mark.parametrize(
    ("codes", "field", "error"),
    [
        ([], "lost_reasons", ValidationError),
        (["price", "price"], "lost_reasons[1]", ValidationError),
        (["price", ""], "lost_reasons[1]", ValidationError),
        ([" price"], "lost_reasons[0]", ValidationError),
        (["x" * 65], "lost_reasons[0]", ValidationError),
        ([7], "lost_reasons[0]", InvalidTypeError),
        ("price", "lost_reasons", InvalidTypeError),
    ],
)
def test_invalid_lost_reasons_are_named(codes: object, field: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        StagePlan.from_dict({"stages": _stages(), "lost_reasons": codes})
    assert info.value.field == field  # type: ignore[attr-defined]


@given(stage_plans())
def test_any_plan_round_trips_with_its_lost_reasons(plan: StagePlan) -> None:
    assert StagePlan.from_dict(plan.to_dict()) == plan
