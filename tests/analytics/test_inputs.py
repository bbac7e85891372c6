"""Input that fits the user's data (issue 13, item 4): field mappings, stage display names, a hint
to pass the plan, and one-shot iterables whose drill-down is kept, never silently empty."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import salesflow
from salesflow.analytics.distribution import distribution
from salesflow.analytics.forecast import forecast
from salesflow.analytics.funnel import funnel
from salesflow.analytics.inputs import is_reiterable
from salesflow.analytics.lost_reasons import lost_reasons
from salesflow.analytics.performance import signed_deals
from salesflow.analytics.strengths import rep_industry_matrix
from salesflow.analytics.velocity import learned_probabilities, stage_velocity
from salesflow.domain.money import Money
from salesflow.domain.opportunities import Opportunity, StageChange
from salesflow.domain.stages import StagePlan
from salesflow.errors import InvalidTypeError, StageError, ValidationError
from salesflow.testing.strategies import opportunities

AS_OF = date(2026, 11, 26)
PLAN = StagePlan.default()
NAMES = {s.key: s.name for s in PLAN}

# The user's columns, and where each field the calculators read comes from.
FIELDS: dict[str, Any] = {
    "id": "deal",
    "stage": "phase",
    "amount": lambda row: Money.of(row["value"], row["cur"]),
    "expected_close": "close",
    "owner": "agent",
    "industry": "sector",
    "team": "group",
    "history": "changes",
}


def as_row(o: Opportunity, display_name: bool = False) -> dict[str, Any]:
    """``o`` as a row of the user's own table (a dict with other column names)."""
    return {
        "deal": o.id,
        "phase": NAMES[o.stage].upper() if display_name else o.stage,
        "value": str(o.amount.amount),
        "cur": o.amount.currency,
        "close": o.expected_close,
        "agent": o.owner,
        "sector": o.industry,
        "group": o.team,
        "changes": o.history,
    }


def line_facts(fc: salesflow.Forecast) -> list[tuple[Any, ...]]:
    return [
        (
            line.opportunity.id
            if isinstance(line.opportunity, Opportunity)
            else line.opportunity["deal"],
            line.group,
            line.bucket,
            line.probability,
            line.amount,
            line.expected,
        )
        for line in fc.lines
    ]


# -- the mapping path equals the object path ---------------------------------------------------------


@given(opportunities(max_size=30), st.lists(st.booleans(), min_size=30, max_size=30))
def test_the_mapping_path_equals_the_object_path(
    pipeline: list[Opportunity], names: list[bool]
) -> None:
    rows = [as_row(o, display) for o, display in zip(pipeline, names, strict=False)]
    for by in ("owner", ("team", "owner")):
        ours = forecast(pipeline, PLAN, as_of=AS_OF, by=by, currency="CNY")
        theirs = forecast(rows, PLAN, as_of=AS_OF, by=by, currency="CNY", fields=FIELDS)
        assert theirs.to_records() == ours.to_records()
        assert theirs.total_records() == ours.total_records()
        assert line_facts(theirs) == line_facts(ours)
        assert all(isinstance(line.opportunity, dict) for line in theirs.lines)  # the row itself
    assert (
        funnel(rows, PLAN, fields=FIELDS, currency="CNY").to_records()
        == funnel(pipeline, PLAN, currency="CNY").to_records()
    )
    assert (
        distribution(rows, by="team", fields=FIELDS, currency="CNY").to_records()
        == distribution(pipeline, by="team", currency="CNY").to_records()
    )
    assert (
        rep_industry_matrix(rows, PLAN, fields=FIELDS, currency="CNY").to_records()
        == rep_industry_matrix(pipeline, PLAN, currency="CNY").to_records()
    )


def test_history_and_lost_reasons_through_a_mapping() -> None:
    pipeline = salesflow.generate_pipeline(200, seed=5, as_of=AS_OF)
    rows = [as_row(o, display_name=i % 2 == 0) for i, o in enumerate(pipeline)]
    for calculator in (stage_velocity, learned_probabilities, lost_reasons):
        ours = calculator(pipeline, PLAN)  # type: ignore[operator]
        theirs = calculator(rows, PLAN, fields=FIELDS)  # type: ignore[operator]
        assert theirs.to_records() == ours.to_records(), calculator
        assert theirs.total_records() == ours.total_records(), calculator
    signed = list(signed_deals(rows, PLAN, fields=FIELDS))
    assert signed and signed == list(signed_deals(pipeline, PLAN))


