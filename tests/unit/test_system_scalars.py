"""The training process's sys/* scalars: CPU and memory at a low rate, and the GPU's figures
through NVML (a stand-in module where there is no GPU) or, without it, the driver."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from tui_trainer import sysinfo
from tui_trainer.engine.system_scalars import SystemScalars, nvml_indices


def test_cpu_and_memory_at_most_every_interval():
    system = SystemScalars(torch.device("cpu"), interval_s=60.0)
    first = system.values()
    assert set(first) == {"sys/cpu_percent", "sys/rss_mb"}
    assert first["sys/rss_mb"] > 10 and first["sys/cpu_percent"] >= 0
    assert system.values() == {}  # not due again for a minute: nothing, and no cost


class FakeNVML(types.ModuleType):
    """pynvml's calls as nvidia-ml-py names them, for two GPUs; ``unsupported``: figures
    that raise as NVML does for a sensor a board lacks."""

    NVML_TEMPERATURE_GPU, NVML_CLOCK_SM, NVML_CLOCK_MEM = 0, 1, 2

    def __init__(self, unsupported: tuple[str, ...] = ()) -> None:
        super().__init__("pynvml")
        self.unsupported = unsupported
        self.inits = 0

    def _check(self, what: str) -> None:
        if what in self.unsupported:
            raise RuntimeError("NVMLError_NotSupported: Not Supported")

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return b"NVIDIA H200"

    def nvmlDeviceGetUtilizationRates(self, h: int) -> types.SimpleNamespace:
        return types.SimpleNamespace(gpu=90 + h)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> types.SimpleNamespace:
        return types.SimpleNamespace(used=(h + 1) * 2**30, total=141 * 2**30)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        self._check("temp")
        return 60 + h

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        self._check("power")
        return 612_345 + h  # milliwatts

    def nvmlDeviceGetClockInfo(self, h: int, clock: int) -> int:
        self._check("clocks")
        return {self.NVML_CLOCK_SM: 1980, self.NVML_CLOCK_MEM: 3201}[clock]


@pytest.fixture
def cuda_allocator(monkeypatch):
    """torch's allocator figures, as a CUDA build would give them (this build has none)."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: 3 * 2**20)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 5 * 2**20)


def test_every_nvml_figure_of_the_runs_gpu(monkeypatch, cuda_allocator):
    nvml = FakeNVML()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    system = SystemScalars(torch.device("cuda", 1), interval_s=0.0)
    values = system.values()
    assert values == {
        "sys/cuda_mem_alloc_mb": 3.0,
        "sys/cuda_mem_peak_mb": 5.0,
        "sys/cpu_percent": values["sys/cpu_percent"],
        "sys/rss_mb": values["sys/rss_mb"],
        "sys/gpu1/util_pct": 91.0,
        "sys/gpu1/mem_used_mb": 2048.0,
        "sys/gpu1/mem_total_mb": 141 * 1024.0,
        "sys/gpu1/temp_c": 61.0,
        "sys/gpu1/power_w": pytest.approx(612.346),
        "sys/gpu1/sm_clock_mhz": 1980.0,
        "sys/gpu1/mem_clock_mhz": 3201.0,
    }
    system.values()
    assert nvml.inits == 1  # NVML is initialised once a process, not at every figure


def test_a_sensor_the_board_lacks_is_left_out(monkeypatch, cuda_allocator):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNVML(unsupported=("power", "clocks")))
    values = SystemScalars(torch.device("cuda", 0), interval_s=0.0).values()
    assert {n for n in values if n.startswith("sys/gpu")} == {
        "sys/gpu0/util_pct", "sys/gpu0/mem_used_mb", "sys/gpu0/mem_total_mb", "sys/gpu0/temp_c"
    }  # fmt: skip


def test_without_nvml_the_driver_still_tells_the_gpus_memory(monkeypatch, cuda_allocator):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed: the import fails
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (100 * 2**20, 400 * 2**20))
    values = SystemScalars(torch.device("cuda", 0), interval_s=0.0).values()
    gpu = {n: v for n, v in values.items() if n.startswith("sys/gpu")}
    assert gpu == {"sys/gpu0/mem_used_mb": 300.0, "sys/gpu0/mem_total_mb": 400.0}
    assert values["sys/cuda_mem_alloc_mb"] == 3.0


def test_the_real_nvidia_ml_py_has_what_we_call_and_fails_quietly_without_a_driver():
    """With the ``gpu`` extra installed (CI installs it) on a machine without a driver."""
    pynvml = pytest.importorskip("pynvml")
    for name in ("nvmlInit", "nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex",
                 "nvmlDeviceGetName", "nvmlDeviceGetUtilizationRates", "nvmlDeviceGetMemoryInfo",
                 "nvmlDeviceGetTemperature", "nvmlDeviceGetPowerUsage", "nvmlDeviceGetClockInfo",
                 "NVML_TEMPERATURE_GPU", "NVML_CLOCK_SM", "NVML_CLOCK_MEM"):  # fmt: skip
        assert hasattr(pynvml, name), name
    if not torch.cuda.is_available():
        assert sysinfo.nvml_stats() is None  # NVMLError_LibraryNotFound, not raised


def test_rank_zero_records_every_gpu_of_its_node(monkeypatch, cuda_allocator):
    """Under --nproc rank 0 takes the NVML figures of the GPUs its node's ranks use; with
    CUDA_VISIBLE_DEVICES, NVML's numbering (the whole machine's) is the one recorded."""
    monkeypatch.setitem(sys.modules, "pynvml", FakeNVML())
    system = SystemScalars(torch.device("cuda", 0), interval_s=0.0)
    system.gpus |= nvml_indices([torch.device("cuda", r) for r in (0, 1)])
    names = {n for n in system.values() if n.startswith("sys/gpu")}
    assert {n.split("/")[1] for n in names} == {"gpu0", "gpu1"}
    assert {"sys/gpu0/power_w", "sys/gpu1/power_w"} <= names
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,3")
    assert nvml_indices([torch.device("cuda", 0), torch.device("cuda", 1)]) == {5, 3}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8a1f,GPU-77c2")  # UUIDs: cannot be told
    assert nvml_indices([torch.device("cuda", 0)]) == set()
