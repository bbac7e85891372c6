"""Every result in a notebook (issue 13, item 3): a styled HTML table, records and frames that plot,
totals kept out of the data rows (and adding up to them), and a chart.

The results come from the seeded sample pipeline and the sample company, so every kind of
:class:`~salesflow.tables.Table` is covered; a test checks that none is forgotten.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("pandas")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

import salesflow  # noqa: E402
from salesflow import tables  # noqa: E402
from salesflow.analytics.distribution import distribution  # noqa: E402
from salesflow.analytics.forecast import forecast  # noqa: E402
from salesflow.analytics.forecast_accuracy import cohort_win_rates  # noqa: E402
from salesflow.analytics.forecast_categories import (  # noqa: E402
    CATEGORY_COLUMNS,
    CUMULATIVE_COLUMNS,
)
from salesflow.analytics.forecast_movement import STEPS  # noqa: E402
from salesflow.analytics.funnel import funnel  # noqa: E402
from salesflow.analytics.lost_reasons import lost_reasons  # noqa: E402
from salesflow.analytics.performance import Target, attainment, signed_deals  # noqa: E402
from salesflow.analytics.receivables import BUCKETS  # noqa: E402
from salesflow.analytics.strengths import recommend_owners, rep_industry_matrix  # noqa: E402
from salesflow.analytics.velocity import learned_probabilities, stage_velocity  # noqa: E402
from salesflow.domain.money import Money  # noqa: E402
from salesflow.errors import MissingDependencyError, ValidationError  # noqa: E402
from salesflow.sample import build_company  # noqa: E402
from salesflow.tables import Table  # noqa: E402

AS_OF = date(2026, 11, 26)
TARGET = {
    "initial_contact": 15,
    "needs_analysis": 40,
    "intent_confirmed": 30,
    "quotation": 10,
    "won": 5,
}
_MONEY = ["amount", "invoiced", "paid", "uninvoiced", "unpaid", "not_due"]
# Per result: the columns that add up (the totals are their sums); rates, shares and days do not.
ADDITIVE: dict[str, list[str]] = {
    "forecast": ["expected", "count"],
    "funnel": ["count", "amount"],
    "deviations": [],
    "distribution": ["count", "amount"],
    "lost_reasons": ["count", "amount"],
    "velocity": ["entered", "advanced", "moved_back", "lost", "current"],
    "learned": [],
    "attainment": ["target", "signed", "expected", "projected"],
    "matrix": ["open", "closed", "won", "lost", "won_amount"],
    "recommendation": [],
    "receivables": [*_MONEY, *(f"overdue_{b}" for b in BUCKETS), "overdue"],
    "receivables_totals": ["count", *_MONEY, *(f"overdue_{b}" for b in BUCKETS), "overdue"],
    "call_stats": ["calls", "answered", "talk_seconds", "ring_seconds", "uncounted"],
    "quote": [],
    "agenda": [],
    "forecast_categories": [*CATEGORY_COLUMNS, *CUMULATIVE_COLUMNS, "weighted", "count"],
    "forecast_range": [],
    "forecast_movement": ["start", *STEPS, "end"],
    "forecast_accuracy": ["forecast", "actual", "error"],
    "calibration": [],
    "cohorts": [],
}


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, Table]]:
    pipeline = salesflow.generate_pipeline(600, seed=2026, as_of=AS_OF)
    fc = forecast(pipeline, as_of=AS_OF, by=("team", "owner"))
    stages = funnel(pipeline)
    matrix = rep_industry_matrix(pipeline)
    teams: dict[str, list[str]] = {}
    for o in pipeline:
        teams.setdefault(str(o.team), [])
        if o.owner not in teams[str(o.team)]:
            teams[str(o.team)].append(o.owner)
    targets = [
        Target(owner=owner, period="2026-Q4", amount=Money.of("2500000", "CNY"))
        for owner in sorted({o.owner for o in pipeline})
    ]
    with build_company("memory://", seed=7, load_entrypoints=False) as company:
        desk = company.desk
        receivables = desk.receivables(as_of=company.as_of)
        found = {
            "forecast": fc,
            "funnel": stages,
            "deviations": stages.deviations(TARGET),
            "distribution": distribution(pipeline, by="team"),
            "lost_reasons": lost_reasons(pipeline),
            "velocity": stage_velocity(pipeline, by="owner", as_of=AS_OF),
            "learned": learned_probabilities(pipeline, as_of=AS_OF),
            "attainment": attainment(
                targets,
                signed_deals(pipeline),
                forecast(pipeline, as_of=AS_OF),
                period="2026-Q4",
                teams=teams,
            ),
            "matrix": matrix,
            "recommendation": recommend_owners(matrix, "healthcare"),
            "receivables": receivables,
            "receivables_totals": receivables.totals,
            "call_stats": desk.call_stats(period="month"),
            "quote": desk.quotes()[0].explain(),
            "agenda": desk.agenda(company.actors["dan"], on=company.as_of),
            "forecast_categories": desk.forecast_categories(
                as_of=company.as_of, by=("team", "owner")
            ),
            "forecast_range": desk.forecast_range(
                period="2026-Q4", by="team", target=Money.of("3000000", "CNY"), as_of=company.as_of
            ),
            "forecast_movement": desk.forecast_movement(
                date(2026, 10, 26), company.as_of, by=("team", "owner")
            ),
            "forecast_accuracy": desk.forecast_accuracy(
                ["2026-Q3", "2026-10"], lead_times=(30, 60)
            ),
            "calibration": desk.forecast_calibration(as_of=company.as_of),
            "cohorts": cohort_win_rates(pipeline, as_of=AS_OF),
        }
        yield found
    plt.close("all")


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_kind_of_result_is_covered(results: dict[str, Table]) -> None:
    covered = {type(r) for r in results.values()}
    ours = {c for c in _subclasses(Table) if c.__module__.startswith("salesflow.")}
    assert ours <= covered, sorted(c.__name__ for c in ours - covered)
    assert set(ADDITIVE) == set(results)


@pytest.mark.parametrize("name", sorted(ADDITIVE))
def test_frames_plot_and_add_up_to_the_totals(results: dict[str, Table], name: str) -> None:
    result = results[name]
    records = result.to_records()
    assert records, name
    frame = result.to_frame()
    assert len(frame) == len(records)
    numeric = frame.select_dtypes("number").columns
    assert len(numeric) > 0, f"{name}: nothing to plot in {list(frame.dtypes)}"
    assert isinstance(frame.plot(), Axes)  # "no numeric data to plot" no more
    exact = result.to_frame(exact=True)
    totals = result.totals_frame(exact=True)
    rough = result.totals_frame()
    for column in ADDITIVE[name]:
        assert column in frame.columns and column in totals.columns, (name, column)
        exact_sum = sum(v for v in exact[column] if v is not None)
        assert exact_sum == sum(v for v in totals[column] if v is not None), (name, column)
        assert math.isclose(frame[column].sum(), rough[column].sum(), rel_tol=1e-9), (name, column)
        assert isinstance(exact_sum, int | Decimal), (name, column)
    # No total row among the data rows: none carries the team's "(all)".
    assert "(all)" not in {str(v) for r in records for v in r.values()}, name
    plt.close("all")


@pytest.mark.parametrize("name", sorted(ADDITIVE))
def test_every_result_draws_its_chart(results: dict[str, Table], name: str) -> None:
    ax = results[name].plot()
    assert isinstance(ax, Axes)
    assert ax.get_title()
    assert ax.has_data(), name
    _fig, mine = plt.subplots()
    assert results[name].plot(ax=mine, title="mine") is mine
    assert mine.get_title() == "mine"
    plt.close("all")


@pytest.mark.parametrize("name", sorted(ADDITIVE))
def test_html_is_styled_and_text_is_grouped(results: dict[str, Table], name: str) -> None:
    result = results[name]
    html = result._repr_html_()
    assert html.startswith('<table class="salesflow"')
    assert "text-align:right" in html  # numbers right-aligned
    if result.display_totals():
        assert "<tfoot>" in html  # totals set apart
    assert str(result).startswith(result.caption)


def test_money_prints_grouped_by_thousands_in_the_chosen_locale(
    results: dict[str, Table],
) -> None:
    fc = results["forecast"]
    total = str(fc.total.amount)  # e.g. 12345678.90
    whole, _, cents = total.partition(".")
    grouped = f"{int(whole):,}.{cents}"
    assert grouped in str(fc) and grouped in fc._repr_html_()
    assert total not in str(fc)
    try:
        tables.set_locale("de_DE")
        german = grouped.replace(",", " ").replace(".", ",").replace(" ", ".")
        assert german in str(fc)
        assert german in fc.to_text()
        assert grouped in fc.to_text(locale="en")
    finally:
        tables.set_locale("en")
    assert tables.get_locale() == "en"
    with pytest.raises(ValidationError, match="locale"):
        tables.set_locale("xx_NOWHERE")
    assert tables.format_number(Decimal("1234567.500")) == "1,234,567.500"
    assert tables.format_number(-1234) == "-1,234"


def test_deviations_are_coloured(results: dict[str, Table]) -> None:
    deviations = results["deviations"]
    assert deviations.to_records()
    html = deviations._repr_html_()
    assert tables._TONES[tables.WARNING] in html or tables._TONES[tables.NEGATIVE] in html
    learned = results["learned"]._repr_html_()
    assert tables._TONES[tables.POSITIVE] in learned or tables._TONES[tables.NEGATIVE] in learned


def test_share_and_count_have_cells_of_their_own(results: dict[str, Table]) -> None:
    html = results["funnel"]._repr_html_()
    assert "% (" not in html
    assert '<th colspan="2"' in html


def test_exact_frames_keep_decimals_and_default_frames_hold_floats(
    results: dict[str, Table],
) -> None:
    fc = results["forecast"]
    assert fc.to_frame()["expected"].dtype == "float64"
    exact = fc.to_frame(exact=True)["expected"]
    assert exact.dtype == object and all(isinstance(v, Decimal) for v in exact)
    assert sum(exact) == fc.total.amount
    rows = results["receivables"]
    assert str(rows.to_frame()["signed_on"].dtype).startswith("datetime64")
    assert isinstance(rows.to_frame(exact=True)["signed_on"][0], date)


def test_an_empty_result_still_has_its_columns() -> None:
    empty = forecast([], as_of=AS_OF, currency="CNY")
    assert list(empty.to_frame().columns) == ["bucket", "owner", "currency", "expected", "count"]
    assert list(empty.totals_frame().columns) == list(empty.to_frame().columns)
    assert "(no rows)" in str(empty)


def test_plot_without_matplotlib_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, results: dict[str, Any]
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MissingDependencyError, match=r"salesflow\[plot\]"):
        results["funnel"].plot()
