"""Provides the trainer's plain values and set-up helpers: Progress, TrainResult, the device
choice and seeding."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["Progress", "TrainResult", "device_name", "pick_device", "seed_everything"]


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
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device: cuda was asked for but torch sees no CUDA device")
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
