"""rep_industry_matrix() and recommend_owners(): who signs best in which industry (R17)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.analytics.strengths import (
    DEFAULT_PRIOR_STRENGTH,
    RepIndustryMatrix,
    recommend_owners,
    rep_industry_matrix,
)
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity
from salesflow.errors import InvalidTypeError, StageError, ValidationError
from salesflow.testing.strategies import opportunities

_counter = iter(range(10**9))


def deals(
    owner: str, industry: str | None, *, won: int = 0, lost: int = 0, open: int = 0, amount="100"
) -> list[Opportunity]:
    items = []
    for stage, n in (("won", won), ("lost", lost), ("quotation", open)):
        for _ in range(n):
            items.append(
                Opportunity(
                    id=f"op-{next(_counter)}",
                    owner=owner,
                    industry=industry,
                    amount=Money.of(amount, "CNY"),
                    stage=stage,
                )
            )
    return items


def test_counts_rates_and_won_amount_per_rep_and_industry():
    m = rep_industry_matrix(
        deals("ann", "retail", won=3, lost=1, open=2, amount="10.50")
        + deals("bob", "retail", won=1, lost=3)
        + deals("bob", "energy", open=1)
    )
    assert isinstance(m, RepIndustryMatrix)
    cell = m.cell("ann", "retail")
    assert (cell.open, cell.closed, cell.won, cell.lost) == (2, 4, 3, 1)
    assert cell.won_amount == {"CNY": Decimal("31.50")}
    assert m.win_rate("ann", "retail") == 75
    assert m.team_win_rate("retail") == 50
    assert m.win_rate("bob", "energy") is None  # nothing closed yet
    assert m.team_win_rate("energy") is None
    assert m.smoothed_win_rate("bob", "energy") is None  # no rate anywhere to lean on
    assert m.owners == ("ann", "bob")
    assert m.industries == ("energy", "retail")


def test_the_smoothed_rate_is_a_beta_prior_centred_on_the_teams_industry_rate():
    items = deals("ann", "retail", won=2) + deals("bob", "retail", won=4, lost=14)
    m = rep_industry_matrix(items)
    # team rate 6/20 = 30 %; ann: (2 + 10 x 0.3) / (2 + 10) = 5/12 = 41.666..%
    assert m.team_win_rate("retail") == 30
    assert m.win_rate("ann", "retail") == 100
    assert m.smoothed_win_rate("ann", "retail") == Decimal("41.7")
    assert m.cell("ann", "retail").exact_smoothed == Fraction(5, 12)
    stronger = rep_industry_matrix(items, prior_strength=20, places=2)
    assert stronger.smoothed_win_rate("ann", "retail") == Decimal("36.36")  # 8/22
    off = rep_industry_matrix(items, prior_strength=0)
    assert off.smoothed_win_rate("ann", "retail") == 100
    assert DEFAULT_PRIOR_STRENGTH == 10


def test_two_lucky_deals_do_not_make_an_expert():
    items = (
        deals("lucky", "finance", won=2)
        + deals("steady", "finance", won=30, lost=20)
        + deals("others", "finance", won=10, lost=40)
    )
    best = recommend_owners(rep_industry_matrix(items), "finance")
    assert best.owners == ["steady", "lucky", "others"]
    assert best[0].win_rate == 60
    assert best[1].win_rate == 100


def test_a_rep_without_deals_in_the_industry_ranks_at_the_team_rate():
    items = (
        deals("ann", "retail", won=1, lost=9)
        + deals("bob", "retail", won=5, lost=5)
        + deals("new", "energy", won=1)
    )
    m = rep_industry_matrix(items)
    ranked = recommend_owners(m, "retail", top=3)
    assert ranked.owners == ["bob", "new", "ann"]
    assert ranked[1].smoothed_win_rate == m.team_win_rate("retail") == 30
    assert ranked[1].closed == 0
    assert ranked[1].win_rate is None
    assert recommend_owners(m, "retail", top=1).owners == ["bob"]
    assert recommend_owners(m, "retail", among=["ann", "new"]).owners == ["new", "ann"]


def test_ties_rank_by_won_then_closed_then_name():
    items = (
        deals("b", "x", won=2, lost=2)
        + deals("a", "x", won=2, lost=2)
        + deals("c", "x", won=1, lost=1)
    )
    ranked = recommend_owners(rep_industry_matrix(items, prior_strength=0), "x")
    assert ranked.owners == ["a", "b", "c"]
    assert [s.rank for s in ranked] == [1, 2, 3]


def test_missing_industries_are_reported_as_unknown():
    m = rep_industry_matrix(deals("ann", None, won=1) + deals("ann", "", lost=1))
    assert m.industries == ("unknown",)
    assert m.cell("ann", "unknown").closed == 2


def test_recommend_refuses_bad_input():
    m = rep_industry_matrix(deals("ann", "retail", won=1))
    with pytest.raises(ValidationError, match="mining"):
        recommend_owners(m, "mining")
    with pytest.raises(ValidationError, match="top"):
        recommend_owners(m, "retail", top=0)
    with pytest.raises(ValidationError, match="owner"):
        recommend_owners(m, "retail", among=["zed"])
    with pytest.raises(InvalidTypeError, match="among"):
        recommend_owners(m, "retail", among="ann")
    with pytest.raises(InvalidTypeError, match="matrix"):
        recommend_owners({}, "retail")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"prior_strength": -1}, ValidationError, "prior_strength"),
        ({"prior_strength": 1.5}, InvalidTypeError, "prior_strength"),
        ({"dimension": "1x"}, ValidationError, "dimension"),
        ({"by": 7}, InvalidTypeError, "by"),
        ({"places": 8}, ValidationError, "places"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, field):
    with pytest.raises(error, match=field):
        rep_industry_matrix(deals("ann", "retail", won=1), **kwargs)


def test_unknown_stages_and_bad_amounts_are_refused():
    bad_stage = SimpleNamespace(owner="a", industry="x", stage="demo", amount=Money.of(1, "CNY"))
    with pytest.raises(StageError, match="demo"):
        rep_industry_matrix([bad_stage])
    float_won = SimpleNamespace(id="f", owner="ann", industry="retail", stage="won", amount=2.5)
    with pytest.raises(InvalidTypeError, match="amount"):
        rep_industry_matrix([*deals("ann", "retail", won=1), float_won])
    with pytest.raises(InvalidTypeError, match="industry"):
        rep_industry_matrix([SimpleNamespace(owner="a", stage="won", amount=Money.of(1, "CNY"))])


def test_won_amounts_in_several_currencies_are_kept_apart():
    usd = Opportunity(
        id="u", owner="ann", industry="retail", amount=Money.of(5, "USD"), stage="won"
    )
    m = rep_industry_matrix([*deals("ann", "retail", won=1), usd])
    assert m.cell("ann", "retail").won_amount == {"CNY": Decimal(100), "USD": Decimal(5)}
    assert m.currencies == ("CNY", "USD")
    record = m.to_records()[0]
    assert (record["won_amount_CNY"], record["won_amount_USD"]) == (100, 5)


def test_it_prints_and_converts():
    m = rep_industry_matrix(deals("ann", "retail", won=1, lost=1))
    text = str(m)
    assert "smoothed_win_rate" in text
    assert "prior strength 10" in text
    assert m.to_records() == [
        {
            "owner": "ann",
            "industry": "retail",
            "open": 0,
            "closed": 2,
            "won": 1,
            "lost": 1,
            "win_rate": Decimal("50.0"),
            "smoothed_win_rate": Decimal("50.0"),
            "team_win_rate": Decimal("50.0"),
            "won_amount": Decimal(100),
            "currency": "CNY",
        }
    ]
    ranked = recommend_owners(m, "retail")
    assert "Best reps for a new retail customer" in str(ranked)
    assert ranked.to_records()[0]["owner"] == "ann"
    assert "<table" in ranked._repr_html_()
    assert len(m.to_frame()) == 1


@given(opportunities(owners=("ann", "bob", "cai", "dan")), st.integers(0, 50))
def test_the_smoothed_rate_lies_between_the_raw_rate_and_the_prior(opps, strength):
    m = rep_industry_matrix(opps, prior_strength=strength)
    for cell in m:
        prior = m.exact_team_rate(cell.industry)
        raw = cell.exact_win_rate
        if raw is None or prior is None:
            assert cell.exact_smoothed == (prior if strength else None)
            continue
        assert cell.exact_smoothed is not None
        assert min(raw, prior) <= cell.exact_smoothed <= max(raw, prior)
        shown = m.smoothed_win_rate(cell.owner, cell.industry)
        assert min(m.win_rate(cell.owner, cell.industry), m.team_win_rate(cell.industry)) <= shown
        assert shown <= max(m.win_rate(cell.owner, cell.industry), m.team_win_rate(cell.industry))


@given(opportunities())
def test_the_matrix_counts_every_opportunity_once(opps):
    m = rep_industry_matrix(opps)
    assert sum(c.open + c.closed for c in m) == len(opps)
    assert sum(c.won for c in m) == sum(1 for o in opps if o.stage == "won")
    won_total = sum((o.amount.amount for o in opps if o.stage == "won"), Decimal(0))
    assert sum((c.won_amount.get("CNY", Decimal(0)) for c in m), Decimal(0)) == won_total
