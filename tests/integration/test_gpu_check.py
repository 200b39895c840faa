"""benchmarks/gpu_check.sh --device cpu --quick: the GPU box's check, run on the CPU so it
cannot rot between leases (every row, the --nproc 2 row included, and the table)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_on_the_cpu_in_under_a_minute():
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--quick"],
        capture_output=True, text=True, env=env, timeout=180, cwd=ROOT,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[1].startswith("GPU-marked tests: ok")
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert "steps/s" in lines[header] and "MFU" in lines[header]
    rows = [line.split() for line in lines[header + 2 :] if line.startswith(("digits", "resnet"))]
    assert len(rows) == 9  # 2 models x fp32/bf16 x probes off/on, and one --nproc 2 row
    assert all(float(r[5]) > 0 for r in rows)  # steps/s
    assert [r[4] for r in rows].count("2") == 1
    assert "FLOPs (FlopCounterMode" in proc.stdout
    assert elapsed < 90  # < 60 s alone; headroom for a loaded CI box
