"""The examples run as a user runs them (a child Python, the repository's examples/), short,
and leave a run the CLI reads: what the README promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_trainer.cli import app
from tui_trainer.store import RunReader

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, runs_dir: Path, *args: str) -> tuple[Path, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--runs-dir", str(runs_dir), *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_id = re.search(r"tui-trainer attach (\S+)", proc.stdout).group(1)
    return runs_dir / run_id, proc.stdout


def check_run(run_dir: Path, evals: int) -> None:
    with RunReader(run_dir) as r:
        assert r.status() == "finished"
        assert r.meta()["kind"] == "watch"
        assert len(r.series("val/acc")) == evals
        assert r.series("train/loss")
        assert r.layers()
        n = r._con.execute("SELECT COUNT(*) FROM layer_stats").fetchone()[0]  # noqa: SLF001
    assert n > 0


def test_plain_loop_example_and_the_cli_on_its_run(tmp_path):
    run_dir, out = run_example("plain_loop.py", tmp_path, "--epochs", "2")
    check_run(run_dir, evals=2)
    cli = CliRunner()
    diag = cli.invoke(app, ["diagnose", run_dir.name, "--runs-dir", str(tmp_path)])
    assert diag.exit_code in (0, 1), diag.output  # findings or none; it read the run
    resumed = cli.invoke(app, ["resume", run_dir.name, "--runs-dir", str(tmp_path)])
    assert resumed.exit_code == 2
    assert "recorded by tui_trainer.watch" in resumed.output and "plain_loop.py" in resumed.output
    assert "Traceback" not in resumed.output


def test_lightning_example(tmp_path):
    pytest.importorskip("pytorch_lightning", reason="the lightning extra is not installed")
    run_dir, _ = run_example("lightning_loop.py", tmp_path, "--epochs", "2")
    check_run(run_dir, evals=2)


def test_hf_example(tmp_path):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    pytest.importorskip("accelerate", reason="the hf extra is not installed")
    run_dir, _ = run_example("hf_trainer.py", tmp_path, "--epochs", "2")
    check_run(run_dir, evals=2)
