"""Provides watch: tui-trainer on your own training loop (``monitor.py`` says what is
measured when, ``discover.py`` how layers are found, ``writer.py`` how records are
written off the training thread)."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from tui_trainer.monitor.monitor import DEFAULT_LOG_EVERY, Monitor
from tui_trainer.monitor.ranks import InactiveMonitor, process_rank

__all__ = ["Monitor", "watch"]


def watch(
    model: nn.Module,
    name: str = "watch",
    *,
    optimizer: Any = None,
    scaler: Any = None,
    every: int | str = "auto",
    layers: str | list[str] | None = None,
    config: Any = None,
    runs_dir: str | os.PathLike[str] | None = None,
    log_every: int = DEFAULT_LOG_EVERY,
    budget: float = 0.03,
    total_steps: int = 0,
) -> Monitor:
    """Watch ``model`` train: makes ``runs/<id>/`` and returns a Monitor.

    Call ``mon.step(loss=loss, lr=lr)`` once per optimizer step and ``mon.finish()`` at the
    end (or use ``with watch(model) as mon:``); ``tui-trainer attach latest`` shows it.

    optimizer: the optimizer whose ``step()`` bounds a sample (found when omitted).
    scaler: an fp16 GradScaler (found when it steps the optimizer).
    every: probe every N steps, or ``"auto"`` (calibrated to ``budget`` of the step time).
    layers: names or globs (``"encoder.*"``) of the layers to probe; default all.
    config: a dict, dataclass or namespace, stored with the run and shown in the app.
    runs_dir: where runs go (default ``$TUI_TRAINER_RUNS_DIR`` or ``./runs``).
    log_every: steps between training-scalar records (means over the window).
    total_steps: the run's planned length, for the app's progress bar (0: unknown).

    Under torch.distributed only rank 0 records: every other rank gets an InactiveMonitor
    (the same calls, doing nothing; ``monitor/ranks.py``).
    """
    rank = process_rank()
    if rank != 0:
        return InactiveMonitor(rank)  # type: ignore[return-value]
    return Monitor(
        model,
        name,
        optimizer=optimizer,
        scaler=scaler,
        every=every,
        layers=layers,
        config=config,
        runs_dir=runs_dir,
        log_every=log_every,
        budget=budget,
        total_steps=total_steps,
    )
