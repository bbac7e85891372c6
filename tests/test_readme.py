"""The README's set-up commands: CI runs the test command verbatim, the quickstart works (the
third, ``salesflow demo``, is tested in test_cli.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    setup = text.split("## In five lines")[0]
    blocks = re.findall(r"```bash\n(.*?)```", setup, flags=re.S)
    return [
        line for block in blocks for line in block.splitlines() if line and not line.startswith("#")
    ]


def test_the_readme_opens_with_exactly_three_setup_commands() -> None:
    commands = _commands()
    assert len(commands) == 3
    assert "examples/forecast_quickstart.py" in commands[0]
    assert "pytest" in commands[1]
    assert "'.[plot]'" in commands[2] and commands[2].endswith(".venv/bin/salesflow demo")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _commands()[1] in ci


def test_the_quickstart_prints_this_and_next_month_per_rep() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "forecast_quickstart.py"),
            "--as-of",
            "2026-11-26",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["rep", "2026-11", "2026-12"]
    # Each row ends "<this month> CNY <next month> CNY"; the sample has eight reps, each listed
    # even when nothing is expected, then the team row, which is the exact sum of the reps.
    rows = [line.split() for line in lines[2:11]]
    reps, team = rows[:-1], rows[-1]
    assert len(reps) == 8
    assert team[0] == "team"
    this_month = sum(Decimal(r[-4]) for r in reps)
    next_month = sum(Decimal(r[-2]) for r in reps)
    assert [str(this_month), str(next_month)] == [team[1], team[3]]
    assert this_month > 0
