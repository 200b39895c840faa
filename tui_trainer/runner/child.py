"""Provides the training child's entry point: ``python -m tui_trainer.runner RUN_DIR``.

It trains the run whose ``config.toml`` is in RUN_DIR (``--resume``: from its last
checkpoint), recording into the run's store; its stdout and stderr are ``output.log``.
Exit codes are the headless ``run``'s: 0 when the run finished; 1 when it was stopped,
diverged or crashed; 2 for bad arguments or a checkpoint that cannot be resumed from (one
line on stderr; the run keeps its status and everything recorded).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tui_trainer.config import load_preset_file
from tui_trainer.store import RunStore
from tui_trainer.text import first_line

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    resume = "--resume" in args
    args = [a for a in args if a != "--resume"]
    if len(args) != 1:
        print("usage: python -m tui_trainer.runner RUN_DIR [--resume]", file=sys.stderr)
        return 2
    run_dir = Path(args[0])
    cfg = load_preset_file(run_dir / "config.toml").resolve()
    import torch

    from tui_trainer.engine.checkpoint import CheckpointError
    from tui_trainer.engine.signals import stop_on_signals
    from tui_trainer.engine.trainer import Trainer

    threads = cfg.train.threads or int(os.environ.get("TUI_TRAINER_THREADS", "0"))
    if threads:
        torch.set_num_threads(threads)
    store = RunStore(run_dir)
    trainer = Trainer(cfg)
    started = time.time()
    try:
        trainer.prepare()
        with stop_on_signals(trainer, ending=True):
            result = trainer.run(store, resume=resume)
    except CheckpointError as exc:  # nothing was started: the run stays as it was
        store.close()
        print(f"error: {first_line(exc)}", file=sys.stderr, flush=True)
        return 2
    except Exception as exc:
        store.set_status("crashed", 0, error=first_line(exc, with_type=True))
        store.close()
        raise
    store.close()
    if result.status == "crashed":  # the traceback into output.log, where a person looks
        print(_traceback(run_dir), file=sys.stderr, end="", flush=True)
    print(
        f"{result.status} after {result.steps} steps in {time.time() - started:.1f}s"
        + (f": {result.error}" if result.error else ""),
        flush=True,
    )
    return 0 if result.status == "finished" else 1


def _traceback(run_dir: Path) -> str:
    from tui_trainer.store import RunReader

    with RunReader(run_dir) as reader:
        errors = reader.events("error")
    return str(errors[-1][3].get("traceback", "")) if errors else ""
