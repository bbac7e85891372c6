"""Forecast categories: the plan's mapping (configured or derived), overrides, and the individual
and cumulative figures per period and group beside the weighted one."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.analytics.forecast import forecast
from salesflow.analytics.forecast_categories import (
    CATEGORY_COLUMNS,
    CUMULATIVE_COLUMNS,
    forecast_categories,
)
from salesflow.domain.forecasts import CategoryOverride, OverrideEntry
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import ForecastCategory, Stage, StagePlan
from salesflow.errors import ValidationError
from salesflow.testing.strategies import opportunities, stage_plans

PLAN = StagePlan.default()
AS_OF = date(2026, 11, 10)
T = datetime(2026, 11, 1, tzinfo=UTC)


def test_default_categories_are_derived_from_outcome_and_threshold() -> None:
    assert PLAN.categories == {
        "initial_contact": ForecastCategory.PIPELINE,
        "needs_analysis": ForecastCategory.PIPELINE,
        "intent_confirmed": ForecastCategory.PIPELINE,
        "quotation": ForecastCategory.COMMIT,
        "won": ForecastCategory.CLOSED,
        "lost": ForecastCategory.OMITTED,
    }
    assert PLAN.with_threshold(50).category("intent_confirmed") is ForecastCategory.COMMIT
    # Nothing configured: the dict stays what it was (no category key).
    assert "category" not in PLAN.to_dict()["stages"][0]


def test_configured_categories_round_trip_through_dict_and_toml() -> None:
    text = """
threshold = "70"
[[stages]]
key = "discovery"
probability = 20
[[stages]]
key = "proposal"
probability = 50
category = "best_case"
[[stages]]
key = "won"
probability = 100
outcome = "won"
[[stages]]
key = "lost"
probability = 0
outcome = "lost"
category = "omitted"
"""
    plan = StagePlan.from_dict(tomllib.loads(text))
    assert plan.category("proposal") is ForecastCategory.BEST_CASE
    assert plan.category("discovery") is ForecastCategory.PIPELINE
    assert StagePlan.from_dict(plan.to_dict()) == plan
    assert plan.to_dict()["stages"][1]["category"] == "best_case"


@pytest.mark.parametrize(
    ("outcome", "category", "probability"),
    [("won", "commit", 100), ("lost", "pipeline", 0), ("open", "closed", 50), ("open", "x", 5)],
)
def test_a_category_must_fit_the_outcome(outcome: str, category: str, probability: int) -> None:
    with pytest.raises(ValidationError, match="category"):
        Stage(key="s", name="S", probability=probability, outcome=outcome, category=category)


@given(stage_plans(), st.data())
def test_plans_with_categories_round_trip(plan: StagePlan, data: st.DataObject) -> None:
    stages = []
    for stage in plan:
        if stage.is_open:
            chosen = data.draw(
                st.sampled_from([None, "pipeline", "best_case", "commit", "omitted"])
            )
            stage = Stage(
                key=stage.key, name=stage.name, probability=stage.probability, category=chosen
            )
        stages.append(stage)
    configured = StagePlan(stages, plan.threshold, lost_reasons=plan.lost_reasons)
    assert StagePlan.from_dict(configured.to_dict()) == configured


def deal(i: int, stage: str, amount: str, close: date | None, owner: str = "ann") -> Opportunity:
    return Opportunity(
        id=f"op-{i}",
        owner=owner,
        team="east",
        amount=Money.of(amount, "CNY"),
        stage=stage,
        expected_close=close,
    )


def test_figures_per_period_with_an_override_and_every_output_form() -> None:
    won = Opportunity(
        id="op-w",
        owner="ann",
        team="east",
        amount=Money.of("500", "CNY"),
        stage="quotation",
        expected_close=date(2026, 10, 30),
    ).move_to("won", datetime(2026, 11, 3, tzinfo=UTC), plan=PLAN)
    items = [
        deal(1, "quotation", "1000", date(2026, 11, 20)),
        deal(2, "intent_confirmed", "2000", date(2026, 11, 25)),
        deal(3, "initial_contact", "300", date(2026, 12, 1)),
        deal(4, "quotation", "100", date(2026, 9, 1), owner="bob"),  # overdue
        deal(5, "needs_analysis", "50", None, owner="bob"),  # undated
        won,
    ]
    override = CategoryOverride(
        opportunity_id="op-2",
        owner="ann",
        entries=(OverrideEntry(category="best_case", reason="LOI", actor="ann", at=T),),
    )
    result = forecast_categories(items, PLAN, as_of=AS_OF, overrides={"op-2": override})
    rows = {(r["bucket"], r["owner"]): r for r in result.to_records()}
    november = rows[("2026-11", "ann")]
    assert (november["commit"], november["best_case"], november["closed"]) == (
        Decimal("1000"),
        Decimal("2000"),
        Decimal("500"),
    )
    assert november["commit_forecast"] == Decimal("1500")
    assert november["best_case_forecast"] == Decimal("3500")
    assert november["pipeline_forecast"] == Decimal("3000")
    assert november["weighted"] == Decimal("700.00")
    assert rows[("overdue", "bob")]["commit"] == Decimal("100")
    assert rows[("undated", "bob")]["pipeline"] == Decimal("50")
    # Before the override's day it does not apply.
    earlier = forecast_categories(
        items, PLAN, as_of=date(2026, 10, 31), overrides={"op-2": override}
    )
    assert earlier.figure("best_case") == Decimal("0")
    assert "commit_forecast" in str(result) and "<table" in result._repr_html_()
    frame = result.to_frame()
    assert list(frame.columns) == result.record_columns()
    assert len(result.totals_frame()) == 4
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    assert result.plot() is not None


@given(opportunities(max_size=30), st.sampled_from(["month", "quarter"]))
def test_cumulative_figures_and_weighted_match_the_forecast(items: list, kind: str) -> None:  # type: ignore[type-arg]
    result = forecast_categories(items, PLAN, as_of=AS_OF, by=("team", "owner"), kind=kind)
    records = result.to_records()
    for r in records:
        assert r["commit_forecast"] == r["commit"] + r["closed"]
        assert r["best_case_forecast"] == r["best_case"] + r["commit"] + r["closed"]
        assert r["pipeline_forecast"] == r["pipeline"] + r["best_case"] + r["commit"]
        assert r["commit_forecast"] <= r["best_case_forecast"]
    for column in (*CATEGORY_COLUMNS, *CUMULATIVE_COLUMNS, "weighted", "count"):
        assert sum(r[column] for r in records) == sum(r[column] for r in result.total_records())
    # The weighted figure is the forecast's, group by group.
    fc = forecast(items, PLAN, as_of=AS_OF, by=("team", "owner"))
    expected = {g: m.amount for g, m in fc.by_group.items()}
    got: dict[object, Decimal] = {}
    for r in records:
        key = (r["team"], r["owner"])
        got[key] = got.get(key, Decimal(0)) + r["weighted"]
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}
