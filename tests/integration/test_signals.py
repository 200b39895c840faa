"""A signal to a headless command stops the command: `run --all` and `verify` do not go on
to the next variant after Ctrl+C, SIGTERM or SIGHUP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui_trainer.store import RunReader, list_runs

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_run_all_stops_the_whole_command(tmp_path, sig):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_trainer", "run", "xor-mlp", "--all", "--quiet",
         "--set", "train.max_steps=100000000", "--runs-dir", str(runs)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip

    def first_running():
        items = list_runs(runs) if runs.exists() else []
        return items and RunReader(items[0].run_dir).meta().get("step", 0) > 0

    deadline = time.monotonic() + 120
    while not first_running():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    items = list_runs(runs)
    assert len(items) == 1, [r.run_id for r in items]  # the next variant never started
    assert items[0].status == "stopped"
    assert (items[0].run_dir / "checkpoints" / "last.pt").is_file()
