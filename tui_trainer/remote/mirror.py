"""Provides RemoteMirror: a remote run read over ``ssh HOST tui-trainer stream --follow``
into a local run directory, so the dashboard draws it as it draws a local run.

The mirror is the one writer of its copy (``~/.cache/tui-trainer/remote/<host>/<run id>``,
or under ``$TUI_TRAINER_CACHE``). Its meta holds the remote run's meta (without the pid:
the process lives on the other box) and ``mirror`` = {host, remote_cmd, runs_dir, run_id,
state, cursor}: ``state`` is ``connecting``, ``live``, ``reconnecting`` or ``ended``, and the
dashboard shows it. When the connection drops the mirror reconnects with backoff and
resumes after the last cursor it flushed, so nothing is lost or repeated. A later attach
to the same run id continues from the saved cursor.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from tui_trainer.remote.ssh import SSH_RC, Remote, RemoteError
from tui_trainer.store import RunReader, RunStore
from tui_trainer.store.schema import STAT_COLUMNS

__all__ = ["RemoteMirror", "cache_root", "mirror_info"]

BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)  # waits between reconnects, the last repeated
SAVE_EVERY_S = 0.5  # flush the copy and save the cursor this often
RUN_ID = re.compile(r"^\d{8}-\d{6}-")


def cache_root() -> Path:
    base = os.environ.get("TUI_TRAINER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tui-trainer"
    )
    return Path(base) / "remote"


def mirror_info(run_dir: Path) -> dict[str, Any] | None:
    """The ``mirror`` entry of a run directory's meta: None for a run recorded here."""
    try:
        with RunReader(run_dir) as r:
            info = r.meta().get("mirror")
    except Exception:
        return None
    return info if isinstance(info, dict) else None


