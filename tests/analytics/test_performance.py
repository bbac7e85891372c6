"""Targets and attainment (R15): signed, gap, expected, projected and coverage per rep and team."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.analytics.forecast import forecast
from salesflow.analytics.grouping import ALL
from salesflow.analytics.performance import (
    CUSHION,
    MEMBERS,
    REP,
    STRETCH,
    TEAM,
    TOTAL,
    Attainment,
    SignedDeal,
    Target,
    attainment,
    signed_deals,
)
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.periods import Period
from salesflow.errors import CurrencyMismatchError, InvalidTypeError, ValidationError

Q4 = Period.quarter(2026, 4)


def cny(amount: str | int) -> Money:
    return Money.of(amount, "CNY")


def target(owner: str, amount: str | int, period: Period | str = Q4) -> Target:
    return Target(owner=owner, period=period, amount=cny(amount))


def signed(owner: str, amount: str | int, on: date = date(2026, 11, 3)) -> SignedDeal:
    return SignedDeal(owner=owner, amount=cny(amount), signed_on=on)


def test_a_reps_figures():
    result = attainment(
        [target("ann", 1000)],
        [signed("ann", 300), signed("ann", "50.50")],
        {"ann": cny(200)},
        period=Q4,
    )
    assert isinstance(result, Attainment)
    row = result.row("ann")
    assert row.kind == REP
    assert row.target == cny(1000)
    assert row.signed == cny("350.50")
    assert row.gap == cny("649.50")
    assert row.expected == cny(200)
    assert row.projected == cny("550.50")
    assert row.coverage == Decimal("30.8")  # 200 / 649.50
    assert row.attainment == Decimal("35.1")  # 350.50 / 1000


def test_the_gap_never_goes_below_zero_and_ratios_without_a_base_are_none():
    result = attainment([target("ann", 100)], [signed("ann", 150), signed("bob", 20)], period=Q4)
    ann = result.row("ann")
    assert ann.gap == cny(0)
    assert ann.coverage is None
    assert ann.attainment == 150
    bob = result.row("bob")  # signed without a target: target 0
    assert bob.target == cny(0)
    assert bob.attainment is None
    assert bob.gap == cny(0)


def test_only_the_periods_targets_and_deals_count():
    result = attainment(
        [target("ann", 1000), target("ann", 999, "2027-Q1")],
        [signed("ann", 10, date(2026, 10, 1)), signed("ann", 20, date(2027, 1, 1))],
        period="2026-Q4",
    )
    assert result.row("ann").target == cny(1000)
    assert result.row("ann").signed == cny(10)
    assert result.period == Q4


def test_teams_roll_up_from_their_members_and_the_total_from_everyone():
    teams = {"east": ["ann", "bob"], "west": ["cai"]}
    result = attainment(
        [target("ann", 100), target("bob", 300), target("cai", 50), target("dan", 10)],
        [signed("ann", 150), signed("bob", 100), signed("dan", 1)],
        {"bob": cny(40), "cai": cny(5)},
        period=Q4,
        teams=teams,
    )
    east = result.row("east")
    assert east.kind == TEAM
    assert east.target == cny(400)
    assert east.signed == cny(250)
    assert east.expected == cny(40)
    assert east.projected == cny(290)
    # The gap is the team's: ann's overshoot (50) covers part of bob's shortfall (200).
    assert east.gap == cny(150)
    assert result.row("ann").gap + result.row("bob").gap == cny(200)
    assert [r.name for r in result.rows] == ["ann", "bob", "east", "cai", "west", "dan", ALL]
    assert result.row("dan").team is None
    total = result.total
    assert total.kind == TOTAL
    assert total.target == cny(460)
    assert total.signed == cny(251)
    assert [r.name for r in result.teams] == ["east", "west"]
    assert len(result.reps) == 4


def test_a_team_target_may_be_a_stretch_or_a_cushion_and_is_reported_as_such():
    teams = {"east": ["ann", "bob"]}
    members = [target("ann", 30000), target("bob", 50000)]
    stretch = attainment(
        [*members, target("east", 100000)], [signed("ann", 60000)], period=Q4, teams=teams
    )
    east = stretch.row("east")
    assert (east.target, east.members_target, east.difference, east.basis) == (
        cny(100000),
        cny(80000),
        cny(20000),
        STRETCH,
    )
    # Measured against the manager's target, not the members' sum.
    assert east.gap == cny(40000)
    assert east.attainment == Decimal("60.0")
    assert stretch.team_records()[0]["basis"] == "stretch"
    assert stretch.total.target == cny(100000)
    assert stretch.total.members_target == cny(80000)
    cushion = attainment([*members, target("east", 70000)], [], period=Q4, teams=teams)
    assert cushion.row("east").difference == cny(-10000)
    assert cushion.row("east").basis == CUSHION
    agreeing = attainment([*members, target("east", 80000)], [], period=Q4, teams=teams)
    assert agreeing.row("east").basis == MEMBERS
    assert agreeing.row("east").difference == cny(0)
    left_out = attainment(members, [], period=Q4, teams=teams)
    assert left_out.row("east").target == cny(80000)
    assert left_out.row("east").basis == MEMBERS
    # The other rules still hold: one target per team and period.
    with pytest.raises(ValidationError, match="one target per rep or team") as info:
        attainment([*members, target("east", 1), target("east", 2)], [], period=Q4, teams=teams)
    assert info.value.field == "targets[3]"


@pytest.mark.parametrize(
    ("teams", "match"),
    [
        ({"east": ["ann"], "west": ["ann"]}, "one team only"),
        ({"east": ["ann"], "ann": ["bob"]}, "not also rep names"),
        ({"east": "ann"}, "iterable of rep names"),
        ({"": ["ann"]}, "team names"),
        ([("east", ["ann"])], "mapping"),
    ],
)
def test_bad_team_membership_is_refused(teams, match):
    with pytest.raises(ValidationError, match=match):
        attainment([target("ann", 1)], [], period=Q4, teams=teams)


def test_duplicate_targets_and_mixed_currencies_are_refused():
    with pytest.raises(ValidationError, match="one target per rep"):
        attainment([target("ann", 1), target("ann", 2)], [], period=Q4)
    usd = SignedDeal(owner="ann", amount=Money.of(1, "USD"), signed_on=date(2026, 11, 1))
    with pytest.raises(CurrencyMismatchError):
        attainment([target("ann", 1)], [usd], period=Q4)
    with pytest.raises(ValidationError, match="currency"):
        attainment([], [], period=Q4)
    assert attainment([], [], period=Q4, currency="CNY").total.target == cny(0)


def test_a_deal_signed_by_a_team_name_is_refused():
    with pytest.raises(ValidationError, match="a rep, not the team"):
        attainment([], [signed("east", 5)], period=Q4, teams={"east": ["ann"]})


def test_bad_inputs_are_refused_naming_the_field():
    with pytest.raises(InvalidTypeError, match="targets"):
        attainment([{"owner": "ann"}], [], period=Q4)  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError, match="signed_on"):
        attainment(
            [], [SimpleNamespace(owner="a", amount=cny(1), signed_on="2026-11-01")], period=Q4
        )
    with pytest.raises(InvalidTypeError, match="amount"):
        attainment(
            [],
            [SimpleNamespace(owner="a", amount=Decimal(1), signed_on=date(2026, 11, 1))],
            period=Q4,
        )
    with pytest.raises(InvalidTypeError, match="owner"):
        attainment([], [SimpleNamespace(amount=cny(1), signed_on=date(2026, 11, 1))], period=Q4)
    with pytest.raises(InvalidTypeError, match="forecast"):
        attainment([target("a", 1)], [], [cny(1)], period=Q4)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="period"):
        attainment([target("a", 1)], [], period="Q4 2026")
    with pytest.raises(ValidationError, match="places"):
        attainment([target("a", 1)], [], period=Q4, places=-1)


def test_targets_validate_their_fields():
    with pytest.raises(ValidationError, match="owner"):
        Target(owner=" ", period=Q4, amount=cny(1))
    with pytest.raises(ValidationError, match="amount"):
        Target(owner="ann", period=Q4, amount=cny(-1))
    with pytest.raises(InvalidTypeError, match="amount"):
        Target(owner="ann", period=Q4, amount=Decimal(1))  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="period"):
        Target(owner="ann", period=2026, amount=cny(1))  # type: ignore[arg-type]
    assert Target(owner="ann", period="2026-11", amount=cny(1)).period == Period.month(2026, 11)


# -- signed deals from won opportunities ----------------------------------------------------------


def won(i: int, owner: str, amount: str, **kwargs: object) -> Opportunity:
    return Opportunity(id=f"w{i}", owner=owner, amount=cny(amount), stage="won", **kwargs)


def test_signed_deals_come_from_won_opportunities_dated_by_the_move_to_won():
    moved = won(
        1,
        "ann",
        "500",
        expected_close=date(2026, 9, 30),
        history=(
            StageChange(datetime(2026, 8, 1, tzinfo=UTC), None, "quotation"),
            StageChange(datetime(2026, 10, 2, 9, tzinfo=UTC), "quotation", "won"),
        ),
    )
    undated_history = won(2, "bob", "70", expected_close=date(2026, 12, 24))
    still_open = Opportunity(id="o", owner="ann", amount=cny(1), stage="quotation")
    deals = list(signed_deals([moved, undated_history, still_open]))
    assert deals == [
        SignedDeal(owner="ann", amount=cny(500), signed_on=date(2026, 10, 2), source="w1"),
        SignedDeal(owner="bob", amount=cny(70), signed_on=date(2026, 12, 24), source="w2"),
    ]
    with pytest.raises(ValidationError, match="signed_on"):
        list(signed_deals([won(3, "cai", "1")]))


def test_attainment_reads_a_forecast_grouped_by_owner():
    as_of = date(2026, 11, 26)
    pipeline = [
        Opportunity(
            id="q1",
            owner="ann",
            amount=cny(1000),
            stage="quotation",
            expected_close=date(2026, 12, 5),
        ),
        Opportunity(
            id="q2",
            owner="ann",
            amount=cny(1000),
            stage="quotation",
            expected_close=date(2027, 1, 5),
        ),
        Opportunity(
            id="q3",
            owner="bob",
            amount=cny(500),
            stage="quotation",
            expected_close=date(2026, 8, 5),
        ),
        won(4, "bob", "800", expected_close=date(2026, 10, 9)),
    ]
    fc = forecast(pipeline, as_of=as_of)
    result = attainment(
        [target("ann", 2000), target("bob", 1000)], signed_deals(pipeline), fc, period=Q4
    )
    assert result.row("ann").expected == cny(700)  # December only; January is next quarter
    assert result.row("bob").expected == cny(0)  # overdue does not count
    assert result.row("bob").signed == cny(800)
    assert result.row("bob").projected == cny(800)
    by_team_owner = forecast(pipeline, as_of=as_of, by=("team", "owner"))
    assert attainment([], [], by_team_owner, period=Q4).row("ann").expected == cny(700)
    with pytest.raises(ValidationError, match="grouped by 'owner'"):
        attainment([], [], forecast(pipeline, as_of=as_of, by="team"), period=Q4)


def test_it_prints_and_converts():
    result = attainment([target("ann", 100)], [signed("ann", 25)], period=Q4)
    assert str(result).startswith("Attainment 2026-Q4 (CNY)")
    assert result.to_records()[0] == {
        "name": "ann",
        "kind": "rep",
        "team": None,
        "currency": "CNY",
        "target": Decimal(100),
        "signed": Decimal(25),
        "gap": Decimal(75),
        "expected": Decimal(0),
        "projected": Decimal(25),
        "coverage": Decimal("0.0"),
        "attainment": Decimal("25.0"),
        "members_target": None,
        "difference": None,
        "basis": None,
    }
    assert "<table" in result._repr_html_()
    assert list(result.to_frame()["name"]) == ["ann"]
    assert [r["name"] for r in result.total_records()] == [ALL]


amounts = st.integers(0, 10**8).map(lambda cents: Money(Decimal(cents).scaleb(-2), "CNY"))
REPS = ("ann", "bob", "cai", "dan", "eve")


@given(
    st.dictionaries(st.sampled_from(REPS), amounts),
    st.lists(
        st.tuples(st.sampled_from(REPS), amounts, st.dates(date(2026, 9, 1), date(2027, 2, 1)))
    ),
    st.dictionaries(st.sampled_from(REPS), amounts),
    st.sampled_from(REPS).flatmap(lambda r: st.just({"east": ["ann", "bob"], "west": ["cai", r]})),
)
def test_team_rows_are_the_exact_sums_of_their_members(targets, deals, expected, teams):
    if teams["west"][1] in ("ann", "bob"):
        teams = {"east": ["ann", "bob"], "west": ["cai"]}
    result = attainment(
        [Target(owner=o, period=Q4, amount=a) for o, a in targets.items()],
        [SignedDeal(owner=o, amount=a, signed_on=d) for o, a, d in deals],
        expected,
        period=Q4,
        teams=teams,
        currency="CNY",
    )
    for team, members in teams.items():
        rows = [result.row(m, REP) for m in dict.fromkeys(members)]
        team_row = result.row(team, TEAM)
        for field in ("target", "signed", "expected", "projected"):
            assert getattr(team_row, field) == Money.sum([getattr(r, field) for r in rows], "CNY")
        assert team_row.gap == max(team_row.target - team_row.signed, cny(0))
    for field in ("target", "signed", "expected", "projected"):
        assert getattr(result.total, field) == Money.sum(
            [getattr(r, field) for r in result.reps], "CNY"
        )
    in_q4 = [a for _o, a, d in deals if Q4.contains(d)]
    assert result.total.signed == Money.sum(in_q4, "CNY")
    for row in result.rows:
        assert row.gap.amount >= 0
        assert row.projected == row.signed + row.expected
