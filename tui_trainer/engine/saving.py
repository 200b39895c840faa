"""Provides Checkpointing (the trainer's saves and loads) and BestFile (when best.pt is written).

``last.pt`` is the resume point: written (fsync'd) when the checkpoint clock says, on a
request, at a pause and when the run ends. ``best.pt`` is the state of the best evaluation.
Early in training the validation metric improves at most evaluations, and writing best.pt
each time (~2.5 ms for a digits-mlp, whose epoch takes ~18 ms on the CPU) was the largest
part of the engine's overhead over a plain loop. So a best state that fits in
BEST_IN_MEMORY_MAX bytes is copied where it lives (0.28 ms with its capture) and written
when WRITE_INTERVAL_S has passed since best.pt was last written (checked after each step
while one is held), and always before last.pt is written and when the run ends, however it
ends. best.pt may lag the best evaluation by that interval; a kill -9 loses at most that much (the
file on disk stays whole and finite). A larger state is written at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tui_trainer.engine import checkpoint as ckpt

__all__ = ["BEST_IN_MEMORY_MAX", "WRITE_INTERVAL_S", "BestFile", "Checkpointing"]

BEST_IN_MEMORY_MAX = 64 << 20  # bytes of tensors a best state may hold to be kept in memory
WRITE_INTERVAL_S = 5.0  # best.pt is written at most this often while training improves


class BestFile:
    """The best state so far, on its way to ``best.pt``: ``offer`` a new best, ``write_due``
    after each step while one is held, ``flush`` whenever the file must be current."""

    def __init__(
        self,
        write: Callable[[dict[str, Any]], None],
        interval_s: float | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self._write = write
        self.interval_s = WRITE_INTERVAL_S if interval_s is None else interval_s
        self.max_bytes = BEST_IN_MEMORY_MAX if max_bytes is None else max_bytes
        self.pending: dict[str, Any] | None = None  # a best not yet on disk
        self._written = -float("inf")  # monotonic time of the last write

    def offer(self, state: dict[str, Any]) -> None:
        """A new best (``capture``'s state, its tensors still the live ones)."""
        if _nbytes(state) > self.max_bytes:
            self.pending = None
            self._write_now(state)
            return
        self.pending = _copied(state)  # training goes on changing the originals
        self.write_due()

    def write_due(self) -> None:
        if self.pending is not None and time.monotonic() - self._written >= self.interval_s:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            state, self.pending = self.pending, None
            self._write_now(state)

    def _write_now(self, state: dict[str, Any]) -> None:
        self._write(state)
        self._written = time.monotonic()


_LEAVES = {int, float, bool, str, type(None)}


def _plain(seq: list[Any] | tuple[Any, ...]) -> bool:
    """No tensor and no container inside (the Python RNG's 625 ints): nothing to walk."""
    return all(type(v) in _LEAVES for v in seq)


def _nbytes(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, dict):
        return sum(_nbytes(v) for v in x.values())
    if isinstance(x, (list, tuple)) and not _plain(x):
        return sum(_nbytes(v) for v in x)
    return 0


def _copied(x: Any) -> Any:
    """A copy of a state whose tensors no later step can change (other leaves are
    immutable: ints, floats, strings, None)."""
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, dict):
        return {k: _copied(v) for k, v in x.items()}
    if isinstance(x, list):
        return list(x) if _plain(x) else [_copied(v) for v in x]
    if isinstance(x, tuple):
        return x if _plain(x) else tuple(_copied(v) for v in x)
    return x


class Checkpointing:
    """Mixed into the Trainer, whose state it saves: model, optimizer, scheduler, scaler,
    step, best, the probe interval, pre-training; ``checkpoints`` is the run's folder."""

    model: Any
    optimizer: Any
    scheduler: Any
    scaler: Any
    pretrainer: Any
    sampler: Any
    store: Any
    device: torch.device
    clock: ckpt.CheckpointClock
    checkpoints: Path
    step: int
    best: dict[str, float]
    last_loss: float | None

    def _start_checkpoints(self, run_dir: Path) -> None:
        self.checkpoints = Path(run_dir) / "checkpoints"
        self.best_file = BestFile(lambda state: self._write(state, "best.pt", durable=False))

    def _save(self, path: Path, durable: bool = True) -> None:
        """Checkpoint the state now (best.pt: through ``best_file``); never one from a
        non-finite state (the last good one stays)."""
        if path.name != "best.pt":
            self.best_file.flush()  # a finite copy: best.pt is never behind what last.pt says
        if not ckpt.finite_state(self.model, self.last_loss):
            self.store.event(self.step, "checkpoint_skipped", {"path": path.name})
            return
        parts = (self.model, self.optimizer, self.scheduler, self.scaler)
        state = ckpt.capture(*parts, step=self.step, best=self.best, every=self.sampler.every)
        if self.pretrainer is not None:
            state["pretrain"] = self.pretrainer.state_dict()
        if path.name == "best.pt":
            self.best_file.offer(state)
            return
        self._write(state, path.name, durable)

    def _write(self, state: dict[str, Any], name: str, durable: bool = True) -> None:
        path = self.checkpoints / name
        ckpt.save_atomic(state, path, fsync=durable)
        self.clock.saved(path)
        self.store.event(self.step, "checkpoint", {"path": name, "of_step": int(state["step"])})

    def _load(self, path: Path) -> None:
        state = ckpt.load(path, self.device)
        ckpt.restore(state, self.model, self.optimizer, self.scheduler, self.scaler)
        self._restored_rng(state["rng"])
        self.step = int(state["step"])
        self.best = dict(state.get("best", {}))
        self.sampler.restore(state.get("probe_every"))
        if self.pretrainer is not None:
            self.pretrainer.load_state_dict(state.get("pretrain", {"done": True}))

    def _restored_rng(self, rng: dict[str, Any]) -> None:
        """After the RNG states are set (one process: exactly as saved); see DDP's."""
