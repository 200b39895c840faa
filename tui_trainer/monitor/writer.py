"""Provides BackgroundWriter: a run's RunStore on a thread of its own, for ``watch``.

The training thread only appends calls to a queue (a deque: thread-safe, no lock), so
recording costs it microseconds; the writer thread applies them to the store every
FLUSH_INTERVAL, reads the control table every CONTROL_INTERVAL, and checks that the run
directory still exists. It never raises into training: the first failure of each kind
(a full disk, a lock held past SQLite's busy timeout, a deleted run directory) is kept in
``problems`` for the monitor to warn about once, and what failed to be written stays
pending in the store and is written when the store works again (a deleted directory ends
recording: there is nothing left to write to).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tui_trainer.store import RunStore
from tui_trainer.store.schema import FLUSH_INTERVAL, STATUSES
from tui_trainer.text import first_line

__all__ = ["CONTROL_INTERVAL", "BackgroundWriter"]

CONTROL_INTERVAL = 0.2  # seconds between reads of the control table


class BackgroundWriter:
    """The Recorder protocol, written on a thread; ``controls`` and ``problems`` come back."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        store.auto_flush = False  # this thread flushes, every FLUSH_INTERVAL
        self.run_dir: Path = store.run_dir
        self.controls: deque[str] = deque()  # commands read from the control table
        self.problems: deque[str] = deque()  # one line per new kind of failure
        self.attention = False  # set when controls or problems arrive: one check per step
        self.recording = True  # False once the run directory is gone
        self.step = 0  # the monitor's latest step, for the events of problems
        self._calls: deque[tuple[str, tuple[Any, ...], dict[str, Any]]] = deque()
        self._seen_problems: set[str] = set()
        self._wake = threading.Event()
        self._stop = False
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tui-trainer-writer", daemon=True)
        self._thread.start()

    # -- the Recorder protocol: queued -------------------------------------------------------
    def set_meta(self, **values: Any) -> None:
        self._calls.append(("set_meta", (), values))

    def set_status(self, status: str, step: int = 0, **data: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self._calls.append(("event", (step, "status", {"status": status, **data}), {}))
        self._calls.append(("status", (status,), {}))  # flushed first, as RunStore does
        self._wake.set()

    def set_layers(self, layers: Iterable[tuple[str, str, str, int]]) -> None:
        self._calls.append(("set_layers", (list(layers),), {}))

    def scalars(self, step: int, values: dict[str, float], wall: float | None = None) -> None:
        self._calls.append(("scalars", (step, values, time.time() if wall is None else wall), {}))

    def layer_stats(self, step: int, rows: Sequence[Sequence[float | None]]) -> None:
        self._calls.append(("layer_stats", (step, rows), {}))

    def event(self, step: int, kind: str, data: dict[str, Any] | None = None) -> None:
        self._calls.append(("event", (step, kind, data), {}))

    def pending_controls(self) -> list[tuple[int, str]]:
        out = []
        while self.controls:
            out.append((0, self.controls.popleft()))
        return out

    def flush(self) -> None:
        self._wake.set()

    # -- the thread ----------------------------------------------------------------------------
    def sync(self, timeout: float = 15.0) -> bool:
        """Wait until everything queued so far is written (or failed); False on timeout."""
        self._idle.clear()
        self._wake.set()
        return self._idle.wait(timeout)

    def close(self, timeout: float = 15.0) -> None:
        """Write what is queued, then stop the thread and close the store."""
        self._stop = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        last_control = 0.0
        while True:
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            stopping = self._stop
            self._apply_queued()
            now = time.monotonic()
            if self.recording and (stopping or now - last_control >= CONTROL_INTERVAL):
                last_control = now
                self._guard(self._read_controls)
            if not self._calls:
                self._idle.set()
            if stopping:
                self._guard(self.store.close)
                self._idle.set()
                return

    def _apply_queued(self) -> None:
        if self.recording and not self.run_dir.is_dir():
            self.recording = False
            self._problem(f"run directory {self.run_dir} was deleted: recording stopped")
        calls = self._calls
        if not self.recording:
            calls.clear()
            return
        store = self.store
        while calls:
            name, args, kwargs = calls[0]
            try:
                if name == "status":
                    store.flush()
                    store.set_status_meta(*args)
                else:
                    getattr(store, name)(*args, **kwargs)
            except (sqlite3.OperationalError, OSError) as exc:  # a lock, a full disk:
                self._problem(f"cannot write to {self.run_dir}: {first_line(exc)}")
                break  # keep it and what follows, in order, for the next round
            except Exception as exc:  # a value the store cannot take: drop that call
                self._problem(f"cannot record {name}: {first_line(exc, with_type=True)}")
            calls.popleft()
        self._guard(store.flush)

    def _read_controls(self) -> None:
        for _, command in self.store.pending_controls():
            self.controls.append(command)
            self.attention = True

    def _guard(self, fn: Any, *args: Any, **kwargs: Any) -> bool:
        try:
            fn(*args, **kwargs)
        except Exception as exc:
            self._problem(f"cannot write to {self.run_dir}: {first_line(exc)}")
            return False
        return True

    def _problem(self, line: str) -> None:
        if line not in self._seen_problems:
            self._seen_problems.add(line)
            self.problems.append(line)
            self.attention = True
            # recorded too, for whoever reads the run, once the store can write again
            self._calls.append(("event", (self.step, "warning", {"message": line}), {}))
