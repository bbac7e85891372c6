"""Benchmark: the forecast on a DataFrame (the columnar path) against hand-written frame code.

    python benchmarks/bench_columnar.py               # 1,000,000 rows
    python benchmarks/bench_columnar.py --n 100000    # a quick look

The same seeded pipeline (40 owners, the default stages, amounts with cents, close dates over two
years, a few undated) is given to ``forecast()`` as a pandas DataFrame, a polars DataFrame and a
DuckDB relation. Each baseline, in the same run, is what a user would write by hand in that library:
keep the counted stages, weight each amount by its stage probability and round it to cents, bucket
by close month (overdue before the as-of month, undated apart) and sum per (bucket, owner). The
hand-written versions compute on floats; salesflow computes exactly in integer cents, and the
script asserts that its totals equal an exact Decimal computation. Targets: <= 1.0x hand-written
pandas on pandas input; <= 1.5x hand-written polars / DuckDB on their own inputs.

The hand-written code reads only the counted rows. An exact forecast also reads every other row's
stage (to count the excluded deals and to refuse a stage the plan does not know), a second pass
over the whole table in a lazy engine: the last figures compare with the hand-written code plus
that count per stage.
"""

from __future__ import annotations

import sys
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Report, best_time, parser

from salesflow.analytics.forecast import forecast
from salesflow.domain.stages import StagePlan

AS_OF = date(2026, 11, 15)
AS_OF_MONTH = AS_OF.year * 12 + AS_OF.month - 1
PROBABILITY = {s.key: int(s.probability) for s in StagePlan.default()}
COUNTED = [k for k, p in PROBABILITY.items() if 70 <= p < 100]


def make_pandas(n: int) -> Any:
    """The seeded pipeline as a pandas DataFrame (amounts as float64 with cents)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(17)
    stages = np.array(list(PROBABILITY))
    days = rng.integers(0, 730, n)
    close = pd.to_datetime("2025-11-01") + pd.to_timedelta(days, unit="D")
    close = close.where(rng.random(n) > 0.02)  # 2 % undated
    return pd.DataFrame(
        {
            "id": np.char.add("O-", np.arange(n).astype(str)),
            "owner": np.char.add("rep", rng.integers(0, 40, n).astype(str)),
            "stage": stages[rng.integers(0, len(stages), n)],
            "amount": rng.integers(100, 10_000_000, n) / 100,
            "currency": "CNY",
            "expected_close": close,
        }
    )


def hand_pandas(df: Any) -> Any:
    """The forecast as a pandas user writes it."""
    import numpy as np

    counted = df[df["stage"].isin(COUNTED)]
    probability = counted["stage"].map(PROBABILITY)
    expected = (counted["amount"] * probability / 100).round(2)
    close = counted["expected_close"]
    month = close.dt.year * 12 + close.dt.month - 1
    bucket = np.where(month.isna(), -2, np.where(month < AS_OF_MONTH, -1, month))
    return expected.groupby([bucket, counted["owner"]]).sum()


def hand_polars(df: Any) -> Any:
    """The forecast as a polars user writes it."""
    import polars as pl

    month = pl.col("expected_close").dt.year() * 12 + pl.col("expected_close").dt.month() - 1
    return (
        df.filter(pl.col("stage").is_in(COUNTED))
        .with_columns(
            (pl.col("amount") * pl.col("stage").replace_strict(PROBABILITY) / 100)
            .round(2)
            .alias("expected"),
            pl.when(month.is_null())
            .then(-2)
            .when(month < AS_OF_MONTH)
            .then(-1)
            .otherwise(month)
            .alias("bucket"),
        )
        .group_by("bucket", "owner")
        .agg(pl.col("expected").sum())
    )


def hand_duckdb(con: Any) -> Any:
    """The forecast as SQL in DuckDB."""
    cases = " ".join(f"WHEN '{k}' THEN {PROBABILITY[k]}" for k in COUNTED)
    month = "(year(expected_close) * 12 + month(expected_close) - 1)"
    return con.sql(
        f"""
        SELECT CASE WHEN expected_close IS NULL THEN -2
                    WHEN {month} < {AS_OF_MONTH} THEN -1 ELSE {month} END AS bucket,
               owner,
               sum(round(amount * (CASE stage {cases} END) / 100, 2)) AS expected
        FROM pipeline WHERE stage IN ({", ".join(f"'{k}'" for k in COUNTED)})
        GROUP BY ALL
        """
    ).fetchall()


def stage_counts_duckdb(con: Any) -> Any:
    """What the hand-written SQL leaves out: every row's stage looked at (counted, or refused when
    the plan does not know it), which an exact forecast must read the whole table for."""
    return con.sql("SELECT stage, currency, count(*) FROM pipeline GROUP BY ALL").fetchall()


def stage_counts_polars(df: Any) -> Any:
    """The same check in polars."""
    return df.group_by("stage").len()


def exact_total(df: Any) -> Decimal:
    """The forecast's total, computed with Decimal row by row (the reference)."""
    counted = df[df["stage"].isin(COUNTED)]
    total = Decimal(0)
    cent = Decimal("0.01")
    for stage, amount in zip(counted["stage"], counted["amount"], strict=True):
        weighted = Decimal(repr(amount)) * PROBABILITY[stage] / 100
        total += weighted.quantize(cent, ROUND_HALF_UP)
    return total


def main() -> None:
    """Run every figure and print the report."""
    args = parser(__doc__.splitlines()[0], 1_000_000).parse_args()
    report = Report(f"columnar forecast, n={args.n:,} rows")
    df = make_pandas(args.n)
    expected = exact_total(df)

    def ours(frame: Any) -> Any:
        return forecast(frame, as_of=AS_OF, by="owner")

    seconds, result = best_time(lambda: ours(df), args.repeat)
    assert result.total.amount == expected, (result.total, expected)
    baseline, _ = best_time(lambda: hand_pandas(df), args.repeat)
    report.ratio("forecast(pandas) vs hand-written pandas", seconds, baseline, 1.0)

    import polars as pl

    pdf = pl.from_pandas(df)
    seconds, result = best_time(lambda: ours(pdf), args.repeat)
    assert result.total.amount == expected
    baseline, _ = best_time(lambda: hand_polars(pdf), args.repeat)
    report.ratio("forecast(polars) vs hand-written polars", seconds, baseline, 1.5)
    checked, _ = best_time(lambda: (hand_polars(pdf), stage_counts_polars(pdf)), args.repeat)
    report.ratio("forecast(polars) vs hand-written polars + a count per stage", seconds, checked)

    import duckdb

    con = duckdb.connect()
    table = pdf.with_columns(pl.col("amount").cast(pl.Decimal(18, 2))).to_arrow()
    con.register("pipeline_arrow", table)
    con.execute("CREATE TABLE pipeline AS SELECT * FROM pipeline_arrow")
    relation = con.table("pipeline")
    seconds, result = best_time(lambda: ours(relation), args.repeat)
    assert result.total.amount == expected
    baseline, _ = best_time(lambda: hand_duckdb(con), args.repeat)
    report.ratio("forecast(DuckDB relation) vs hand-written DuckDB SQL", seconds, baseline, 1.5)
    checked, _ = best_time(lambda: (hand_duckdb(con), stage_counts_duckdb(con)), args.repeat)
    report.ratio(
        "forecast(DuckDB relation) vs hand-written SQL + a count per stage", seconds, checked
    )
    report.print()


if __name__ == "__main__":
    main()
