"""Forecast accuracy at lead times, Brier score and calibration, win rate per cohort (with the Maven
data where it is present)."""

from __future__ import annotations

import csv
import math
import random
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow.analytics.forecast_accuracy import (
    cohort_win_rates,
    forecast_accuracy,
    forecast_calibration,
)
from salesflow.domain.forecasts import SnapshotLine
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.periods import Period
from salesflow.domain.stages import ForecastCategory, StagePlan
from salesflow.errors import ValidationError
from salesflow.tabular import read_opportunities

PLAN = StagePlan.default()


def line(
    id: str,
    owner: str,
    stage: str,
    amount: str,
    weighted: str,
    close: date,
    closed_on: date | None = None,
) -> SnapshotLine:
    return SnapshotLine(
        id=id,
        owner=owner,
        stage=stage,
        category=PLAN.category(stage),
        amount=Money.of(amount, "CNY"),
        probability=PLAN[stage].probability,
        expected_close=close,
        weighted=Money.of(weighted, "CNY"),
        closed_on=closed_on,
    )


def test_error_ape_bias_and_tendency_per_rep_and_lead_time() -> None:
    nov = date(2026, 11, 15)
    by_day = {
        # 30 days before 30 Nov: ann forecasts 1400 (a deal won in October is not November's);
        # bob 70.
        date(2026, 10, 31): [
            line("a1", "ann", "quotation", "2000", "1400.00", nov),
            line("a2", "ann", "won", "500", "0", nov, closed_on=date(2026, 10, 20)),
            line("b1", "bob", "quotation", "100", "70.00", nov),
            line("b2", "bob", "quotation", "100", "70.00", date(2026, 12, 1)),  # not Nov
        ],
        date(2026, 10, 1): [line("a1", "ann", "intent_confirmed", "1000", "0", nov)],
    }
    signed = [
        SimpleNamespace(
            owner="ann", team="east", amount=Money.of("1000", "CNY"), signed_on=date(2026, 11, 20)
        ),
        SimpleNamespace(
            owner="bob", team="east", amount=Money.of("400", "CNY"), signed_on=date(2026, 11, 2)
        ),
        SimpleNamespace(
            owner="bob", team="east", amount=Money.of("999", "CNY"), signed_on=date(2026, 12, 2)
        ),
    ]
    result = forecast_accuracy(
        lambda day: by_day.get(day, []), signed, PLAN, periods=["2026-11"], lead_times=[30, 60]
    )
    rows = {(r["lead_days"], r["owner"]): r for r in result.to_records()}
    ann = rows[(30, "ann")]
    assert (ann["forecast"], ann["actual"], ann["error"], ann["ape"]) == (
        Decimal("1400.00"),
        Decimal("1000"),
        Decimal("400.00"),
        Decimal("40.0"),
    )
    assert ann["tendency"] == "optimistic"
    bob = rows[(30, "bob")]
    assert (bob["error"], bob["ape"], bob["tendency"]) == (
        Decimal("-330.00"),
        Decimal("82.5"),
        "sandbagging",
    )
    assert rows[(60, "ann")]["forecast"] == Decimal("0")
    summary = {(r["owner"], r["lead_days"]): r for r in result.summary_records()}
    assert summary[("ann", 30)]["bias"] == Decimal("40.0")
    assert summary[("bob", 60)]["bias"] == Decimal("-100.0")
    totals = result.total_records()
    assert sum(r["actual"] for r in totals) == sum(r["actual"] for r in result.to_records())
    assert "sandbagging" in str(result) and "<table" in result._repr_html_()
    assert list(result.to_frame().columns) == result.record_columns()
    commit = forecast_accuracy(
        lambda day: by_day.get(day, []),
        signed,
        PLAN,
        periods=[Period.month(2026, 11)],
        lead_times=[30],
        measure="commit",
    )
    assert {r["owner"]: r["forecast"] for r in commit.to_records()} == {
        "ann": Decimal("2000"),
        "bob": Decimal("100"),
    }
    with pytest.raises(ValidationError, match="lead_times"):
        forecast_accuracy(lambda d: [], signed, PLAN, periods=["2026-11"], lead_times=[-1])
    with pytest.raises(ValidationError, match="periods"):
        forecast_accuracy(lambda d: [], signed, PLAN, periods=[])
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    assert result.plot() is not None


