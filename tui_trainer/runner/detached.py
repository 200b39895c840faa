"""Provides start_detached: ``tui-trainer run PRESET --nproc N --detach``, in the background.

The command creates the run, then starts ``python -m tui_trainer.runner.detached RUN_DIR N``
in a session of its own, its stdout and stderr appended to the run's ``output.log``: it
outlives the command, its terminal and a SIGHUP, runs ``torch.distributed.run`` on the run
as the foreground command does (``runner.torchrun``), and marks the run ``crashed`` naming
the rank when one fails. Until rank 0 starts recording, the run's pid is this process's, so
a launch that dies early leaves a run readers can tell from a live one. One machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tui_trainer.config import RunConfig, config_to_toml, load_preset_file
from tui_trainer.runner.process import SAFE_PATH
from tui_trainer.runner.torchrun import Launch, launch_distributed
from tui_trainer.store import RunStore
from tui_trainer.store.liveness import process_identity

__all__ = ["main", "start_detached"]


def start_detached(cfg: RunConfig, launch: Launch, runs_dir: str | None) -> tuple[Path, int]:
    """Create the run and start its ranks' launcher in the background: (run_dir, pid)."""
    launch.validate(cfg)
    if launch.nnodes > 1 or launch.rdzv_endpoint:
        raise ValueError(
            "--detach and --nnodes > 1 (or --rdzv-endpoint): not together; run each node "
            "under nohup"
        )
    store = RunStore.create(runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg))
    run_dir = store.run_dir
    log = open(run_dir / "output.log", "ab")  # noqa: SIM115 (the launcher owns it)
    try:
        args = [sys.executable, *SAFE_PATH, "tui_trainer.runner.detached", str(run_dir)]
        try:
            proc = subprocess.Popen(
                [*args, str(launch.nproc)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:  # not left 'created' for good
            store.set_status("crashed", 0, error=f"the launcher did not start: {exc}")
            raise
        store.set_meta(**process_identity(proc.pid))
    finally:
        log.close()
        store.close()
    return run_dir, proc.pid


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or not args[1].isdigit():
        print("usage: python -m tui_trainer.runner.detached RUN_DIR NPROC", file=sys.stderr)
        return 2
    run_dir = Path(args[0])
    cfg = load_preset_file(run_dir / "config.toml").resolve()
    out = launch_distributed(cfg, Launch(int(args[1])), None, sys.stdout, run_dir=run_dir)
    return 0 if out.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
