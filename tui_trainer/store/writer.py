"""Provides RunStore: the one writer of a run (the training process), batched."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tui_trainer.store.schema import (
    BLOCK,
    FLUSH_INTERVAL,
    LIVE_STATUSES,
    SCHEMA,
    SCHEMA_VERSION,
    STAT_COLUMNS,
    STATUSES,
    StoreError,
    connect,
    jsonable,
    new_run_id,
    runs_root,
)

__all__ = ["RunStore"]


class RunStore:
    """The one writer of a run: the training process."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.db_path = self.run_dir / "run.db"
        self._lock = claim(self.run_dir)  # one writer: a second resume is refused here
        self._con = connect(self.db_path)
        self._con.execute("PRAGMA journal_mode = WAL")
        self._con.execute("PRAGMA synchronous = NORMAL")
        self._con.executescript(SCHEMA)
        self._names: dict[str, int] = dict(
            (n, i) for i, n in self._con.execute("SELECT id, name FROM names")
        )
        self._scalars: list[tuple[int, int, int, float | None, float]] = []
        self._blocks: list[tuple[int, int, int, int, float, float, float, int]] = []
        (last,) = self._con.execute("SELECT COALESCE(MAX(id), 0) FROM scalars").fetchone()
        self._next_id = int(last) + 1  # one writer: it numbers its rows itself
        self._acc: dict[int, list[Any]] = {}
        self._load_partial_blocks()
        self._stats: list[Sequence[Any]] = []
        self._events: list[tuple[int, float, str, str]] = []
        self._meta_later: dict[str, str] = {}  # note_meta's, for the next batch
        self._last_flush = time.monotonic()
        # False: only flush() writes the batches (a writer thread that flushes on its own
        # schedule, and retries a call only if the call itself did not write)
        self.auto_flush = True
        self.closed = False

    @classmethod
    def create(
        cls,
        runs_dir: str | os.PathLike[str] | None,
        preset: str,
        variant: str,
        config_json: str,
        config_toml: str,
        run_id: str | None = None,
    ) -> RunStore:
        root = runs_root(runs_dir)
        try:
            root.mkdir(parents=True, exist_ok=True)
            if not os.access(root, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied")
            rid = run_id or new_run_id(preset, variant)
            run_dir = root / rid
            run_dir.mkdir()
            (run_dir / "checkpoints").mkdir()
            (run_dir / "config.toml").write_text(config_toml, encoding="utf-8")
        except OSError as exc:
            raise StoreError(
                f"runs directory {root}: cannot write there ({exc.strerror or exc})"
            ) from None
        store = cls(run_dir)
        store.set_meta(
            schema_version=SCHEMA_VERSION,
            run_id=rid,
            preset=preset,
            variant=variant,
            config=json.loads(config_json),
            status="created",
            host=socket.gethostname(),
            created=time.time(),
        )
        return store

    # -- metadata, written at once ------------------------------------------------------
    def set_meta(self, **values: Any) -> None:
        rows = [(k, json.dumps(jsonable(v))) for k, v in values.items()]
        for k in values:  # a value noted earlier must not overwrite this one
            self._meta_later.pop(k, None)
        self._con.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", rows)

    def note_meta(self, **values: Any) -> None:
        """Metadata that may wait for the next batched write (at most FLUSH_INTERVAL): an
        evaluation's step and best. A write of its own costs ~170 us beside a training step
        on the 2-core sandbox (lock, WAL frame, commit), 1% of a digits-mlp run."""
        self._meta_later.update((k, json.dumps(jsonable(v))) for k, v in values.items())
        self._maybe_flush()

    def set_status(self, status: str, step: int = 0, **data: Any) -> None:
        """Record a status change; flushes everything pending first."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self.event(step, "status", {"status": status, **data})
        self.flush()
        self.set_status_meta(status)

    def set_status_meta(self, status: str) -> None:
        """The status in the metadata (``set_status`` writes its event first)."""
        extra: dict[str, Any] = {"status": status}
        if status not in LIVE_STATUSES:
            extra["ended"] = time.time()
        self.set_meta(**extra)

    def set_layers(self, layers: Iterable[tuple[str, str, str, int]]) -> None:
        """Layers in depth order: (name, kind, activation, parameter count)."""
        self._con.execute("BEGIN")
        self._con.execute("DELETE FROM layers")
        self._con.executemany(
            "INSERT INTO layers (idx, name, kind, activation, params) VALUES (?, ?, ?, ?, ?)",
            [(i, *row) for i, row in enumerate(layers)],
        )
        self._con.execute("COMMIT")

    # -- records, batched ----------------------------------------------------------------
    def scalar(self, step: int, name: str, value: float, wall: float | None = None) -> None:
        self.scalars(step, {name: value}, wall)

    def scalars(self, step: int, values: dict[str, float], wall: float | None = None) -> None:
        wall = time.time() if wall is None else wall
        for name in values:  # new names first: a failure here leaves nothing half-added
            if name not in self._names:
                self._name_id(name)
        for name, value in values.items():
            nid = self._names[name]
            v = float(value)
            rid = self._next_id
            self._next_id += 1
            if v != v:
                self._scalars.append((rid, step, nid, None, wall))
                continue
            self._scalars.append((rid, step, nid, v, wall))
            acc = self._acc.get(nid)
            if acc is None:
                self._acc[nid] = [1, v, v, v, step, step, rid]
                continue
            acc[0] += 1
            if v < acc[1]:
                acc[1] = v
            elif v > acc[2]:
                acc[2] = v
            acc[3] += v
            acc[5] = step
            acc[6] = rid
            if acc[0] == BLOCK:
                n, lo, hi, total, s0, s1, last = acc
                self._blocks.append((nid, last, s0, s1, lo, hi, total, n))
                del self._acc[nid]
        self._maybe_flush()

    def _load_partial_blocks(self) -> None:
        """A reopened run (resume) continues the roll-ups where the last writer left off."""
        rows = self._con.execute(
            "SELECT s.name_id, s.id, s.step, s.value FROM scalars s "
            "LEFT JOIN (SELECT name_id, MAX(id_hi) AS hi FROM scalar_blocks GROUP BY name_id) b "
            "ON b.name_id = s.name_id WHERE s.id > COALESCE(b.hi, 0) AND s.value IS NOT NULL "
            "ORDER BY s.id"
        ).fetchall()
        for nid, rid, step, v in rows:
            acc = self._acc.setdefault(nid, [0, v, v, 0.0, step, step, rid])
            acc[0] += 1
            acc[1], acc[2], acc[3] = min(acc[1], v), max(acc[2], v), acc[3] + v
            acc[5], acc[6] = step, rid

    def layer_stats(self, step: int, rows: Sequence[Sequence[float | None]]) -> None:
        """One row per layer (depth order), values in STAT_COLUMNS order; NaN means n/a."""
        self._stats.extend(_stat_row(step, layer, row) for layer, row in enumerate(rows))
        self._maybe_flush()

    def layer_row(self, step: int, layer: int, row: Sequence[float | None]) -> None:
        """One layer's statistics (a copy of a remote run writes them as they arrive)."""
        self._stats.append(_stat_row(step, layer, row))
        self._maybe_flush()

    def event(
        self, step: int, kind: str, data: dict[str, Any] | None = None, wall: float | None = None
    ) -> None:
        payload = json.dumps({k: jsonable(v) for k, v in (data or {}).items()})
        self._events.append((step, time.time() if wall is None else wall, kind, payload))
        self._maybe_flush()

    def _name_id(self, name: str) -> int:
        self._con.execute("INSERT OR IGNORE INTO names (name) VALUES (?)", (name,))
        (nid,) = self._con.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
        self._names[name] = nid
        return int(nid)

    def _maybe_flush(self) -> None:
        if self.auto_flush and time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not (self._scalars or self._stats or self._events or self._meta_later):
            return
        con = self._con
        con.execute("BEGIN")
        try:
            self._insert_pending(con)
        except BaseException:
            # a full disk or a lock held too long: nothing of this batch is half-written,
            # and it stays pending, so the next flush writes it
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        self._scalars, self._stats, self._events, self._blocks = [], [], [], []
        self._meta_later = {}

    def _insert_pending(self, con: sqlite3.Connection) -> None:
        con.execute(  # the writer's heartbeat: when rows last came in
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('heartbeat', ?)",
            (json.dumps(time.time()),),
        )
        if self._scalars:
            con.executemany(
                "INSERT INTO scalars (id, step, name_id, value, wall) VALUES (?, ?, ?, ?, ?)",
                self._scalars,
            )
        if self._blocks:
            con.executemany(
                "INSERT INTO scalar_blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._blocks
            )
        if self._stats:
            cols = ", ".join(STAT_COLUMNS)
            marks = ", ".join("?" * (len(STAT_COLUMNS) + 2))
            con.executemany(
                f"INSERT INTO layer_stats (step, layer, {cols}) VALUES ({marks})", self._stats
            )
        if self._events:
            con.executemany(
                "INSERT INTO events (step, wall, kind, data) VALUES (?, ?, ?, ?)", self._events
            )
        if self._meta_later:
            con.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", self._meta_later.items()
            )

    # -- control rows --------------------------------------------------------------------
    def pending_controls(self) -> list[tuple[int, str]]:
        rows = self._con.execute(
            "SELECT id, command FROM control WHERE done = 0 ORDER BY id"
        ).fetchall()
        if rows:
            self._con.executemany(
                "UPDATE control SET done = 1 WHERE id = ?", [(r[0],) for r in rows]
            )
        return [(int(i), str(c)) for i, c in rows]

    def close(self) -> None:
        if not self.closed:
            self.flush()
            self._con.close()
            self.closed = True
            if self._lock is not None:
                self._lock.close()  # releases the claim

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stat_row(step: int, layer: int, row: Sequence[float | None]) -> tuple[Any, ...]:
    """A layer_stats row; NaN is stored as NULL (not measured)."""
    return (step, layer, *[None if v is None or v != v else v for v in row])


def claim(run_dir: Path) -> Any:
    """An exclusive claim on writing ``run_dir`` (``writer.lock``, flock'd; the kernel drops
    it when the process dies). StoreError when another process (or store) holds it."""
    try:
        import fcntl
    except ImportError:  # no flock here: one writer by convention only
        return None
    path = run_dir / "writer.lock"
    try:
        fh = open(path, "a+", encoding="ascii")  # noqa: SIM115 (held until close)
    except OSError:
        return None  # a read-only copy, a vanished directory: SQLite says what is wrong
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "?"
        fh.close()
        message = f"{run_dir.name}: another process (pid {holder}) writes this run"
        raise StoreError(message) from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh

