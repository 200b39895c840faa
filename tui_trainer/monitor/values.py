"""Provides the monitor's scalar handling: what a step keeps of a value, and how a window
of them becomes one number (a tensor off the CPU is read once per log window)."""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["as_float", "kept", "mean_of"]


def kept(v: Any) -> Any:
    """A value to keep until the log step: a float, or a detached tensor off the CPU (read
    then, with one sync for the window)."""
    if isinstance(v, torch.Tensor):
        return v.item() if v.is_cpu else v.detach()  # is_cpu: a tenth of .device's cost
    return v


def as_float(v: Any) -> float:
    return float(v.item()) if isinstance(v, torch.Tensor) else float(v)


def mean_of(vals: list[Any]) -> float:
    if isinstance(vals[0], torch.Tensor) and all(isinstance(v, torch.Tensor) for v in vals):
        return float(torch.stack([v.float().reshape(()) for v in vals]).mean().item())
    return math.fsum(as_float(v) for v in vals) / len(vals)
