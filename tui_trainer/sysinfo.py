"""Provides system statistics for the app's status line: GPU use and a process's CPU/memory.

No torch here (the app must not load it): a GPU's utilisation, memory, temperature, power
and clocks come from NVML (the ``nvidia-ml-py`` package, the ``gpu`` extra) when it is
installed, else from ``nvidia-smi``'s CSV query when it is on PATH (the trainer also records
torch's allocator figures as scalars); a process's CPU and memory come from psutil. NVML is
initialised once a process; a figure a GPU does not report (power on some boards) is None.
Every function returns "nothing" rather than raising when a source is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GpuStat",
    "ProcessStat",
    "ProcessWatch",
    "gpu_stats",
    "nvml_stats",
    "parse_nvidia_smi",
]

_QUERY = (
    "index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,"
    "clocks.sm,clocks.mem"
)
MIN_INTERVAL_S = 0.5


@dataclass(frozen=True)
class GpuStat:
    """One GPU as NVML (or nvidia-smi) reports it; None where it reports nothing."""

    index: int
    name: str
    util_pct: float | None
    mem_used_mb: float | None
    mem_total_mb: float | None
    temp_c: float | None = None
    power_w: float | None = None
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None


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
    """Rows of ``nvidia-smi --query-gpu=<_QUERY> --format=csv,noheader,nounits`` (the
    first five columns alone, as older versions of this query asked, also parse)."""
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) not in (5, 9) or not parts[0].isdigit():
            continue
        nums = [_num(p) for p in parts[2:]] + [None] * (9 - len(parts))
        out.append(GpuStat(int(parts[0]), parts[1], *nums))
    return out


_NVML: list[Any] = []  # the pynvml module once nvmlInit has succeeded in this process


def nvml_stats() -> list[GpuStat] | None:
    """Every GPU through NVML (nvidia-ml-py); None when NVML is not installed or fails."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        if not _NVML or _NVML[0] is not pynvml:
            pynvml.nvmlInit()
            _NVML[:] = [pynvml]
        return [_nvml_gpu(pynvml, i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 (NVML errors: no driver, no permission, ...)
        return None


def _nvml_gpu(nv: Any, i: int) -> GpuStat:
    h = nv.nvmlDeviceGetHandleByIndex(i)
    name = nv.nvmlDeviceGetName(h)
    mem = nv.nvmlDeviceGetMemoryInfo(h)

    def read(get: Callable[[], float], scale: float = 1.0) -> float | None:
        try:  # NVMLError_NotSupported: a board without that sensor
            return float(get()) * scale
        except Exception:  # noqa: BLE001
            return None

    return GpuStat(
        i,
        name.decode() if isinstance(name, bytes) else str(name),
        read(lambda: nv.nvmlDeviceGetUtilizationRates(h).gpu),
        mem.used / 2**20,
        mem.total / 2**20,
        temp_c=read(lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
        power_w=read(lambda: nv.nvmlDeviceGetPowerUsage(h), 1e-3),  # milliwatts
        sm_clock_mhz=read(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
        mem_clock_mhz=read(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)),
    )


def gpu_stats(timeout: float = 2.0) -> list[GpuStat]:
    """Every NVIDIA GPU's figures; empty without NVML and nvidia-smi."""
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
