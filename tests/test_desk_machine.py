"""Issue 11: random command histories by two teams cannot fool the desk, on every backend (see
:mod:`salesflow.testing.desk_machine` for the invariants)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

import salesflow
from salesflow.adapters.sql.storage import SqlStorage
from salesflow.desk import SalesDesk
from salesflow.testing.desk_machine import desk_machine
from salesflow.testing.storage import ManualClock


def _memory(clock: ManualClock) -> SalesDesk:
    return salesflow.open("memory://", clock=clock, load_entrypoints=False)


TestMemoryDesk = desk_machine(_memory, max_examples=100).TestCase


def _sqlite(clock: ManualClock) -> SalesDesk:
    folder = Path(tempfile.mkdtemp(prefix="sf-desk-"))
    return salesflow.open(f"sqlite:///{folder / 'desk.db'}", clock=clock, load_entrypoints=False)


def _remove_sqlite(desk: SalesDesk) -> None:
    desk.close()
    url = desk.storage.url
    shutil.rmtree(Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)


TestSqliteDesk = desk_machine(_sqlite, _remove_sqlite, max_examples=20).TestCase


def _server(url: str) -> type:
    def open_desk(clock: ManualClock) -> SalesDesk:
        # Every example gets tables of its own in this run's database, dropped afterwards.
        prefix = f"m{uuid.uuid4().hex[:8]}_"
        return salesflow.open(url, clock=clock, load_entrypoints=False, table_prefix=prefix)

    def drop(desk: SalesDesk) -> None:
        assert isinstance(desk.storage, SqlStorage)
        desk.storage.destroy()
        desk.close()

    return desk_machine(open_desk, drop, max_examples=10, stateful_step_count=25)


@pytest.mark.parametrize("server", ["postgres_url", "mysql_url"])
def test_the_desk_machine_on_a_database_server(request: pytest.FixtureRequest, server: str) -> None:
    url = request.getfixturevalue(server)
    _server(url).TestCase().runTest()