def synthetic(seed: int, n: int) -> tuple[list[Opportunity], float, float]:
    """Deals closed from a stage of the plan, won with exactly that stage's probability."""
    rng = random.Random(seed)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    items, expected, variance = [], 0.0, 0.0
    for i in range(n):
        stage = PLAN.open_stages[i % len(PLAN.open_stages)]
        p = float(stage.probability) / 100
        won = rng.random() < p
        end = "won" if won else "lost"
        items.append(
            Opportunity(
                id=f"s{i}",
                owner="ann",
                amount=Money.of("1", "CNY"),
                stage=end,
                history=(
                    StageChange(at, None, stage.key),
                    StageChange(
                        at + timedelta(days=3), stage.key, end, reason=None if won else "price"
                    ),
                ),
            )
        )
        expected += p * (1 - p)
        variance += p * (1 - p) * (1 - 2 * p) ** 2
    return items, expected / n, math.sqrt(variance) / n


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 2**32))
def test_a_perfectly_calibrated_history_has_the_analytic_brier_score(seed: int) -> None:
    items, expected, sigma = synthetic(seed, 4000)
    result = forecast_calibration(items, PLAN, as_of=date(2026, 2, 1))
    assert result.closed == 4000 and result.unscored == 0
    assert abs(float(result.brier("plan")) - expected) <= 6 * sigma + 1e-6
    records = result.to_records()
    for source in ("plan", "learned"):
        assert sum(r["count"] for r in records if r["source"] == source) == result.closed
    # Observed win rates sit near the predicted ones, bucket by bucket (1000 deals each).
    for r in records:
        if r["source"] == "plan":
            assert abs(r["observed"] - r["predicted"]) <= 8


def test_calibration_counts_deals_closed_without_a_known_stage_as_unscored() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    items = [
        Opportunity(id="a", owner="ann", amount=Money.of("1", "CNY"), stage="won"),
        Opportunity(
            id="b",
            owner="ann",
            amount=Money.of("1", "CNY"),
            stage="lost",
            history=(StageChange(at, None, "lost"),),
        ),
        Opportunity(id="c", owner="ann", amount=Money.of("1", "CNY"), stage="quotation"),
    ]
    result = forecast_calibration(items, PLAN, as_of=date(2026, 2, 1), learned=False)
    assert (result.closed, result.unscored, result.brier("plan")) == (2, 2, None)
    assert result.sources == ("plan",)
    with pytest.raises(ValidationError, match="buckets"):
        forecast_calibration(items, PLAN, as_of=date(2026, 2, 1), buckets=0)


# -- the Maven data ---------------------------------------------------------------------------


def _maven(maven: Path, plan: StagePlan) -> list[Opportunity]:
    with open(maven / "products.csv", newline="") as handle:
        prices = {row["product"]: row["sales_price"] for row in csv.DictReader(handle)}
    prices["GTXPro"] = prices["GTX Pro"]
    return read_opportunities(
        maven / "sales_pipeline.csv",
        plan=plan,
        currency="USD",
        mapping={
            "id": "opportunity_id",
            "owner": "sales_agent",
            "stage": "deal_stage",
            "expected_close": "close_date",
            "created": "engage_date",
            "amount": lambda row: row["close_value"] or prices[row["product"]],
        },
        history={"engaging": "engage_date", "won": "close_date", "lost": "close_date"},
    )


@pytest.mark.realdata
def test_maven_cohort_win_rates_and_calibration(maven: Path, maven_plan: StagePlan) -> None:
    items = _maven(maven, maven_plan)
    closed: dict[str, list[int]] = {}
    with open(maven / "sales_pipeline.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["deal_stage"] not in ("Won", "Lost") or not row["engage_date"]:
                continue
            cell = closed.setdefault(row["engage_date"][:7], [0, 0])
            cell[0] += 1
            cell[1] += row["deal_stage"] == "Won"
    expected = [
        {
            "cohort": month,
            "closed": n,
            "won": w,
            "win_rate": (Decimal(w * 100) / n).quantize(Decimal("0.1"), ROUND_HALF_UP),
        }
        for month, (n, w) in sorted(closed.items())
    ]
    assert cohort_win_rates(items, maven_plan).to_records() == expected

    result = forecast_calibration(items, maven_plan, as_of=date(2018, 1, 1))
    total = sum(n for n, _w in closed.values())
    assert result.closed == total
    for source in result.sources:
        counted = sum(r["count"] for r in result.to_records() if r["source"] == source)
        assert counted + result.unscored == total
    won = sum(w for _n, w in closed.values())
    brier = (Decimal(won) * Decimal("0.16") + Decimal(total - won) * Decimal("0.36")) / total
    assert result.brier("plan") == brier.quantize(Decimal("1e-6"), ROUND_HALF_UP)
    assert ForecastCategory.COMMIT is maven_plan.category("engaging")
