"""Targets as managers set them: per period, pro-rated exactly, and team stretches or cushions."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.analytics.performance import (
    CUSHION,
    MEMBERS,
    STRETCH,
    TEAM,
    Target,
    attainment,
)
from salesflow.domain.money import Money
from salesflow.domain.periods import Period
from salesflow.errors import ValidationError
from salesflow.testing.strategies import money

Q4 = Period.quarter(2026, 4)


def cny(amount: str | int) -> Money:
    return Money.of(amount, "CNY")


def target(owner: str, amount: str | int, period: Period | str = Q4) -> Target:
    return Target(owner=owner, period=period, amount=cny(amount))


fiscal_starts = st.integers(1, 12)
quarters = st.builds(
    lambda year, q, start: Period.quarter(year, q, fiscal_year_start=start),
    st.integers(2020, 2030),
    st.integers(1, 4),
    fiscal_starts,
)
years = st.builds(
    lambda year, start: Period.year(year, fiscal_year_start=start),
    st.integers(2020, 2030),
    fiscal_starts,
)


@given(money(max_value=10**12), quarters | years)
def test_the_months_of_a_target_add_up_to_it_exactly_in_any_currency(amount, period):
    whole = Target(owner="ann", period=period, amount=amount)
    months = whole.monthly()
    assert [m.period.kind for m in months] == ["month"] * period.length
    assert [m.period.first for m in months] == list(period.month_indexes())
    assert Money.sum([m.amount for m in months], amount.currency) == amount
    units = [m.amount.amount.scaleb(amount.precision) for m in months]
    # Equal shares: no two months differ by more than one minor unit, and the earlier month
    # gets the leftover unit.
    assert max(units) - min(units) <= 1
    assert units == sorted(units, reverse=True)
    assert all(m.amount.is_rounded() for m in months)
    for month in months:
        assert whole.share(month.period) == month


@given(money(max_value=10**12), years)
def test_the_quarters_of_a_year_add_up_to_it_and_to_their_months(amount, year):
    whole = Target(owner="ann", period=year, amount=amount)
    quarters_of = [
        Period.from_month_index(first, "quarter", fiscal_year_start=year.fiscal_year_start)
        for first in year.month_indexes()[::3]
    ]
    shares = [whole.share(q) for q in quarters_of]
    assert Money.sum([s.amount for s in shares], amount.currency) == amount
    months = whole.monthly()
    for i, share in enumerate(shares):
        assert share.amount == Money.sum(
            [m.amount for m in months[3 * i : 3 * i + 3]], amount.currency
        )


def test_pro_rating_puts_the_leftover_cents_on_the_earliest_months():
    months = target("ann", "100.00").monthly()
    assert [m.amount for m in months] == [cny("33.34"), cny("33.33"), cny("33.33")]
    assert [m.period.label for m in months] == ["2026-10", "2026-11", "2026-12"]
    yen = Target(owner="ann", period="2026-Q4", amount=Money.of(100, "JPY")).monthly()
    assert [m.amount.amount for m in yen] == [Decimal(34), Decimal(33), Decimal(33)]


def test_attainment_of_a_month_pro_rates_the_quarter_target_unless_the_month_has_its_own():
    targets = [target("ann", "100.00"), target("bob", 300), target("bob", 250, "2026-11")]
    november = attainment(targets, [], period="2026-11")
    assert november.row("ann").target == cny("33.33")
    assert november.row("bob").target == cny(250)  # the month's own target wins
    october = attainment(targets, [], period="2026-10")
    assert october.row("ann").target == cny("33.34")
    assert october.row("bob").target == cny(100)
    months = [attainment(targets, [], period=f"2026-{m}").row("ann").target for m in (10, 11, 12)]
    assert Money.sum(months, "CNY") == cny(100)


def test_the_shortest_longer_target_is_pro_rated_and_shorter_ones_are_not_summed():
    yearly = target("ann", 1200, "2026")
    quarterly = target("ann", 600)
    assert attainment([yearly, quarterly], [], period="2026-11").row("ann").target == cny(200)
    assert attainment([yearly], [], period="2026-11").row("ann").target == cny(100)
    assert attainment([yearly], [], period="2026-Q3").row("ann").target == cny(300)
    # Month targets never add up to a quarter: the quarter is measured against its own (none).
    months = [target("ann", 10, "2026-10"), target("ann", 10, "2026-11")]
    assert [r.name for r in attainment(months, [], period=Q4, currency="CNY").reps] == []


def test_a_team_quarter_target_is_pro_rated_and_may_stretch_the_members():
    teams = {"east": ["ann", "bob"]}
    targets = [target("east", 90000), target("ann", 30000), target("bob", 30000)]
    row = attainment(targets, [], period="2026-12", teams=teams).row("east", TEAM)
    assert (row.target, row.members_target, row.difference, row.basis) == (
        cny(30000),
        cny(20000),
        cny(10000),
        STRETCH,
    )


def test_bad_per_period_targets_are_refused():
    with pytest.raises(ValidationError, match="one quarter target per rep or team") as info:
        attainment(
            [
                Target(owner="ann", period=Period.quarter(2026, 4), amount=cny(1)),
                Target(
                    owner="ann",
                    period=Period.quarter(2027, 4, fiscal_year_start=2),  # Nov 2026 - Jan 2027
                    amount=cny(2),
                ),
            ],
            [],
            period="2026-11",
        )
    assert info.value.field == "targets[1]"
    odd = Target(owner="ann", period=Q4, amount=Money(Decimal("100.005"), "CNY"))
    with pytest.raises(ValidationError, match="whole minor units of CNY") as info:
        attainment([odd], [], period="2026-11")
    assert info.value.field == "amount"
    assert attainment([odd], [], period=Q4).row("ann").target == odd.amount  # not pro-rated
    with pytest.raises(ValidationError, match="inside 2026-Q4") as info:
        target("ann", 100).share("2027-01")
    assert info.value.field == "period"
    with pytest.raises(ValidationError, match="inside 2026-11"):
        target("ann", 100, "2026-11").share(Q4)


names = st.sampled_from(("ann", "bob", "cai", "dan"))
amounts = st.integers(0, 10**9).map(lambda cents: Money(Decimal(cents).scaleb(-2), "CNY"))


@given(
    st.dictionaries(names, amounts),
    st.dictionaries(st.sampled_from(("east", "west")), amounts),
)
def test_team_targets_are_reported_beside_their_members_sum(rep_targets, team_targets):
    teams = {"east": ["ann", "bob"], "west": ["cai"]}  # dan is in no team
    result = attainment(
        [Target(owner=o, period=Q4, amount=a) for o, a in rep_targets.items()]
        + [Target(owner=o, period=Q4, amount=a) for o, a in team_targets.items()],
        [],
        period=Q4,
        teams=teams,
        currency="CNY",
    )
    zero = cny(0)
    for team, members in teams.items():
        row = result.row(team, TEAM)
        summed = Money.sum([rep_targets.get(m, zero) for m in members], "CNY")
        assert row.members_target == summed
        assert row.target == team_targets.get(team, summed)
        assert row.difference == row.target - summed
        expected = STRETCH if row.target > summed else CUSHION if row.target < summed else MEMBERS
        assert row.basis == expected
        assert row.gap == row.target  # nothing signed
    for rep in result.reps:
        assert rep.members_target is None and rep.difference is None and rep.basis is None
    total = result.total
    assert total.target == Money.sum([r.target for r in result.teams], "CNY") + rep_targets.get(
        "dan", zero
    )
    assert total.members_target == Money.sum(list(rep_targets.values()), "CNY")
    assert total.difference == Money.sum([r.difference for r in result.teams], "CNY")


def test_the_signed_window_is_untouched_by_pro_rating():
    from salesflow.analytics.performance import SignedDeal

    deals = [
        SignedDeal(owner="ann", amount=cny(10), signed_on=date(2026, 10, 31)),
        SignedDeal(owner="ann", amount=cny(20), signed_on=date(2026, 11, 1)),
    ]
    row = attainment([target("ann", 300)], deals, period="2026-11").row("ann")
    assert (row.target, row.signed, row.gap) == (cny(100), cny(20), cny(80))
