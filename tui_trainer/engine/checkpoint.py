"""Provides atomic checkpoint files and the RNG state that makes a resumed run exact."""

from __future__ import annotations

import math
import os
import pickle
import random
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tui_trainer.text import first_line

__all__ = [
    "CheckpointClock",
    "CheckpointError",
    "capture",
    "finite_state",
    "load",
    "restore",
    "rng_state",
    "save_atomic",
    "set_rng_state",
]


def save_atomic(state: dict[str, Any], path: Path, fsync: bool = True) -> None:
    """Write to a temporary file, then rename: never a half-written file. ``fsync`` also
    makes it durable against power loss (~10 ms here: skipped for best.pt, which is
    rewritten at every improvement)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read back (truncated, overwritten, not ours)."""


class CheckpointClock:
    """When a periodic checkpoint is due: every ``every`` steps and every ``every_seconds``
    of wall-clock time (whichever comes first; 0 turns either off). Checked between steps,
    so a checkpoint always holds a whole step; a save of last.pt restarts the clock."""

    def __init__(self, every: int, every_seconds: float) -> None:
        self.every, self.every_seconds = every, every_seconds
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        if self.every and step % self.every == 0:
            return True
        return bool(self.every_seconds) and time.monotonic() - self.last >= self.every_seconds

    def saved(self, path: Path) -> None:
        if path.name == "last.pt":
            self.last = time.monotonic()


def load(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``: tensors and plain containers only.
    A file that does not load is one CheckpointError naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        cause = first_line(exc, with_type=True)
        raise CheckpointError(
            f"{path}: damaged checkpoint, cannot resume from it ({cause})"
        ) from None
    if not isinstance(state, dict) or not {"model", "optimizer", "step", "rng"} <= state.keys():
        raise CheckpointError(f"{path}: not a tui-trainer checkpoint, cannot resume from it")
    return state


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) generator states, in types weights_only accepts."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tuples(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def capture(
    model: Any, optimizer: Any, scheduler: Any, scaler: Any, *, step: int, best: dict, every: int
) -> dict[str, Any]:
    """Everything a run needs to continue exactly: weights, optimizer, schedule, scaler,
    step, best metric, the probe interval chosen and every RNG state."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "step": step,
        "best": dict(best),
        "rng": rng_state(),
        "probe_every": every,
    }


@torch.no_grad()  # no autograd records for the norms
def finite_state(model: Any, loss: float | None) -> bool:
    """Whether the latest loss (None: none yet) and every parameter and buffer are finite.
    Their 2-norms in one fused pass and one sync first (NaN and inf carry through: 46 us
    for a digits-mlp, against 99 us tensor by tensor, best of 5 on the 2-core sandbox);
    only when a norm is not finite, which a finite tensor with elements past ~1e19 also
    gives, element by element."""
    if loss is not None and not math.isfinite(loss):
        return False
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    if not tensors:
        return True
    norms = list(torch._foreach_norm(tensors, 2, dtype=torch.float32))  # noqa: SLF001
    if len({n.device for n in norms}) > 1:  # a model on several devices
        norms = [n.cpu() for n in norms]
    if bool(torch.stack(norms).isfinite().all()):
        return True
    return all(bool(torch.isfinite(t).all()) for t in tensors)  # rare: a sync per tensor


def restore(state: dict[str, Any], model: Any, optimizer: Any, scheduler: Any, scaler: Any) -> None:
    """Load what ``capture`` saved into the objects, and set the RNG states."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
