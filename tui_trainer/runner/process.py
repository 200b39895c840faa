"""Provides launch and RunProcess: start a run's training child process and watch it.

``launch`` creates the run (unless resuming) and starts ``python -m tui_trainer.runner
RUN_DIR`` with its output in ``output.log``. A crash, an out-of-memory kill or a ``kill -9``
of the child never takes its parent down; ``RunProcess.poll`` then marks the run
``crashed`` with the tail of its log. No UI imports here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tui_trainer.config import RunConfig, config_to_toml
from tui_trainer.store import LIVE_STATUSES, RunReader, RunStore
from tui_trainer.store.liveness import process_identity

__all__ = ["RunProcess", "child_threads", "launch", "log_tail", "mark_if_crashed"]


def child_threads() -> int:
    """Leave one core to the app: ``cores - 1`` torch threads, at least one."""
    return max(1, (os.cpu_count() or 2) - 1)


def log_tail(run_dir: Path, lines: int = 20) -> str:
    try:
        text = (run_dir / "output.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class RunProcess:
    """A training child process and its run directory."""

    run_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once known (without polling or marking)."""
        return self.process.returncode

    def alive(self) -> bool:
        """Still running (polls the child; marks nothing)."""
        return self.process.poll() is None

    def poll(self) -> int | None:
        """The exit code once the child has ended (and the run is marked if it crashed)."""
        code = self.process.poll()
        if code is not None:
            mark_if_crashed(self.run_dir, code)
        return code

    def wait(self, timeout: float | None = None) -> int:
        code = self.process.wait(timeout)
        mark_if_crashed(self.run_dir, code)
        return code

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()


def mark_if_crashed(run_dir: Path, code: int) -> None:
    """After the child ended: a run still marked live did not end by itself."""
    with RunReader(run_dir) as reader:
        status = reader.meta().get("status")
    if status not in LIVE_STATUSES:
        return
    store = RunStore(run_dir)
    try:
        why = f"training process exited with code {code}"
        if code < 0:
            why = f"training process was killed by signal {-code}"
        store.set_status("crashed", int(store_step(run_dir)), error=why, log=log_tail(run_dir))
    finally:
        store.close()


def store_step(run_dir: Path) -> int:
    with RunReader(run_dir) as reader:
        return int(reader.meta().get("step") or 0)


# The child must not import a random.py or torch.py from the folder the app was started in:
# -P (3.11+) keeps the working directory off sys.path; before 3.11, drop it by hand.
SAFE_PATH = (
    ["-P", "-m"]
    if sys.version_info >= (3, 11)
    else ["-c", "import runpy, sys; del sys.path[0]; sys.argv = sys.argv[1:]; "
          "runpy.run_module('tui_trainer.runner', run_name='__main__')"]
)  # fmt: skip


def launch(
    cfg: RunConfig,
    runs_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    run_dir: Path | None = None,
) -> RunProcess:
    """Create a run (unless resuming ``run_dir``) and start its training child process."""
    resume = run_dir is not None
    store = None
    if run_dir is None:
        store = RunStore.create(
            runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg)
        )
        run_dir = store.run_dir
    env = dict(os.environ)
    n = threads or child_threads()
    env.update(OMP_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n), PYTHONUNBUFFERED="1")
    env["TUI_TRAINER_THREADS"] = str(n)
    args = [sys.executable, *SAFE_PATH, "tui_trainer.runner", str(run_dir)]
    if resume:
        args.append("--resume")
    log = open(run_dir / "output.log", "ab")  # noqa: SIM115 (the child owns it)
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl+C in the app's terminal does not reach it
        )
        if store is not None:
            # the trainer records these too, but only after its imports: a child that dies
            # before then leaves a 'created' run that readers can now tell from a live one
            store.set_meta(**process_identity(proc.pid))
    finally:
        log.close()
        if store is not None:
            store.close()
    return RunProcess(run_dir, proc)
