"""benchmarks/train_loop.py runs (a short round) and prints its table: it drives the
engine's own loop body, so a change there must not break it unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_train_loop_benchmark_interleaves_both_loops_and_prints_its_ratios():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_loop.py"), "--rounds", "2",
         "--epochs", "2"],
        capture_output=True, text=True, env=env, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = {line[:34].strip(): line[34:].split() for line in proc.stdout.splitlines()}
    plain, ours = rows["plain PyTorch loop, median"], rows["tui-trainer engine, median"]
    assert float(plain[0]) > 0 and float(ours[0]) > 0 and plain[1] == "1.00"
    assert 0.2 < float(ours[1]) < 5  # a ratio of steps/s, not a failed or empty round
    assert "paired ratio (ours / plain, wall): median" in proc.stdout