def test_object_rows_map_attributes_dotted_paths_and_functions() -> None:
    Account = namedtuple("Account", "name sector")
    Deal = namedtuple("Deal", "ref phase value rep account close")
    deals = [
        Deal(
            "d1",
            "quotation",
            Decimal("1000.00"),
            "ann",
            Account("Acme", "retail"),
            date(2026, 11, 30),
        ),
        Deal("d2", "Quotation", Decimal("500.00"), "bob", Account("Zeta", "energy"), None),
        Deal("d3", "won", Decimal("800.00"), "ann", Account("Acme", "retail"), None),
    ]
    fields = {
        "id": "ref",
        "stage": "phase",
        "amount": "value",
        "owner": "rep",
        "industry": "account.sector",
        "expected_close": "close",
    }
    fc = forecast(deals, PLAN, as_of=AS_OF, currency="USD", fields=fields)
    assert fc.total == Money.of("1050.00", "USD")
    assert [line.opportunity for line in fc.lines] == deals[:2]
    mix = distribution(deals, fields=fields, currency="USD")
    assert mix.counts() == {"retail": 2, "energy": 1}
    matrix = rep_industry_matrix(deals, PLAN, fields=fields, currency="USD")
    assert matrix.cell("ann", "retail").won == 1


def test_a_mapping_that_names_a_missing_column_says_which_field() -> None:
    rows = [{"deal": "d1", "phase": "quotation", "value": "1", "cur": "CNY", "close": None}]
    with pytest.raises(ValidationError, match=r"fields\['owner'\]"):
        forecast(rows, PLAN, as_of=AS_OF, fields={**FIELDS, "owner": "rep"})
    # a row object without the mapped attribute: named, not read under the field's own name
    thing = SimpleNamespace(stage="quotation", amount=Money.of("1", "CNY"), expected_close=None)
    with pytest.raises(ValidationError, match=r"fields\['amount'\]"):
        forecast([thing], PLAN, as_of=AS_OF, by=(), fields={"amount": "value"})
    with pytest.raises(InvalidTypeError, match="fields"):
        forecast([], PLAN, as_of=AS_OF, fields=["amount"])  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match=r"fields\['amount'\]"):
        funnel([], PLAN, fields={"amount": 3})  # type: ignore[dict-item]


# -- stage display names and the plan hint ---------------------------------------------------------


def test_display_names_are_accepted_wherever_keys_are() -> None:
    pipeline = salesflow.generate_pipeline(150, seed=3, as_of=AS_OF)

    def named(o: Opportunity) -> SimpleNamespace:
        history = [
            SimpleNamespace(
                at=c.at,
                from_stage=None if c.from_stage is None else NAMES[c.from_stage],
                to_stage=NAMES[c.to_stage].lower(),
                reason=c.reason,
            )
            for c in o.history
        ]
        return SimpleNamespace(
            **{
                **o.to_record(),
                "stage": NAMES[o.stage],
                "history": history,
                "amount": o.amount,
                "expected_close": o.expected_close,
            }
        )

    renamed = [named(o) for o in pipeline]
    assert (
        forecast(renamed, PLAN, as_of=AS_OF).to_records()
        == forecast(pipeline, PLAN, as_of=AS_OF).to_records()
    )
    assert funnel(renamed, PLAN).to_records() == funnel(pipeline, PLAN).to_records()
    assert (
        rep_industry_matrix(renamed, PLAN).to_records()
        == rep_industry_matrix(pipeline, PLAN).to_records()
    )
    assert stage_velocity(renamed, PLAN).to_records() == stage_velocity(pipeline, PLAN).to_records()
    learned = learned_probabilities(renamed, PLAN)
    assert learned.to_records() == learned_probabilities(pipeline, PLAN).to_records()
    assert learned["Quotation"] == learned["quotation"]
    assert lost_reasons(renamed, PLAN).to_records() == lost_reasons(pipeline, PLAN).to_records()
    # ...and in the results' own lookups
    f = funnel(pipeline, PLAN)
    assert f.count("Quotation") == f.count("quotation")
    target = {
        "Initial contact": 15,
        "needs_analysis": 40,
        "INTENT CONFIRMED": 30,
        "Quotation": 10,
        "won": 5,
    }
    assert f.deviations(target) == f.deviations(
        {
            "initial_contact": 15,
            "needs_analysis": 40,
            "intent_confirmed": 30,
            "quotation": 10,
            "won": 5,
        }
    )
    v = stage_velocity(pipeline, PLAN)
    assert v.stage("Quotation") == v.stage("quotation")
    assert v.conversion("Quotation", "Won") == v.conversion("quotation", "won")


