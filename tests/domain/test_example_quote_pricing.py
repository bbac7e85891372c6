"""examples/quote_pricing.py runs on a fresh clone and prints a price a person can follow."""

from __future__ import annotations

import contextlib
import io
import re
import runpy
from decimal import Decimal
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quote_pricing.py"


@pytest.fixture(scope="module")
def output() -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    return buffer.getvalue()


def _rows(output: str) -> list[list[str]]:
    """The explanation's rows (the lines', then the quote's totals below a rule), split on runs of
    two or more spaces."""
    table = output.split("\n\n", 1)[0].splitlines()[3:]
    return [re.split(r"\s{2,}", row.strip()) for row in table if not row.startswith("-----")]


def _amount(cell: str) -> Decimal:
    value, currency = cell.split()
    assert currency == "CNY"
    return Decimal(value.replace(",", ""))  # thousands are grouped for reading


def test_every_line_is_explained_step_by_step(output: str) -> None:
    assert output.startswith("Quote Q-2026-0042 version 6 (CNY)")
    rows = _rows(output)
    steps: dict[str, list[str]] = {}
    for row in rows:
        steps.setdefault(row[0], []).append(row[2] if row[0] != "quote" else row[1])
    assert list(steps) == ["L1", "L2", "L3.1", "L3.2", "L3.3", "quote"]
    tail = ["line discount", "rounding", "document discount", "tax"]
    assert steps["L1"] == ["list price", "volume tier", *tail]  # range tier
    assert steps["L2"] == ["list price", "volume tier", *tail]  # slab tier
    for component in ("L3.1", "L3.2", "L3.3"):
        assert steps[component] == ["list price", "bundle price", *tail]
    text = "\n".join("  ".join(r) for r in rows)
    assert "range: 12 units reach the tier from 10: 12 x 5700.00" in text
    assert "slab: 4 x 899.00 + 3 x 849.00 (from unit 5)" in text


def test_the_printed_lines_add_up_to_the_printed_totals(output: str) -> None:
    rows = [r for r in _rows(output) if r[0] != "quote"]
    nets = [_amount(r[-1]) for r in rows if r[2] == "document discount"]
    taxes = [_amount(r[-2]) for r in rows if r[2] == "tax"]
    kit = [_amount(r[-1]) for r in rows if r[0].startswith("L3.") and r[2] == "bundle price"]
    assert sum(kit) == Decimal("2000.00")  # two kits at 1000.00, split exactly
    match = re.search(r"net (\S+) CNY  tax (\S+) CNY  total (\S+) CNY", output)
    assert match is not None
    net, tax, total = (Decimal(g) for g in match.groups())
    assert sum(nets) == net
    assert sum(taxes) == tax
    assert net + tax == total
    for cell in [*nets, *taxes]:
        assert cell == cell.quantize(Decimal("0.01"))
    assert re.search(r"content hash [0-9a-f]{64}\n", output)


def test_the_rep_needs_her_manager_because_of_the_document_discount(output: str) -> None:
    verdicts = output.split("Discount policy verdicts\n", 1)[1]
    rep, manager = verdicts.split("\nbo ", 1)
    assert "ann (sales_rep): within authority: no; required role: sales_manager" in rep
    assert "average discount 10.46% exceeds the sales_rep limit of 10.00%" in rep
    assert "line L" not in rep  # every line is within her own limit
    assert manager.startswith("(sales_manager): within authority: yes")
    assert (
        "Submitted by ann: needs_approval, waiting for sales_manager "
        "(quote is pending_approval, version 6)"
    ) in output
