"""The range of the amount signed: exact distribution for small pipelines, seeded simulation with the
DKW bound for large ones; mean equals the weighted sum exactly."""

from __future__ import annotations

import itertools
import math
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow.analytics.forecast_range import dkw_bound, forecast_range
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity
from salesflow.domain.stages import StagePlan
from salesflow.errors import CurrencyMismatchError, ValidationError
from salesflow.testing.strategies import opportunities

np = pytest.importorskip("numpy")

PLAN = StagePlan.default()
OPEN = [s.key for s in PLAN.open_stages]


def deal(i: int, stage: str, amount: str, close: date | None = date(2026, 11, 20)) -> Opportunity:
    return Opportunity(
        id=f"op-{i}",
        owner="ann" if i % 2 else "bob",
        amount=Money.of(amount, "CNY"),
        stage=stage,
        expected_close=close,
    )


deals = st.lists(
    st.tuples(
        st.sampled_from([*OPEN, "won", "lost"]),
        st.integers(0, 500_000).map(lambda cents: str(Decimal(cents).scaleb(-2))),
    ),
    min_size=0,
    max_size=9,
).map(lambda rows: [deal(i, stage, amount) for i, (stage, amount) in enumerate(rows)])


def brute_force(items: list[Opportunity]) -> dict[Decimal, Fraction]:
    """Every outcome of the open deals, enumerated: the distribution by definition."""
    live = [
        (o.amount.amount, Fraction(PLAN[o.stage].probability) / 100)
        for o in items
        if PLAN[o.stage].is_open
    ]
    dist: dict[Decimal, Fraction] = {}
    for outcome in itertools.product((0, 1), repeat=len(live)):
        p = Fraction(1)
        total = Decimal(0)
        for signed, (amount, q) in zip(outcome, live, strict=True):
            p *= q if signed else 1 - q
            total += amount if signed else 0
        dist[total] = dist.get(total, Fraction(0)) + p
    return dist


def quantile(dist: dict[Decimal, Fraction], level: Fraction) -> Decimal:
    seen = Fraction(0)
    for value in sorted(dist):
        seen += dist[value]
        if seen >= level:
            return value
    raise AssertionError


@given(deals)
def test_the_exact_range_is_the_enumerated_distribution(items: list[Opportunity]) -> None:
    result = forecast_range(items, PLAN, method="exact")
    if not any(PLAN[o.stage].is_open for o in items):
        assert result.rows == []
        return
    row = result.row()
    weighted = sum(
        (o.amount.amount * PLAN[o.stage].probability / 100 for o in items if PLAN[o.stage].is_open),
        Decimal(0),
    )
    assert row.mean == weighted  # exactly, not rounded per deal
    assert row.p10 <= row.p50 <= row.p90
    truth = brute_force(items)
    for level, got in zip(
        (Fraction(1, 10), Fraction(1, 2), Fraction(9, 10)), (row.p10, row.p50, row.p90), strict=True
    ):
        want = quantile(truth, level)
        # Float probabilities may tip a level reached exactly; never further than the next value.
        values = sorted(truth)
        assert abs(values.index(got.amount) - values.index(want)) <= 1
        assert got.currency == "CNY" and got.amount == got.amount.quantize(Decimal("0.01"))
    values, pmf = row.support
    mean = sum(float(v) * float(p) for v, p in zip(values, pmf, strict=True)) / 100
    assert math.isclose(mean, float(weighted), rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=25, deadline=None)
@given(opportunities(max_size=25), st.integers(0, 2**32))
def test_simulation_agrees_with_exact_within_the_dkw_bound(items: list, seed: int) -> None:  # type: ignore[type-arg]
    exact = forecast_range(items, PLAN, method="exact")
    simulated = forecast_range(items, PLAN, method="simulate", samples=2_000, seed=seed)
    assert [r.mean for r in exact.rows] == [r.mean for r in simulated.rows]
    for e, s in zip(exact.rows, simulated.rows, strict=True):
        bound = float(s.error_bound)
        assert bound == pytest.approx(dkw_bound(2_000, 1e-6), abs=1e-6)
        values, pmf = e.support
        cdf = np.cumsum(pmf)
        scale = 10 ** max(0, -min(v.as_tuple().exponent for v in (e.p10.amount, s.p10.amount)))
        for level, got in ((0.1, s.p10), (0.5, s.p50), (0.9, s.p90)):
            units = int(got.amount * scale)
            at = cdf[values <= units]
            below = cdf[values < units]
            f_at = float(at[-1]) if len(at) else 0.0
            f_below = float(below[-1]) if len(below) else 0.0
            assert f_at >= level - bound - 1e-9
            assert f_below <= level + bound + 1e-9
        assert s.p10 <= s.p50 <= s.p90


def test_the_simulation_is_reproducible_per_seed_and_chance_of_a_target() -> None:
    items = [deal(i, OPEN[i % 4], f"{1000 + 7 * i}.25") for i in range(200)]
    one = forecast_range(items, PLAN, method="simulate", seed=7, target=Money.of("60000", "CNY"))
    two = forecast_range(items, PLAN, method="simulate", seed=7, target=Money.of("60000", "CNY"))
    other = forecast_range(items, PLAN, method="simulate", seed=8)
    assert one.to_records() == two.to_records()
    assert one.row().p50 != other.row().p50 or one.row().p10 != other.row().p10
    exact = forecast_range(items, PLAN, target=Money.of("60000", "CNY"))
    assert exact.row().method == "exact"
    assert abs(exact.row().chance - one.row().chance) <= one.row().error_bound * 100
    assert forecast_range(items, PLAN, max_bins=10).row().method == "simulate"


def test_period_groups_learned_probabilities_and_output_forms() -> None:
    items = [
        deal(1, "quotation", "100"),
        deal(2, "quotation", "300", date(2026, 12, 1)),
        deal(3, "initial_contact", "50", None),
    ]
    result = forecast_range(items, PLAN, period="2026-11", by="owner")
    assert [r.group for r in result.rows] == ["ann"]
    assert result.row("ann").p90 == Money.of("100.00", "CNY")
    learned = forecast_range(items, PLAN, probabilities={"quotation": 10, "initial_contact": None})
    assert learned.row().mean == Decimal("45.0")
    sure = forecast_range(items, PLAN, probabilities={"quotation": 100, "initial_contact": 100})
    assert sure.row().p10 == sure.row().p90 == Money.of("450", "CNY")
    assert "P10" in str(result) and "<table" in result._repr_html_()
    assert result.to_frame()["p10"].tolist() == [0.0]
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    assert result.plot() is not None


def test_bad_arguments() -> None:
    items = [deal(1, "quotation", "100")]
    with pytest.raises(ValidationError, match="method"):
        forecast_range(items, PLAN, method="guess")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="samples"):
        forecast_range(items, PLAN, samples=10)
    with pytest.raises(CurrencyMismatchError):
        forecast_range(items, PLAN, target=Money.of("1", "USD"))
    with pytest.raises(ValidationError):
        forecast_range(items, PLAN, probabilities={"quotation": 101})