MAVEN_LIKE = [
    SimpleNamespace(
        id="1",
        stage="engaging",
        amount=Money.of("100", "USD"),
        expected_close=None,
        owner="ann",
        industry="retail",
        history=(),
    ),
]


@pytest.mark.parametrize(
    "call",
    [
        lambda rows: forecast(rows, as_of=AS_OF),
        lambda rows: funnel(rows),
        lambda rows: rep_industry_matrix(rows),
        lambda rows: lost_reasons(rows),
        lambda rows: stage_velocity(
            [
                SimpleNamespace(
                    owner="ann",
                    history=[
                        StageChange(
                            at=datetime(2026, 1, 1, tzinfo=UTC),
                            from_stage=None,
                            to_stage="engaging",
                        )
                    ],
                )
            ]
        ),
    ],
)
def test_an_unknown_stage_without_a_plan_says_to_pass_the_plan(call: Any) -> None:
    with pytest.raises(StageError, match=r"'engaging'.*pass plan="):
        call(MAVEN_LIKE)


def test_with_a_plan_the_error_names_the_stages_but_not_the_default() -> None:
    with pytest.raises(StageError) as caught:
        forecast(MAVEN_LIKE, PLAN, as_of=AS_OF)
    assert "pass plan=" not in str(caught.value)
    assert "display names" in str(caught.value)


# -- one-shot iterables -----------------------------------------------------------------------------


class OneShot:
    """Iterable once, and not its own iterator: what `iter(x) is x` misses."""

    def __init__(self, rows: list[Any]) -> None:
        self._rows: list[Any] | None = rows

    def __iter__(self) -> Iterator[Any]:
        rows, self._rows = self._rows or [], None
        return iter(rows)


def test_one_shot_inputs_are_recognised() -> None:
    assert not is_reiterable(OneShot([]))
    assert not is_reiterable(iter([]))
    assert not is_reiterable(x for x in [])
    assert is_reiterable([]) and is_reiterable(()) and is_reiterable({}.values())


def test_an_iterable_that_is_not_its_own_iterator_keeps_its_drill_down() -> None:
    pipeline = salesflow.generate_pipeline(120, seed=11, as_of=AS_OF)
    expected = list(forecast(pipeline, PLAN, as_of=AS_OF).lines)
    fc = forecast(OneShot(pipeline), PLAN, as_of=AS_OF)
    assert expected and list(fc.lines) == expected
    assert list(fc.lines) == expected  # and again


def test_a_sqlalchemy_result_gives_the_same_lines_as_a_list() -> None:
    sa = pytest.importorskip("sqlalchemy")
    pipeline = salesflow.generate_pipeline(120, seed=13, as_of=AS_OF)
    engine = sa.create_engine("sqlite://")
    meta = sa.MetaData()
    deals = sa.Table(
        "deals",
        meta,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("owner", sa.String),
        sa.Column("stage", sa.String),
        sa.Column("amount", sa.String),  # exact text: SQLite has no decimal type
        sa.Column("currency", sa.String),
        sa.Column("expected_close", sa.Date),
    )
    meta.create_all(engine)
    fields = {"amount": lambda row: Decimal(row.amount)}
    with engine.begin() as conn:
        conn.execute(
            deals.insert(),
            [
                {
                    "id": o.id,
                    "owner": o.owner,
                    "stage": o.stage,
                    "amount": str(o.amount.amount),
                    "currency": o.amount.currency,
                    "expected_close": o.expected_close,
                }
                for o in pipeline
            ],
        )
        query = sa.select(deals).order_by(deals.c.id)
        result = conn.execute(query)
        assert iter(result) is not result  # the case a plain one-shot check misses
        from_result = forecast(result, PLAN, as_of=AS_OF, fields=fields)
        from_list = forecast(list(conn.execute(query)), PLAN, as_of=AS_OF, fields=fields)
    assert from_result.to_records() == from_list.to_records()
    assert from_result.count > 0
    assert list(from_result.lines) == list(from_list.lines)
    assert len(list(from_result.lines)) == from_result.count
    assert from_result.total == forecast(pipeline, PLAN, as_of=AS_OF).total
    engine.dispose()
