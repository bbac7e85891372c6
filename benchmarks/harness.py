"""What every benchmark script shares: best-of-N timing, peak memory, and ratio reporting.

Each figure is printed as a ratio against a baseline measured in the same process and run, so the
numbers compare like with like on whatever machine runs them. Nothing here asserts: a figure that
misses its target is printed with ``MISSED`` and the script goes on.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

__all__ = ["Report", "best_time", "parser", "traced_peak"]


def best_time(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """The fastest of ``repeat`` runs of ``fn`` (seconds) and the last result.

    The garbage collector runs before each run and is off during it, so that a collection
    triggered by an earlier run's garbage does not land in this one's time.
    """
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            result = fn()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best, result


def traced_peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes allocated by ``fn`` and still alive at its end (tracemalloc), and its result."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = fn()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, result


def parser(description: str, default_n: int) -> argparse.ArgumentParser:
    """An argument parser with ``--n`` (problem size) and ``--repeat``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--n", type=int, default=default_n, help=f"problem size (default {default_n:,})")
    p.add_argument("--repeat", type=int, default=3, help="timing runs; the best counts (default 3)")
    return p


class Report:
    """Collects figures and prints them as a table: ours, baseline, ratio, target."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[tuple[str, str, str, str, str]] = []

    def ratio(
        self, name: str, ours: float, baseline: float, target: float | None = None, unit: str = "s"
    ) -> float:
        """Record ``ours / baseline`` (lower is better) against an optional ``target``."""
        value = ours / baseline if baseline else float("inf")
        verdict = "" if target is None else ("ok" if value <= target else "MISSED")
        goal = "" if target is None else f"<= {target:g} {verdict}"
        self.rows.append((name, _fmt(ours, unit), _fmt(baseline, unit), f"{value:.2f}x", goal))
        print(
            f"  {name}: {_fmt(ours, unit)} vs {_fmt(baseline, unit)} = {value:.2f}x {goal}",
            flush=True,
        )
        return value

    def figure(self, name: str, value: str, note: str = "") -> None:
        """Record a plain figure (a rate, a size) with a note."""
        self.rows.append((name, value, "", "", note))
        print(f"  {name}: {value} {note}", flush=True)

    def print(self) -> None:
        """Print the collected figures as a table."""
        headers = ("figure", "salesflow", "baseline", "ratio", "target")
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) for i, h in enumerate(headers)]
        print(f"\n== {self.title}")
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for row in self.rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 10 else f"{value:.2f} s"
    if unit == "B":
        return f"{value:,.0f} B"
    return f"{value:,.2f} {unit}"
