"""The forecast on real data: the Maven Analytics CRM pipeline (../shared/data/maven-crm).

Its stages are Prospecting / Engaging / Won / Lost, open deals have no close date and no close
value, so the test plan gives Engaging 60 % (threshold 50 %) and values an open deal at its
product's list price. The expected figures are computed here with a plain csv loop, independently of
the library.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from salesflow.analytics.forecast import forecast
from salesflow.domain.money import Money
from salesflow.domain.stages import StagePlan
from salesflow.tabular import read_opportunities

pytestmark = pytest.mark.realdata


def _prices(maven: Path) -> dict[str, str]:
    with open(maven / "products.csv", newline="") as handle:
        prices = {row["product"]: row["sales_price"] for row in csv.DictReader(handle)}
    prices["GTXPro"] = prices["GTX Pro"]  # a known quirk of the data set (see SOURCE.txt)
    return prices


def _read(maven: Path, path: Path, maven_plan: StagePlan) -> list:  # type: ignore[type-arg]
    prices = _prices(maven)
    with open(maven / "sales_teams.csv", newline="") as handle:
        managers = {row["sales_agent"]: row["manager"] for row in csv.DictReader(handle)}
    return read_opportunities(
        path,
        plan=maven_plan,
        currency="USD",
        mapping={
            "id": "opportunity_id",
            "owner": "sales_agent",
            "account": "account",
            "stage": "deal_stage",
            "expected_close": "close_date",
            "created": "engage_date",
            "amount": lambda row: row["close_value"] or prices[row["product"]],
            "team": lambda row: managers[row["sales_agent"]],
        },
    )


def test_maven_forecast_matches_an_independent_computation(
    maven: Path, maven_plan: StagePlan
) -> None:
    opportunities = _read(maven, maven / "sales_pipeline.csv", maven_plan)
    assert len(opportunities) == 8800

    prices = _prices(maven)
    expected: dict[str, Decimal] = {}
    stages: Counter[str] = Counter()
    with open(maven / "sales_pipeline.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            stages[row["deal_stage"]] += 1
            if row["deal_stage"] != "Engaging":
                continue
            weighted = (Decimal(prices[row["product"]]) * Decimal("0.6")).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            )
            agent = row["sales_agent"]
            expected[agent] = expected.get(agent, Decimal(0)) + weighted

    fc = forecast(opportunities, maven_plan, as_of=date(2017, 12, 31))
    assert fc.excluded == {
        "won": stages["Won"],
        "lost": stages["Lost"],
        "below_threshold": stages["Prospecting"],
    }
    assert fc.count == stages["Engaging"] == 1589
    # Open Maven deals carry no close date: all of them are undated, none is dropped.
    assert fc.by_month == {}
    assert fc.undated == fc.total == Money(sum(expected.values(), Decimal(0)), "USD")
    assert {owner: m.amount for owner, m in fc.by_owner.items()} == expected
    by_team = forecast(opportunities, maven_plan, as_of=date(2017, 12, 31), by="team")
    assert Money.sum(by_team.by_group.values()) == fc.total


def test_excel_resaved_dates_parse_to_the_same_pipeline(maven: Path, maven_plan: StagePlan) -> None:
    variant = maven / "variant-excel-resaved" / "sales_pipeline.csv"
    if not variant.is_file():
        pytest.skip(f"{variant} not found")
    assert _read(maven, variant, maven_plan) == _read(
        maven, maven / "sales_pipeline.csv", maven_plan
    )
