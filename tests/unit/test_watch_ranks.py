"""watch() under torch.distributed: rank 0 records; the other ranks get an InactiveMonitor.
(The sys/* figures are engine/system_scalars.py's: tests/unit/test_system_scalars.py.)"""

from __future__ import annotations

import torch
from torch import nn

from tui_trainer.monitor import watch
from tui_trainer.monitor.ranks import InactiveMonitor, process_rank
from tui_trainer.store import list_runs


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
