"""Provides Telemetry: the device figures the trainer records at its log steps.

On CUDA: torch's allocator figures at every log step (``sys/cuda_mem_alloc_mb``,
``sys/cuda_mem_peak_mb``: no sync, no driver call), and at a low rate (every
TELEMETRY_EVERY_S seconds) ``sys/gpu<k>/...`` for each GPU of the box: utilisation and
memory from NVML (``pip install tui-trainer[gpu]``: nvidia-ml-py) when it is installed,
else this process's allocator figures for its own GPU (allocated, reserved, peak). Under
``--nproc`` rank 0 records them: NVML sees every GPU of node 0. Nothing on the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

__all__ = ["TELEMETRY_EVERY_S", "Telemetry"]

TELEMETRY_EVERY_S = 10.0
MB = 2**20


class Telemetry:
    """``values()`` at a log step: the scalars to record with the training loss."""

    def __init__(
        self,
        device: torch.device,
        every_s: float = TELEMETRY_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cuda = device.type == "cuda"
        self.index = device.index or 0
        self.every_s = every_s
        self.clock = clock
        self._next = 0.0  # the first log step records the GPU figures

    def values(self) -> dict[str, float]:
        if not self.cuda:
            return {}
        out = {
            "sys/cuda_mem_alloc_mb": torch.cuda.memory_allocated(self.index) / MB,
            "sys/cuda_mem_peak_mb": torch.cuda.max_memory_allocated(self.index) / MB,
        }
        now = self.clock()
        if now >= self._next:
            self._next = now + self.every_s
            out.update(self.gpu_figures())
        return out

    def gpu_figures(self) -> dict[str, float]:
        """``sys/gpu<k>/...``: NVML's view of every GPU, else the allocator's of ours."""
        from tui_trainer.sysinfo import nvml_stats

        stats = nvml_stats()
        if stats:
            out: dict[str, float] = {}
            for s in stats:
                for key, value in (
                    ("util_pct", s.util_pct),
                    ("mem_used_mb", s.mem_used_mb),
                    ("mem_total_mb", s.mem_total_mb),
                ):
                    if value is not None:
                        out[f"sys/gpu{s.index}/{key}"] = float(value)
            return out
        k = self.index
        return {
            f"sys/gpu{k}/mem_alloc_mb": torch.cuda.memory_allocated(k) / MB,
            f"sys/gpu{k}/mem_reserved_mb": torch.cuda.memory_reserved(k) / MB,
            f"sys/gpu{k}/mem_peak_mb": torch.cuda.max_memory_allocated(k) / MB,
        }
