"""Stage history from a CSV's date columns (issue 13): ``history={stage: column}`` builds the
moves, so that velocity and learned probabilities work on an export such as Maven's."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from statistics import median

import pytest

from salesflow.analytics.velocity import learned_probabilities, stage_velocity
from salesflow.domain.opportunities import StageChange
from salesflow.domain.stages import StagePlan
from salesflow.errors import StageError, ValidationError
from salesflow.tabular import iter_opportunities, read_opportunities

PLAN = StagePlan.default()
HISTORY = {
    "Initial contact": "created",  # a display name works as well as a key
    "quotation": "quoted",
    "won": "closed",
    "lost": "closed",
}
HEAD = "id,owner,amount,currency,stage,created,quoted,closed,lost_reason\n"


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def read(*rows: str, **options: object) -> list:  # type: ignore[type-arg]
    text = HEAD + "".join(row + "\n" for row in rows)
    return read_opportunities(io.StringIO(text), plan=PLAN, history=HISTORY, **options)  # type: ignore[arg-type]


def test_dates_become_moves_in_plan_order() -> None:
    won, lost, open_, undated, skipped = read(
        "W,ann,10,CNY,won,2026-01-05,2026-02-01,2026-03-01,",
        "L,ann,10,CNY,lost,2026-01-05,,2026-03-02,price",
        "Q,ann,10,CNY,quotation,2026-01-05,2026-02-03,,",
        "N,ann,10,CNY,needs_analysis,,,,",
        "S,ann,10,CNY,quotation,,2026-02-03,,",
    )
    assert won.history == (
        StageChange(at("2026-01-05"), None, "initial_contact"),
        StageChange(at("2026-02-01"), "initial_contact", "quotation"),
        StageChange(at("2026-03-01"), "quotation", "won"),
    )
    # A lost deal's close date is its loss (not a win), with the reason on that move; a blank
    # quotation date means the deal went on without a recorded quotation.
    assert lost.history == (
        StageChange(at("2026-01-05"), None, "initial_contact"),
        StageChange(at("2026-03-02"), "initial_contact", "lost", reason="price"),
    )
    assert [c.to_stage for c in open_.history] == ["initial_contact", "quotation"]
    assert undated.history == ()  # no date at all: no history, never a guessed one
    assert skipped.history == (StageChange(at("2026-02-03"), None, "quotation"),)


def test_history_dates_share_the_file_date_order() -> None:
    row = "W,ann,10,CNY,won,01/02/2026,03/04/2026,31/05/2026,"
    with pytest.raises(ValidationError, match="dayfirst") as caught:
        read(row)  # 31/05 is day first, so 01/02 may be too
    assert (caught.value.field, caught.value.value) == ("created", "01/02/2026")
    (deal,) = read(row, dayfirst=True)
    assert [c.at.date() for c in deal.history] == [
        date(2026, 2, 1),
        date(2026, 4, 3),
        date(2026, 5, 31),
    ]


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        # the current stage is the last move, so it needs a date when an earlier stage has one
        ("W,ann,10,CNY,won,2026-01-05,2026-02-01,,", "closed", "current stage 'won'"),
        # an open deal has no date for a later stage
        ("Q,ann,10,CNY,initial_contact,2026-01-05,2026-02-01,,", "quoted", "after the current"),
        # stages are entered in plan order
        ("W,ann,10,CNY,won,2026-03-05,2026-02-01,2026-04-01,", "quoted", "on or after created"),
        ("W,ann,10,CNY,won,2026-01-05,2026-02-31,2026-04-01,", "quoted", "2026-11-26"),
    ],
)
def test_rows_whose_dates_cannot_be_a_history_are_refused(row: str, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        read("OK,ann,10,CNY,won,2026-01-05,2026-02-01,2026-03-01,", row)
    assert (caught.value.field, caught.value.where) == (field, "line 3")
    assert words in str(caught.value)


def test_a_current_stage_without_a_column_is_refused_when_earlier_stages_have_dates() -> None:
    text = HEAD + "N,ann,10,CNY,needs_analysis,2026-01-05,,,\n"
    with pytest.raises(ValidationError, match="date column for the current stage") as caught:
        read_opportunities(io.StringIO(text), plan=PLAN, history=HISTORY)
    assert caught.value.where == "line 2"


def test_history_mapping_errors() -> None:
    text = HEAD + "W,ann,10,CNY,won,2026-01-05,2026-02-01,2026-03-01,\n"
    with pytest.raises(StageError, match="history"):
        read_opportunities(io.StringIO(text), history={"signed": "closed"})
    with pytest.raises(ValidationError, match="column of the file"):
        read_opportunities(io.StringIO(text), history={"won": "signed_on"})
    with pytest.raises(ValidationError, match="one column per stage"):
        read_opportunities(io.StringIO(text), history={"won": "closed", "Won": "quoted"})
    # Without a plan, the default plan's keys and display names are understood.
    (deal,) = read_opportunities(
        io.StringIO(text.replace(",won,", ",Won,")),
        history={"Won": "closed", "Quotation": "quoted"},
    )
    assert (deal.stage, [c.to_stage for c in deal.history]) == ("won", ["quotation", "won"])
    # A function of the row works too, and streaming builds the same history.
    (deal,) = iter_opportunities(
        io.StringIO(text), history={"won": lambda row: row["closed"], "quotation": "quoted"}
    )
    assert [(c.from_stage, c.to_stage) for c in deal.history] == [
        (None, "quotation"),
        ("quotation", "won"),
    ]


# -- the Maven pipeline ----------------------------------------------------------------------------

MAVEN_HISTORY = {"Engaging": "engage_date", "Won": "close_date", "Lost": "close_date"}


@pytest.fixture(scope="module")
def maven_rows(maven: Path) -> list[dict[str, str]]:
    with open(maven / "sales_pipeline.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def maven_pipeline(maven: Path, maven_plan: StagePlan) -> list:  # type: ignore[type-arg]
    return read_opportunities(
        maven / "sales_pipeline.csv",
        plan=maven_plan,
        currency="USD",
        mapping={
            "id": "opportunity_id",
            "owner": "sales_agent",
            "stage": "deal_stage",
            "amount": lambda row: row["close_value"] or "0",
        },
        history=MAVEN_HISTORY,
    )


@pytest.mark.realdata
def test_velocity_over_maven_matches_a_plain_computation(maven_rows, maven_pipeline, maven_plan):
    # Prospecting deals have no date at all in the data: they are the only ones without history.
    undated = [r for r in maven_rows if not r["engage_date"] and not r["close_date"]]
    assert {r["deal_stage"] for r in undated} == {"Prospecting"}
    with_history = [o for o in maven_pipeline if o.history]
    assert len(with_history) == len(maven_rows) - len(undated)

    velocity = stage_velocity(with_history, maven_plan)
    assert velocity.without_history == 0
    assert "without history" not in velocity.caption
    assert stage_velocity(maven_pipeline, maven_plan).without_history == len(undated)

    # The same figures from the raw rows, without the library.
    engaged = [r for r in maven_rows if r["engage_date"]]
    closed = [r for r in engaged if r["deal_stage"] in ("Won", "Lost")]
    spent = [
        (date.fromisoformat(r["close_date"]) - date.fromisoformat(r["engage_date"])).days
        for r in closed
    ]
    stages = Counter(r["deal_stage"] for r in engaged)
    engaging = velocity.stage("Engaging")
    assert (engaging.entered, engaging.advanced, engaging.lost, engaging.current) == (
        len(engaged),
        stages["Won"],
        stages["Lost"],
        stages["Engaging"],
    )
    assert engaging.mean_days == (Decimal(sum(spent)) / len(spent)).quantize(
        Decimal("0.01"), ROUND_HALF_UP
    )
    assert engaging.median_days == Decimal(str(median(spent))).quantize(Decimal("0.01"))
    assert engaging.conversion == (Decimal(stages["Won"] * 100) / len(closed)).quantize(
        Decimal("0.1"), ROUND_HALF_UP
    )
    assert velocity.stage("Won").current == stages["Won"]
    assert velocity.stage("Lost").current == stages["Lost"]
    assert velocity.stage("Prospecting").entered == 0
    assert velocity.transitions() == {
        (None, "engaging"): len(engaged),
        ("engaging", "lost"): stages["Lost"],
        ("engaging", "won"): stages["Won"],
    }

    learned = learned_probabilities(with_history, maven_plan)
    assert learned.without_history == 0
    expected = (Decimal(stages["Won"] * 100) / len(closed)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    assert learned["Engaging"].reached == len(closed)
    assert learned["Engaging"].won == stages["Won"]
    assert learned["Engaging"].learned == expected
