"""Provides SystemScalars: the training process's own ``sys/*`` scalars, at a low rate.

Called where the trainer (or ``watch``) logs, never per step: torch's allocator figures
(``sys/cuda_mem_alloc_mb``, ``sys/cuda_mem_peak_mb``) at every log step on a GPU, and at
most every ``interval_s`` seconds the process's CPU use (``sys/cpu_percent``, percent of
one core since the last figure) and resident memory (``sys/rss_mb``) through psutil, and
its GPU's figures as ``sys/gpu<k>/<figure>`` (GPU_FIGURES: utilisation, memory used and
total, temperature, power, SM and memory clocks) through NVML when nvidia-ml-py is
installed (never by starting ``nvidia-smi`` from the loop). Without NVML the GPU's memory
used and total still come from the driver (``torch.cuda.mem_get_info``, no sync). A source
that is missing or fails is left out, never raised.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from tui_trainer.sysinfo import nvml_stats

__all__ = ["GPU_FIGURES", "INTERVAL_S", "SystemScalars", "nvml_indices"]

INTERVAL_S = 2.0
GPU_FIGURES = (  # GpuStat's fields, recorded under these names
    "util_pct", "mem_used_mb", "mem_total_mb", "temp_c", "power_w", "sm_clock_mhz",
    "mem_clock_mhz",
)  # fmt: skip


class SystemScalars:
    """``values()`` at each log step: what is due of the process's system figures."""

    def __init__(self, device: torch.device, interval_s: float = INTERVAL_S) -> None:
        self.cuda = device.type == "cuda"
        self.device = device
        self.gpu = _nvml_index(device) if self.cuda else None
        # the GPUs whose NVML figures are recorded: this process's; under --nproc rank 0's
        # takes every GPU its node's ranks use (DistributedTrainer sets them)
        self.gpus: set[int] = set() if self.gpu is None else {self.gpu}
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
        if self.gpu is not None:
            out.update(self._gpu())
        return out

    def _gpu(self) -> dict[str, float]:
        stats = nvml_stats() if self._nvml else None
        if stats is None:
            self._nvml = False  # no NVML here: do not try again every interval
            return self._driver_memory()
        return {
            f"sys/gpu{g.index}/{figure}": value
            for g in stats
            if g.index in self.gpus
            for figure in GPU_FIGURES
            if (value := getattr(g, figure)) is not None
        }

    def _driver_memory(self) -> dict[str, float]:
        """The GPU's memory in use and in all, as the driver reports it (every process's)."""
        try:
            free, total = torch.cuda.mem_get_info(self.device)
        except Exception:  # noqa: BLE001
            return {}
        used, total_mb = (total - free) / 2**20, total / 2**20
        return {f"sys/gpu{self.gpu}/mem_used_mb": used, f"sys/gpu{self.gpu}/mem_total_mb": total_mb}


def nvml_indices(devices: list[torch.device]) -> set[int]:
    """NVML's indices of these CUDA devices (those that can be told)."""
    return {i for d in devices if (i := _nvml_index(d)) is not None}


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
