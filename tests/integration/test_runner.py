"""The training child process: runs, stops on request or SIGTERM, and crashes visibly."""

from __future__ import annotations

import os
import signal
import time

from tui_trainer.config import find_preset
from tui_trainer.runner import launch
from tui_trainer.store import RunReader, list_runs, send_control


def wait_for(pred, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def long_xor():
    return find_preset("xor-mlp").resolve(None, ["train.max_steps=100000000"])


def test_child_trains_to_the_end(runs_dir):
    cfg = find_preset("xor-mlp").resolve(None, ["train.max_steps=100"])
    proc = launch(cfg, runs_dir, threads=1)
    assert proc.wait(120) == 0
    r = RunReader(proc.run_dir)
    assert r.status() == "finished" and r.meta()["step"] == 100
    assert r.meta()["pid"] == proc.pid
    assert "finished after 100 steps" in (proc.run_dir / "output.log").read_text()


def test_stop_request_and_sigterm(runs_dir):
    proc = launch(long_xor(), runs_dir, threads=1)
    r = RunReader(proc.run_dir)
    assert wait_for(lambda: r.meta().get("status") == "running")
    send_control(r.run_dir, "stop")
    assert proc.wait(60) == 1  # stopped: 1, as the headless run's exit code
    assert r.status() == "stopped"
    assert (proc.run_dir / "checkpoints" / "last.pt").is_file()

    proc = launch(long_xor(), runs_dir, threads=1)
    r = RunReader(proc.run_dir)
    assert wait_for(lambda: r.meta().get("status") == "running")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(60) == 1  # stopped: 1, as the headless run's exit code
    assert r.status() == "stopped"
    assert r.events("status")[-1][3]["reason"] == "signal SIGTERM"


def test_kill_9_is_shown_as_crashed_and_keeps_records(runs_dir):
    proc = launch(long_xor(), runs_dir, threads=1)
    r = RunReader(proc.run_dir)
    assert wait_for(lambda: len(r.series("train/loss")) > 20)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert r.status() == "crashed"
    last = r.events("status")[-1][3]
    assert last["status"] == "crashed" and "signal 9" in last["error"]
    assert len(r.series("train/loss")) > 20  # every flushed record is kept


def test_a_child_killed_while_starting_is_not_left_looking_created(runs_dir):
    """Killed during its imports, with nobody supervising: readers see it crashed."""
    proc = launch(long_xor(), runs_dir, threads=1)
    r = RunReader(proc.run_dir)
    assert r.meta()["pid"] == proc.pid  # recorded at launch, before the trainer runs
    os.kill(proc.pid, signal.SIGKILL)
    proc.process.wait(30)  # not RunProcess.wait: that would mark the run itself
    assert r.meta()["status"] == "created"  # the trainer never started
    assert r.status() == "crashed"
    assert list_runs(runs_dir)[0].status == "crashed"


def test_exception_in_child_is_crashed_with_log(runs_dir, tmp_path):
    cfg = find_preset("xor-mlp").resolve(
        None, ['data.name="mnist"', f'data.dir="{tmp_path}"', "train.max_steps=5"]
    )
    proc = launch(cfg, runs_dir, threads=1)
    assert proc.wait(60) != 0
    r = RunReader(proc.run_dir)
    assert r.status() == "crashed"
    last = r.events("status")[-1][3]
    assert "train-images-idx3-ubyte" in last["error"]


def test_modules_in_the_working_directory_do_not_shadow_the_childs(runs_dir, tmp_path, monkeypatch):
    """A random.py or json.py where the app was started must not replace the real module in
    the training child (python -m would put the working directory first on sys.path)."""
    for name in ("random", "json", "typing_extensions"):
        (tmp_path / f"{name}.py").write_text(f"raise ImportError('the shadow {name}.py')\n")
    monkeypatch.chdir(tmp_path)
    cfg = find_preset("xor-mlp").resolve(None, ["train.max_steps=50"])
    proc = launch(cfg, runs_dir, threads=1)
    assert proc.wait(120) == 0, (proc.run_dir / "output.log").read_text()[-800:]
    with RunReader(proc.run_dir) as r:
        assert r.status() == "finished"
