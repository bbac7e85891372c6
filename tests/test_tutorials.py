"""The tutorials run (issue 13, item 7): each page of docs/tutorials/ is a program.

The ```python blocks of a page run in order, in one namespace, in a fresh temporary directory, as a
reader pasting them into one session would run them. Their data comes from salesflow's own seeded
samples, so they run on a fresh clone. Entry-point plugins are not loaded (another installed
plugin must not change what a tutorial shows).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "docs" / "tutorials"
PAGES = sorted(TUTORIALS.glob("*.md"))
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)


def blocks(page: Path) -> list[str]:
    """The ```python blocks of ``page``, in order."""
    return _BLOCK.findall(page.read_text(encoding="utf-8"))


def test_there_is_a_tutorial_per_user() -> None:
    assert [page.stem for page in PAGES] == ["embedding", "notebook", "plugins"]
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert "tutorials/" in index


@pytest.mark.parametrize("page", PAGES, ids=[page.stem for page in PAGES])
def test_the_tutorial_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SALESFLOW_DISABLE_PLUGIN_AUTOLOAD", "1")
    code = blocks(page)
    assert code, f"{page.name} has no python blocks"
    namespace: dict[str, object] = {"__name__": f"tutorial_{page.stem}"}
    for number, block in enumerate(code, start=1):
        compiled = compile(block, f"{page.name} (python block {number})", "exec")
        exec(compiled, namespace)
