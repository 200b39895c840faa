"""Provides launch_distributed: ``tui-trainer run --nproc N`` through PyTorch's own launcher.

It runs ``python -m torch.distributed.run --nproc_per_node N (--standalone | --nnodes M
--node_rank K --rdzv_backend static --rdzv_endpoint HOST:PORT) -m tui_trainer.runner.ddp
RUN_DIR [--resume]`` and waits. On node 0 RUN_DIR is a new run (created here, or by
``--detach`` before it started this in the background: ``runner.detached``; recorded by
rank 0), or a stopped one that every rank continues from its ``last.pt`` (``tui-trainer
resume RUN``: one machine); on any other node it is a temporary folder holding only the
config. The launcher ends every
worker when one fails; afterwards this reads who failed (a worker's ``rank K crashed:``
line, else the launcher's "Root Cause" report) and marks the run ``crashed`` naming that
rank. No torch import here: the command line stays light.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tui_trainer.config import RunConfig, config_to_toml
from tui_trainer.store import LIVE_STATUSES, RunReader, RunStore

__all__ = ["Launch", "failed_rank", "launch_distributed", "torchrun_argv"]

CRASH_LINE = re.compile(r"rank (\d+) crashed: (.*)")
FAILURE = re.compile(r"rank\s*:\s*(\d+)[^\n]*\n\s*exitcode\s*:\s*(-?\d+)")
ROOT_RANK = re.compile(r"rank\s*:\s*(\d+)")
ROOT_EXIT = re.compile(r"exitcode\s*:\s*(-?\d+)")


@dataclass(frozen=True)
class Launch:
    """How to start the ranks: processes per node, and the nodes' rendezvous."""

    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = ""

    def validate(self, cfg: RunConfig) -> None:
        if self.nproc < 1 or self.nnodes < 1:
            raise ValueError("--nproc and --nnodes: expected integers >= 1")
        if not 0 <= self.node_rank < self.nnodes:
            raise ValueError(f"--node-rank {self.node_rank}: expected 0 .. {self.nnodes - 1}")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ValueError("--nnodes > 1: expected --rdzv-endpoint HOST:PORT (node 0's)")
        world = self.nproc * self.nnodes
        if cfg.data.batch_size % world:
            raise ValueError(
                f"data.batch_size {cfg.data.batch_size}: expected a multiple of the "
                f"{world} processes (it is the global batch, split among them)"
            )
        if cfg.train.pretrain_epochs:
            raise ValueError("train.pretrain_epochs: greedy pre-training runs on one process")
        if cfg.train.device == "mps":
            raise ValueError("train.device mps: --nproc runs on the CPU (gloo) or CUDA (NCCL)")


def torchrun_argv(launch: Launch, run_dir: Path, resume: bool = False) -> list[str]:
    argv = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={launch.nproc}"]
    if launch.nnodes == 1 and not launch.rdzv_endpoint:
        argv.append("--standalone")
    else:
        argv += [
            f"--nnodes={launch.nnodes}",
            f"--node_rank={launch.node_rank}",
            "--rdzv_backend=static",
            f"--rdzv_endpoint={launch.rdzv_endpoint}",
        ]
    return [*argv, "-m", "tui_trainer.runner.ddp", str(run_dir), *(["--resume"] if resume else [])]


def failed_rank(stderr_lines: list[str]) -> tuple[int, str] | None:
    """(rank, why) of the first failure the workers or the launcher reported."""
    for line in stderr_lines:
        m = CRASH_LINE.search(line)
        if m and "rank 0 crashed" not in m.group(0):
            return int(m.group(1)), m.group(2).strip()
    text = "\n".join(stderr_lines)
    report = text.rfind("Failures:")
    if report >= 0:  # a rank killed from outside is the cause; its peers fail after it
        for rank, code in FAILURE.findall(text, report):
            if int(code) < 0 and int(code) != -signal.SIGTERM:  # SIGTERM: the launcher's
                return int(rank), _exit_text(int(code))
    root = text.rfind("Root Cause")
    if root >= 0:
        rank, code = ROOT_RANK.search(text, root), ROOT_EXIT.search(text, root)
        if rank:
            exit_code = int(code.group(1)) if code else 1
            return int(rank.group(1)), _exit_text(exit_code)
    for line in stderr_lines:  # rank 0 itself
        m = CRASH_LINE.search(line)
        if m:
            return int(m.group(1)), m.group(2).strip()
    return None


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exited with code {code}"


