"""Benchmark: funnel, distribution and rep_industry_matrix against hand-written loops.

Each calculator is timed over N seeded opportunities (40 owners) beside a plain loop that computes
the same figures (counts and amounts per cell) with dicts, in the same run; the ratio is the
calculator's overhead (target: at most 1.5x). Run ``python benchmarks/bench_analytics.py --n 50000``
for a quick look; the default is a million opportunities.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Report, best_time, parser

from salesflow.analytics.distribution import distribution
from salesflow.analytics.funnel import funnel
from salesflow.analytics.strengths import rep_industry_matrix
from salesflow.domain.opportunities import Opportunity
from salesflow.samples import generate_pipeline

TARGET = 1.5
ZERO = Decimal(0)


def hand_funnel(opportunities: list[Opportunity]) -> dict[tuple[str, str], list[Any]]:
    """Count and amount per (owner, stage), lost left out, as one would write it by hand."""
    cells: dict[tuple[str, str], list[Any]] = {}
    for o in opportunities:
        if o.stage == "lost":
            continue
        key = (o.owner, o.stage)
        cell = cells.get(key)
        if cell is None:
            cells[key] = [1, o.amount.amount]
        else:
            cell[0] += 1
            cell[1] += o.amount.amount
    return cells


def hand_distribution(opportunities: list[Opportunity]) -> dict[tuple[str, Any], list[Any]]:
    """Count and amount per (owner, industry)."""
    cells: dict[tuple[str, Any], list[Any]] = {}
    for o in opportunities:
        key = (o.owner, o.industry)
        cell = cells.get(key)
        if cell is None:
            cells[key] = [1, o.amount.amount]
        else:
            cell[0] += 1
            cell[1] += o.amount.amount
    return cells


def hand_matrix(opportunities: list[Opportunity]) -> dict[tuple[str, Any], list[Any]]:
    """Open, won, lost and won amount per (owner, industry)."""
    cells: dict[tuple[str, Any], list[Any]] = {}
    for o in opportunities:
        key = (o.owner, o.industry)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = [0, 0, 0, ZERO]
        stage = o.stage
        if stage == "won":
            cell[1] += 1
            cell[3] += o.amount.amount
        elif stage == "lost":
            cell[2] += 1
        else:
            cell[0] += 1
    return cells


def main() -> None:
    args = parser(__doc__ or "", 1_000_000).parse_args()
    print(f"generating {args.n:,} opportunities (seed 2026, 40 owners)...", flush=True)
    opportunities = generate_pipeline(args.n, owners=40, teams=4, with_history=False)
    report = Report(f"analytics over {args.n:,} opportunities (best of {args.repeat})")

    ours, result = best_time(lambda: funnel(opportunities), args.repeat)
    base, cells = best_time(lambda: hand_funnel(opportunities), args.repeat)
    assert result.total() == sum(c[0] for c in cells.values())
    report.ratio("funnel vs hand loop", ours, base, TARGET)

    ours, result = best_time(lambda: distribution(opportunities), args.repeat)
    base, cells = best_time(lambda: hand_distribution(opportunities), args.repeat)
    assert result.total() == sum(c[0] for c in cells.values())
    report.ratio("distribution vs hand loop", ours, base, TARGET)

    ours, result = best_time(lambda: rep_industry_matrix(opportunities), args.repeat)
    base, cells = best_time(lambda: hand_matrix(opportunities), args.repeat)
    assert sum(c.won for c in result) == sum(c[1] for c in cells.values())
    report.ratio("rep_industry_matrix vs hand loop", ours, base, TARGET)
    report.print()


if __name__ == "__main__":
    main()
