"""The example notebook (examples/notebook.ipynb) runs from top to bottom on the Maven CRM data, in a
kernel of this very Python (the venv's), and every chart and table it shows is there."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"
PROBE = "import sys, salesflow\nprint(sys.executable)\nprint(salesflow.__file__)"


# jupyter_core warns about its own path migration when imported: not ours to fix.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_notebook_runs_on_the_maven_data(maven: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat")
    nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient")
    pytest.importorskip("ipykernel", reason="the test extra installs ipykernel")
    pytest.importorskip("matplotlib", reason="the test extra installs matplotlib")
    # The kernel is started from this process, so it inherits these.
    monkeypatch.setenv("SALESFLOW_DATA_DIR", str(maven.parent))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, when one fails

    *code, probe = [cell for cell in notebook.cells if cell.cell_type == "code"]
    # The kernel ran this Python (the venv's) and imported the same salesflow.
    executable, module = "".join(o.get("text", "") for o in probe.outputs).split()
    assert Path(executable).resolve() == Path(sys.executable).resolve()
    import salesflow

    assert Path(module).resolve() == Path(salesflow.__file__).resolve()
    # Results render as styled HTML tables, and every .plot() left a chart.
    shown = [o["data"] for cell in code for o in cell.outputs if "data" in o]
    assert sum('<table class="salesflow"' in d.get("text/html", "") for d in shown) >= 6
    charts = [cell for cell in code if ".plot()" in cell.source]
    assert len(charts) >= 4
    for cell in charts:
        assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source
