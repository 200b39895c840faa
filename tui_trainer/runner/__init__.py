"""Provides the producers of runs: the training child process, its launcher and supervisor.

``launch`` starts ``python -m tui_trainer.runner RUN_DIR`` (``child``) for a run;
``RunProcess`` watches one child;
``RunSupervisor`` the children one face started. No UI imports: the app and the CLI both use it.
"""

from __future__ import annotations

from tui_trainer.runner.process import (
    RunProcess,
    child_threads,
    launch,
    log_tail,
    mark_if_crashed,
)
from tui_trainer.runner.supervisor import RunSupervisor

__all__ = ["RunProcess", "child_threads", "launch", "log_tail", "mark_if_crashed", "RunSupervisor"]
