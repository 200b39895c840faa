"""Provides the run store: one directory and one SQLite file per run.

The trainer writes through ``RunStore`` (batched: a flush at most every ~0.25 s and at every
status change); any number of ``RunReader`` objects, in any process, read what has been
flushed and tail new rows by id; ``send_control`` (any process) asks the trainer to pause,
resume, stop or checkpoint.
Standard library only: the app, the CLI and the trainer all use this module.

The package is small on purpose: ``schema`` (tables, constants, paths), ``writer``
(RunStore), ``reader`` (RunReader, Tail), ``control`` (control rows), ``runs`` (listing and
lookup), ``stream`` (records as JSON-able dicts) and ``export`` / ``export_tb``.
"""

from __future__ import annotations

from tui_trainer.store.control import CONTROL_COMMANDS, send_control
from tui_trainer.store.reader import RunReader, Tail
from tui_trainer.store.runs import RunInfo, effective_status, list_runs, resolve_run
from tui_trainer.store.schema import (
    BLOCK,
    FLUSH_INTERVAL,
    LIVE_STATUSES,
    SCHEMA_VERSION,
    STAT_COLUMNS,
    STATUSES,
    StoreError,
    new_run_id,
    runs_root,
)
from tui_trainer.store.writer import RunStore

__all__ = [
    "BLOCK",
    "CONTROL_COMMANDS",
    "FLUSH_INTERVAL",
    "LIVE_STATUSES",
    "SCHEMA_VERSION",
    "STAT_COLUMNS",
    "STATUSES",
    "RunInfo",
    "RunReader",
    "RunStore",
    "StoreError",
    "Tail",
    "effective_status",
    "list_runs",
    "new_run_id",
    "resolve_run",
    "runs_root",
    "send_control",
]
