"""Provides send_control: ask a run's training process to pause, resume, stop or checkpoint.

Any process may write a control row (the app, ``tui-trainer stop``, a second SSH session);
the training process, the run's one writer of everything else, reads and marks them done
(``RunStore.pending_controls``). Standard library only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tui_trainer.store.schema import StoreError, connect

__all__ = ["CONTROL_COMMANDS", "send_control"]

CONTROL_COMMANDS = ("pause", "resume", "stop", "checkpoint")


def send_control(run_dir: str | os.PathLike[str], command: str) -> int:
    """Write one control row for the run in ``run_dir``; returns its id."""
    if command not in CONTROL_COMMANDS:
        raise ValueError(f"unknown control command {command!r}")
    db = Path(run_dir) / "run.db"
    if not db.is_file():
        raise StoreError(f"{run_dir}: not a run directory (no run.db)")
    con = connect(db, create=False)
    try:
        cur = con.execute(
            "INSERT INTO control (wall, command) VALUES (?, ?)", (time.time(), command)
        )
        return int(cur.lastrowid or 0)
    finally:
        con.close()
