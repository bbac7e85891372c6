"""Hypothesis strategies for salesflow's value objects.

Use them to property-test code built on salesflow::

    from hypothesis import given
    from salesflow.testing.strategies import opportunities

    @given(opportunities())
    def test_my_report(opps): ...
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import attrs
from hypothesis import strategies as st

from salesflow.domain.actors import Actor
from salesflow.domain.money import Money, currency_precision
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import DEFAULT_LOST_REASONS, Stage, StagePlan

__all__ = [
    "actors",
    "aware_datetimes",
    "currencies",
    "dates",
    "money",
    "opportunities",
    "percents",
    "stage_plans",
]

CURRENCIES = ("CNY", "USD", "EUR", "JPY", "KWD")


def currencies() -> st.SearchStrategy[str]:
    """ISO codes with 0, 2 and 3 decimal places."""
    return st.sampled_from(CURRENCIES)


def money(
    currency: str | st.SearchStrategy[str] | None = None,
    *,
    min_value: int = 0,
    max_value: int = 10**9,
    rounded: bool = True,
) -> st.SearchStrategy[Money]:
    """Money in ``currency`` (or any of :func:`currencies`), in minor units when ``rounded``."""
    codes = currencies() if currency is None else currency
    if isinstance(codes, str):
        codes = st.just(codes)

    def build(code: str) -> st.SearchStrategy[Money]:
        places = currency_precision(code) if rounded else currency_precision(code) + 3
        scale = 10**places
        return st.integers(min_value * scale, max_value * scale).map(
            lambda units: Money(Decimal(units).scaleb(-places), code)
        )

    return codes.flatmap(build)


def percents(places: int = 2) -> st.SearchStrategy[Decimal]:
    """Decimal percentages from 0 to 100 with up to ``places`` decimals."""
    scale = 10**places
    return st.integers(0, 100 * scale).map(lambda n: Decimal(n).scaleb(-places))


def dates(
    min_value: date = date(2020, 1, 1), max_value: date = date(2030, 12, 31)
) -> st.SearchStrategy[date]:
    """Business dates."""
    return st.dates(min_value, max_value)


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """Timezone-aware event times (UTC and fixed offsets)."""
    zones = st.sampled_from([UTC, *(timezone(timedelta(hours=h)) for h in (-8, 1, 8))])
    return st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31), timezones=zones)


def stage_plans() -> st.SearchStrategy[StagePlan]:
    """Valid stage plans: 1-6 open stages, one won, 1-2 lost, any threshold, 1-7 lost reasons."""

    @st.composite
    def build(draw: st.DrawFn) -> StagePlan:
        n_open = draw(st.integers(1, 6))
        probabilities = draw(st.lists(percents(0), min_size=n_open, max_size=n_open))
        stages = [
            Stage(key=f"s{i}", name=f"Stage {i}", probability=p)
            for i, p in enumerate(probabilities)
        ]
        stages.append(Stage(key="won", name="Won", probability=100, outcome="won"))
        for i in range(draw(st.integers(1, 2))):
            stages.append(Stage(key=f"lost{i}", name=f"Lost {i}", probability=0, outcome="lost"))
        reasons = draw(st.lists(st.sampled_from(DEFAULT_LOST_REASONS), min_size=1, unique=True))
        return StagePlan(stages, draw(percents(0)), lost_reasons=reasons)

    return build()


def actors(roles: tuple[str, ...] = ("sales_rep",)) -> st.SearchStrategy[Actor]:
    """Actors holding a non-empty subset of ``roles``."""
    return st.builds(
        Actor,
        id=st.text("abcdefgh", min_size=1, max_size=6),
        roles=st.sets(st.sampled_from(roles), min_size=1),
    )


def opportunities(
    plan: StagePlan | None = None,
    *,
    currency: str | st.SearchStrategy[str] | None = "CNY",
    owners: tuple[str, ...] = ("ann", "bob", "cai"),
    max_size: int = 40,
) -> st.SearchStrategy[list[Opportunity]]:
    """Lists of opportunities with unique ids, in the stages of ``plan`` (the default plan)."""
    stage_plan = StagePlan.default() if plan is None else plan
    one = st.builds(
        Opportunity,
        id=st.just("x"),
        owner=st.sampled_from(owners),
        team=st.sampled_from(("east", "west", None)),
        industry=st.sampled_from(("retail", "energy", "finance", None)),
        amount=money(currency, max_value=10**7, rounded=False),
        stage=st.sampled_from(stage_plan.keys),
        expected_close=st.none() | dates(date(2025, 6, 1), date(2027, 6, 30)),
    )
    return st.lists(one, max_size=max_size).map(
        lambda items: [attrs.evolve(o, id=f"op-{i}") for i, o in enumerate(items)]
    )
