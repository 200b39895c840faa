"""``run --nproc 2``: two gloo ranks through torch.distributed.run on the CPU, end to end.

The 2-process run sees the same examples per step as the 1-process run (data.batch_size is
the global batch, each rank takes half), so its final training loss agrees to float
reduction order: measured 0.0158840 against 0.0158840 (relative 2e-7) on the 2-core CI box;
the test allows LOSS_RTOL. Each launch costs ~10-15 s here (three interpreters load torch).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tui_trainer.config import config_to_toml, find_preset
from tui_trainer.engine.trainer import Trainer
from tui_trainer.store import RunReader, RunStore, send_control

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="gloo ranks through torchrun: Linux CI"
)

LOSS_RTOL = 1e-3  # 2-process vs 1-process final train/loss, same global batch and steps
STEPS = 300
SETS = ['train.device="cpu"', f"train.max_steps={STEPS}", "probe.every=10", "train.eval_every=100"]
ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(runs_dir: Path, *args: str) -> list[str]:
    sets = [a for s in SETS for a in ("--set", s)]
    return [sys.executable, "-m", "tui_trainer", "run", "digits-mlp", "--nproc", "2",
            "--runs-dir", str(runs_dir), *sets, *args]  # fmt: skip


def _one_process(runs_dir: Path) -> dict[str, float | None]:
    cfg = find_preset("digits-mlp").resolve(None, SETS)
    store = RunStore.create(runs_dir, cfg.preset, "", cfg.to_json(), config_to_toml(cfg))
    result = Trainer(cfg).run(store)
    store.close()
    assert result.status == "finished"
    with RunReader(store.run_dir) as reader:
        return reader.last_values()


def test_two_ranks_train_like_one(tmp_path):
    one = _one_process(tmp_path / "one")
    runs = tmp_path / "two"
    t0 = time.monotonic()
    proc = subprocess.run(
        _cli(runs, "--json"), capture_output=True, text=True, env=_env(), timeout=120
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["status"] == "finished" and out["steps"] == STEPS
    assert (out["world_size"], out["backend"], out["global_batch"], out["rank_batch"]) == (
        2, "gloo", 64, 32,
    )  # fmt: skip
    assert out["lr"] == 0.002
    assert [p.name for p in runs.iterdir()] == [Path(out["run_dir"]).name]  # one run
    two_loss = out["final"]["train/loss"]
    assert two_loss == pytest.approx(one["train/loss"], rel=LOSS_RTOL)
    assert out["final"]["val/acc"] == pytest.approx(one["val/acc"], abs=0.01)
    with RunReader(out["run_dir"]) as reader:
        names = reader.scalar_names()
        spread = [v for _, v in reader.series("dist/grad_norm_spread")]
        steps, grad = reader.layer_stat_matrix("grad_norm")
        last = reader.last_values()
    assert {"rank0/steps_per_s", "rank1/steps_per_s"} <= set(names)
    for k in (0, 1):  # each rank's own process: a torch process's RSS, and its peak
        assert 50 < last[f"rank{k}/mem_mb"] <= last[f"rank{k}/peak_mem_mb"] < 16_000
    # gradient statistics are taken after the all-reduce: the same on both ranks
    assert len(spread) >= STEPS // 10 - 1 and max(spread) <= 1e-6
    assert steps and all(v is not None and v > 0 for v in grad[-1])
    assert elapsed < 90  # ~15-20 s alone on the 2-core box; 43 s when it was shared, load 6


def _start(runs_dir: Path, steps: int = 10**6) -> tuple[subprocess.Popen[str], Path, dict]:
    args = _cli(runs_dir, "--quiet", "--set", f"train.max_steps={steps}")
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        start_new_session=True,  # its own process group, as in a terminal
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = list(runs_dir.glob("*/run.db")) if runs_dir.exists() else []
        if runs:
            with RunReader(runs[0].parent) as reader:
                meta = reader.meta()
            if meta.get("rank_pids") and int(meta.get("step") or 0) >= 0 and _stepped(runs[0]):
                return proc, runs[0].parent, meta
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.3)
    proc.kill()
    raise AssertionError("the ranks did not start within 60 s")


def _stepped(db: Path) -> bool:
    with RunReader(db.parent) as reader:
        return bool(reader.series("train/loss"))


def _family(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    parent = psutil.Process(proc.pid)
    return [parent, *parent.children(recursive=True)]


def _none_left(procs: list[psutil.Process]) -> None:
    gone, alive = psutil.wait_procs(procs, timeout=20)
    left = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes left behind: {left}"


def _wait_status(run_dir: Path, status: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with RunReader(run_dir) as reader:
            meta = reader.meta()
        if meta.get("status") == status:
            return meta
        time.sleep(0.2)
    raise AssertionError(f"not {status} within {timeout} s: {meta.get('status')}")


def test_pause_checkpoint_stop_reach_both_ranks_and_leave_no_process(tmp_path):
    proc, run_dir, meta = _start(tmp_path / "runs")
    family = _family(proc)
    assert len(family) >= 4  # this command, torch.distributed.run, two ranks
    send_control(run_dir, "pause")
    paused_at = _wait_status(run_dir, "paused")["step"]
    send_control(run_dir, "checkpoint")
    time.sleep(1.0)  # paused: no rank steps (rank 1 waits on rank 0's agreement)
    with RunReader(run_dir) as reader:
        assert reader.meta()["step"] == paused_at
        assert all(done for _, _, done in reader.controls())  # the checkpoint was handled
    send_control(run_dir, "stop")  # a stop behind a pause is honoured
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err[-3000:]  # stopped: the command's exit code is 1
    with RunReader(run_dir) as reader:
        assert reader.status() == "stopped"
        stopped = reader.events("status")[-1]
    assert stopped[3].get("reason") == "stop requested"
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    with RunReader(run_dir) as reader:
        assert reader.meta()["step"] == paused_at
        saved = [(e[0], e[3].get("path")) for e in reader.events("checkpoint")]
    assert saved.count((paused_at, "last.pt")) == 3  # at the pause, when asked, at the stop
    assert "crashed" not in err  # both ranks ended cleanly: rank 1 was told too
    _none_left(family)


def test_paused_ranks_whose_launcher_is_killed_stop_and_leave_no_process(tmp_path):
    """kill -9 of torch.distributed.run while the run is paused: the ranks see their parent
    gone, agree on a stop, save last.pt and exit (they used to wait for a resume forever)."""
    proc, run_dir, meta = _start(tmp_path / "runs")
    family = _family(proc)
    send_control(run_dir, "pause")
    paused_at = _wait_status(run_dir, "paused")["step"]
    launcher = psutil.Process(meta["rank_pids"][0]).ppid()
    assert launcher != proc.pid and psutil.Process(launcher).ppid() == proc.pid
    os.kill(launcher, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == 1
    with RunReader(run_dir) as reader:
        assert reader.status() == "stopped"
        stopped = reader.events("status")[-1][3]
        saved = [e[0] for e in reader.events("checkpoint")]
    assert stopped["reason"] == f"the launcher (pid {launcher}) is gone"
    assert saved[-1] == paused_at and (run_dir / "checkpoints" / "last.pt").is_file()
    _none_left(family)


def test_ctrl_c_stops_every_rank_cleanly(tmp_path):
    """Ctrl+C reaches the command, the launcher and the ranks (one process group): the
    ranks agree on the stop, rank 0 keeps last.pt, nothing is left running."""
    proc, run_dir, _ = _start(tmp_path / "runs")
    family = _family(proc)
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 1
    with RunReader(run_dir) as reader:
        assert reader.status() == "stopped"
        assert reader.events("status")[-1][3]["reason"] == "signal SIGINT"
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    _none_left(family)


def test_a_dead_rank_ends_the_run_crashed_naming_it(tmp_path):
    proc, run_dir, meta = _start(tmp_path / "runs")
    family = _family(proc)
    os.kill(meta["rank_pids"][1], signal.SIGKILL)
    proc.communicate(timeout=90)
    assert proc.returncode == 1
    with RunReader(run_dir) as reader:
        assert reader.status() == "crashed"
        error = reader.events("status")[-1][3]["error"]
    assert error.startswith("rank 1 ")  # "rank 1 killed by SIGKILL"
    _none_left(family)


def test_two_nodes_through_a_static_rendezvous(tmp_path):
    """--nnodes/--node-rank/--rdzv-endpoint pass through: two "nodes" on this machine, one
    rank each; node 0 records the one run, node 1 nothing."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["--nnodes", "2", "--rdzv-endpoint", f"127.0.0.1:{port}", "--quiet"]
    nodes = []
    for node in (1, 0):
        args = _cli(tmp_path / f"runs{node}")
        args[args.index("--nproc") + 1] = "1"
        nodes.append(
            subprocess.Popen(
                [*args, *common, "--node-rank", str(node), "--set", "train.max_steps=100"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(),
            )  # fmt: skip
        )
    outs = [p.communicate(timeout=120) for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], [o[1][-2000:] for o in outs]
    assert "node 1: finished (node 0 records the run)" in outs[0][0]
    assert not (tmp_path / "runs1").exists()
    (run_dir,) = list((tmp_path / "runs0").iterdir())
    with RunReader(run_dir) as reader:
        meta = reader.meta()
    assert meta["status"] == "finished" and meta["world_size"] == 2


@pytest.mark.gpu
@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="needs CUDA (benchmarks/gpu_check.sh)"
)
def test_nccl_ranks_on_every_gpu(tmp_path):
    """One rank per GPU with NCCL (``--nproc 1`` on a one-GPU box still goes through the
    launcher): finished, one run, gradient statistics identical on every rank."""
    import torch

    gpus = torch.cuda.device_count()
    args = _cli(tmp_path / "runs", "--json", "--device", "cuda")
    args[args.index("--nproc") + 1] = str(gpus)
    proc = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["status"] == "finished" and out["backend"] == "nccl"
    assert out["world_size"] == gpus
    with RunReader(out["run_dir"]) as reader:
        spread = [v for _, v in reader.series("dist/grad_norm_spread")]
        names = reader.scalar_names()
    assert spread and max(spread) <= 1e-6
    assert {f"rank{k}/steps_per_s" for k in range(gpus)} <= set(names)
    assert {f"rank{k}/peak_mem_mb" for k in range(gpus)} <= set(names)
    assert "sys/cuda_mem_peak_mb" in names and any(n.startswith("sys/gpu0/") for n in names)


