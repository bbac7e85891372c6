"""distribution(): the mix of opportunities over industries (or any attribute), per rep and team."""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.analytics.distribution import Distribution, distribution, largest_remainder_shares
from salesflow.analytics.grouping import ALL
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity
from salesflow.errors import (
    CurrencyMismatchError,
    InvalidTypeError,
    MissingDependencyError,
    ValidationError,
)
from salesflow.testing.strategies import opportunities


def opp(
    i: int,
    owner: str,
    industry: str | None,
    amount: str = "100",
    currency: str = "CNY",
    stage: str = "initial_contact",
    team: str | None = None,
) -> Opportunity:
    return Opportunity(
        id=f"op-{i}",
        owner=owner,
        team=team,
        industry=industry,
        amount=Money.of(amount, currency),
        stage=stage,
        expected_close=date(2026, 12, 1),
    )


# -- largest remainder -------------------------------------------------------------------------


def test_thirds_add_up_to_exactly_100_with_the_extra_unit_to_the_first():
    assert largest_remainder_shares([1, 1, 1], places=1) == [
        Decimal("33.4"),
        Decimal("33.3"),
        Decimal("33.3"),
    ]
    assert largest_remainder_shares([1, 1, 1], places=0) == [34, 33, 33]


def test_extra_units_go_to_the_largest_remainders():
    # 2/7 = 28.57.., 5/7 = 71.42..: rounding each half up would also work here, but 1/6 x 6 would not
    assert largest_remainder_shares([2, 5], places=1) == [Decimal("28.6"), Decimal("71.4")]
    shares = largest_remainder_shares([1] * 6, places=1)
    assert sum(shares) == 100
    assert shares == [Decimal("16.7")] * 4 + [Decimal("16.6")] * 2


def test_zero_counts_get_zero_and_all_zero_gives_zeros():
    assert largest_remainder_shares([0, 3, 0], places=2) == [0, 100, 0]
    assert largest_remainder_shares([0, 0], places=1) == [0, 0]
    assert str(largest_remainder_shares([0, 3], places=2)[1]) == "100.00"


@pytest.mark.parametrize("counts", [[-1, 2], [1.5, 2], ["3"]])
def test_largest_remainder_refuses_bad_counts(counts):
    with pytest.raises(ValidationError, match="counts"):
        largest_remainder_shares(counts)


@pytest.mark.parametrize("places", [-1, 7, 1.0, "1"])
def test_largest_remainder_refuses_bad_places(places):
    with pytest.raises(ValidationError, match="places"):
        largest_remainder_shares([1], places=places)


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=12), st.integers(0, 4))
def test_shares_always_add_up_to_100_and_stay_within_one_unit(counts, places):
    shares = largest_remainder_shares(counts, places=places)
    total = sum(counts)
    if total:
        assert sum(shares) == 100
        unit = Decimal(1).scaleb(-places)
        for count, share in zip(counts, shares, strict=True):
            exact = Decimal(count * 100) / Decimal(total)
            assert abs(share - exact) < unit
            assert share.as_tuple().exponent == -places
    else:
        assert all(s == 0 for s in shares)


# -- distribution -------------------------------------------------------------------------------


def test_counts_amounts_and_shares_per_rep_and_team():
    d = distribution(
        [
            opp(1, "ann", "retail", "100"),
            opp(2, "ann", "retail", "50.50"),
            opp(3, "ann", "energy", "10"),
            opp(4, "bob", "energy", "7"),
        ]
    )
    assert isinstance(d, Distribution)
    assert d.groups == ("ann", "bob")
    assert d.counts("ann") == {"retail": 2, "energy": 1}
    assert d.shares("ann") == {"retail": Decimal("66.7"), "energy": Decimal("33.3")}
    assert d.amounts("ann")["retail"] == Money.of("150.50", "CNY")
    assert d.counts() == {"energy": 2, "retail": 2}
    assert d.shares() == {"energy": 50, "retail": 50}
    assert d.total() == 4
    assert d.total("bob") == 1
    assert d.share("retail", "bob") == 0


def test_missing_industries_are_grouped_under_unknown_never_dropped():
    d = distribution(
        [opp(1, "ann", None), opp(2, "ann", "  "), opp(3, "ann", "retail"), opp(4, "bob", "")]
    )
    assert d.counts() == {"retail": 1, "unknown": 3}
    assert d.values[-1] == "unknown"
    assert d.total() == 4
    assert distribution([opp(1, "ann", None)], missing="n/a").counts() == {"n/a": 1}


def test_values_are_listed_most_common_first_with_missing_last():
    items = [opp(i, "ann", ind) for i, ind in enumerate(["b", "a", "c", "c", None, None, None])]
    assert distribution(items).values == ("c", "a", "b", "unknown")


