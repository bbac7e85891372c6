"""The approval engine's state machine, with every request stored in each builtin backend."""

from __future__ import annotations

from salesflow.adapters.sql.storage import SqlStorage
from salesflow.adapters.storage_memory import MemoryStorage
from salesflow.ports import Storage
from salesflow.testing.approval_machine import stored_approval_machine


def _drop(storage: Storage) -> None:
    assert isinstance(storage, SqlStorage)
    storage.destroy()
    storage.close()


TestMemoryApprovals = stored_approval_machine(MemoryStorage).TestCase
TestSqliteApprovals = stored_approval_machine(lambda: SqlStorage("sqlite://")).TestCase


def test_postgres_stores_approvals_faithfully(postgres_url: str) -> None:
    stored_approval_machine(lambda: SqlStorage(postgres_url), _drop).TestCase().runTest()


def test_mysql_stores_approvals_faithfully(mysql_url: str) -> None:
    stored_approval_machine(lambda: SqlStorage(mysql_url), _drop).TestCase().runTest()
