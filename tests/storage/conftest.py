"""Helpers for the storage tests (the database servers' fixtures are in tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest


@pytest.fixture
def race() -> Callable[[str, list[list[str]], str], list[str]]:
    """:func:`run_race`, for tests that start processes at the same time."""
    return run_race


def run_race(script: str, runs: list[list[str]], ready: str, timeout: float = 600) -> list[str]:
    """Run ``script`` once per argument list in ``runs``, at the same time: wait until every child
    has printed ``ready`` (it holds what it read), release them all together (every child gets its
    "go" before any is waited for), and return the last line each printed, in ``runs`` order. No
    sleeps: the children say when they are ready; a child hung for ``timeout`` seconds fails."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in runs
    ]
    outcomes = []
    try:
        for child in children:
            assert child.stdout is not None and child.stderr is not None
            line = child.stdout.readline().strip()
            if line != ready:
                child.kill()
                raise AssertionError(f"a child did not start: {line!r} {child.stderr.read()}")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            out, err = child.communicate(timeout=timeout)
            assert child.returncode == 0, err
            outcomes.append(out.strip())
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.communicate()
    return outcomes
