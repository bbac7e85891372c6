"""funnel() and Funnel.deviations(): the stage funnel per rep against the manager's target (R4)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction
from math import comb
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.analytics.funnel import (
    ABOVE,
    BELOW,
    Funnel,
    FunnelDeviation,
    binomial_p_value,
    funnel,
)
from salesflow.analytics.grouping import ALL
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, StageError, ValidationError
from salesflow.testing.strategies import opportunities, stage_plans

# The seed's example target (R4): initial 15 / needs 40 / intent 30 / quotation 10 / won 5.
SEED_TARGET = {
    "initial_contact": 15,
    "needs_analysis": 40,
    "intent_confirmed": 30,
    "quotation": 10,
    "won": 5,
}


def rep(owner: str, start: int = 0, amount: str = "1000", **per_stage: int) -> list[Opportunity]:
    items = []
    for stage, n in per_stage.items():
        for _ in range(n):
            items.append(
                Opportunity(
                    id=f"{owner}-{start + len(items)}",
                    owner=owner,
                    amount=Money.of(amount, "CNY"),
                    stage=stage,
                    expected_close=date(2026, 12, 1),
                )
            )
    return items


def on_target(owner: str) -> list[Opportunity]:
    # 20 opportunities exactly on the seed's target: 3 / 8 / 6 / 2 / 1.
    return rep(
        owner,
        initial_contact=3,
        needs_analysis=8,
        intent_confirmed=6,
        quotation=2,
        won=1,
    )


def test_the_seeds_example_a_rep_under_5_percent_at_quotation_is_flagged_below():
    # Rep A spent all effort on one big customer: nothing reached quotation (0 %, under 5 %).
    rep_a = rep("A", initial_contact=4, needs_analysis=9, intent_confirmed=6, quotation=0, won=1)
    f = funnel(rep_a + on_target("B"))
    found = f.deviations(SEED_TARGET)
    assert found == [
        FunnelDeviation(
            group="A",
            stage="quotation",
            actual_share=Decimal("0.0"),
            target_share=Decimal(10),
            count=0,
            opportunities=20,
            direction=BELOW,
        )
    ]
    assert "A" in str(found)
    assert "below" in str(found)


def test_exactly_at_the_bound_is_not_flagged_and_just_under_is():
    at_bound = rep("A", initial_contact=3, needs_analysis=8, intent_confirmed=7, quotation=1, won=1)
    assert funnel(at_bound).deviations(SEED_TARGET) == []  # quotation 5 %, the lower bound
    under = rep("A", initial_contact=4, needs_analysis=8, intent_confirmed=8, quotation=1, won=1)
    (deviation,) = [d for d in funnel(under).deviations(SEED_TARGET) if d.stage == "quotation"]
    assert deviation.direction == BELOW  # 1 of 22 = 4.5 %
    assert deviation.actual_share == Decimal("4.5")


def test_a_share_over_the_upper_bound_is_flagged_above():
    heavy = rep("A", initial_contact=10, needs_analysis=5, intent_confirmed=3, quotation=1, won=1)
    found = funnel(heavy).deviations(SEED_TARGET)
    assert (found[0].stage, found[0].direction) == ("initial_contact", ABOVE)
    assert found[0].actual_share == 50


def test_small_samples_stay_quiet():
    tiny = rep("A", initial_contact=9)
    assert funnel(tiny).deviations(SEED_TARGET) == []
    assert len(funnel(tiny).deviations(SEED_TARGET, min_opportunities=5)) == 5


def test_tolerance_widens_or_narrows_the_band():
    items = rep("A", initial_contact=4, needs_analysis=8, intent_confirmed=5, quotation=2, won=1)
    assert funnel(items).deviations(SEED_TARGET) == []
    strict = funnel(items).deviations(SEED_TARGET, tolerance=0)
    assert {d.stage for d in strict} == {"initial_contact", "intent_confirmed"}


def test_a_stage_left_out_of_the_target_has_a_target_of_zero():
    target = {"initial_contact": 50, "needs_analysis": 50}
    items = rep("A", initial_contact=5, needs_analysis=4, won=1)
    (deviation,) = funnel(items).deviations(target)
    assert (deviation.stage, deviation.direction, deviation.target_share) == ("won", ABOVE, 0)


@pytest.mark.parametrize(
    ("target", "error", "match"),
    [
        ({**SEED_TARGET, "won": 6}, ValidationError, "add up to 100"),
        ({**SEED_TARGET, "demo": 0}, StageError, "demo"),
        ({**SEED_TARGET, "won": 0, "lost": 5}, ValidationError, "stage of this funnel"),
        ({**SEED_TARGET, "won": "5.0x"}, ValidationError, "won"),
        ({**SEED_TARGET, "won": 5.0}, InvalidTypeError, "won"),
        ([("won", 100)], InvalidTypeError, "target"),
    ],
)
def test_a_bad_target_is_refused(target, error, match):
    with pytest.raises(error, match=match):
        funnel(on_target("A")).deviations(target)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tolerance": -1}, "tolerance"),
        ({"min_opportunities": -1}, "min_opportunities"),
        ({"method": "chi2"}, "method"),
        ({"alpha": 0}, "alpha"),
        ({"alpha": "1"}, "alpha"),
    ],
)
def test_bad_deviation_arguments_are_refused(kwargs, field):
    with pytest.raises(ValidationError, match=field):
        funnel(on_target("A")).deviations(SEED_TARGET, **kwargs)


def test_the_binomial_method_keeps_noise_quiet_and_flags_real_deviations():
    # 20 deals with none at quotation (target 10 %): P(X = 0) = 0.9 ** 20 = 12 %, noise.
    noisy = rep("A", initial_contact=4, needs_analysis=9, intent_confirmed=6, quotation=0, won=1)
    f = funnel(noisy)
    assert [d.stage for d in f.deviations(SEED_TARGET)] == ["quotation"]
    assert f.deviations(SEED_TARGET, method="binomial") == []
    # 200 deals with none at quotation is no accident.
    clear = rep("A", initial_contact=40, needs_analysis=90, intent_confirmed=60, won=10)
    (deviation,) = funnel(clear).deviations(SEED_TARGET, method="binomial")
    assert deviation.stage == "quotation"
    assert deviation.p_value is not None
    assert deviation.p_value < Decimal("1e-8")
    assert "p_value" in str(funnel(clear).deviations(SEED_TARGET, method="binomial"))


def test_the_binomial_method_uses_alpha():
    items = rep("A", initial_contact=6, needs_analysis=8, intent_confirmed=5, quotation=0, won=1)
    p = binomial_p_value(0, 20, Decimal("0.1"))
    assert Decimal("0.25") < p < Decimal("0.26")
    f = funnel(items)
    loose = f.deviations(SEED_TARGET, method="binomial", alpha="0.3")
    assert "quotation" in [d.stage for d in loose]
    strict = f.deviations(SEED_TARGET, method="binomial", alpha="0.25")
    assert "quotation" not in [d.stage for d in strict]


def reference_p_value(k: int, n: int, p: Fraction) -> Fraction:
    pmf = [comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
    return sum((x for x in pmf if x <= pmf[k]), Fraction(0))


def test_binomial_p_values_match_known_values():
    assert binomial_p_value(3, 10, Decimal("0.5")) == Decimal("0.34375")
    assert binomial_p_value(5, 10, "0.5") == 1
    assert binomial_p_value(0, 5, 0) == 1
    assert binomial_p_value(1, 5, 0) == 0
    assert binomial_p_value(5, 5, 1) == 1
    assert binomial_p_value(4, 5, 1) == 0


@given(
    st.integers(1, 40).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(1, 99),
)
def test_binomial_p_value_agrees_with_an_exact_fraction_computation(k_n, percent):
    k, n = k_n
    expected = reference_p_value(k, n, Fraction(percent, 100))
    actual = binomial_p_value(k, n, Decimal(percent) / 100)
    assert abs(Fraction(actual) - expected) <= Fraction(1, 10**18)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((3, 0, "0.5"), ValidationError),
        ((4, 3, "0.5"), ValidationError),
        ((1, 3, "1.5"), ValidationError),
        ((1.0, 3, "0.5"), InvalidTypeError),
        ((1, 3, 0.5), InvalidTypeError),
    ],
)
def test_binomial_p_value_refuses_bad_input(args, error):
    with pytest.raises(error):
        binomial_p_value(*args)


# -- the funnel itself ---------------------------------------------------------------------------


def test_counts_amounts_and_shares_per_stage_in_plan_order_with_zeros():
    items = rep("A", amount="10.05", initial_contact=1, quotation=3) + rep("B", won=2, lost=1)
    f = funnel(items)
    assert isinstance(f, Funnel)
    assert f.stages == ("initial_contact", "needs_analysis", "intent_confirmed", "quotation", "won")
    assert f.counts("A") == {
        "initial_contact": 1,
        "needs_analysis": 0,
        "intent_confirmed": 0,
        "quotation": 3,
        "won": 0,
    }
    assert f.shares("A")["quotation"] == 75
    assert f.amounts("A")["quotation"] == Money.of("30.15", "CNY")
    assert f.amounts("A")["won"] == Money.zero("CNY")
    assert f.counts()["won"] == 2
    assert f.excluded == 1
    assert f.excluded_by_group == {"B": 1}
    assert f.total() == 6


def test_lost_opportunities_count_only_when_asked():
    items = rep("A", initial_contact=1, lost=3)
    assert funnel(items).total("A") == 1
    with_lost = funnel(items, include_lost=True)
    assert with_lost.counts("A")["lost"] == 3
    assert with_lost.shares("A") == {
        "initial_contact": 25,
        "needs_analysis": 0,
        "intent_confirmed": 0,
        "quotation": 0,
        "won": 0,
        "lost": 75,
    }
    only_lost = funnel(rep("B", lost=2))
    assert only_lost.groups == ()
    assert only_lost.excluded == 2


def test_an_unknown_stage_is_a_stage_error():
    bad = SimpleNamespace(id="x", owner="A", stage="demo", amount=Money.of(1, "CNY"))
    with pytest.raises(StageError, match="demo"):
        funnel([bad])


def test_a_custom_plan_and_grouping_by_team():
    plan = StagePlan.from_dict(
        {
            "stages": [
                {"key": "lead", "probability": 10},
                {"key": "deal", "probability": 60},
                {"key": "signed", "probability": 100, "outcome": "won"},
                {"key": "gone", "probability": 0, "outcome": "lost"},
            ]
        }
    )
    items = [
        SimpleNamespace(team="east", stage="lead", amount=Money.of(1, "USD")),
        SimpleNamespace(team=None, stage="deal", amount=Money.of(2, "USD")),
    ]
    f = funnel(items, plan, by="team")
    assert f.stages == ("lead", "deal", "signed")
    assert f.groups == ("east", "unknown")
    assert f.counts("unknown") == {"lead": 0, "deal": 1, "signed": 0}


def test_bad_arguments_are_refused():
    with pytest.raises(InvalidTypeError, match="plan"):
        funnel([], plan={"stages": []})  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="include_lost"):
        funnel([], include_lost="yes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="by"):
        funnel([], by="not valid")


def test_it_prints_and_converts():
    f = funnel(on_target("A") + rep("B", won=1, lost=1))
    text = str(f)
    assert text.startswith(
        "Stage funnel per owner (21 opportunities, 1 lost opportunities left out)"
    )
    assert "40.0" in text
    records = f.to_records()
    assert records[0] == {
        "owner": "A",
        "stage": "initial_contact",
        "count": 3,
        "share": Decimal("15.0"),
        "amount": Decimal(3000),
        "currency": "CNY",
    }
    assert ALL not in {r["owner"] for r in records}  # the team's funnel is the totals
    assert [r["owner"] for r in f.total_records()] == [ALL] * 5
    assert sum(r["count"] for r in records) == sum(r["count"] for r in f.total_records()) == 21
    assert "<table" in f._repr_html_()
    assert len(f.to_frame()) == len(records)
    deviations = funnel(on_target("A")).deviations(SEED_TARGET, min_opportunities=0)
    assert deviations.to_records() == []
    assert "Funnel deviations" in str(deviations)


@given(opportunities(), st.booleans())
def test_funnel_counts_equal_the_opportunities_considered(opps, include_lost):
    f = funnel(opps, include_lost=include_lost)
    lost = sum(1 for o in opps if o.stage == "lost")
    considered = len(opps) if include_lost else len(opps) - lost
    assert f.total() == considered
    assert sum(f.total(g) for g in f.groups) == considered
    assert f.excluded == (0 if include_lost else lost)
    for group in (*f.groups, None):
        assert sum(f.shares(group).values()) == (100 if f.total(group) else 0)


@given(stage_plans().flatmap(lambda plan: st.tuples(st.just(plan), opportunities(plan))))
def test_any_plan_gives_shares_that_add_up_per_group(plan_and_opps):
    plan, opps = plan_and_opps
    f = funnel(opps, plan, places=2)
    for group in f.groups:
        assert sum(f.shares(group).values()) == 100
        assert list(f.counts(group)) == [s.key for s in plan if not s.is_lost]
