"""Provides SystemScalars: the training process's own ``sys/*`` scalars, at a low rate.

Called where the trainer (or ``watch``) logs, never per step: torch's allocator figures
(``sys/cuda_mem_alloc_mb``, ``sys/cuda_mem_peak_mb``) at every log step on a GPU, and at
most every ``interval_s`` seconds the process's CPU use (``sys/cpu_percent``, percent of
one core since the last figure) and resident memory (``sys/rss_mb``) through psutil, and
the utilisation and memory of its GPU (``sys/gpu<k>/util_pct``, ``sys/gpu<k>/mem_used_mb``)
through NVML when it is installed (never by starting ``nvidia-smi`` from the loop). A
source that is missing or fails is left out, never raised.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from tui_trainer.sysinfo import nvml_stats

__all__ = ["INTERVAL_S", "SystemScalars"]

INTERVAL_S = 2.0


class SystemScalars:
    """``values()`` at each log step: what is due of the process's system figures."""

    def __init__(self, device: torch.device, interval_s: float = INTERVAL_S) -> None:
        self.cuda = device.type == "cuda"
        self.gpu = _nvml_index(device) if self.cuda else None
        self.interval_s = interval_s
        self._due = 0.0  # the first call records at once
        self._nvml = True
        try:
            import psutil

            self._proc: Any = psutil.Process()
            self._proc.cpu_percent(None)  # primes the counter
        except Exception:  # noqa: BLE001 (psutil missing or refused)
            self._proc = None

    def values(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.cuda:
            out["sys/cuda_mem_alloc_mb"] = torch.cuda.memory_allocated() / 2**20
            out["sys/cuda_mem_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        now = time.monotonic()
        if now < self._due:
            return out
        self._due = now + self.interval_s
        if self._proc is not None:
            try:
                out["sys/cpu_percent"] = float(self._proc.cpu_percent(None))
                out["sys/rss_mb"] = self._proc.memory_info().rss / 2**20
            except Exception:  # noqa: BLE001
                self._proc = None
        if self.gpu is not None and self._nvml:
            out.update(self._gpu())
        return out

    def _gpu(self) -> dict[str, float]:
        stats = nvml_stats()
        if stats is None:
            self._nvml = False  # no NVML here: do not try again every interval
            return {}
        out = {}
        for g in stats:
            if g.index == self.gpu:
                if g.util_pct is not None:
                    out[f"sys/gpu{g.index}/util_pct"] = g.util_pct
                if g.mem_used_mb is not None:
                    out[f"sys/gpu{g.index}/mem_used_mb"] = g.mem_used_mb
        return out


def _nvml_index(device: torch.device) -> int | None:
    """NVML's index of the GPU torch calls ``device`` (CUDA_VISIBLE_DEVICES renumbers);
    None when that cannot be told (a UUID in the variable)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if not visible:
        return index
    ids = [v.strip() for v in visible.split(",")]
    if index < len(ids) and ids[index].isdigit():
        return int(ids[index])
    return None
