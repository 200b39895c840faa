"""Provides the trainer's plain values and set-up helpers: Progress, TrainResult, the device
choice and seeding."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = [
    "Progress",
    "TrainResult",
    "device_name",
    "every_so_often",
    "pick_device",
    "seed_everything",
]


def every_so_often(show: Callable[[Progress], None], every_s: float) -> Callable[[Progress], None]:
    """``show`` as a trainer's ``on_progress``, called at most every ``every_s`` seconds
    and always at the last step: the plain progress lines of a log or a pipe."""
    last = [0.0]

    def throttled(p: Progress) -> None:
        now = time.monotonic()
        if now - last[0] < every_s and p.step < p.total:
            return
        last[0] = now
        show(p)

    return throttled


@dataclass
class Progress:
    """What a progress display needs, sent at most every PROGRESS_INTERVAL."""

    step: int
    total: int
    epoch: int
    loss: float | None
    val_metric: float | None
    steps_per_s: float
    status: str

    @classmethod
    def of(cls, trainer: Any, status: str) -> Progress:
        """Where ``trainer`` (an engine Trainer) is now."""
        last_eval = trainer.last_eval
        return cls(
            step=trainer.step,
            total=trainer.total_steps,
            epoch=trainer.step // max(trainer.batches_per_epoch, 1),
            loss=trainer.last_loss,
            val_metric=last_eval.get("val/acc", last_eval.get("val/loss")),
            steps_per_s=trainer.rate,
            status=status,
        )


@dataclass
class TrainResult:
    run_id: str
    run_dir: str
    status: str
    steps: int
    epochs: float
    steps_per_s: float
    elapsed_s: float
    final: dict[str, float | None] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "status": self.status,
            "steps": self.steps,
            "epochs": round(self.epochs, 4),
            "steps_per_s": round(self.steps_per_s, 2),
            "elapsed_s": round(self.elapsed_s, 3),
            "final": self.final,
            **({"error": self.error} if self.error else {}),
        }


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"train.device: {name} was asked for but torch sees no CUDA device")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"train.device: {name}: torch sees {torch.cuda.device_count()} CUDA device(s)"
            )
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("train.device: mps was asked for but is not available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def failure_reason(exc: BaseException) -> str:
    """One line for a run that crashed; out of memory says what to try."""
    from tui_trainer.text import first_line

    reason = first_line(exc, with_type=True)
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        reason += " (out of memory: try a smaller data.batch_size or a smaller model)"
    return reason
