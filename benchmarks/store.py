"""Benchmark: the run store's write throughput and decimated-curve reads.

    python benchmarks/store.py [--values 1000000]

Writes: ``RunStore.scalars`` (batched, one transaction per flush) against the naive
baseline of one INSERT and commit per value. Reads: ``RunReader.curve`` (min/max per
column in SQL) against fetching every point into Python and bucketing there.
Budgets (DESIGN.md §8): >= 200,000 values/s written; a 1,000,000-point curve decimated to
200 columns in under 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

from tui_trainer.store import RunReader, RunStore


def write_ours(runs: str, n: int) -> tuple[float, Path]:
    store = RunStore.create(runs, "bench", "", json.dumps({}), "")
    t0 = time.perf_counter()
    per_step = 4  # a training step logs a few scalars at once
    for step in range(n // per_step):
        store.scalars(
            step,
            {"train/loss": 1.0 / (step + 1), "train/acc": 0.5, "train/lr": 0.1, "x": step},
        )
    store.flush()
    dt = time.perf_counter() - t0
    store.close()
    return n / dt, store.run_dir


def write_naive(path: Path, n: int) -> float:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("CREATE TABLE s (id INTEGER PRIMARY KEY, step INT, name TEXT, value REAL)")
    t0 = time.perf_counter()
    for i in range(n):
        con.execute("INSERT INTO s (step, name, value) VALUES (?, ?, ?)", (i, "train/loss", 1.0))
        con.commit()
    return n / (time.perf_counter() - t0)


def read_naive(reader: RunReader, name: str, columns: int) -> float:
    t0 = time.perf_counter()
    pts = reader.series(name)
    lo, hi = pts[0][0], pts[-1][0]
    width = max(1, (hi - lo + columns) // columns)
    buckets: dict[int, list[float]] = {}
    for s, v in pts:
        b = buckets.setdefault((s - lo) // width, [v, v])
        b[0], b[1] = min(b[0], v), max(b[1], v)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--values", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        naive_rate = write_naive(Path(tmp) / "naive.db", 20_000)
        ours_rate, run_dir = write_ours(tmp, args.values)
        reader = RunReader(run_dir)
        t0 = time.perf_counter()
        cols = reader.curve("train/loss", columns=200)
        ours_read = time.perf_counter() - t0
        naive_read = read_naive(reader, "train/loss", 200)
        points = args.values // 4
        # a 1,000,000-point curve of one name, the budget's case
        store = RunStore.create(tmp, "bench1m", "", "{}", "")
        for step in range(1_000_000):
            store.scalars(step, {"y": float(step % 977)}, wall=0.0)
        store.flush()
        store.close()
        r1 = RunReader(store.run_dir)
        t0 = time.perf_counter()
        c1 = r1.curve("y", columns=200)
        read_1m = time.perf_counter() - t0
        naive_1m = read_naive(r1, "y", 200)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, sqlite {sqlite3.sqlite_version}")
    print(f"{'operation':<52}{'baseline':>12}{'ours':>12}{'ratio':>8}")
    print(f"{'write scalars, values/s (naive: INSERT+commit each)':<52}"
          f"{naive_rate:>12,.0f}{ours_rate:>12,.0f}{ours_rate / naive_rate:>8.1f}")
    print(f"{f'read {points:,}-point curve -> 200 cols, s (naive: Python)':<52}"
          f"{naive_read:>12.3f}{ours_read:>12.3f}{naive_read / ours_read:>8.1f}")
    print(f"{'read 1,000,000-point curve -> 200 cols, s':<52}"
          f"{naive_1m:>12.3f}{read_1m:>12.3f}{naive_1m / read_1m:>8.1f}")
    print(f"columns returned: {len(cols)} and {len(c1)}; budgets: >= 200,000 values/s, < 0.2 s")


if __name__ == "__main__":
    main()
