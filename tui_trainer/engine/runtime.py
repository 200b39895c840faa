"""Provides the trainer's plain values and set-up helpers: Progress, TrainResult, LogWindow
(the device-side sums between log steps), the device choice and seeding."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = [
    "LogWindow",
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


FOLD_STEPS = 32  # a log window reduces its steps' losses and outputs this many at a time
FOLD_BYTES = 16 << 20  # ... or sooner, when the outputs it holds reach this size


@dataclass
class LogWindow:
    """Training loss and correct predictions summed on the device between two log steps
    (read to the host only when logged), and the clock of the steps/s figure.

    A step only keeps references to its loss, outputs and targets; they are reduced
    FOLD_STEPS (or FOLD_BYTES of outputs) at a time, a handful of kernels for all of them:
    reducing each step on its own cost five small kernels, 37 us a step in a digits-mlp
    loop on the CPU (4% of its step), against 14 us now (folds included)."""

    loss_sum: torch.Tensor
    correct_sum: torch.Tensor
    seen: int
    t: float
    step: int
    _losses: list[tuple[torch.Tensor, int]] = field(default_factory=list)
    _outs: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    _bytes: int = 0
    _objective: Any = None

    @classmethod
    def start(cls, device: torch.device, step: int) -> LogWindow:
        zero = torch.zeros((), device=device)
        return cls(zero, zero.clone(), 0, time.perf_counter(), step)

    def add(self, loss: torch.Tensor, out: Any, x: torch.Tensor, y: torch.Tensor, obj: Any) -> None:
        self._losses.append((loss.detach(), len(y)))
        if obj.has_accuracy:
            out = out.detach()
            self._outs.append((out, y))
            self._bytes += out.numel() * out.element_size()
            self._objective = obj
        self.seen += len(y)
        if len(self._losses) >= FOLD_STEPS or self._bytes >= FOLD_BYTES:
            self._fold()

    def sums(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of loss x batch size, correct predictions) of the window's steps."""
        self._fold()
        return self.loss_sum, self.correct_sum

    def _fold(self) -> None:
        with torch.no_grad():
            by_size: dict[int, list[torch.Tensor]] = {}
            for loss, n in self._losses:
                by_size.setdefault(n, []).append(loss)
            for n, losses in by_size.items():
                self.loss_sum.add_(torch.stack(losses).sum(), alpha=n)
            if self._outs:
                outs = torch.cat([o for o, _ in self._outs])
                ys = torch.cat([y for _, y in self._outs])
                self.correct_sum.add_(self._objective.correct(outs, None, ys))
        self._drop_pending()

    def _drop_pending(self) -> None:
        self._losses.clear()
        self._outs.clear()
        self._bytes = 0

    def rate(self, step: int) -> float:
        return (step - self.step) / max(time.perf_counter() - self.t, 1e-9)

    def reset(self, step: int) -> None:
        self._drop_pending()
        self.loss_sum.zero_()
        self.correct_sum.zero_()
        self.seen = 0
        self.t, self.step = time.perf_counter(), step


def failure_reason(exc: BaseException) -> str:
    """One line for a run that crashed; out of memory says what to try."""
    from tui_trainer.text import first_line

    reason = first_line(exc, with_type=True)
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        reason += " (out of memory: try a smaller data.batch_size or a smaller model)"
    return reason
