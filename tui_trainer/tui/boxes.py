"""Provides Boxes: the other machines the app lists runs of (``tui-trainer --ssh HOST``,
repeated, or ``a`` in the runs screen), and the local copies of their runs it opened.

A box's runs come from ``runs --json`` over ssh, at most every ``LIST_S`` seconds; opening
one starts a ``RemoteMirror`` (kept until the app quits), so its dashboard, and a chart
comparing it with runs of other boxes, draw local copies. A box that fails to answer is
reported once per failure, with its one-line reason, and listed again when it answers.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tui_trainer.remote import Remote, RemoteError
from tui_trainer.remote.mirror import RemoteMirror
from tui_trainer.store import RunInfo

__all__ = ["Boxes"]

LIST_S = 10.0  # seconds between listings of one box


class Boxes:
    """Remote boxes and the mirrors of their runs; thread-safe (workers call it)."""

    def __init__(self, remotes: list[Remote] | None = None) -> None:
        self.remotes: list[Remote] = list(remotes or [])
        self._runs: dict[str, list[RunInfo]] = {}
        self._listed: dict[str, float] = {}
        self._mirrors: dict[tuple[str, str], RemoteMirror] = {}
        self._lock = threading.Lock()

    def add(self, remote: Remote) -> None:
        with self._lock:
            if all(r.host != remote.host for r in self.remotes):
                self.remotes.append(remote)

    def get(self, host: str) -> Remote | None:
        return next((r for r in self.remotes if r.host == host), None)

    def runs(self) -> tuple[list[tuple[str, RunInfo]], list[str]]:
        """(host, run) of every box, newest first per box; and the failures of this call."""
        errors: list[str] = []
        now = time.monotonic()
        for remote in list(self.remotes):
            if now - self._listed.get(remote.host, -LIST_S) < LIST_S:
                continue
            self._listed[remote.host] = now
            try:
                items = remote.runs()
            except RemoteError as exc:
                errors.append(str(exc))
                continue
            self._runs[remote.host] = items
        rows = [(host, run) for host, runs in self._runs.items() for run in runs]
        return rows, errors

    def open(self, host: str, run_id: str) -> Path:
        """The local copy of ``run_id`` on ``host``, its mirror started when first opened."""
        remote = self.get(host)
        if remote is None:
            raise RemoteError(f"{host}: not a box of this app")
        with self._lock:
            mirror = self._mirrors.get((host, run_id))
            if mirror is None or mirror.error:
                mirror = self._mirrors[(host, run_id)] = RemoteMirror(remote, run_id).start()
        return mirror.wait_ready()

    def close(self) -> None:
        with self._lock:
            mirrors, self._mirrors = list(self._mirrors.values()), {}
        for mirror in mirrors:
            mirror.close()
