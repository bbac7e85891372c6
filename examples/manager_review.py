"""A sales manager's monthly review, on a seeded sample pipeline (runs on a fresh clone).

The four questions of the manager (R4, R5, R15, R17): whose funnel is off, and where? Which
industries does the team work? How far are we from target? Who should get the new customer?

Run it with ``python examples/manager_review.py``.
"""

from __future__ import annotations

from datetime import date

import salesflow
from salesflow.analytics.distribution import distribution
from salesflow.analytics.funnel import funnel
from salesflow.analytics.performance import Target, attainment, signed_deals
from salesflow.analytics.strengths import recommend_owners, rep_industry_matrix
from salesflow.analytics.velocity import learned_probabilities
from salesflow.domain.money import Money
from salesflow.domain.periods import Period

AS_OF = date(2026, 11, 26)
"""The day of the review: every figure is as of this date."""

SEED_TARGET = {
    "initial_contact": 15,
    "needs_analysis": 40,
    "intent_confirmed": 30,
    "quotation": 10,
    "won": 5,
}
"""The funnel the manager aims for (the seed article's example), in percent per stage."""

QUARTER = Period.quarter(2026, 4)
TARGET_PER_REP = Money.of("2500000", "CNY")
NEW_CUSTOMER_INDUSTRY = "healthcare"


def main() -> None:
    """Print the review."""
    pipeline = salesflow.generate_pipeline(600, seed=2026, as_of=AS_OF)

    print("== 1. Whose funnel is off, and where? (R4)\n")
    stages = funnel(pipeline)
    print(stages, end="\n\n")
    print(stages.deviations(SEED_TARGET), end="\n\n")
    # The same rule, but only where the sample is large enough for the gap not to be chance.
    print(stages.deviations(SEED_TARGET, method="binomial", alpha="0.01"), end="\n\n")

    print("== 2. Which industries does the team work? (R5)\n")
    print(distribution(pipeline, dimension="industry", by="team"), end="\n\n")

    print(f"== 3. How far are we from the {QUARTER} target? (R15)\n")
    teams: dict[str, list[str]] = {}
    for opportunity in pipeline:
        members = teams.setdefault(opportunity.team or "no team", [])
        if opportunity.owner not in members:
            members.append(opportunity.owner)
    targets = [
        Target(owner=owner, period=QUARTER, amount=TARGET_PER_REP)
        for members in teams.values()
        for owner in members
    ]
    expected = salesflow.forecast(pipeline, as_of=AS_OF)
    print(attainment(targets, signed_deals(pipeline), expected, period=QUARTER, teams=teams))
    print()

    print(f"== 4. Who should get the new {NEW_CUSTOMER_INDUSTRY} customer? (R17)\n")
    matrix = rep_industry_matrix(pipeline)
    print(recommend_owners(matrix, NEW_CUSTOMER_INDUSTRY, top=3), end="\n\n")

    print("== And are the stage probabilities right?\n")
    print(learned_probabilities(pipeline, as_of=AS_OF))


if __name__ == "__main__":
    main()
