"""Fault injection with real processes: runs are never lost, never stuck, and a fault gets
one clear line, never a traceback.

CI runs a representative subset (a few trials of each); ``-m slow`` runs the full counts
(20 kill -9 trials, 5 of each signal). Each trial prints one ``FAULT`` line (what was
injected, what was lost); ``-s`` shows them.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tui_trainer.config import find_preset
from tui_trainer.engine import checkpoint as ckpt
from tui_trainer.runner import launch
from tui_trainer.store import RunReader, effective_status, list_runs

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
KILL_SETS = [
    "train.max_steps=1500",
    "train.log_every=5",
    "checkpoint.every_seconds=0.3",
    "train.threads=1",
]


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tui_trainer", *args],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300, **kw,
    )  # fmt: skip


def popen(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tui_trainer", *args],
        cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,
    )  # fmt: skip


def _last_step(run_dir: Path) -> int:
    with RunReader(run_dir) as r:
        return r.last_step()


def wait_until(pred, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def training(run_dir: Path) -> bool:
    try:
        with RunReader(run_dir) as r:
            return int(r.meta().get("step") or 0) > 0 or bool(r.series("train/loss"))
    except Exception:  # not created yet
        return False


def rows(run_dir: Path) -> dict[str, list[tuple]]:
    """Every row of the three append-only tables, by a plain SQLite reader."""
    con = sqlite3.connect(f"file:{run_dir / 'run.db'}?mode=ro", uri=True, timeout=30)
    try:
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()  # noqa: S608
            for t in ("scalars", "layer_stats", "events")
        }
    finally:
        con.close()


def integrity(run_dir: Path) -> str:
    con = sqlite3.connect(run_dir / "run.db", timeout=30)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def report(fault: str, **figures) -> None:
    print("FAULT", fault, json.dumps(figures, sort_keys=True))


def finite_weights(path: Path) -> bool:
    state = ckpt.load(path)
    return all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


# -- kill -9 --------------------------------------------------------------------------------
def _kill_trial(tmp_path: Path, trial: int, rng: random.Random) -> None:
    runs = tmp_path / f"runs{trial}"
    headless = trial % 2 == 1  # every other trial: the CLI's in-process run, else a child
    if headless:
        sets = [a for s in KILL_SETS for a in ("--set", s)]
        proc = popen("run", "digits-mlp", "--quiet", "--runs-dir", str(runs), *sets)
        wait_until(lambda: runs.exists() and list_runs(runs), "the run to exist")
        run_dir, pid = list_runs(runs)[0].run_dir, proc.pid
    else:
        child = launch(find_preset("digits-mlp").resolve(None, KILL_SETS), runs, threads=1)
        run_dir, pid = child.run_dir, child.pid
    wait_until(lambda: training(run_dir), "training to start")
    target = rng.randint(20, 800)  # a random step, whatever the machine's speed (of 1500)
    wait_until(lambda: _last_step(run_dir) >= target, f"step {target}")
    before = rows(run_dir)  # everything flushed before the kill
    os.kill(pid, signal.SIGKILL)
    t_kill = time.time()
    (proc.wait if headless else child.wait)(timeout=60)
    assert integrity(run_dir) == "ok"
    after = rows(run_dir)
    for table, got in before.items():
        assert after[table][: len(got)] == got, table  # nothing flushed was lost
    with RunReader(run_dir) as r:
        meta = r.meta()
        assert r.status() == "crashed" and effective_status(meta) == "crashed"
        last_step = max((s for s, _ in r.series("train/loss")), default=0)
        saved = [(e[0], e[1]) for e in r.events("checkpoint") if e[3]["path"] == "last.pt"]
    last = run_dir / "checkpoints" / "last.pt"
    if not saved and not last.exists():  # killed before the first save: said in one line
        r = cli("resume", run_dir.name, "--runs-dir", str(runs))
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        report("kill-9", trial=trial, headless=headless, checkpoint=None, lost_steps=last_step)
        return
    # the file can be newer than its event (the event was still buffered at the kill)
    k, t_saved = ckpt.load(last)["step"], last.stat().st_mtime
    assert (not saved or k >= saved[-1][0]) and finite_weights(last)
    r = cli("resume", run_dir.name, "--runs-dir", str(runs), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "finished" and doc["steps"] == 1500
    with RunReader(run_dir) as rd:
        resumed = [e for e in rd.events("status") if e[3].get("resumed")]
    assert resumed and resumed[-1][0] == k  # it went on from the checkpoint's step
    report(
        "kill-9", trial=trial, headless=headless, checkpoint=k,
        lost_steps=max(last_step - k, 0), lost_s=round(t_kill - t_saved, 2),
    )  # fmt: skip


@pytest.mark.parametrize("trial", range(2))
def test_kill_9_loses_nothing_flushed_and_resumes_from_the_last_checkpoint(tmp_path, trial):
    _kill_trial(tmp_path, trial, random.Random(1000 + trial))


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(2, 20))
def test_kill_9_more_trials(tmp_path, trial):
    _kill_trial(tmp_path, trial, random.Random(1000 + trial))


# -- signals --------------------------------------------------------------------------------
SIGNALS = {
    "SIGINT": [signal.SIGINT],
    "SIGTERM": [signal.SIGTERM],
    "SIGHUP": [signal.SIGHUP],
    "SIGINT twice": [signal.SIGINT, signal.SIGINT],
}


def _signal_trial(tmp_path: Path, name: str, rng: random.Random) -> None:
    runs = tmp_path / "runs"
    proc = popen(
        "run", "digits-mlp", "--quiet", "--runs-dir", str(runs),
        "--set", "train.max_steps=100000000", "--set", "train.threads=1",
    )  # fmt: skip
    wait_until(lambda: runs.exists() and list_runs(runs), "the run to exist")
    run_dir = list_runs(runs)[0].run_dir
    wait_until(lambda: training(run_dir), "training to start")
    time.sleep(rng.uniform(0.0, 1.0))
    for sig in SIGNALS[name]:
        proc.send_signal(sig)
        time.sleep(rng.uniform(0.0, 0.01))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err  # README: 1 when the run was stopped
    assert "Traceback" not in err
    with RunReader(run_dir) as r:
        meta = r.meta()
    assert meta["status"] == "stopped"
    state = ckpt.load(run_dir / "checkpoints" / "last.pt")
    assert state["step"] == meta["step"] > 0  # a whole step, the one the run stopped at
    assert integrity(run_dir) == "ok"
    report("signal", signal=name, step=meta["step"], lost_steps=0)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT twice"])  # the others: -m slow
def test_a_signal_stops_a_headless_run_with_a_checkpoint(tmp_path, name):
    _signal_trial(tmp_path, name, random.Random(name))


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(5))
@pytest.mark.parametrize("name", list(SIGNALS))
def test_signals_more_trials(tmp_path, name, trial):
    _signal_trial(tmp_path, name, random.Random(f"{name}{trial}"))


# -- divergence -----------------------------------------------------------------------------
def test_divergence_is_diverged_at_the_first_non_finite_sample_and_keeps_finite_weights(
    tmp_path,
):
    runs = tmp_path / "runs"
    r = cli(
        "run", "digits-mlp", "--quiet", "--json", "--runs-dir", str(runs),
        "--set", 'optim.name="sgd"', "--set", "optim.lr=100",  # diverges within 10 steps
        "--set", "train.max_steps=300", "--set", "probe.every=1",
        "--set", "checkpoint.every=1",  # a save is attempted at every step
    )  # fmt: skip
    assert r.returncode == 1
    doc = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert doc["status"] == "diverged"
    run_dir = Path(doc["run_dir"])
    with RunReader(run_dir) as rd:
        found = rd.events("nonfinite")
        skipped = rd.events("checkpoint_skipped")
        _, grad = rd.layer_stat_matrix("nonfinite")
    assert found, "no nonfinite event"
    step, _, _, data = found[0]
    assert "layer" in data and step == doc["steps"]  # it stopped at the first one
    last = run_dir / "checkpoints" / "last.pt"
    assert ckpt.load(last)["step"] < step and finite_weights(last)  # the last good one stays
    assert all(e[0] >= step for e in skipped)  # only a non-finite state was ever refused
    report("divergence", step=step, layer=data["layer"], lost_steps=0)


# -- a user's model that fails ----------------------------------------------------------------
FACTORIES = """
import torch
from torch import nn


