"""Funnel, industry mix and rep strengths on real data: the Maven Analytics CRM pipeline.

The sector of each deal comes from accounts.csv (1,425 deals have no account, hence an "unknown"
sector; the sector typo "technolgy" is kept as the data has it). Every expected figure is computed
here with a plain csv loop, independently of the library.
"""

from __future__ import annotations

import csv
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from salesflow.analytics.distribution import distribution
from salesflow.analytics.funnel import funnel
from salesflow.analytics.strengths import recommend_owners, rep_industry_matrix
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import StagePlan
from salesflow.tabular import read_opportunities

pytestmark = pytest.mark.realdata


def _sectors(maven: Path) -> dict[str, str]:
    with open(maven / "accounts.csv", newline="") as handle:
        return {row["account"]: row["sector"] for row in csv.DictReader(handle)}


def _rows(maven: Path) -> list[dict[str, str]]:
    with open(maven / "sales_pipeline.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def pipeline(maven: Path, maven_plan: StagePlan) -> list[Opportunity]:
    sectors = _sectors(maven)
    return read_opportunities(
        maven / "sales_pipeline.csv",
        plan=maven_plan,
        currency="USD",
        mapping={
            "id": "opportunity_id",
            "owner": "sales_agent",
            "stage": "deal_stage",
            # Open deals have no close value yet; they count with amount 0 here.
            "amount": lambda row: row["close_value"] or "0",
            "industry": lambda row: sectors.get(row["account"]),
        },
    )


def _percent(part: int, whole: int) -> Decimal:
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def test_win_rates_per_agent_and_sector_match_a_plain_computation(maven, pipeline, maven_plan):
    sectors = _sectors(maven)
    won: Counter[tuple[str, str]] = Counter()
    closed: Counter[tuple[str, str]] = Counter()
    won_value: Counter[tuple[str, str]] = Counter()
    for row in _rows(maven):
        key = (row["sales_agent"], sectors.get(row["account"]) or "unknown")
        if row["deal_stage"] in ("Won", "Lost"):
            closed[key] += 1
        if row["deal_stage"] == "Won":
            won[key] += 1
            won_value[key] += int(row["close_value"])

    matrix = rep_industry_matrix(pipeline, maven_plan)
    seen = 0
    for record in matrix.to_records():
        key = (record["owner"], record["industry"])
        assert record["closed"] == closed[key], key
        assert record["won"] == won[key], key
        if closed[key]:
            assert record["win_rate"] == _percent(won[key], closed[key]), key
            seen += 1
        assert record["won_amount"] == won_value[key], key
    assert seen == len([k for k in closed if closed[k]])
    assert seen > 250  # 30 agents x 10 sectors, most of them worked

    sector_won: Counter[str] = Counter()
    sector_closed: Counter[str] = Counter()
    for (_agent, sector), n in closed.items():
        sector_closed[sector] += n
        sector_won[sector] += won[(_agent, sector)]
    for sector, n in sector_closed.items():
        assert matrix.team_win_rate(sector) == _percent(sector_won[sector], n)
    assert "technolgy" in matrix.industries


def test_the_smoothed_rate_stays_between_raw_and_team_rate_on_real_data(pipeline, maven_plan):
    matrix = rep_industry_matrix(pipeline, maven_plan)
    for cell in matrix:
        raw, prior = cell.exact_win_rate, matrix.exact_team_rate(cell.industry)
        if raw is not None and prior is not None:
            assert cell.exact_smoothed is not None
            assert min(raw, prior) <= cell.exact_smoothed <= max(raw, prior)
    best = recommend_owners(matrix, "software", top=3)
    assert len(best) == 3
    rates = [s.smoothed_win_rate for s in best]
    assert rates == sorted(rates, reverse=True)


def test_the_funnel_and_sector_mix_match_a_plain_count(maven, pipeline, maven_plan):
    sectors = _sectors(maven)
    rows = _rows(maven)
    stages = Counter((r["sales_agent"], r["deal_stage"].lower()) for r in rows)
    f = funnel(pipeline, maven_plan)
    assert f.total() == sum(1 for r in rows if r["deal_stage"] != "Lost")
    assert f.excluded == sum(1 for r in rows if r["deal_stage"] == "Lost")
    for agent in f.groups:
        for stage, count in f.counts(agent).items():
            assert count == stages[(agent, stage)]
        assert sum(f.shares(agent).values()) == 100

    mix = distribution(pipeline, dimension="industry")
    expected = Counter(sectors.get(r["account"]) or "unknown" for r in rows)
    assert mix.counts() == {sector: expected[sector] for sector in mix.values}
    assert mix.counts()["unknown"] == 1425
    assert mix.values[-1] == "unknown"
    for agent in mix.groups:
        assert sum(mix.shares(agent).values()) == 100
