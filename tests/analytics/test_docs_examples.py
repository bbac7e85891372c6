"""The README's five lines and the analytics guide's examples pass the plan wherever stages are read,
and the guide's new sections (your own rows, in a notebook) run as written (issue 13)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import salesflow

ROOT = Path(__file__).resolve().parent.parent.parent
GUIDE = ROOT / "docs" / "guide" / "analytics.md"
README = ROOT / "README.md"
CALCULATORS = (
    "forecast",
    "funnel",
    "stage_velocity",
    "learned_probabilities",
    "lost_reasons",
    "rep_industry_matrix",
    "signed_deals",
)


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("page", [README, GUIDE], ids=lambda p: p.name)
def test_every_call_on_a_pipeline_passes_the_plan(page: Path) -> None:
    calls = re.findall(
        rf"\b({'|'.join(CALCULATORS)})\((pipeline|rows|deals)\b([^)\n]*)", page.read_text()
    )
    assert calls
    for name, _rows, rest in calls:
        assert re.match(r"\s*,\s*(plan\b|plan=)", rest), f"{name}({_rows}{rest}: pass the plan"


def test_the_readme_five_lines_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = _blocks(_section(README.read_text(), "## In five lines"))
    monkeypatch.chdir(tmp_path)
    salesflow.write_opportunities(
        salesflow.generate_pipeline(120, seed=1, as_of=date(2026, 11, 26)),
        "pipeline.csv",
    )
    scope: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["fc"].count > 0


def test_the_guide_sections_on_rows_and_notebooks_run(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pandas")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = GUIDE.read_text()
    setup = _blocks(text)[0]
    scope: dict[str, Any] = {}
    for name, block in [
        ("setup", setup),
        *((f"rows {i}", b) for i, b in enumerate(_blocks(_section(text, "## Your own rows")))),
        *((f"notebook {i}", b) for i, b in enumerate(_blocks(_section(text, "## In a notebook")))),
    ]:
        exec(compile(block, f"analytics.md ({name})", "exec"), scope)
    assert scope["fc"].count > 0
    plt.close("all")