class RemoteMirror:
    """Follow ``run_ref`` (an id, a prefix or ``latest``) on ``remote`` into a local copy,
    on a thread: ``start()``, ``wait_ready()`` (the copy's directory), ``close()``."""

    def __init__(
        self, remote: Remote, run_ref: str, *, every: int = 1, root: Path | None = None
    ) -> None:
        self.remote = remote
        self.run_ref = run_ref
        self.every = every
        self.root = (root or cache_root()) / re.sub(r"[^\w.@-]", "_", remote.host)
        self.state = "connecting"
        self.error = ""
        self.run_dir: Path | None = None
        self.cursor: str | None = None
        self.connects = 0
        self.records = 0
        self.bytes = 0  # of stream lines received
        self.delays: deque[float] = deque(maxlen=100_000)  # s from a scalar's write to here
        self._store: RunStore | None = None
        self._run_id = ""
        self._saved_at = 0.0
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._thread = threading.Thread(target=self._follow, name="remote-mirror", daemon=True)

    # -- the caller's side ---------------------------------------------------------------
    def start(self) -> RemoteMirror:
        self._resume_saved()
        self._thread.start()
        return self

    def wait_ready(self, timeout: float = 60.0) -> Path:
        """The copy's directory once the remote run's meta and layers arrived."""
        if not self._ready.wait(timeout):
            self.close()
            raise RemoteError(f"{self.remote.host}: no stream within {timeout:.0f} s")
        if self.run_dir is None:
            raise RemoteError(self.error or f"{self.remote.host}: the stream ended")
        return self.run_dir

    def close(self) -> None:
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)

    # -- the thread ----------------------------------------------------------------------
    def _follow(self) -> None:
        attempt, ended = 0, False
        try:
            while not self._stop.is_set():
                before = self.records
                ended, failure = self._session()
                if ended or self._stop.is_set():
                    break
                if failure is not None:  # before any record: a wrong host, key or command
                    self.error = failure
                    break
                attempt = 0 if self.records > before else attempt + 1
                self._set_state("reconnecting")
                self._stop.wait(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
        except Exception as exc:  # never silently: the caller shows it
            self.error = f"{self.remote.host}: {type(exc).__name__}: {exc}"
        finally:
            self._set_state("ended" if ended else "closed")
            if self._store is not None:
                self._store.close()
                self._store = None
            self._ready.set()

    def _session(self) -> tuple[bool, str | None]:
        """One ssh connection: (the run ended, a failure that retrying cannot mend)."""
        args = ["stream", self.run_ref, "--follow"]
        if self.cursor:
            args += ["--since", self.cursor]
        if self.every > 1:
            args += ["--every", str(self.every)]
        with tempfile.TemporaryFile("w+", encoding="utf-8") as err:
            self._proc = proc = subprocess.Popen(
                self.remote.argv(*args), stdout=subprocess.PIPE, stderr=err,
                stdin=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True,
            )  # fmt: skip
            self.connects += 1
            ended = False
            assert proc.stdout is not None
            for line in proc.stdout:
                if self._stop.is_set():
                    break
                self.bytes += len(line)
                if line.strip():
                    ended = self._handle(json.loads(line))
                if ended:
                    break
            rc = proc.wait() if not self._stop.is_set() else 0
            err.seek(0)
            stderr = err.read()
        self._save(force=True)
        if ended or rc == 0:
            return ended, None
        if self.run_dir is None and (rc != SSH_RC or self.connects == 1):
            return False, self.remote.failure(rc, stderr)  # never reached the run
        return False, None

    # -- records into the copy -----------------------------------------------------------
    def _handle(self, rec: dict[str, Any]) -> bool:
        kind = rec.get("type")
        store = self._store
        if kind == "hello":
            self._hello(str(rec["run_id"]))
        elif kind == "meta":
            self._meta(
                rec.get("meta") or {k: v for k, v in rec.items() if k not in ("type", "cursor")}
            )
        elif kind == "layers":
            assert store is not None
            rows = [(x["name"], x["kind"], x.get("activation", ""), int(x.get("params", 0)))
                    for x in rec["layers"]]  # fmt: skip
            store.set_layers(rows)
            self._set_state("live")
            self._ready.set()
        elif store is None:
            raise RemoteError(f"{self.remote.host}: a {kind} record before the run's meta")
        elif kind == "scalar":
            if rec.get("wall"):
                self.delays.append(time.time() - float(rec["wall"]))
            store.scalars(int(rec["step"]), {rec["name"]: _num(rec["value"])}, rec.get("wall"))
        elif kind == "layer_stats":
            store.layer_row(
                int(rec["step"]), int(rec["layer"]), [_num(rec.get(c)) for c in STAT_COLUMNS]
            )
        elif kind == "event":
            store.event(
                int(rec["step"]), str(rec["kind"]), rec.get("data") or {}, wall=rec.get("wall")
            )
        elif kind in ("status", "end"):  # a status event is followed by its status line
            store.flush()
            store.set_status_meta(str(rec["status"]))
        if "cursor" in rec:
            self.cursor = str(rec["cursor"])
        self.records += 1
        self._save()
        return kind == "end"

    def _hello(self, run_id: str) -> None:
        if self._store is not None and run_id != self._run_id:
            raise RemoteError(f"{self.remote.host}: the stream switched to run {run_id}")
        self._run_id = run_id
        self.run_ref = run_id  # reconnects follow this run, whatever "latest" becomes

    def _meta(self, meta: dict[str, Any]) -> None:
        meta = {k: v for k, v in meta.items() if k != "pid"}  # the process is over there
        if self._store is None:
            run_dir = self.root / self._run_id
            if run_dir.exists() and self.cursor is None:
                shutil.rmtree(run_dir)  # an old copy we cannot continue: read it afresh
            if run_dir.exists():
                self._store = RunStore(run_dir)
            else:
                self._store = RunStore.create(
                    self.root, str(meta.get("preset", "")), str(meta.get("variant", "")),
                    json.dumps(meta.get("config") or {}, default=str),
                    f"# a copy of {self._run_id} on {self.remote.host}; its config is in meta\n",
                    run_id=self._run_id,
                )  # fmt: skip
            self.run_dir = run_dir
        self._store.set_meta(**meta)
        self._set_state(self.state)

    def _resume_saved(self) -> None:
        """A copy of this exact run id from an earlier attach: continue after its cursor."""
        if not RUN_ID.match(self.run_ref):
            return
        info = mirror_info(self.root / self.run_ref)
        if info and info.get("cursor"):
            self.cursor = str(info["cursor"])

    def _set_state(self, state: str) -> None:
        self.state = state
        self._save(force=True)

    def _save(self, force: bool = False) -> None:
        """Flush the copy, then save the cursor: a saved cursor never runs ahead of it."""
        store = self._store
        now = time.monotonic()
        if store is None or (not force and now - self._saved_at < SAVE_EVERY_S):
            return
        self._saved_at = now
        store.flush()
        store.set_meta(mirror={
            "host": self.remote.host, "remote_cmd": self.remote.remote_cmd,
            "runs_dir": self.remote.runs_dir, "run_id": self._run_id,
            "state": self.state, "cursor": self.cursor,
        })  # fmt: skip


def _num(v: Any) -> float | None:
    """A stream value: a number, None, or the strings ``nan``, ``inf``, ``-inf``."""
    if v is None or isinstance(v, int | float):
        return v
    return float(v)