def raises(input_shape, num_classes):
    raise RuntimeError("the factory is broken")


def not_a_module(input_shape, num_classes):
    return "a string"


class Later(nn.Module):
    def __init__(self, n_in, n_out, fail_at, error):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.calls, self.fail_at, self.error = 0, fail_at, error

    def forward(self, x):
        self.calls += 1
        if self.training and self.calls == self.fail_at:
            raise self.error
        return self.fc(x.flatten(1))


def fails_at_step_10(input_shape, num_classes):
    return Later(64, num_classes, 10, ValueError("forward failed at step 10"))


def out_of_memory(input_shape, num_classes):
    error = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    return Later(64, num_classes, 3, error)
"""


def _factory_preset(tmp_path: Path, name: str) -> Path:
    (tmp_path / "userfactories.py").write_text(FACTORIES)
    preset = tmp_path / f"{name}.toml"
    preset.write_text(
        f'title = "{name}"\n[data]\nname = "digits"\n[model]\n'
        f'kind = "factory"\nfactory = "userfactories:{name}"\n'
        "[train]\nmax_steps = 30\neval_every = 1000\n"
    )
    return preset


@pytest.mark.parametrize(
    ("name", "says"),
    [("raises", "the factory is broken"), ("not_a_module", "nn.Module")],
)
def test_a_factory_that_fails_is_exit_2_before_any_run_exists(tmp_path, name, says):
    runs = tmp_path / "runs"
    r = subprocess.run(
        [sys.executable, "-m", "tui_trainer", "run", str(_factory_preset(tmp_path, name)),
         "--runs-dir", str(runs)],
        cwd=tmp_path, env={**ENV, "PYTHONPATH": f"{tmp_path}:{REPO}"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr
    assert not runs.exists() or not list(runs.iterdir())
    report("bad factory", factory=name, exit=2)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("fails_at_step_10", "forward failed at step 10"),
        ("out_of_memory", "smaller data.batch_size"),
    ],
)
def test_a_model_that_fails_while_training_is_crashed_with_its_traceback(
    tmp_path, monkeypatch, name, says
):
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{REPO}")
    from tui_trainer.config import load_preset_file

    cfg = load_preset_file(_factory_preset(tmp_path, name)).resolve()
    monkeypatch.syspath_prepend(str(tmp_path))
    child = launch(cfg, tmp_path / "runs", threads=1)  # as the app starts it
    code = child.wait(timeout=120)
    assert code == 1
    with RunReader(child.run_dir) as r:
        meta, last_status = r.meta(), r.events("status")[-1][3]
    assert meta["status"] == "crashed" and says in last_status["reason"], last_status
    log = (child.run_dir / "output.log").read_text()
    assert "Traceback (most recent call last)" in log and says.split()[0] in log
    report("model fails in training", factory=name, status="crashed", step=meta["step"])


# -- a full disk ------------------------------------------------------------------------------
def test_a_full_disk_is_one_clear_error_and_keeps_earlier_rows(tmp_path):
    runs = tmp_path / "runs"

    def small_files() -> None:  # any file this process writes stops growing at 2 MB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    r = subprocess.run(
        [sys.executable, "-m", "tui_trainer", "run", "digits-mlp", "--quiet", "--json",
         "--runs-dir", str(runs), "--set", "train.max_steps=100000", "--set", "train.log_every=1",
         "--set", "probe.every=1", "--set", "train.threads=1"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300, preexec_fn=small_files,
    )  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "crashed" and "is the disk full?" in doc["error"]
    run_dir = Path(doc["run_dir"])
    assert integrity(run_dir) == "ok"
    kept = rows(run_dir)
    assert kept["scalars"] and kept["events"]  # what was written before the disk filled
    with RunReader(run_dir) as rd:
        assert rd.status() == "crashed"  # the process is gone: no reader sees it live
    report("full disk", rows_kept=len(kept["scalars"]), steps=doc["steps"])


# -- four runs, two followers and a lister at once -------------------------------------------
def test_four_runs_at_once_with_readers_lose_no_row_and_never_lock(tmp_path):
    runs = tmp_path / "runs"
    started = []
    for seed in range(4):
        r = cli(
            "run", "digits-mlp", "--detach", "--json", "--runs-dir", str(runs),
            "--set", "train.max_steps=800", "--set", "train.log_every=1",
            "--set", "probe.every=2", "--set", f"train.seed={seed}",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        started += json.loads(r.stdout)["runs"]
    # the followers write to files: a pipe nobody reads while we list would fill and block
    outs = [(tmp_path / f"follow{i}.out", tmp_path / f"follow{i}.err") for i in range(2)]
    followers = []
    for (out, err), run in zip(outs, started[:2], strict=True):
        with open(out, "w") as fo, open(err, "w") as fe:
            args = [sys.executable, "-m", "tui_trainer", "stream", run["run_id"], "--follow"]
            followers.append(
                subprocess.Popen(
                    [*args, "--runs-dir", str(runs)], cwd=REPO, env=ENV, stdout=fo, stderr=fe
                )
            )
    listings, errors, deadline = 0, [], time.monotonic() + 300
    while any(f.poll() is None for f in followers) or listings < 3:
        r = cli("runs", "--json", "--runs-dir", str(runs))
        listings += 1
        if r.returncode != 0 or "locked" in r.stderr:
            errors.append(r.stderr)
        assert time.monotonic() < deadline, "the followers did not end"
    assert not errors, errors
    wait_until(
        lambda: all(RunReader(runs / s["run_id"]).status() == "finished" for s in started),
        "every run to finish",
        timeout=300,
    )
    for f, (out, err), run in zip(followers, outs, started[:2], strict=True):
        assert f.wait(timeout=60) == 0 and "locked" not in err.read_text(), err.read_text()
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        got = {t: sum(1 for x in lines if x["type"] == t) for t in ("scalar", "layer_stats")}
        stored = rows(runs / run["run_id"])
        assert got == {"scalar": len(stored["scalars"]), "layer_stats": len(stored["layer_stats"])}
        assert lines[-1] == {**lines[-1], "type": "end", "status": "finished"}
    for run in started:
        log = (runs / run["run_id"] / "output.log").read_text()
        assert "locked" not in log and "Traceback" not in log, log
    report("4 runs + 3 readers", runs=4, listings=listings, lost_rows=0)
