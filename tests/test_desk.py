"""SalesDesk: commands in one unit of work, authorization, events, imports, embedding."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import salesflow
from salesflow import Actor, Money, Opportunity
from salesflow.adapters.sql.storage import SqlStorage
from salesflow.errors import (
    ConcurrencyError,
    NotAuthorizedError,
    StageError,
    ValidationError,
)
from salesflow.testing.storage import ManualClock

ROOT = Path(__file__).resolve().parent.parent
ADMIN = Actor("root", roles={"admin"})
ANN = Actor("ann", roles={"sales_rep"}, teams={"east"})


def opp(i: int, owner: str = "ann", stage: str = "quotation", amount: str = "100") -> Opportunity:
    return Opportunity(
        id=f"op-{i}",
        owner=owner,
        team="east",
        amount=Money.of(amount, "CNY"),
        stage=stage,
        expected_close=date(2026, 12, 1),
    )


@pytest.fixture(params=["memory", "sqlite"])
def desk(request: pytest.FixtureRequest, tmp_path: Path) -> salesflow.SalesDesk:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"
    clock = ManualClock(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    return salesflow.open(url, clock=clock, load_entrypoints=False)


def test_add_update_move_record_events(desk: salesflow.SalesDesk) -> None:
    created = desk.add_opportunity(ANN, opp(1))
    assert created.value.version == 1
    assert [e.name for e in created.events] == ["opportunity_created"]
    updated = desk.update_opportunity(ANN, created.value.evolve(amount=Money.of("250", "CNY")))
    assert updated.value.version == 2
    assert updated.events[0].data == {"changed": ["amount"]}
    moved = desk.move_opportunity(ANN, "op-1", "won", version=2)
    assert moved.value.stage == "won"
    assert moved.value.history[-1].at == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert moved.events[0].data == {"from": "quotation", "to": "won"}
    log = desk.events(subject_id="op-1")
    assert [e.name for e in log] == [
        "opportunity_created",
        "opportunity_updated",
        "opportunity_moved",
    ]
    assert all(e.actor == "ann" for e in log)


def test_commands_refuse_bad_input_and_change_nothing(desk: salesflow.SalesDesk) -> None:
    desk.add_opportunity(ANN, opp(1))
    with pytest.raises(StageError):
        desk.add_opportunity(ANN, opp(2, stage="signed"))
    with pytest.raises(StageError):
        desk.move_opportunity(ANN, "op-1", "signed")
    with pytest.raises(ValidationError, match="move_opportunity"):
        desk.update_opportunity(ANN, desk.opportunity("op-1").move_to("won", date(2026, 11, 20)))
    with pytest.raises(ConcurrencyError):
        desk.move_opportunity(ANN, "op-1", "won", version=5)
    with pytest.raises(NotAuthorizedError):
        desk.move_opportunity(Actor("bob", roles={"sales_rep"}), "op-1", "won")
    with pytest.raises(NotAuthorizedError):
        desk.update_opportunity(ANN, desk.opportunity("op-1").evolve(owner="bob"))
    with pytest.raises(salesflow.errors.InvalidTypeError):
        desk.add_opportunity("ann", opp(3))  # type: ignore[arg-type]
    assert desk.opportunity("op-1") == opp(1).evolve(version=1, created=desk.today())
    assert [e.name for e in desk.events()] == ["opportunity_created"]


def test_import_streams_a_csv_in_one_unit_of_work(
    desk: salesflow.SalesDesk, tmp_path: Path
) -> None:
    pipeline = salesflow.generate_pipeline(120, with_history=False)
    path = tmp_path / "pipeline.csv"
    salesflow.write_opportunities(pipeline, path)
    result = desk.import_opportunities(ADMIN, path, batch_size=25)
    assert result.value == 120
    assert result.events[0].data["count"] == 120
    assert desk.opportunities() == [
        o.evolve(version=1) for o in sorted(pipeline, key=lambda o: o.id)
    ]
    fc = desk.forecast(as_of=date(2026, 11, 26))
    assert fc.to_records() == salesflow.forecast(pipeline, as_of=date(2026, 11, 26)).to_records()


def test_funnel_over_what_is_stored(desk: salesflow.SalesDesk) -> None:
    pipeline = salesflow.generate_pipeline(80, with_history=False)
    for o in pipeline:
        desk.add_opportunity(ADMIN, o)
    stored = desk.funnel(by="team")
    pure = salesflow.funnel(pipeline, by="team")
    assert stored.to_records() == pure.to_records()
    east = desk.funnel(by=(), owner=pipeline[0].owner)
    assert (
        east.to_records()
        == salesflow.funnel(
            [o for o in pipeline if o.owner == pipeline[0].owner], by=()
        ).to_records()
    )


def test_an_import_with_a_bad_row_in_the_middle_stores_nothing(desk: salesflow.SalesDesk) -> None:
    rows = ["id,owner,amount,currency,stage"] + [
        f"op-{i},ann,{i},CNY,quotation" for i in range(100)
    ]
    rows[60] = "op-59,ann,NaN,CNY,quotation"
    with pytest.raises(ValidationError, match=r"^line 61: invalid amount"):
        desk.import_opportunities(ADMIN, io.StringIO("\n".join(rows)), batch_size=10)
    assert desk.opportunities() == []
    assert desk.events() == []


def test_an_import_of_records_the_actor_may_not_create_stores_nothing(
    desk: salesflow.SalesDesk,
) -> None:
    text_ = "id,owner,amount,currency,stage\nop-1,ann,1,CNY,won\nop-2,bob,1,CNY,won\n"
    with pytest.raises(NotAuthorizedError):
        desk.import_opportunities(ANN, io.StringIO(text_))
    assert desk.opportunities() == []


def test_the_default_storage_is_a_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with salesflow.open(load_entrypoints=False) as desk:
        desk.add_opportunity(ADMIN, opp(1))
    assert (tmp_path / "salesflow.db").is_file()
    with salesflow.open(load_entrypoints=False) as desk:
        assert desk.opportunity("op-1").version == 1


def test_a_naive_clock_is_refused() -> None:
    desk = salesflow.open("memory://", clock=lambda: datetime(2026, 1, 1), load_entrypoints=False)
    with pytest.raises(ValidationError, match="clock"):
        desk.add_opportunity(ADMIN, opp(1))
    assert desk.opportunities() == []


# -- embedding: salesflow inside the CRM's own database and transactions ------------------------------


def test_storage_shares_an_existing_engine(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE crm_users (id TEXT PRIMARY KEY)"))
    desk = salesflow.SalesDesk(SqlStorage(engine, table_prefix="sf_"))
    desk.add_opportunity(ADMIN, opp(1))
    with engine.connect() as conn:
        tables = {
            row[0]
            for row in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
        }
    assert {"crm_users", "sf_opportunities", "sf_events", "sf_meta"} <= tables
    desk.close()
    assert desk.opportunity("op-1").version == 1  # the engine belongs to the CRM: still usable


def test_a_unit_of_work_joins_the_crms_transaction(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    SqlStorage(engine).close()  # create the schema
    seen: list[str] = []

    class Recorder:
        @salesflow.hookimpl
        def salesflow_handle_event(self, event: salesflow.Event) -> None:
            seen.append(event.subject_id)

    manager = salesflow.get_plugin_manager(load_entrypoints=False, plugins=[Recorder()])
    with engine.connect() as conn:
        desk = salesflow.SalesDesk(SqlStorage(conn), plugin_manager=manager)
        with conn.begin() as outer:
            conn.execute(text("CREATE TABLE crm_audit (note TEXT)"))
            desk.add_opportunity(ADMIN, opp(1))
            assert seen == []  # not before the CRM commits
            outer.rollback()
        assert seen == []
        assert desk.opportunities() == []
        with conn.begin():
            desk.add_opportunity(ADMIN, opp(2))
        assert seen == ["op-2"]
        assert [o.id for o in desk.opportunities()] == ["op-2"]


# -- the example plugin package --------------------------------------------------------------------


def test_the_example_plugin_installs_and_receives_events(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(ROOT / "examples" / "plugin_example"),
        ],
        check=True,
        capture_output=True,
    )
    log = tmp_path / "events.jsonl"
    script = (
        "import salesflow, datetime\n"
        "desk = salesflow.open('memory://')\n"
        "assert desk.plugins.has_plugin('jsonl-events')\n"
        "o = salesflow.Opportunity(id='op-1', owner='ann', amount=salesflow.Money.of('5', 'CNY'), stage='quotation')\n"
        "desk.add_opportunity(salesflow.Actor('root', roles={'admin'}), o)\n"
        "desk.move_opportunity(salesflow.Actor('root', roles={'admin'}), 'op-1', 'won')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target), "SALESFLOW_EVENTS_FILE": str(log)}
    env.pop("SALESFLOW_DISABLE_PLUGIN_AUTOLOAD", None)
    subprocess.run([sys.executable, "-c", script], check=True, env=env, capture_output=True)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["name"], r["subject_id"], r["storage"]) for r in lines] == [
        ("opportunity_created", "op-1", "memory://"),
        ("opportunity_moved", "op-1", "memory://"),
    ]
    assert lines[1]["data"] == {"from": "quotation", "to": "won"}
