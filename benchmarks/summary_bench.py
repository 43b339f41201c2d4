"""Time `summary_data_from_transactions` (Ibis on DuckDB) against a plain pandas groupby.

Generates synthetic transactions (fixed seed) into a Parquet file, then runs each implementation
in its own interpreter so that its peak memory (max RSS, which tracemalloc cannot see for DuckDB's
native allocations) is measured alone. Both start from the same pandas DataFrame read from the
file; only the summary is timed. The results must agree to 1e-9 before the table is printed.

    .venv/bin/python benchmarks/summary_bench.py                # 10 M transactions
    .venv/bin/python benchmarks/summary_bench.py --rows 1000000

Target (issue 4): at least 5× faster than pandas on 10 M rows.
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20240401
START = np.datetime64("2021-01-01T00:00:00", "us")
SPAN_DAYS = 3 * 365


def generate(path: Path, rows: int, customers: int) -> None:
    """Write ``rows`` transactions of ``customers`` customers with skewed activity."""
    rng = np.random.default_rng(SEED)
    # a few customers buy very often, most rarely (Pareto-like activity)
    weights = rng.pareto(1.5, customers) + 1.0
    weights /= weights.sum()
    who = rng.choice(customers, size=rows, p=weights)
    offsets = rng.integers(0, SPAN_DAYS * 86_400_000_000, size=rows, dtype=np.int64)
    placed = START + offsets.astype("timedelta64[us]")
    amount = np.round(rng.gamma(2.0, 25.0, size=rows), 2)
    ids = pa.array(np.char.add("c", who.astype("U9")))
    table = pa.table(
        {
            "customer_id": ids,
            "placed_at": pa.array(placed, type=pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amount, type=pa.float64()),
        }
    )
    pq.write_table(table, path)


def pandas_summary(frame: pd.DataFrame, end_day: int) -> pd.DataFrame:
    """The same summary as lifetimes computes it, written as idiomatic pandas."""
    day = frame["placed_at"].dt.floor("D")
    daily = (
        frame.assign(day=day)
        .groupby(["customer_id", "day"], sort=False)["amount"]
        .sum()
        .reset_index()
        .sort_values(["customer_id", "day"])
    )
    per = daily.groupby("customer_id", sort=True).agg(
        first=("day", "first"),
        last=("day", "last"),
        n=("day", "size"),
        total=("amount", "sum"),
        first_amount=("amount", "first"),
    )
    end = pd.Timestamp(np.datetime64(end_day, "D"), tz="UTC")
    one_day = pd.Timedelta(days=1)
    repeats = per["n"] - 1
    return pd.DataFrame(
        {
            "frequency": repeats,
            "recency": (per["last"] - per["first"]) / one_day,
            "T": (end - per["first"]) / one_day,
            "monetary_value": np.where(
                repeats > 0, (per["total"] - per["first_amount"]) / repeats.clip(lower=1), 0.0
            ),
        },
        index=per.index.astype("str"),
    )


def child(kind: str, data: Path, out: Path) -> None:
    """Run one implementation and print its timings as JSON."""
    # Imports are a one-off cost of any program, so neither side's is timed. Ibis imports its
    # DuckDB backend lazily on first use, so each side first summarises a 1,000-row sample; that
    # first call is timed and printed on its own ("first call s").
    from vafa.analytics.summary import summary_data_from_transactions

    started = time.perf_counter()
    frame = pd.read_parquet(data)
    loaded = time.perf_counter()
    end_day = int(frame["placed_at"].max().floor("D").value // 86_400_000_000_000)

    def summarise(rows: pd.DataFrame) -> pd.DataFrame:
        if kind == "vafa":
            return summary_data_from_transactions(rows, observation_end=_day(end_day))
        return pandas_summary(rows, end_day)

    summarise(frame.head(1000))
    warmed = time.perf_counter()
    result = summarise(frame)
    done = time.perf_counter()
    result.index.name = "customer_id"
    result.to_parquet(out)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {"load_s": loaded - started, "first_call_s": warmed - loaded,
             "summary_s": done - warmed, "peak_mib": peak_kib / 1024}
        )
    )


def _day(day: int) -> datetime.date:
    return datetime.date(1970, 1, 1) + datetime.timedelta(days=day)


def run(kind: str, data: Path, out: Path) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--data", str(data), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{completed.stderr}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["vafa", "pandas"])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.out)
        return
    with tempfile.TemporaryDirectory(prefix="vafa_bench_") as folder:
        work = Path(folder)
        data = work / "transactions.parquet"
        began = time.perf_counter()
        generate(data, args.rows, args.customers)
        print(f"generated {args.rows:,} transactions in {time.perf_counter() - began:.1f} s")
        results = {kind: run(kind, data, work / f"{kind}.parquet") for kind in ("pandas", "vafa")}
        ours = pd.read_parquet(work / "vafa.parquet")
        theirs = pd.read_parquet(work / "pandas.parquet")
        assert list(ours.index) == list(theirs.index), "different customers"
        for column in ("frequency", "recency", "T", "monetary_value"):
            assert np.allclose(ours[column], theirs[column], rtol=1e-9, atol=1e-9), column
    baseline = results["pandas"]["summary_s"]
    print(f"customers summarised: {len(ours):,}; results identical (1e-9)")
    print(f"{'implementation':<22}{'summary s':>11}{'speed-up':>10}{'first call s':>14}"
          f"{'load s':>9}{'peak MiB':>10}")
    for kind, label in (("pandas", "pandas groupby"), ("vafa", "vafa (Ibis on DuckDB)")):
        row = results[kind]
        print(
            f"{label:<22}{row['summary_s']:>11.2f}{baseline / row['summary_s']:>9.1f}×"
            f"{row['first_call_s']:>14.2f}{row['load_s']:>9.2f}{row['peak_mib']:>10.0f}"
        )


if __name__ == "__main__":
    main()
