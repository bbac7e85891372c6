"""Every builtin backend passes the conformance kit and agrees with the in-memory reference."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from salesflow.adapters.sql.storage import SqlStorage
from salesflow.adapters.storage_memory import MemoryStorage
from salesflow.ports import Storage
from salesflow.testing.storage import ManualClock, Reopen, StorageContract, storage_machine


def _drop(storage: Storage) -> None:
    assert isinstance(storage, SqlStorage)
    storage.destroy()
    storage.close()


class TestMemory(StorageContract):
    @pytest.fixture
    def storage(self, clock: ManualClock) -> Storage:
        return MemoryStorage(clock=clock)

    @pytest.fixture
    def reopen(self) -> Reopen | None:
        return None  # nothing survives the storage object


class TestSqlite(StorageContract):
    @pytest.fixture
    def storage(self, clock: ManualClock, tmp_path: Path) -> Iterator[Storage]:
        storage = SqlStorage(f"sqlite:///{tmp_path / 'sf.db'}", clock=clock)
        yield storage
        storage.close()

    @pytest.fixture
    def reopen(self, clock: ManualClock, tmp_path: Path) -> Reopen:
        return lambda storage: SqlStorage(f"sqlite:///{tmp_path / 'sf.db'}", clock=clock)


class TestPostgres(StorageContract):
    @pytest.fixture
    def storage(self, clock: ManualClock, postgres_url: str) -> Iterator[Storage]:
        storage = SqlStorage(postgres_url, clock=clock)
        yield storage
        _drop(storage)

    @pytest.fixture
    def reopen(self, clock: ManualClock, postgres_url: str) -> Reopen:
        return lambda storage: SqlStorage(postgres_url, clock=clock)


class TestMysql(StorageContract):
    @pytest.fixture
    def storage(self, clock: ManualClock, mysql_url: str) -> Iterator[Storage]:
        storage = SqlStorage(mysql_url, clock=clock)
        yield storage
        _drop(storage)

    @pytest.fixture
    def reopen(self, clock: ManualClock, mysql_url: str) -> Reopen:
        return lambda storage: SqlStorage(mysql_url, clock=clock)


TestSqliteMachine = storage_machine(lambda clock: SqlStorage("sqlite://", clock=clock)).TestCase


def test_postgres_agrees_with_the_reference(postgres_url: str) -> None:
    storage_machine(lambda clock: SqlStorage(postgres_url, clock=clock), _drop).TestCase().runTest()


def test_mysql_agrees_with_the_reference(mysql_url: str) -> None:
    storage_machine(lambda clock: SqlStorage(mysql_url, clock=clock), _drop).TestCase().runTest()