def test_any_attribute_and_grouping_by_team_or_nothing():
    items = [
        opp(1, "ann", "retail", team="east"),
        opp(2, "bob", "retail", team="west"),
        opp(3, "cai", "energy", team=None),
    ]
    by_team = distribution(items, by="team")
    assert by_team.groups == ("east", "unknown", "west")
    team_only = distribution(items, by=())
    assert team_only.groups == ()
    assert team_only.counts() == {"retail": 2, "energy": 1}
    by_stage = distribution(items, dimension="stage", by=("team", "owner"))
    assert by_stage.counts(("east", "ann")) == {"initial_contact": 1}
    with pytest.raises(ValidationError, match="group"):
        team_only.counts("ann")


def test_protocol_alike_rows_with_decimal_amounts_and_a_currency():
    rows = [
        SimpleNamespace(owner="ann", industry="retail", amount=Decimal("5")),
        SimpleNamespace(owner="ann", industry="retail", amount=Decimal("2.5"), currency="CNY"),
    ]
    d = distribution(rows, currency="CNY")
    assert d.amounts("ann") == {"retail": Money.of("7.5", "CNY")}
    with pytest.raises(ValidationError, match="currency"):
        distribution(rows[:1])


def test_mixed_currencies_are_kept_apart_never_added():
    items = [opp(1, "ann", "retail", "10", "CNY"), opp(2, "ann", "retail", "3", "USD")]
    d = distribution(items)
    assert d.currencies == ("CNY", "USD")
    assert d.amounts_by_currency("ann") == {
        "retail": {"CNY": Money.of("10", "CNY"), "USD": Money.of("3", "USD")}
    }
    with pytest.raises(CurrencyMismatchError):
        d.amounts("ann")
    record = d.to_records()[0]
    assert record["amount_CNY"] == 10
    assert record["amount_USD"] == 3
    assert record["count"] == 2


def test_a_float_amount_is_refused_even_after_good_ones():
    good = opp(1, "ann", "retail")
    bad = SimpleNamespace(id="x", owner="ann", industry="retail", amount=0.1, currency="CNY")
    with pytest.raises(InvalidTypeError, match="amount"):
        distribution([good, bad])
    duck = SimpleNamespace(amount=0.1, currency="CNY")
    with pytest.raises(InvalidTypeError, match="amount"):
        distribution([good, SimpleNamespace(id="y", owner="ann", industry="retail", amount=duck)])


def test_objects_without_the_attributes_are_refused_with_the_attribute_named():
    with pytest.raises(InvalidTypeError, match="industry"):
        distribution([SimpleNamespace(owner="ann", amount=Money.of(1, "CNY"))])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dimension": "not an attribute"}, "dimension"),
        ({"dimension": "class"}, "dimension"),
        ({"by": ["owner", 3]}, "by"),
        ({"places": 9}, "places"),
        ({"missing": ""}, "missing"),
        ({"currency": "XXY"}, "currency"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValidationError, match=field):
        distribution([opp(1, "ann", "retail")], **kwargs)


def test_it_prints_renders_and_converts():
    d = distribution([opp(1, "ann", "retail"), opp(2, "bob", "energy")])
    text = str(d)
    assert text.splitlines()[0] == "Opportunities by industry per owner (2 opportunities)"
    assert text.splitlines()[1].split() == [
        "owner",
        "opportunities",
        "energy",
        "%",
        "energy",
        "n",
        "retail",
        "%",
        "retail",
        "n",
    ]
    assert text.splitlines()[3].split() == ["ann", "1", "100.0", "1"]  # no energy: blank
    assert text.splitlines()[-1].split() == [ALL, "2", "50.0", "1", "50.0", "1"]
    html = d._repr_html_()
    assert "<table" in html and '<th colspan="2"' in html  # share and count in cells of their own
    records = d.to_records()
    assert ALL not in {r["owner"] for r in records}  # the team's rows are totals
    assert [r["owner"] for r in d.total_records()] == [ALL, ALL]
    assert {r["industry"] for r in records} == {"retail", "energy"}
    frame = d.to_frame()
    assert list(frame["count"]) == [r["count"] for r in records]
    assert frame["share"].dtype == "float64"


def test_to_frame_names_the_extra_when_pandas_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependencyError, match=r"salesflow\[pandas\]"):
        distribution([opp(1, "ann", "retail")]).to_frame()


def test_an_empty_input_is_an_empty_distribution():
    d = distribution([], currency="CNY")
    assert d.total() == 0
    assert d.to_records() == []
    assert d.groups == ()


@given(opportunities())
def test_shares_add_up_to_100_per_group_and_counts_add_up(opps):
    d = distribution(opps)
    assert d.total() == len(opps)
    assert sum(d.total(g) for g in d.groups) == len(opps)
    for group in (*d.groups, None):
        if d.total(group):
            assert sum(d.shares(group).values()) == 100
    for value in d.values:
        assert d.count(value) == sum(d.count(value, g) for g in d.groups)
        assert d.amounts()[value] == Money.sum(
            [d.amounts(g).get(value, Money.zero("CNY")) for g in d.groups], "CNY"
        )
