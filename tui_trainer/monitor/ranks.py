"""Provides process_rank and InactiveMonitor: ``tui_trainer.watch`` in a DDP script records
from rank 0 only.

Under torch.distributed (an initialised process group, or the RANK variable that
``torchrun`` sets before it) every rank other than 0 gets an InactiveMonitor: the
Monitor's calls, doing nothing, so the same script runs on every rank and one run is
recorded. ``should_stop`` and ``checkpoint_requested`` are False there: broadcast rank 0's
answer if the other ranks must follow it (``dist.broadcast_object_list``).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["InactiveMonitor", "process_rank"]


def process_rank() -> int:
    """This process's global rank: 0 outside torch.distributed."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return int(dist.get_rank())
    except Exception:  # noqa: BLE001 (a broken distributed build: not distributed)
        pass
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


class InactiveMonitor:
    """A Monitor on a rank other than 0: records nothing, never stops or pauses."""

    run_dir = None
    run_id = ""
    should_stop = False
    checkpoint_requested = False

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.global_step = 0
        self.status = "running"

    def step(self, loss: Any = None, **scalars: Any) -> None:
        self.global_step += 1

    def log(self, values: dict[str, Any], step: int | None = None) -> None:
        pass

    def eval(self, values: dict[str, Any], step: int | None = None) -> None:
        pass

    def event(self, kind: str, data: dict[str, Any] | None = None) -> None:
        pass

    def finish(self, status: str = "finished", reason: str = "") -> None:
        self.status = status

    def crashed(self, exc: BaseException) -> None:
        self.status = "crashed"

    def __enter__(self) -> InactiveMonitor:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self.finish("finished" if exc is None else "crashed")
        return False

    def __repr__(self) -> str:
        return f"<InactiveMonitor rank {self.rank}: rank 0 records the run>"
