"""Run every benchmark of salesflow, one after another, and print their figures.

    python benchmarks/run_all.py                      # the sizes the issues name (minutes, ~3 GB)
    python benchmarks/run_all.py --quick              # a tenth of each size, to check they run
    python benchmarks/run_all.py --postgres postgresql://postgres@127.0.0.1:5432/test

Each script prints every figure as a ratio against a baseline measured in the same process; see the
script's own docstring for what the baseline is.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# script -> its full size (the issues' figures); --quick runs a tenth.
SCRIPTS: dict[str, int] = {
    "bench_foundation.py": 1_000_000,
    "bench_analytics.py": 1_000_000,
    "bench_storage.py": 1_000_000,
    "bench_quotes.py": 10_000,
    "bench_receivables.py": 100_000,
    "bench_calls.py": 100_000,
    "bench_agenda.py": 200_000,  # opportunities; five calls and a quarter task each
    "bench_cli.py": 1_000_000,
    "bench_forecast_truth.py": 100_000,  # range deals and opportunities with history (--full: 1M)
    "bench_reads.py": 2_000,  # PostgreSQL only: runs when --postgres is given
    "bench_columnar.py": 1_000_000,
    "bench_approvals.py": 2_000,  # decisions, each its own transaction
}


def main() -> int:
    """Run the scripts; return non-zero if any failed to run (a missed target is not a failure)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of each size")
    parser.add_argument(
        "--postgres", help="admin URL of a PostgreSQL server, for the storage figures"
    )
    parser.add_argument("--only", nargs="*", help="script names to run (default: all)")
    args = parser.parse_args()
    failed = []
    for script, size in SCRIPTS.items():
        if args.only and script not in args.only:
            continue
        if script == "bench_reads.py" and not args.postgres:
            continue
        command = [
            sys.executable,
            str(HERE / script),
            "--n",
            str(size // 10 if args.quick else size),
        ]
        with_pg = (
            "bench_storage.py",
            "bench_reads.py",
            "bench_agenda.py",
            "bench_forecast_truth.py",
            "bench_approvals.py",
        )
        if script in with_pg and args.postgres:
            command += ["--postgres", args.postgres]
        print(f"\n### {script}", flush=True)
        if subprocess.run(command, cwd=HERE.parent).returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
