"""The example storage plugin (examples/storage_plugin_example, a JSON-file backend on
``salesflow.storage.BaseStorage``) installs with pip, registers its URL scheme through its entry
point, and passes the conformance kit like every builtin backend."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

from salesflow.domain.approvals import ApprovalRequest, Decision, Workflow
from salesflow.errors import ValidationError
from salesflow.ports import Storage
from salesflow.testing.storage import ManualClock, Reopen, StorageContract, storage_machine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "storage_plugin_example"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed with pip into a folder of its own (not on this process's path, so that
    its entry point does not reach the other tests' plugin managers)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            target,
            EXAMPLE,
        ],
        check=True,
        capture_output=True,
    )
    return target


@pytest.fixture(scope="module")
def jsonfile(installed: Path) -> ModuleType:
    """The installed ``salesflow_jsonfile`` module."""
    spec = importlib.util.spec_from_file_location(
        "salesflow_jsonfile", installed / "salesflow_jsonfile" / "__init__.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestJsonFile(StorageContract):
    @pytest.fixture
    def storage(
        self, clock: ManualClock, tmp_path: Path, jsonfile: ModuleType
    ) -> Iterator[Storage]:
        storage: Storage = jsonfile.JsonFileStorage(
            f"jsonfile://{tmp_path / 'sf.json'}", clock=clock
        )
        yield storage
        storage.destroy()
        storage.close()

    @pytest.fixture
    def reopen(self, clock: ManualClock, jsonfile: ModuleType) -> Reopen:
        return lambda storage: jsonfile.JsonFileStorage(storage.url, clock=clock)


def test_it_agrees_with_the_reference(jsonfile: ModuleType, tmp_path: Path) -> None:
    files = iter(range(10**6))

    def open_storage(clock: ManualClock) -> Any:
        return jsonfile.JsonFileStorage(
            f"jsonfile://{tmp_path / f'{next(files)}.json'}", clock=clock
        )

    def cleanup(storage: Any) -> None:
        storage.destroy()
        storage.close()

    storage_machine(open_storage, cleanup).TestCase().runTest()


def test_the_base_class_gives_it_the_ports_invariants(jsonfile: ModuleType, tmp_path: Path) -> None:
    storage = jsonfile.JsonFileStorage(f"jsonfile://{tmp_path / 'sf.json'}")
    assert storage.capabilities == frozenset()
    draft = ApprovalRequest(
        id="quote:Q", subject_id="Q", subject_kind="quote", workflow=Workflow.one_step("finance")
    )
    forged = attrs.evolve(
        draft,
        decisions=(
            Decision(step="finance_review", role="finance", actor="x", at="2026-11-02T09:00+00:00"),
        ),
    )
    with pytest.raises(ValidationError) as refused, storage.transaction() as uow:
        uow.approvals.add(forged)
    assert refused.value.field == "audit"
    with storage.transaction() as uow:
        uow.approvals.add(draft)
    with pytest.raises(ValidationError) as refused, storage.transaction() as uow:
        uow.approvals.save(attrs.evolve(uow.approvals.get("quote:Q"), decisions=forged.decisions))
    assert refused.value.field == "audit"
    with storage.transaction() as uow:
        assert uow.approvals.get("quote:Q") == draft
    storage.destroy()
    storage.close()


def test_it_is_opened_by_url_through_its_entry_point_and_persists(
    installed: Path, tmp_path: Path
) -> None:
    url = f"jsonfile://{tmp_path / 'crm.json'}"
    script = textwrap.dedent(
        """
        import sys
        import salesflow

        desk = salesflow.open(sys.argv[1])
        root = salesflow.Actor("root", roles={"admin"})
        if sys.argv[2] == "write":
            o = salesflow.Opportunity(
                id="op-1", owner="ann", amount=salesflow.Money.of("5.10", "CNY"), stage="quotation"
            )
            desk.add_opportunity(root, o)
            desk.move_opportunity(root, "op-1", "won")
        print(type(desk.storage).__name__, [(o.id, o.stage, str(o.amount)) for o in desk.opportunities()],
              [e.name for e in desk.events()])
        """
    )
    env = {**os.environ, "PYTHONPATH": str(installed)}
    env.pop("SALESFLOW_DISABLE_PLUGIN_AUTOLOAD", None)
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script, url, step],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        ).stdout.strip()
        for step in ("write", "read")
    ]
    expected = (
        "JsonFileStorage [('op-1', 'won', '5.10 CNY')] ['opportunity_created', 'opportunity_moved']"
    )
    assert outputs == [expected, expected]
