"""Provides the worker of ``tui-trainer run --nproc N``: one rank, started by PyTorch's own
launcher, ``python -m torch.distributed.run ... -m tui_trainer.runner.ddp RUN_DIR
[--resume]``.

It reads RANK, WORLD_SIZE and LOCAL_RANK from the launcher's environment, joins the process
group (NCCL on GPUs, gloo on the CPU) and trains ``RUN_DIR/config.toml`` as one rank of a
DDP run (``engine.distributed``). Rank 0 records into the run's store and prints a plain
progress line every few seconds; the others record nothing. On a node other than node 0
RUN_DIR only holds the config (the launching command writes it to a temporary folder).
``--resume``: every rank continues the stopped run from ``RUN_DIR/checkpoints/last.pt``.

Exit codes: 0 when the run finished, stopped or diverged (the store says which), 1 when
this rank crashed (one line ``rank K crashed: ...`` on stderr, which the launching
command reads to name the rank), 2 for bad arguments.
"""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path
from typing import Any

from tui_trainer.config import load_preset_file
from tui_trainer.text import first_line

__all__ = ["PROGRESS_EVERY_S", "main"]

PROGRESS_EVERY_S = 2.0


def _progress_printer(label: str) -> Any:
    from tui_trainer.engine.runtime import every_so_often

    def show(p: Any) -> None:
        loss = "-" if p.loss is None else f"{p.loss:.4g}"
        print(
            f"{label} step {p.step}/{p.total} loss {loss} {p.steps_per_s:.0f} steps/s",
            flush=True,
        )

    return every_so_often(show, PROGRESS_EVERY_S)


def _init_group(device: str) -> None:
    import torch
    import torch.distributed as dist

    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(device.partition(":")[2] or 0))
    # Long enough for rank 0's evaluations and checkpoints between two collectives; a rank
    # that dies closes its sockets, which the others see at once.
    dist.init_process_group(backend, timeout=datetime.timedelta(hours=2))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    resume = args[1:] == ["--resume"]
    if len(args) != 1 + resume or "RANK" not in os.environ:
        print("usage: python -m torch.distributed.run ... -m tui_trainer.runner.ddp RUN_DIR"
              " [--resume]")  # fmt: skip
        return 2
    run_dir = Path(args[0])
    cfg = load_preset_file(run_dir / "config.toml").resolve()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    import torch.distributed as dist

    from tui_trainer.engine.distributed import DistributedTrainer, NullRecorder, rank_device
    from tui_trainer.engine.signals import stop_on_signals
    from tui_trainer.store import RunStore

    _init_group(rank_device(cfg.train.device, local_rank))
    store: Any = RunStore(run_dir) if rank == 0 else NullRecorder(run_dir)
    try:
        trainer = DistributedTrainer(cfg, local_rank=local_rank)
        if rank == 0:
            trainer.on_progress = _progress_printer(cfg.label)
        with stop_on_signals(trainer, ending=True):
            trainer.prepare()
            result = trainer.run(store, resume=resume)
    except Exception as exc:  # before the loop: the config or the data
        print(f"rank {rank} crashed: {first_line(exc, with_type=True)}", file=sys.stderr)
        if rank == 0:
            store.set_status("crashed", 0, error=f"rank 0: {first_line(exc, with_type=True)}")
        return 1
    finally:
        if rank == 0:
            store.close()
    if result.status == "crashed":
        print(f"rank {rank} crashed: {result.error}", file=sys.stderr, flush=True)
        return 1
    try:  # leave together; then os._exit (below) skips tearing the group down: gloo's
        dist.barrier()  # threads sometimes abort a process that does ("terminate called...")
    except Exception as exc:
        print(
            f"rank {rank} crashed: at the end: {first_line(exc, with_type=True)}", file=sys.stderr
        )
        return 1
    if rank == 0:
        print(f"{result.status} after {result.steps} steps ({result.steps_per_s:.1f} steps/s)")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the store is closed; no C++ destructors of the process group at exit
