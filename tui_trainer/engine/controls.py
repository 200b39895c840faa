"""Provides Controls: how a training loop answers the control rows (stop, checkpoint, pause,
resume) and signals, mixed into the Trainer; and StopTraining, which ends its loop.

A stop row or a signal raises StopTraining between steps; a checkpoint row writes last.pt;
a pause writes last.pt and waits, reading the rows, until a resume (or a stop) comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["CONTROL_INTERVAL", "Controls", "StopTraining"]

CONTROL_INTERVAL = 0.2  # seconds between reads of the control table


class StopTraining(Exception):
    """Raised inside the loop to end it with a status."""

    def __init__(self, status: str, reason: str = "") -> None:
        super().__init__(reason or status)
        self.status = status
        self.reason = reason


class Controls:
    """The control path of a Trainer (which provides the attributes and hooks below)."""

    store: Any
    step: int
    stop_requested: str
    _last_control: float

    _flush_samples: Callable[..., None]  # the probe's samples recorded (or a stop)
    _save_last: Callable[[], None]
    _progress: Callable[[str], None]

    def _poll_controls(self) -> bool:
        """Read the control rows if CONTROL_INTERVAL has passed (a stop row raises
        StopTraining); whether a signal asks to stop."""
        now = time.monotonic()
        if now - self._last_control >= CONTROL_INTERVAL:
            self._last_control = now
            self._handle_controls()
        return bool(self.stop_requested)

    def _handle_controls(self, pause_reason: str | None = None) -> None:
        """The one control path: every pending row in order (stop, checkpoint, pause,
        resume); while paused it keeps reading them, so a stop behind a pause is honoured.
        ``pause_reason``: pause now, for that reason (a non-finite sample)."""
        paused = False
        if pause_reason is not None:
            paused = self._set_paused(True, pause_reason)
        while True:
            if self.stop_requested:
                raise StopTraining("stopped", self.stop_requested)
            for _, command in self.store.pending_controls():
                if command == "stop":
                    raise StopTraining("stopped", "stop requested")
                if command == "checkpoint":
                    self._save_last()
                elif command == "pause" and not paused:
                    paused = self._set_paused(True)
                elif command == "resume" and paused:
                    paused = self._set_paused(False)
            if not paused:
                return
            time.sleep(CONTROL_INTERVAL)

    def _set_paused(self, paused: bool, reason: str = "") -> bool:
        if paused:
            self._flush_samples()
            self._save_last()
            self.store.set_meta(step=self.step)
        status = "paused" if paused else "running"
        self.store.set_status(status, self.step, **({"reason": reason} if paused else {}))
        self._progress(status)
        return paused
