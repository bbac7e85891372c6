"""Forecast truth at the desk, on every backend: category overrides (audited), daily snapshots,
reconstruction, movement, range, accuracy and calibration, and the attacks a careless or dishonest
caller tries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from salesflow import Money, Opportunity
from salesflow.domain.forecasts import CategoryOverride
from salesflow.domain.stages import ForecastCategory
from salesflow.errors import (
    InvalidTypeError,
    NotAuthorizedError,
    TransitionNotAllowedError,
    ValidationError,
)
from salesflow.testing.cast import ANN, BOB, DAN, MIA, ROOT, WES
from salesflow.testing.storage import ManualClock

OpenDesk = Callable[..., Any]


def deal(i: int, owner: str, team: str, amount: str, close: date) -> Opportunity:
    return Opportunity(
        id=f"op-{i}",
        owner=owner,
        team=team,
        amount=Money.of(amount, "CNY"),
        stage="initial_contact",
        expected_close=close,
        created=date(2026, 10, 1),
    )


def stored(desk: Any) -> tuple[object, ...]:
    with desk.storage.transaction() as uow:
        return (
            desk.opportunities(),
            desk.events(),
            list(uow.category_overrides.query()),
            list(uow.forecast_snapshots.query()),
        )


def pipeline(desk: Any, clock: ManualClock) -> None:
    rows = [
        ("ann", "east", "1000.00", date(2026, 11, 20)),
        ("ann", "east", "2500.50", date(2026, 12, 5)),
        ("bob", "east", "800.00", date(2026, 11, 28)),
        ("wes", "west", "4000.00", date(2026, 11, 15)),
        ("wes", "west", "1200.00", date(2027, 1, 10)),
    ]
    for i, (owner, team, amount, close) in enumerate(rows):
        desk.add_opportunity(ROOT, deal(i, owner, team, amount, close))
    desk.move_opportunity(ROOT, "op-0", "quotation")
    desk.move_opportunity(ROOT, "op-1", "intent_confirmed")
    desk.move_opportunity(ROOT, "op-3", "quotation")


def test_overrides_are_audited_scoped_and_change_the_category_figures(
    open_desk: OpenDesk,
) -> None:
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    desk = open_desk(clock=clock)
    pipeline(desk, clock)
    before = desk.forecast_categories(as_of=date(2026, 11, 2), by="owner")
    assert before.figure("commit", bucket="2026-11", group="ann") == Decimal("1000.00")
    assert before.figure("pipeline", bucket="2026-12", group="ann") == Decimal("2500.50")

    clock.advance(hours=1)
    result = desk.set_forecast_category(ANN, "op-1", "best_case", reason="signed LOI")
    assert result.value.category is ForecastCategory.BEST_CASE
    assert [e.data for e in result.events] == [{"category": "best_case", "reason": "signed LOI"}]
    clock.advance(hours=1)
    desk.set_forecast_category(MIA, "op-1", "commit", reason="manager call")
    trail = desk.category_overrides(actor=MIA)["op-1"]
    assert [(e.category, e.reason, e.actor) for e in trail.entries] == [
        (ForecastCategory.BEST_CASE, "signed LOI", "ann"),
        (ForecastCategory.COMMIT, "manager call", "mia"),
    ]
    assert desk.category_overrides(actor=WES) == {}  # another team's trail is not shown

    after = desk.forecast_categories(as_of=date(2026, 11, 2), by="owner")
    assert after.figure("commit", bucket="2026-12", group="ann") == Decimal("2500.50")
    assert after.figure("pipeline", bucket="2026-12", group="ann") == Decimal("0")
    # The weighted figure never follows a category: it equals the forecast's.
    fc = desk.forecast(as_of=date(2026, 11, 2))
    assert after.figure("weighted") == sum(m.amount for m in fc.by_group.values())
    # A rep reads only their own.
    mine = desk.forecast_categories(as_of=date(2026, 11, 2), actor=ANN)
    assert {r["owner"] for r in mine.to_records()} == {"ann"}

    # Back to the stage's category: a new entry, the trail keeps every one.
    desk.set_forecast_category(ANN, "op-1", None, reason="LOI withdrawn")
    assert len(desk.category_overrides()["op-1"].entries) == 3
    reset = desk.forecast_categories(as_of=date(2026, 11, 2))
    assert reset.figure("pipeline", bucket="2026-12", group="ann") == Decimal("2500.50")


def test_override_attacks_are_refused_and_change_nothing(open_desk: OpenDesk) -> None:
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    desk = open_desk(clock=clock)
    pipeline(desk, clock)
    desk.move_opportunity(ROOT, "op-2", "lost", reason="price")
    snapshot = stored(desk)
    with pytest.raises(NotAuthorizedError):  # another team's deal
        desk.set_forecast_category(ANN, "op-3", "commit", reason="trust me")
    with pytest.raises(NotAuthorizedError):  # a teammate's deal: only its owner or the manager
        desk.set_forecast_category(BOB, "op-0", "omitted", reason="not mine")
    with pytest.raises(NotAuthorizedError):  # a manager of another team
        desk.set_forecast_category(
            type(MIA)("wil", roles={"sales_manager"}, teams={"west"}),
            "op-0",
            "commit",
            reason="x",
        )
    with pytest.raises(ValidationError, match="reason"):
        desk.set_forecast_category(ANN, "op-0", "commit", reason="   ")
    with pytest.raises(InvalidTypeError, match="reason"):
        desk.set_forecast_category(ANN, "op-0", "commit", reason=None)
    with pytest.raises(ValidationError, match="category"):
        desk.set_forecast_category(ANN, "op-0", "closed", reason="already ours")
    with pytest.raises(ValidationError, match="category"):
        desk.set_forecast_category(ANN, "op-0", "maybe", reason="hmm")
    with pytest.raises(TransitionNotAllowedError):  # a lost deal has no category to choose
        desk.set_forecast_category(BOB, "op-2", "commit", reason="revive")
    with pytest.raises(InvalidTypeError):
        desk.set_forecast_category("ann", "op-0", "commit", reason="forged actor")
    assert stored(desk) == snapshot


def test_snapshot_once_per_day_and_reconstruction_equals_it(open_desk: OpenDesk) -> None:
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    desk = open_desk(clock=clock)
    pipeline(desk, clock)
    desk.set_forecast_category(ANN, "op-1", "best_case", reason="LOI")
    first = desk.snapshot_forecast(DAN)
    assert len(first.value.lines) == 5 and len(first.events) == 1
    clock.advance(hours=3)
    again = desk.snapshot_forecast(DAN)  # the same day: stored once, nothing written
    assert again.value == first.value and again.events == ()
    with desk.storage.transaction() as uow:
        assert uow.forecast_snapshots.count() == 1

    # Later days: stages move, a deal is won and one lost; nothing else changes.
    clock.advance(days=3)
    desk.move_opportunity(ROOT, "op-0", "won")
    desk.move_opportunity(ROOT, "op-2", "lost", reason="competitor")
    desk.move_opportunity(ROOT, "op-4", "needs_analysis")
    day = date(2026, 11, 2)
    rebuilt = desk.forecast_lines(day, reconstruct=True)
    assert sorted(rebuilt, key=lambda line: line.id) == sorted(
        first.value.lines, key=lambda line: line.id
    )
    # A reader sees only their lines, of the snapshot as of the reconstruction.
    assert {line.owner for line in desk.forecast_snapshot(day, actor=ANN).lines} == {"ann"}
    assert {line.owner for line in desk.forecast_lines(day, actor=MIA)} == {"ann", "bob"}

    # Movement from the snapshot to today reconciles per rep and overall, with reasons.
    today = clock().date()
    move = desk.forecast_movement(day, today, by="owner")
    for record in [*move.to_records(), *move.total_records()]:
        steps = sum((record[name] for name in move.record_columns()[3:-1]), Decimal(0))
        assert record["start"] + steps == record["end"]
    assert move.step("won") == Decimal("-700.00")
    assert move.lost_reasons() == {"competitor": (1, Decimal("0.00"))}
    pipeline_move = desk.forecast_movement(day, today, measure="pipeline", by="team")
    assert pipeline_move.step("won") == Decimal("-1000.00")
    assert pipeline_move.step("lost", "east") == Decimal("-800.00")


def test_snapshot_attacks(open_desk: OpenDesk) -> None:
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    desk = open_desk(clock=clock)
    pipeline(desk, clock)
    snapshot = stored(desk)
    with pytest.raises(NotAuthorizedError):
        desk.snapshot_forecast(ANN)
    with pytest.raises(ValidationError, match="as_of"):
        desk.snapshot_forecast(DAN, date(2026, 10, 1))  # the past cannot be seen as it was
    with pytest.raises(InvalidTypeError):
        desk.snapshot_forecast(DAN, datetime(2026, 11, 2, tzinfo=UTC))
    assert stored(desk) == snapshot
    taken = desk.snapshot_forecast(DAN).value
    # A stored snapshot is never edited.
    with desk.storage.transaction() as uow, pytest.raises(ValidationError):
        uow.forecast_snapshots.save(
            type(taken)(
                as_of=taken.as_of,
                taken_at=taken.taken_at,
                actor="root",
                threshold=taken.threshold,
                lines=taken.lines,
            )
        )
    desk.set_forecast_category(ANN, "op-0", "commit", reason="r")
    with desk.storage.transaction() as uow:  # the audit trail only grows
        found = uow.category_overrides.get("op-0")
        forged = CategoryOverride(
            opportunity_id="op-0",
            owner="ann",
            team="east",
            entries=(
                type(found.entries[0])(
                    category="best_case", reason="rewritten", actor="ann", at=found.entries[0].at
                ),
            ),
        )
        with pytest.raises(ValidationError, match="entries"):
            uow.category_overrides.save(forged)


def test_range_accuracy_and_calibration_read_scoped(open_desk: OpenDesk) -> None:
    clock = ManualClock(datetime(2026, 10, 1, 9, 0, tzinfo=UTC))
    desk = open_desk(clock=clock)
    pipeline(desk, clock)
    whole = desk.forecast_range(target=Money.of("3000", "CNY"))
    row = whole.row()
    assert row.method == "exact" and row.count == 5
    # mean = 1000*.7 + 2500.50*.5 + 800*.1 + 4000*.7 + 1200*.1
    assert row.mean == Decimal("4950.250")
    assert row.p10 <= row.p50 <= row.p90
    east = desk.forecast_range(actor=ANN).row()
    assert east.count == 2
    assert desk.forecast_range(period="2026-11", by="owner").row("wes").count == 1

    clock.advance(days=40)  # 2026-11-10
    desk.move_opportunity(ROOT, "op-0", "won")
    desk.move_opportunity(ROOT, "op-3", "lost", reason="price")
    accuracy = desk.forecast_accuracy(["2026-11"], lead_times=[25, 45])
    rows = {(r["lead_days"], r["owner"]): r for r in accuracy.to_records()}
    # 45 days before 30 Nov (16 Oct): ann's op-0 at 70 %, wes's op-3 at 70 %; nothing signed.
    assert rows[(45, "ann")]["forecast"] == Decimal("700.00")
    assert rows[(45, "wes")]["forecast"] == Decimal("2800.00")
    assert rows[(45, "wes")]["actual"] == Decimal("0")
    assert rows[(45, "wes")]["ape"] is None
    assert {r["owner"] for r in desk.forecast_accuracy(["2026-11"], actor=WES).to_records()} == {
        "wes"
    }
    calibration = desk.forecast_calibration(as_of=clock().date())
    assert calibration.closed == 2 and calibration.unscored == 0
    assert calibration.brier("plan") == Decimal("0.290000")  # (0.7-1)^2 and (0.7-0)^2, halved
    assert sum(r["count"] for r in calibration.to_records() if r["source"] == "plan") == 2


# -- the command line -------------------------------------------------------------------------


def test_cli_forecast_range_categories_and_accuracy(tmp_path: Any) -> None:
    import json

    from click.testing import CliRunner

    import salesflow
    from salesflow.cli import cli

    users = tmp_path / "users.toml"
    users.write_text(
        '[users.ann]\nroles = ["sales_rep"]\nteams = ["east"]\n'
        '[users.dan]\nroles = ["sales_director"]\n',
        encoding="utf-8",
    )
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    clock = ManualClock(datetime(2026, 10, 1, 9, 0, tzinfo=UTC))
    with salesflow.open(db, clock=clock, load_entrypoints=False) as desk:
        pipeline(desk, clock)
        clock.advance(days=40)
        desk.move_opportunity(ROOT, "op-3", "lost", reason="price")
    base = ["--db", db, "--users", str(users)]

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)

    spread = run("forecast", "--range", "--by", "team", "--target", "3000", "--format", "json")
    assert spread.exit_code == 0, spread.output
    rows = {r["team"]: r for r in json.loads(spread.output)}
    assert Decimal(rows["east"]["mean"]) == Decimal("2030.25")  # 700 + 1250.25 + 80
    assert rows["east"]["method"] == "exact"
    text = run("forecast", "--range", "--period", "2026-11", "--as", "ann").output
    assert "P10 / P50 / P90" in text
    cats = run("forecast", "--categories", "--as-of", "2026-11-10", "--format", "json")
    assert {r["owner"] for r in json.loads(cats.output)} >= {"ann", "bob"}
    assert "commit_forecast" in run("forecast", "--categories", "--as-of", "2026-11-10").output
    acc = run("accuracy", "--period", "2026-11", "--lead", "45", "--format", "json")
    assert acc.exit_code == 0, acc.output
    wes = [r for r in json.loads(acc.output) if r["owner"] == "wes"]
    assert wes[0]["forecast"] == "2800.00" and wes[0]["actual"] == "0"
    table = run("accuracy", "--period", "2026-11", "--calibration", "--as-of", "2026-11-10")
    assert "Bias per owner" in table.output and "Brier" in table.output
    assert run("accuracy").exit_code == 2  # a period is required


def test_the_forecasting_guide_example_runs() -> None:
    import re
    from pathlib import Path

    guide = Path(__file__).resolve().parent.parent / "docs" / "guide" / "forecasting.md"
    section = guide.read_text("utf-8").split("## Forecast truth", 1)[1]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:1]
    exec(compile(block, str(guide), "exec"), {})
