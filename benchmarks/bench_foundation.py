"""Foundation figures (issue 2): forecast speed, Opportunity construction and memory, import time.

    python benchmarks/bench_foundation.py            # 1,000,000 opportunities, 40 owners, 12 months
    python benchmarks/bench_foundation.py --n 100000

Baselines, measured in the same run:
* forecast(): a hand-written loop over the same Opportunity objects doing the same sums
  (probability lookup, per-opportunity half-up rounding, month and owner buckets, overdue);
* construction and memory: a bare ``attrs.frozen`` class with the same fields, built from the same
  field values (the same Money, date and str objects), with no validation;
* import: ``python -X importtime -c "import salesflow"`` against the interpreter alone.
"""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import attrs
from harness import Report, best_time, parser, traced_peak

from salesflow import Money, Opportunity, StagePlan, forecast

AS_OF = date(2026, 11, 26)


@attrs.frozen(kw_only=True)
class BareOpportunity:
    """The same fields as Opportunity, without validation."""

    id: str
    owner: str
    amount: Money
    stage: str
    name: str | None = None
    account: str | None = None
    team: str | None = None
    industry: str | None = None
    region: str | None = None
    expected_close: date | None = None
    created: date | None = None
    history: tuple[Any, ...] = ()
    version: int = 0


def field_values(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """n rows of field values: 40 owners, 12 months of expected closes, unique ids and names."""
    rng = random.Random(seed)
    stages = StagePlan.default().keys
    owners = [f"owner-{i:02d}" for i in range(40)]
    teams = [f"team-{i}" for i in range(4)]
    industries = ["retail", "energy", "finance", "software", "logistics"]
    months = [(2026 + (10 + m) // 12, (10 + m) % 12 + 1) for m in range(12)]  # Nov 2026 ..
    rows = []
    for i in range(n):
        year, month = months[rng.randrange(12)]
        owner = rng.randrange(40)
        rows.append(
            {
                "id": f"OPP-{i:08d}",
                "name": f"Deal {i} with account {rng.randrange(100_000)}",
                "owner": owners[owner],
                "team": teams[owner % 4],
                "industry": industries[rng.randrange(5)],
                "amount": Money(Decimal(rng.randrange(100_000, 100_000_000)) / 100, "CNY"),
                "stage": stages[rng.randrange(len(stages))],
                "expected_close": date(year, month, rng.randrange(1, 29)),
            }
        )
    return rows


def hand_forecast(opportunities: list[Opportunity]) -> dict[tuple[int, str], Decimal]:
    """The forecast's sums, written by hand for one plan and one currency."""
    plan = StagePlan.default()
    factors = {s.key: s.probability / 100 for s in plan.forecast_stages()}
    cent = Decimal("0.01")
    current = AS_OF.year * 12 + AS_OF.month - 1
    sums: dict[tuple[int, str], Decimal] = {}
    for o in opportunities:
        factor = factors.get(o.stage)
        if factor is None:
            continue
        value = (o.amount.amount * factor).quantize(cent, ROUND_HALF_UP)
        close = o.expected_close
        month = -2 if close is None else close.year * 12 + close.month - 1
        if 0 <= month < current:
            month = -1
        key = (month, o.owner)
        sums[key] = sums.get(key, Decimal(0)) + value
    return sums


def import_ms(code: str, runs: int = 5) -> float:
    """Milliseconds of imports that ``code`` adds to a bare interpreter start (-X importtime,
    top-level cumulative times, best of ``runs``)."""

    def total(source: str) -> float:
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", source],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        micros = 0
        for line in err.splitlines():
            parts = line.split("|")
            # Top-level entries have a single space before the name; nested ones are indented.
            if (
                line.startswith("import time:")
                and len(parts) == 3
                and parts[1].strip().isdigit()
                and not parts[2].startswith("  ")
            ):
                micros += int(parts[1])
        return micros / 1000

    return min(total(code) for _ in range(runs)) - min(total("pass") for _ in range(runs))


def main() -> None:
    """Run every figure and print the report."""
    args = parser(__doc__.splitlines()[0], 1_000_000).parse_args()
    report = Report(f"foundation, n={args.n:,}")
    rows = field_values(args.n)

    bare_time, _ = best_time(lambda: [BareOpportunity(**r) for r in rows], args.repeat)
    ours_time, opportunities = best_time(lambda: [Opportunity(**r) for r in rows], args.repeat)
    report.ratio("build validated Opportunity vs bare attrs", ours_time, bare_time, 2.0)

    bare_bytes, bare_objects = traced_peak(lambda: [BareOpportunity(**r) for r in rows])
    del bare_objects
    ours_bytes, ours_objects = traced_peak(lambda: [Opportunity(**r) for r in rows])
    del ours_objects
    report.ratio(
        "bytes per Opportunity vs bare attrs", ours_bytes / args.n, bare_bytes / args.n, 1.2, "B"
    )
    # The same, counting the field values too (as a fresh import of a CSV would allocate them).
    whole_bytes, whole = traced_peak(lambda: [Opportunity(**r) for r in field_values(args.n)])
    del whole
    report.figure(
        "bytes per Opportunity with its own field values", f"{whole_bytes / args.n:,.0f} B"
    )

    hand_time, hand = best_time(lambda: hand_forecast(opportunities), args.repeat)
    ours_time, fc = best_time(lambda: forecast(opportunities, as_of=AS_OF), args.repeat)
    assert sum(hand.values()) == fc.total.amount, "forecast and hand loop disagree"
    report.ratio("forecast() vs hand-written loop", ours_time, hand_time, 1.5)
    fc_bytes, _ = traced_peak(lambda: forecast(opportunities, as_of=AS_OF))
    report.figure(
        "memory kept by forecast()", f"{fc_bytes:,} B", f"({len(fc.to_records())} buckets)"
    )

    plain = import_ms("import salesflow")
    report.figure("import salesflow (-X importtime)", f"{plain:.1f} ms", "target < 150 ms")
    used = import_ms("import salesflow; salesflow.forecast; salesflow.Opportunity; salesflow.Money")
    report.figure(
        "import + first use of forecast, Opportunity, Money",
        f"{used:.1f} ms",
        "lazy names load here",
    )
    report.print()


if __name__ == "__main__":
    main()
