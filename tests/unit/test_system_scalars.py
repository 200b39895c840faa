"""The training process's sys/* scalars: CPU and memory at a low rate."""

from __future__ import annotations

import torch

from tui_trainer.engine.system_scalars import SystemScalars


def test_cpu_and_memory_at_most_every_interval():
    system = SystemScalars(torch.device("cpu"), interval_s=60.0)
    first = system.values()
    assert set(first) == {"sys/cpu_percent", "sys/rss_mb"}
    assert first["sys/rss_mb"] > 10 and first["sys/cpu_percent"] >= 0
    assert system.values() == {}  # not due again for a minute: nothing, and no cost
