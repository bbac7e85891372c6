"""examples/call_centre.py runs on a fresh clone and its figures are right."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from salesflow.domain.calls import Direction, Disposition

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "call_centre.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("call_centre_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs resolves the module of its classes
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_the_day_adds_up(example: ModuleType, tmp_path: Path) -> None:
    report = example.run(tmp_path, seed=7)
    assert (tmp_path / "Master.csv").is_file()
    # Every generated call was imported once, and the broken row was reported with its line.
    assert len(report.imported) == 60
    assert len({c.key for c in report.imported}) == 60
    (error,) = report.errors
    assert error.field == "columns"
    assert error.line == 31
    stats = report.stats
    assert stats.calls + stats.uncounted == len(report.imported)
    assert stats.calls == sum(1 for item in report.linked if item.call.contact_id is not None)
    groups = stats.groups
    assert set(groups) == {"ann", "bob", "cai"}
    assert sum(g.calls for g in groups.values()) == stats.team.calls
    assert sum(g.talk_seconds for g in groups.values()) == stats.team.talk_seconds
    assert stats.uncounted > 0, "calls to unknown numbers and internal calls exist but do not count"
    for task in report.created_tasks:
        source_call = next(i.call for i in report.linked if i.call.id == task.call_id)
        assert source_call.direction is Direction.INBOUND
        assert source_call.disposition is not Disposition.ANSWERED
        assert source_call.contact_id == task.contact_id
    (entry,) = report.library.entries
    featured = next(i.call for i in report.linked if i.call.id == entry.call_id)
    assert featured.answered and featured.recording == entry.recording
    assert featured.contact_id is not None
    assert report.library.audit[0].action == "featured"


def test_the_script_prints_stats_per_rep_with_the_uncounted_calls() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, check=True
    )
    out = result.stdout
    assert "skipped: Master.csv line 31: invalid columns" in out
    caption = re.search(r"Calls to known contacts: (\d+) counted, (\d+) uncounted", out)
    assert caption is not None
    counted, uncounted = int(caption[1]), int(caption[2])
    imported = int(re.search(r"Imported (\d+) calls", out)[1])  # type: ignore[index]
    assert counted + uncounted == imported == 60
    rows = {
        m[1]: [int(n) for n in m[2].split()[:2]]
        for m in re.finditer(r"^(ann|bob|cai|\(all\))\s+(\d+\s+\d+)", out, re.MULTILINE)
    }
    assert set(rows) == {"ann", "bob", "cai", "(all)"}
    assert rows["(all)"][0] == counted == sum(rows[r][0] for r in ("ann", "bob", "cai"))
    assert rows["(all)"][1] == sum(rows[r][1] for r in ("ann", "bob", "cai"))
    assert "Featured asterisk-csv:" in out
    again = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, check=True
    )
    assert again.stdout == out, "the example is seeded: same output every run"
