"""GPU telemetry at a low rate (NVML when installed, else the allocator) and watch() under
torch.distributed (rank 0 records; the other ranks get an InactiveMonitor)."""

from __future__ import annotations

import torch
from torch import nn

import tui_trainer.sysinfo as sysinfo
from tui_trainer.engine.telemetry import Telemetry
from tui_trainer.monitor import watch
from tui_trainer.monitor.ranks import InactiveMonitor, process_rank
from tui_trainer.store import list_runs


def test_no_device_figures_on_the_cpu():
    assert Telemetry(torch.device("cpu")).values() == {}


def test_gpu_figures_come_from_nvml_at_a_low_rate(monkeypatch):
    stats = [sysinfo.GpuStat(0, "H200", 97.0, 1000.0, 143000.0),
             sysinfo.GpuStat(1, "H200", None, 10.0, 143000.0)]  # fmt: skip
    monkeypatch.setattr(sysinfo, "nvml_stats", lambda: stats)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: 2**20)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 2 * 2**20)
    now = [100.0]
    t = Telemetry(torch.device("cpu"), every_s=10, clock=lambda: now[0])
    t.cuda = True  # as on a GPU box
    first = t.values()
    assert first["sys/cuda_mem_alloc_mb"] == 1.0 and first["sys/cuda_mem_peak_mb"] == 2.0
    assert first["sys/gpu0/util_pct"] == 97.0 and first["sys/gpu1/mem_used_mb"] == 10.0
    assert "sys/gpu1/util_pct" not in first  # NVML did not say
    now[0] += 5
    assert not any(k.startswith("sys/gpu") for k in t.values())  # not yet due
    now[0] += 6
    assert "sys/gpu0/mem_total_mb" in t.values()


def test_without_nvml_the_allocator_figures_of_our_gpu(monkeypatch):
    monkeypatch.setattr(sysinfo, "nvml_stats", lambda: None)
    for name in ("memory_allocated", "memory_reserved", "max_memory_allocated"):
        monkeypatch.setattr(torch.cuda, name, lambda *a: 3 * 2**20)
    figures = Telemetry(torch.device("cpu")).gpu_figures()
    assert figures == {"sys/gpu0/mem_alloc_mb": 3.0, "sys/gpu0/mem_reserved_mb": 3.0,
                       "sys/gpu0/mem_peak_mb": 3.0}  # fmt: skip


def test_watch_records_from_rank_0_only(runs_dir, monkeypatch):
    monkeypatch.setenv("RANK", "1")  # what torchrun sets, before the process group exists
    assert process_rank() == 1
    model = nn.Linear(3, 2)
    with watch(model, runs_dir=runs_dir) as mon:
        assert isinstance(mon, InactiveMonitor) and not mon.should_stop
        for _ in range(3):
            model(torch.ones(1, 3)).sum().backward()
            mon.step(loss=1.0)
        mon.log({"x": 1.0})
        mon.eval({"acc": 0.5})
    assert mon.status == "finished" and not list_runs(runs_dir)
    monkeypatch.setenv("RANK", "0")
    mon = watch(model, runs_dir=runs_dir)
    assert not isinstance(mon, InactiveMonitor)
    mon.finish()
    assert len(list_runs(runs_dir)) == 1
