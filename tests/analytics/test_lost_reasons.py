"""lost_reasons(): why deals are lost, per rep, team, industry and the stage they died in."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow import LostReasons, lost_reasons
from salesflow.analytics.grouping import ALL
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.stages import StagePlan
from salesflow.errors import CurrencyMismatchError, InvalidTypeError, StageError, ValidationError
from salesflow.testing.strategies import money, opportunities, stage_plans

PLAN = StagePlan.default()
REASONS = list(PLAN.lost_reasons)
T0 = datetime(2026, 3, 1, tzinfo=UTC)
T1 = datetime(2026, 6, 1, tzinfo=UTC)


def deal(
    id: str,
    owner: str,
    team: str | None,
    industry: str | None,
    amount: str,
    died_in: str | None = None,
    reason: str | None = None,
    *,
    stage: str = "lost",
    currency: str = "CNY",
) -> Opportunity:
    """A deal in ``stage``; a lost one with ``died_in`` moved there from that stage for
    ``reason``, one without came without history (as from an import)."""
    history: tuple[StageChange, ...] = ()
    if died_in is not None:
        history = (
            StageChange(T0, None, died_in),
            StageChange(T1, died_in, stage, reason=reason),
        )
    return Opportunity(
        id=id,
        owner=owner,
        team=team,
        industry=industry,
        amount=Money.of(amount, currency),
        stage=stage,
        history=history,
    )


# Seven lost deals, plus an open and a won one that never count.
DEALS = [
    deal("L1", "ann", "east", "retail", "1000.00", "quotation", "price"),
    deal("L2", "ann", "east", "retail", "2000.50", "quotation", "competitor"),
    deal("L3", "ann", "east", "energy", "500.00", "needs_analysis", "price"),
    deal("L4", "bob", "east", "energy", "300.00", "initial_contact", "no_budget"),
    deal("L5", "bob", "east", "retail", "700.25", "quotation", "price"),
    deal("L6", "cai", "west", None, "1200.00"),  # imported lost, no reason recorded
    deal("L7", "cai", "west", "finance", "800.00", "intent_confirmed", "timing"),
    deal("O1", "ann", "east", "retail", "9999.00", stage="quotation"),
    deal("W1", "bob", "east", "retail", "5000.00", "quotation", stage="won"),
]


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {reason: n for reason, n in counts.items() if n}


def cny(amounts: dict[str, Money]) -> dict[str, str]:
    return {reason: str(m.amount) for reason, m in amounts.items() if m.amount}


def test_reasons_by_rep_hand_computed() -> None:
    r = lost_reasons(DEALS, PLAN)
    assert isinstance(r, LostReasons)
    assert r.groups == ("ann", "bob", "cai")
    assert r.reasons == (*REASONS, "unknown")
    assert (r.total(), r.unknown) == (7, 1)
    assert nonzero(r.counts("ann")) == {"price": 2, "competitor": 1}
    assert nonzero(r.shares("ann")) == {"price": Decimal("66.7"), "competitor": Decimal("33.3")}
    assert cny(r.amounts("ann")) == {"price": "1500.00", "competitor": "2000.50"}
    assert nonzero(r.shares("bob")) == {"price": 50, "no_budget": 50}
    assert cny(r.amounts("bob")) == {"price": "700.25", "no_budget": "300.00"}
    assert nonzero(r.counts("cai")) == {"timing": 1, "unknown": 1}
    # All lost deals: 3/7 and four times 1/7; the four units left over go to the 1/7 remainders.
    assert nonzero(r.shares()) == {
        "price": Decimal("42.8"),
        "competitor": Decimal("14.3"),
        "no_budget": Decimal("14.3"),
        "timing": Decimal("14.3"),
        "unknown": Decimal("14.3"),
    }
    assert cny(r.amounts()) == {
        "price": "2200.25",
        "competitor": "2000.50",
        "no_budget": "300.00",
        "timing": "800.00",
        "unknown": "1200.00",
    }
    assert r.shares("ann")["timing"] == Decimal("0.0")  # every reason listed for every rep


def test_reasons_by_team_industry_and_died_in_stage() -> None:
    by_team = lost_reasons(DEALS, by="team")
    assert by_team.groups == ("east", "west")
    assert nonzero(by_team.shares("east")) == {"price": 60, "competitor": 20, "no_budget": 20}
    assert cny(by_team.amounts("east"))["price"] == "2200.25"
    assert nonzero(by_team.shares("west")) == {"timing": 50, "unknown": 50}

    by_industry = lost_reasons(DEALS, by="industry")
    assert by_industry.groups == ("energy", "finance", "retail", "unknown")
    assert nonzero(by_industry.counts("retail")) == {"price": 2, "competitor": 1}
    assert cny(by_industry.amounts("retail")) == {"price": "1700.25", "competitor": "2000.50"}
    assert nonzero(by_industry.shares("unknown")) == {"unknown": 100}

    died = lost_reasons(DEALS, by="died_in")
    # Stages in plan order; a deal without history died in a stage nobody knows.
    assert died.groups == (
        "initial_contact",
        "needs_analysis",
        "intent_confirmed",
        "quotation",
        "unknown",
    )
    assert nonzero(died.counts("quotation")) == {"price": 2, "competitor": 1}
    assert nonzero(died.counts("initial_contact")) == {"no_budget": 1}
    assert cny(died.amounts("quotation")) == {"price": "1700.25", "competitor": "2000.50"}

    nested = lost_reasons(DEALS, by=("team", "owner"))
    assert nested.groups == (("east", "ann"), ("east", "bob"), ("west", "cai"))
    assert lost_reasons(DEALS, by=()).groups == ()
    assert lost_reasons(DEALS, by=()).total() == 7


def test_teams_mapping_overrides_the_recorded_team() -> None:
    r = lost_reasons(DEALS, by="team", teams={"north": ["ann"], "south": ["bob"]})
    assert r.groups == ("north", "south", "unknown")  # cai is in no team
    assert (r.total("north"), r.total("south"), r.total("unknown")) == (3, 2, 2)
    with pytest.raises(ValidationError):
        lost_reasons(DEALS, by="team", teams={"north": ["ann"], "south": ["ann"]})


def test_tables_records_and_frames() -> None:
    r = lost_reasons(DEALS)
    text = str(r)
    assert text.startswith("Lost reasons per owner (7 lost opportunities, 1 without a recorded")
    assert text.splitlines()[1].split()[:6] == [
        "owner",
        "opportunities",
        "price",
        "%",
        "price",
        "n",
    ]
    assert text.splitlines()[3].split()[:4] == ["ann", "3", "66.7", "2"]
    records = r.to_records()
    assert records[0] == {
        "owner": "ann",
        "reason": "price",
        "count": 2,
        "share": Decimal("66.7"),
        "amount": Decimal("1500.00"),
        "currency": "CNY",
    }
    assert len(records) == 3 * 8  # three reps, 7 reasons and "unknown"
    assert ALL not in {rec["owner"] for rec in records}
    assert [rec["owner"] for rec in r.total_records()] == [ALL] * 8
    assert "<table" in r._repr_html_()
    assert len(r.to_frame()) == len(records)


def test_currencies_are_never_mixed() -> None:
    deals = [
        *DEALS,
        deal("U1", "ann", "east", "retail", "10.00", "quotation", "price", currency="USD"),
    ]
    r = lost_reasons(deals)
    with pytest.raises(CurrencyMismatchError):
        r.amounts("ann")
    assert r.amounts_by_currency("ann")["price"] == {
        "CNY": Money.of("1500.00", "CNY"),
        "USD": Money.of("10.00", "USD"),
    }
    assert {"amount_CNY", "amount_USD"} <= set(r.to_records()[0])


def test_custom_reasons_codes_left_out_of_the_plan_and_the_missing_label() -> None:
    plan = PLAN.with_lost_reasons(["price", "other"])
    r = lost_reasons(DEALS, plan, missing="not recorded")
    # Codes recorded before the plan changed are still reported, after the plan's own.
    assert r.reasons == ("price", "other", "competitor", "no_budget", "timing", "not recorded")
    assert r.unknown == 1
    with pytest.raises(ValidationError, match="missing"):
        lost_reasons(DEALS, plan, missing="price")


def test_an_empty_input_lists_every_reason_at_zero() -> None:
    r = lost_reasons([deal("O1", "ann", None, None, "5", stage="quotation")], currency="CNY")
    assert (r.total(), r.groups) == (0, ())
    assert r.counts() == dict.fromkeys(REASONS, 0)
    assert r.amounts()["price"] == Money.of("0", "CNY")


def test_rows_that_look_like_opportunities_work() -> None:
    change = SimpleNamespace(from_stage="quotation", to_stage="lost", reason="price")
    rows = [
        SimpleNamespace(owner="ann", stage="lost", amount=Decimal("5.5"), history=[change]),
        SimpleNamespace(owner="ann", stage="lost", amount=Decimal("1"), currency="USD"),
    ]
    r = lost_reasons(rows, currency="CNY")
    assert r.amounts_by_currency("ann")["price"] == {"CNY": Money.of("5.5", "CNY")}
    assert r.counts("ann")["unknown"] == 1  # no history attribute: no recorded reason


def test_bad_input_is_named() -> None:
    with pytest.raises(StageError):
        lost_reasons(
            [deal("X", "ann", None, None, "1", stage="quotation")],
            StagePlan.from_dict(
                {
                    "stages": [
                        {"key": "open", "probability": 10},
                        {"key": "won", "probability": 100, "outcome": "won"},
                        {"key": "gone", "probability": 0, "outcome": "lost"},
                    ]
                }
            ),
        )
    wrong = SimpleNamespace(from_stage="quotation", to_stage="won", reason=None)
    with pytest.raises(ValidationError, match="current stage"):
        lost_reasons(
            [SimpleNamespace(owner="a", stage="lost", amount=Money.of(1, "CNY"), history=[wrong])]
        )
    with pytest.raises(InvalidTypeError):
        lost_reasons([SimpleNamespace(stage="lost", amount=Money.of(1, "CNY"))])  # no owner
    with pytest.raises(InvalidTypeError):
        lost_reasons([SimpleNamespace(owner="a", stage="lost", amount=1.5)])
    with pytest.raises(ValidationError):
        lost_reasons(DEALS, by="not an attribute")
    with pytest.raises(ValidationError):
        lost_reasons(DEALS, places=9)


# -- properties -------------------------------------------------------------------------------

OPEN = [s.key for s in PLAN.open_stages]


@st.composite
def pipelines(draw: st.DrawFn) -> list[Opportunity]:
    """Deals in every stage and three currencies; lost ones with or without history and reason."""
    items = []
    for i in range(draw(st.integers(0, 30))):
        stage = draw(st.sampled_from(PLAN.keys))
        history: tuple[StageChange, ...] = ()
        if draw(st.booleans()):
            died = draw(st.sampled_from(OPEN))
            reason = draw(st.sampled_from(REASONS) | st.none()) if stage == "lost" else None
            history = (StageChange(T0, None, died),)
            if stage != died:
                history += (StageChange(T1, died, stage, reason=reason),)
        items.append(
            Opportunity(
                id=f"op-{i}",
                owner=draw(st.sampled_from(("ann", "bob", "cai"))),
                team=draw(st.sampled_from(("east", "west", None))),
                industry=draw(st.sampled_from(("retail", "energy", None))),
                amount=draw(money(st.sampled_from(("CNY", "USD", "JPY")), max_value=10**6)),
                stage=stage,
                history=history,
            )
        )
    return items


BY = st.sampled_from(["owner", "team", "industry", "died_in", ("team", "owner"), ()])


@given(pipelines(), BY, st.integers(0, 3))
def test_counts_shares_and_amounts_add_up(
    deals: list[Opportunity], by: str | tuple[str, ...], places: int
) -> None:
    r = lost_reasons(deals, by=by, places=places)
    lost = [o for o in deals if o.stage == "lost"]
    assert r.total() == len(lost)
    assert sum(r.total(g) for g in r.groups) == (len(lost) if r.by else 0)
    for group in (*r.groups, None):
        assert sum(r.counts(group).values()) == r.total(group)
        assert sum(r.shares(group).values()) == (100 if r.total(group) else 0)
    expected: dict[str, Decimal] = {}
    for o in lost:
        expected[o.amount.currency] = expected.get(o.amount.currency, Decimal(0)) + o.amount.amount
    for group in (*r.groups, None):
        per_currency: dict[str, Decimal] = {}
        for cell in r.amounts_by_currency(group).values():
            for code, m in cell.items():
                per_currency[code] = per_currency.get(code, Decimal(0)) + m.amount
        if group is None:
            assert per_currency == expected  # exactly, per currency
    groups_total: dict[str, Decimal] = {}
    for group in r.groups:
        for cell in r.amounts_by_currency(group).values():
            for code, m in cell.items():
                groups_total[code] = groups_total.get(code, Decimal(0)) + m.amount
    if r.by:
        assert groups_total == expected
    assert r.unknown == sum(1 for o in lost if not o.history or o.history[-1].reason is None)


@given(pipelines(), BY)
def test_open_and_won_deals_never_count(deals: list[Opportunity], by: str) -> None:
    only_lost = [o for o in deals if PLAN.is_lost(o.stage)]
    assert lost_reasons(deals, by=by).to_records() == lost_reasons(only_lost, by=by).to_records()


@given(st.data())
def test_any_plan_and_its_reasons(data: st.DataObject) -> None:
    plan = data.draw(stage_plans())
    deals = []
    for o in data.draw(opportunities(plan)):
        if plan.is_lost(o.stage) and data.draw(st.booleans()):
            died = plan.open_stages[0].key
            reason = data.draw(st.sampled_from(plan.lost_reasons))
            o = attrs.evolve(
                o,
                history=(
                    StageChange(T0, None, died),
                    StageChange(T1, died, o.stage, reason=reason),
                ),
            )
        deals.append(o)
    r = lost_reasons(deals, plan, by=data.draw(BY), places=2)
    assert r.reasons[: len(plan.lost_reasons)] == plan.lost_reasons
    assert r.total() == sum(1 for o in deals if plan.is_lost(o.stage))
    for group in (*r.groups, None):
        assert sum(r.shares(group).values()) == (100 if r.total(group) else 0)