def _pump(src: IO[str], dst: IO[str], keep: deque[str]) -> None:
    for line in src:
        keep.append(line.rstrip("\n"))
        dst.write(line)
        dst.flush()


@dataclass
class Outcome:
    run_dir: Path
    returncode: int
    stderr: list[str] = field(default_factory=list)


def launch_distributed(
    cfg: RunConfig,
    launch: Launch,
    runs_dir: str | None,
    stdout: IO[str] | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
) -> Outcome:
    """Create the run (node 0), start the ranks through torch.distributed.run, wait, and
    mark the run ``crashed`` naming the rank when one failed. ``run_dir``: a run created
    already (``--detach``), or with ``resume`` a stopped one that every rank continues
    from its checkpoint (one machine)."""
    launch.validate(cfg)
    if run_dir is not None and launch.nnodes > 1:
        raise ValueError("--nnodes > 1: not with --detach or resume (run on one machine)")
    tmp = None
    if run_dir is None and launch.node_rank == 0:
        store = RunStore.create(
            runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg)
        )
        run_dir = store.run_dir
        store.close()
    elif run_dir is None:  # another node: only the config
        tmp = tempfile.TemporaryDirectory(prefix="tui-trainer-node-")
        run_dir = Path(tmp.name)
        (run_dir / "config.toml").write_text(config_to_toml(cfg), encoding="utf-8")
    try:
        argv = torchrun_argv(launch, run_dir, resume=resume)
        code, lines = _run(argv, launch, stdout)
    finally:
        if tmp is not None:
            tmp.cleanup()
    if launch.node_rank == 0:
        _reconcile(run_dir, code, lines)
    return Outcome(run_dir, code, lines)


def _env(launch: Launch) -> dict[str, str]:
    env = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // launch.nproc))
    env.setdefault("OMP_NUM_THREADS", threads)  # what torchrun would set, said here
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(argv: list[str], launch: Launch, stdout: IO[str] | None) -> tuple[int, list[str]]:
    """Run the launcher; its stderr passes through (and its tail is kept). Ctrl+C reaches
    the launcher and the ranks from the terminal; SIGTERM here is passed on to it."""
    proc = subprocess.Popen(
        argv, stdout=stdout, stderr=subprocess.PIPE, text=True, env=_env(launch)
    )
    keep: deque[str] = deque(maxlen=400)
    pump = threading.Thread(target=_pump, args=(proc.stderr, sys.stderr, keep), daemon=True)
    pump.start()

    def forward(signum: int, frame: Any) -> None:
        proc.send_signal(signum)

    # Ctrl+C reaches the launcher from the terminal already (a second one would cut its
    # clean shutdown short); a SIGTERM sent to this command is passed on.
    old = {signal.SIGTERM: signal.signal(signal.SIGTERM, forward)}
    old[signal.SIGINT] = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        code = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    pump.join(timeout=5)
    return code, list(keep)


def _reconcile(run_dir: Path, code: int, lines: list[str]) -> None:
    """After the launcher: a failure names its rank; a run left live did not end itself."""
    with RunReader(run_dir) as reader:
        meta = reader.meta()
    status = meta.get("status")
    found = failed_rank(lines)
    ended = status not in LIVE_STATUSES and status not in ("created", "crashed")
    if ended and (code == 0 or found is None):  # e.g. a SIGTERM: the ranks stopped cleanly
        return
    if status == "finished" and found is not None:  # trained to the end, then a rank failed
        _warn(run_dir, int(meta.get("step") or 0), f"rank {found[0]} {found[1]} after the end")
        return
    if found is None:
        why = f"torch.distributed.run exited with code {code}"
    elif found[1].startswith(("killed by", "exited with")):
        why = f"rank {found[0]} {found[1]}"
    else:
        why = f"rank {found[0]} crashed: {found[1]}"
    store = RunStore(run_dir)
    try:
        tail = "\n".join(lines[-20:])
        store.set_status("crashed", int(meta.get("step") or 0), error=why, log=tail)
    finally:
        store.close()


def _warn(run_dir: Path, step: int, message: str) -> None:
    store = RunStore(run_dir)
    try:
        store.event(step, "warning", {"message": message})
        store.flush()
    finally:
        store.close()
