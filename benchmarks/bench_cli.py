"""The `salesflow` command on a large CSV (issue 13): import into SQLite, then the forecast.

    python benchmarks/bench_cli.py --n 1000000

Baseline, in the same run: pandas ``read_csv`` plus a ``groupby`` computing the same forecast
(per owner and expected-close month, stages of 70 % and more, each opportunity's weighted amount
rounded half up to the cent in integer arithmetic); the totals are asserted equal to the cent.
Both commands run as subprocesses of the installed `salesflow` script, so the figures include
its start-up. The progress bar's cost is the import with ``--progress`` against ``--no-progress``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

from harness import Report, best_time, parser

import salesflow
from salesflow.domain.stages import StagePlan

AS_OF = date(2026, 11, 26)
USERS = '[users.root]\nroles = ["admin"]\n'


def _salesflow() -> str:
    found = shutil.which("salesflow", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("the salesflow command is not installed in this environment")
    return found


def _run(*args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return elapsed, done.stdout


def _import(folder: Path, csv: Path, progress: bool) -> tuple[float, str]:
    db = folder / f"import-{progress}.db"
    db.unlink(missing_ok=True)
    command = _salesflow()
    url = f"sqlite:///{db}"
    flag = "--progress" if progress else "--no-progress"
    users = str(folder / "users.toml")
    seconds, _ = _run(
        command, "--db", url, "--users", users, "import", "opportunities", str(csv),
        "--as", "root", flag,
    )  # fmt: skip
    return seconds, url


def _pandas_forecast(csv: Path) -> dict[tuple[str, str], int]:
    import pandas as pd

    plan = StagePlan.default()
    frame = pd.read_csv(csv, usecols=["owner", "amount", "stage", "expected_close"])
    probability = {s.key: int(s.probability) for s in plan.stages if s.is_open}
    frame["p"] = frame["stage"].map(probability)
    counted = frame[frame["p"] >= 70].copy()
    cents = (counted["amount"].astype(str).map(Decimal) * 100).astype("int64")
    counted["weighted"] = (cents * counted["p"] + 50) // 100  # half up, in whole cents
    counted["month"] = counted["expected_close"].str.slice(0, 7)
    sums = counted.groupby(["owner", "month"])["weighted"].sum()
    return {(str(owner), str(month)): int(v) for (owner, month), v in sums.items()}


def main() -> None:
    args = parser(__doc__.splitlines()[0], 1_000_000).parse_args()
    report = Report(f"salesflow command, {args.n:,} opportunities")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "users.toml").write_text(USERS, encoding="utf-8")
        csv = folder / "pipeline.csv"
        pipeline = salesflow.generate_pipeline(args.n, as_of=AS_OF, with_history=False, months=3)
        salesflow.write_opportunities(pipeline, csv)
        del pipeline

        pandas_seconds, expected = best_time(lambda: _pandas_forecast(csv), args.repeat)

        plain, url = _import(folder, csv, progress=False)
        with_bar, _ = _import(folder, csv, progress=True)
        forecast_seconds, out = _run(
            _salesflow(), "--db", url, "forecast", "--as-of", AS_OF.isoformat(), "--format", "csv"
        )
        desk = salesflow.open(url, load_entrypoints=False)
        try:
            table = desk.forecast(as_of=AS_OF).table()
        finally:
            desk.close()
        got = {
            (str(owner), str(bucket)): int(money.amount * 100)
            for owner, cells in table.items()
            for bucket, money in cells.items()
            if str(bucket)[:4].isdigit()
        }
        overdue_or_undated = {k: v for k, v in expected.items() if k not in got}
        assert {k: v for k, v in expected.items() if k in got} == got, "totals differ"
        assert sum(got.values()) + sum(overdue_or_undated.values()) == sum(expected.values())
        assert out.strip(), "the forecast printed nothing"

        report.ratio("import + forecast vs pandas", plain + forecast_seconds, pandas_seconds)
        report.figure("import (no progress bar)", f"{plain:.1f} s", f"{args.n / plain:,.0f} rows/s")
        report.figure("forecast command", f"{forecast_seconds:.2f} s", "pushed down to SQLite")
        report.ratio("import with the progress bar", with_bar, plain, target=1.02)
    report.print()


if __name__ == "__main__":
    main()
