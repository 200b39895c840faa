"""Provides TrainLog: the training loss and accuracy of every log window, kept on the device
and read to the host in folds.

A step only keeps references to its loss, outputs and targets. A log step closes the window
of the steps since the one before, with what is known then (learning rate, steps/s,
epoch). Closed windows wait, and are reduced together in one fold: when FOLD_SECONDS have
passed since the last, and whenever the trainer needs the numbers (before last.pt, at the
run's end). A fold is a handful of kernels and two reads however many windows it holds.

Why: in a digits-mlp loop on the CPU, reducing every log window on its own (ten steps: nine
kernels and two reads) cost 12 ms of a 620 ms run, 2%: a small op right after a training
step costs 15-40 us, its code and data out of cache. Folds every 0.2 s cost ~1 ms. On a GPU
a fold is also the only host sync of the training loss. The price: train/loss reaches the
store up to FOLD_SECONDS (plus one log interval: folds happen at log steps) later, and a
non-finite loss stops the run that much later (it is always found before last.pt is
written, and a stopped run whose loss had turned non-finite ends ``diverged``).

A window's numbers do not depend on the fold that reduced it: the per-step losses and
correct counts are read to the host and summed there (math.fsum), so a run's records are
the same bit for bit however its folds fell.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import torch

from tui_trainer.engine.placement import to_device

__all__ = ["FOLD_BYTES", "FOLD_SECONDS", "FOLD_STEPS", "TrainLog", "Window"]

FOLD_SECONDS = 0.2  # closed windows wait at most this long (the store writes every 0.25 s)
FOLD_STEPS = 4096  # ... or, at a log step, until this many steps are held
STACK_STEPS = 256  # the losses held are stacked into one tensor every this many steps
FOLD_BYTES = 16 << 20  # outputs held are reduced to per-step counts when they reach this


@dataclass(frozen=True)
class Window:
    """One log window, reduced: its last step, its examples, mean loss, correct predictions
    (None for a task without an accuracy), and the figures recorded with it."""

    step: int
    seen: int
    loss: float
    correct: int | None
    extra: dict[str, float]

    @property
    def acc(self) -> float | None:
        return None if self.correct is None else self.correct / self.seen


class TrainLog:
    """``add`` every step, ``close`` at every log step, ``fold`` when ``due``.

    The steps held, oldest first: read to the host (``_read_*``), then counted on the
    device (``_counts``, chunks of cumulative correct counts), then not yet counted
    (``_outs``); ``_sizes`` has a batch size for each of them."""

    def __init__(self, objective: Any, step: int, fold_seconds: float = FOLD_SECONDS) -> None:
        self.objective = objective
        self._accuracy = objective is not None and objective.has_accuracy
        self.fold_seconds = fold_seconds  # 0: fold at every close (DDP: ranks fold together)
        self._sizes: list[int] = []
        self._losses: list[torch.Tensor] = []  # 0-d, not read yet
        self._stacked: list[torch.Tensor] = []  # 1-d: earlier losses not read yet, stacked
        self._read_losses: list[float] = []
        self._outs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._counts: list[torch.Tensor] = []
        self._read_counts: list[int] = []
        self._bytes = 0  # of the outputs held
        self._closed: list[tuple[int, int, dict[str, float]]] = []  # (step, steps, extra)
        self._last_fold = time.monotonic()
        self.t, self.step = time.perf_counter(), step  # the open window's start

    @property
    def pending(self) -> int:
        """Closed windows not folded yet."""
        return len(self._closed)

    def add(self, loss: torch.Tensor, out: Any, y: torch.Tensor) -> None:
        self._losses.append(loss.detach())
        if len(self._losses) >= STACK_STEPS:  # a long log interval: one tensor, not hundreds
            with torch.no_grad():
                self._stacked.append(torch.stack(self._losses))
            self._losses.clear()
        self._sizes.append(y.shape[0])
        if self._accuracy:
            out = out.detach()
            self._outs.append((out, y))
            self._bytes += out.nbytes
            if self._bytes >= FOLD_BYTES:
                self._count()

    def rate(self, step: int) -> float:
        """Steps per second since the open window started."""
        return (step - self.step) / max(time.perf_counter() - self.t, 1e-9)

    def close(self, step: int, extra: dict[str, float]) -> None:
        """End the open window at ``step`` (a log step); the next one starts now."""
        steps = len(self._sizes) - sum(n for _, n, _ in self._closed)
        if steps > 0:
            self._closed.append((step, steps, extra))
        self.t, self.step = time.perf_counter(), step

    def due(self) -> bool:
        """Whether the closed windows should be folded now."""
        if not self._closed:
            return False
        if len(self._sizes) >= FOLD_STEPS:
            return True
        return time.monotonic() - self._last_fold >= self.fold_seconds

    def fold(self) -> list[Window]:
        """The closed windows, reduced, oldest first. Everything held is read (the open
        window's steps too, kept as numbers): two transfers."""
        self._last_fold = time.monotonic()
        if not self._closed:
            return []
        self._count()
        with torch.no_grad():
            if self._losses:
                self._stacked.append(torch.stack(self._losses))
                self._losses.clear()
            if self._stacked:
                self._read_losses += torch.cat(self._stacked).tolist()
                self._stacked.clear()
            if self._counts:
                self._read_counts += _per_step(self._counts)
                self._counts.clear()
        windows, lo = [], 0
        for step, n, extra in self._closed:
            sizes = self._sizes[lo : lo + n]
            seen = sum(sizes)
            losses = self._read_losses[lo : lo + n]
            loss = math.fsum(v * b for v, b in zip(losses, sizes, strict=True)) / seen
            correct = sum(self._read_counts[lo : lo + n]) if self._read_counts else None
            windows.append(Window(step, seen, loss, correct, extra))
            lo += n
        del self._sizes[:lo], self._read_losses[:lo], self._read_counts[:lo]
        self._closed.clear()
        return windows

    def _count(self) -> None:
        """Reduce the outputs held to a chunk of correct counts, cumulative within it."""
        if not self._outs:
            return
        with torch.no_grad():
            outs = torch.cat([o for o, _ in self._outs])
            ys = torch.cat([y for _, y in self._outs])
            hits = self.objective.hits(outs, ys).cumsum(0)
            sizes = self._sizes[len(self._sizes) - len(self._outs) :]  # the outputs' steps
            ends = torch.tensor([n - 1 for n in accumulate(sizes)])
            self._counts.append(hits[to_device(ends, hits.device)])
        self._outs.clear()
        self._bytes = 0


def _per_step(chunks: list[torch.Tensor]) -> list[int]:
    """Per-step counts from chunks of cumulative counts, read in one transfer."""
    flat = (torch.cat(chunks) if len(chunks) > 1 else chunks[0]).tolist()
    out, i = [], 0
    for chunk in chunks:
        prev = 0
        for v in flat[i : i + len(chunk)]:
            out.append(int(v) - prev)
            prev = int(v)
        i += len(chunk)
    return out