def test_a_stopped_two_rank_run_resumes_on_two_ranks_where_it_left_off(tmp_path):
    """`tui-trainer resume RUN` of a run trained with --nproc 2 starts two ranks again
    (as many as it had); every rank loads last.pt, and the run ends where an uninterrupted
    one does: its final loss matches the 1-process run's within LOSS_RTOL."""
    steps = 600
    sets = [*SETS, f"train.max_steps={steps}"]
    cfg = find_preset("digits-mlp").resolve(None, sets)
    store = RunStore.create(tmp_path / "one", cfg.preset, "", cfg.to_json(), config_to_toml(cfg))
    assert Trainer(cfg).run(store).status == "finished"
    store.close()
    with RunReader(store.run_dir) as reader:
        reference = reader.last_values()["train/loss"]
    runs = tmp_path / "runs"
    proc, run_dir, _ = _start(runs, steps=steps)
    send_control(run_dir, "stop")
    proc.communicate(timeout=60)
    with RunReader(run_dir) as reader:
        assert reader.status() == "stopped"
        stopped_at = int(reader.meta()["step"])
    assert 0 < stopped_at < steps
    resume = [sys.executable, "-m", "tui_trainer", "resume", run_dir.name, "--runs-dir",
              str(runs), "--json"]  # fmt: skip
    done = subprocess.run(resume, capture_output=True, text=True, env=_env(), timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert (out["status"], out["steps"], out["world_size"], out["backend"]) == (
        "finished", steps, 2, "gloo",
    )  # fmt: skip
    with RunReader(run_dir) as reader:
        running = [d for *_, d in reader.events("status") if d["status"] == "running"]
        after = [s for s, _ in reader.series("rank1/steps_per_s") if s > stopped_at]
        final = reader.last_values()["train/loss"]
    assert [d.get("resumed") for d in running] == [False, True]
    assert after and after[-1] == steps  # rank 1 trained again, to the end
    assert final == pytest.approx(reference, rel=LOSS_RTOL)
    assert [p.name for p in runs.iterdir()] == [run_dir.name]  # the same run, no new one


def test_detach_leaves_the_ranks_training_in_the_background_until_stopped(tmp_path):
    """`run --nproc 2 --detach` returns at once; the launcher runs on in a session of its
    own (no terminal, no SIGHUP), logs to output.log, and a stop ends every process."""
    runs = tmp_path / "runs"
    args = _cli(runs, "--detach", "--json", "--set", "train.max_steps=1000000")
    done = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    (started,) = json.loads(done.stdout)["runs"]
    run_dir, pid = Path(started["run_dir"]), started["pid"]
    assert os.getsid(pid) == pid  # its own session: the command's terminal can go
    deadline = time.monotonic() + 60
    while not ((run_dir / "run.db").exists() and _stepped(run_dir / "run.db")):
        assert time.monotonic() < deadline and psutil.pid_exists(pid), _log(run_dir)
        time.sleep(0.3)
    family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    assert len(family) >= 4  # the launching process, torch.distributed.run, two ranks
    with RunReader(run_dir) as reader:
        assert (reader.meta()["world_size"], reader.status()) == (2, "running")
    send_control(run_dir, "stop")
    _wait_status(run_dir, "stopped", timeout=30)
    _none_left(family)
    assert "stopped after" in _log(run_dir)  # rank 0's last line, in the run's log


def _log(run_dir: Path) -> str:
    path = run_dir / "output.log"
    return path.read_text(errors="replace") if path.exists() else ""
