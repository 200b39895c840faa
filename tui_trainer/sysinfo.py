"""Provides system statistics for the app's status line: GPU use and a process's CPU/memory.

No torch here (the app must not load it): GPU utilisation and memory come from NVML
(the ``nvidia-ml-py`` package) when it is installed, else from ``nvidia-smi``'s CSV query
when it is on PATH (the trainer also records torch's allocator figures as scalars); a
process's CPU and memory come from psutil.
Every function returns "nothing" rather than raising when a source is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass

__all__ = [
    "GpuStat",
    "ProcessStat",
    "ProcessWatch",
    "gpu_stats",
    "nvml_stats",
    "parse_nvidia_smi",
]

_QUERY = "index,name,utilization.gpu,memory.used,memory.total"
MIN_INTERVAL_S = 0.5


@dataclass(frozen=True)
class GpuStat:
    """One GPU as nvidia-smi reports it."""

    index: int
    name: str
    util_pct: float | None
    mem_used_mb: float | None
    mem_total_mb: float | None


@dataclass(frozen=True)
class ProcessStat:
    """A process's CPU use (percent of one core) and resident memory."""

    cpu_pct: float
    rss_mb: float


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def parse_nvidia_smi(text: str) -> list[GpuStat]:
    """Rows of ``nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total
    --format=csv,noheader,nounits``."""
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5 or not parts[0].isdigit():
            continue
        out.append(GpuStat(int(parts[0]), parts[1], _num(parts[2]), _num(parts[3]), _num(parts[4])))
    return out


def nvml_stats() -> list[GpuStat] | None:
    """Every GPU through NVML (nvidia-ml-py); None when NVML is not installed or fails."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            util = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            out.append(
                GpuStat(
                    i,
                    name.decode() if isinstance(name, bytes) else str(name),
                    float(util),
                    mem.used / 2**20,
                    mem.total / 2**20,
                )
            )
        return out
    except Exception:  # noqa: BLE001 (NVML errors: no driver, no permission, ...)
        return None


def gpu_stats(timeout: float = 2.0) -> list[GpuStat]:
    """Every NVIDIA GPU's utilisation and memory; empty without NVML and nvidia-smi."""
    via_nvml = nvml_stats()
    if via_nvml is not None:
        return via_nvml
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        done = subprocess.run(
            [exe, f"--query-gpu={_QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else []


class ProcessWatch:
    """CPU and memory of one process (the training child), sampled between calls."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._primed = time.monotonic()
        try:
            import psutil

            self._proc: object | None = psutil.Process(pid)
            self._proc.cpu_percent(None)  # type: ignore[attr-defined]  # primes the counter
        except Exception:  # psutil missing, no such process, access denied
            self._proc = None

    def sample(self) -> ProcessStat | None:
        if self._proc is None or time.monotonic() - self._primed < MIN_INTERVAL_S:
            return None  # a CPU percentage over a few milliseconds means nothing
        try:
            cpu = self._proc.cpu_percent(None)  # type: ignore[attr-defined]
            rss = self._proc.memory_info().rss  # type: ignore[attr-defined]
        except Exception:  # the process ended
            self._proc = None
            return None
        return ProcessStat(float(cpu), rss / 2**20)
