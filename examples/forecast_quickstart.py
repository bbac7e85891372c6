"""What will the team sign this month and next? (requirements R1-R3)

Generates a realistic, seeded sample pipeline (so it runs on a fresh clone), then prints this
month's and next month's expected signing amount per rep, and the full forecast table.

    python examples/forecast_quickstart.py                  # as of today
    python examples/forecast_quickstart.py --as-of 2026-11-26 --size 500
"""

from __future__ import annotations

import argparse
from datetime import date

import salesflow


def main(argv: list[str] | None = None) -> None:
    """Run the quickstart."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--as-of", type=date.fromisoformat, default=date.today(), help="today's date"
    )
    parser.add_argument("--size", type=int, default=240, help="opportunities in the sample")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the sample")
    args = parser.parse_args(argv)

    # A pipeline of 8 reps in 2 teams, in the default stage plan (R1), dated around as_of.
    pipeline = salesflow.generate_pipeline(args.size, seed=args.seed, as_of=args.as_of)
    plan = salesflow.StagePlan.default()

    # R2 + R3: open opportunities at >= 70 % count, weighted by probability, bucketed by month.
    fc = salesflow.forecast(pipeline, plan, as_of=args.as_of, by="owner")
    this_month, next_month = fc.current_month, fc.current_month.next()
    table = fc.table()

    print(f"Expected signing amount per rep, as of {args.as_of} (threshold {fc.threshold}%)")
    print(f"{'rep':<12}{this_month.label:>16}{next_month.label:>16}")
    zero = salesflow.Money.zero("CNY")
    for rep in sorted({o.owner for o in pipeline}):
        cells = table.get(rep, {})
        print(f"{rep:<12}{cells.get(this_month, zero)!s:>16}{cells.get(next_month, zero)!s:>16}")
    print(f"{'team':<12}{fc.this_month!s:>16}{fc.next_month!s:>16}")
    print()
    print(f"Overdue (slipped before {this_month.label}): {fc.overdue}; undated: {fc.undated}")
    print()
    print(fc)


if __name__ == "__main__":
    main()
