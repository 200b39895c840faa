"""Provides the run store: one directory and one SQLite file per run.

The trainer writes through ``RunStore`` (batched: a flush at most every ~0.25 s and at every
status change); any number of ``RunReader`` objects, in any process, read what has been
flushed, tail new rows by id, and write control rows (pause, resume, stop, checkpoint).
Standard library only: the app, the CLI and the trainer all use this module.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FLUSH_INTERVAL",
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
]

SCHEMA_VERSION = 1
FLUSH_INTERVAL = 0.25  # seconds between batched writes; a kill -9 loses at most this much
BLOCK = 64  # values per roll-up row in scalar_blocks
BLOCKS_FROM = 4 * BLOCK  # use roll-ups when a curve column would hold this many values
STATUSES = ("created", "running", "paused", "finished", "stopped", "diverged", "crashed")
LIVE_STATUSES = ("created", "running", "paused")
# One column per statistic in layer_stats, in this order (probes produce rows in this order).
STAT_COLUMNS = (
    "grad_norm",  # L2 norm of the gradient of all the layer's parameters
    "weight_grad_norm",  # ... of its weight tensor alone
    "bias_grad_norm",  # ... of its bias alone
    "weight_norm",  # L2 norm of the weight tensor
    "update_ratio",  # ||w_after - w_before|| / ||w_before|| of the step just taken
    "out_grad_norm",  # ||dL/d output|| of the layer
    "act_mean",
    "act_std",
    "act_min",
    "act_max",
    "dead_frac",  # fraction of activations exactly zero
    "sat_frac",  # fraction saturated (sigmoid < .01 or > .99, tanh |y| > .99); NULL otherwise
    "nonfinite",  # count of non-finite values in the layer's gradients and activations
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS layers (
    idx INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL,
    activation TEXT NOT NULL, params INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS scalars (
    id INTEGER PRIMARY KEY, step INTEGER NOT NULL, name_id INTEGER NOT NULL,
    value REAL, wall REAL NOT NULL);
CREATE INDEX IF NOT EXISTS scalars_name ON scalars (name_id);  -- (name_id, id) order
-- Roll-ups of every BLOCK consecutive values of a name, kept by the writer, so a curve of
-- millions of points is decimated from thousands of rows (RunReader.curve).
CREATE TABLE IF NOT EXISTS scalar_blocks (
    name_id INTEGER NOT NULL, id_hi INTEGER NOT NULL, step_lo INTEGER NOT NULL,
    step_hi INTEGER NOT NULL, vmin REAL NOT NULL, vmax REAL NOT NULL, vsum REAL NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY (name_id, id_hi)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS layer_stats (
    id INTEGER PRIMARY KEY, step INTEGER NOT NULL, layer INTEGER NOT NULL,
    {", ".join(f"{c} REAL" for c in STAT_COLUMNS)});
CREATE INDEX IF NOT EXISTS layer_stats_step ON layer_stats (step);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, step INTEGER NOT NULL, wall REAL NOT NULL,
    kind TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS control (
    id INTEGER PRIMARY KEY, wall REAL NOT NULL, command TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0);
"""

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StoreError(OSError):
    """A runs directory or run cannot be used; the message is one line, fit for a user."""


def runs_root(runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """``--runs-dir``, else ``$TUI_TRAINER_RUNS_DIR``, else ``./runs``."""
    return Path(runs_dir or os.environ.get("TUI_TRAINER_RUNS_DIR") or "runs")


def new_run_id(preset: str, variant: str = "") -> str:
    def clean(s: str) -> str:
        return re.sub(r"[^A-Za-z0-9_-]+", "-", s).strip("-")[:40] or "run"

    parts = [time.strftime("%Y%m%d-%H%M%S"), clean(preset)]
    if variant:
        parts.append(clean(variant))
    parts.append(secrets.token_hex(2))
    return "-".join(parts)


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA busy_timeout = 10000")
    return con


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return str(v)
    return v


class RunStore:
    """The one writer of a run: the training process."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.db_path = self.run_dir / "run.db"
        self._con = _connect(self.db_path)
        self._con.execute("PRAGMA journal_mode = WAL")
        self._con.execute("PRAGMA synchronous = NORMAL")
        self._con.executescript(_SCHEMA)
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
        self._last_flush = time.monotonic()
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
        rows = [(k, json.dumps(_jsonable(v))) for k, v in values.items()]
        self._con.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", rows)

    def set_status(self, status: str, step: int = 0, **data: Any) -> None:
        """Record a status change; flushes everything pending first."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self.event(step, "status", {"status": status, **data})
        self.flush()
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
        for name, value in values.items():
            nid = self._names.get(name)
            if nid is None:
                nid = self._name_id(name)
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
        for layer, row in enumerate(rows):
            self._stats.append(
                (step, layer, *[None if v is None or v != v else v for v in row])
            )
        self._maybe_flush()

    def event(self, step: int, kind: str, data: dict[str, Any] | None = None) -> None:
        payload = json.dumps({k: _jsonable(v) for k, v in (data or {}).items()})
        self._events.append((step, time.time(), kind, payload))
        self._maybe_flush()

    def _name_id(self, name: str) -> int:
        self._con.execute("INSERT OR IGNORE INTO names (name) VALUES (?)", (name,))
        (nid,) = self._con.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
        self._names[name] = nid
        return int(nid)

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not (self._scalars or self._stats or self._events):
            return
        con = self._con
        con.execute("BEGIN")
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
        con.execute("COMMIT")
        self._scalars, self._stats, self._events, self._blocks = [], [], [], []

    # -- control rows --------------------------------------------------------------------
    def pending_controls(self) -> list[tuple[int, str]]:
        rows = self._con.execute(
            "SELECT id, command FROM control WHERE done = 0 ORDER BY id"
        ).fetchall()
        if rows:
            self._con.executemany("UPDATE control SET done = 1 WHERE id = ?", [(r[0],) for r in rows])
        return [(int(i), str(c)) for i, c in rows]

    def close(self) -> None:
        if not self.closed:
            self.flush()
            self._con.close()
            self.closed = True

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Tail:
    """Rows newer than a reader's cursors, oldest first."""

    scalars: list[tuple[int, str, float | None, float]] = field(default_factory=list)
    layer_stats: list[tuple[Any, ...]] = field(default_factory=list)  # (step, layer, *STATS)
    events: list[tuple[int, float, str, dict[str, Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.scalars or self.layer_stats or self.events)


CONTROL_COMMANDS = ("pause", "resume", "stop", "checkpoint")


class RunReader:
    """Reads a run (live or finished) from any process; keeps cursors for ``tail``."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        db = self.run_dir / "run.db"
        if not db.is_file():
            raise StoreError(f"{self.run_dir}: not a run directory (no run.db)")
        self._con = _connect(db)
        self._names: dict[int, str] = {}
        self.cursor = {"scalars": 0, "layer_stats": 0, "events": 0}

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._con.execute("SELECT key, value FROM meta")}

    def status(self) -> str:
        """The recorded status, or ``crashed`` when a live-looking run's process is gone."""
        meta = self.meta()
        return effective_status(meta)

    def layers(self) -> list[dict[str, Any]]:
        cur = self._con.execute(
            "SELECT idx, name, kind, activation, params FROM layers ORDER BY idx"
        )
        return [
            dict(zip(("index", "name", "kind", "activation", "params"), row)) for row in cur
        ]

    def _name(self, nid: int) -> str:
        if nid not in self._names:
            self._names.update(self._con.execute("SELECT id, name FROM names").fetchall())
        return self._names.get(nid, f"#{nid}")

    def _skip_ids(self, prefixes: tuple[str, ...]) -> list[int]:
        (count,) = self._con.execute("SELECT COUNT(*) FROM names").fetchone()
        if count != len(self._names):
            self._names.update(self._con.execute("SELECT id, name FROM names").fetchall())
        return [i for i, n in self._names.items() if n.startswith(prefixes)]

    def scalar_names(self) -> list[str]:
        return [n for (n,) in self._con.execute("SELECT name FROM names ORDER BY id")]

    def tail(self, limit: int = 100_000, skip_prefixes: tuple[str, ...] = ()) -> Tail:
        """Rows written since the last call (at most ``limit`` per table).

        ``skip_prefixes`` leaves out scalars whose name starts with one of them (a live
        view has no use for ``grad_norm/<param>``), in SQL, while the cursor moves on.
        """
        out = Tail()
        cur = self.cursor
        (top,) = self._con.execute("SELECT COALESCE(MAX(id), 0) FROM scalars").fetchone()
        skip = self._skip_ids(skip_prefixes) if skip_prefixes else ()
        marks = ",".join("?" * len(skip))
        rows = self._con.execute(
            "SELECT id, step, name_id, value, wall FROM scalars WHERE id > ? AND id <= ? "
            + (f"AND name_id NOT IN ({marks}) " if skip else "")
            + "ORDER BY id LIMIT ?",
            (cur["scalars"], top, *skip, limit),
        ).fetchall()
        if rows:
            out.scalars = [(s, self._name(n), v, w) for _, s, n, v, w in rows]
        cur["scalars"] = rows[-1][0] if len(rows) == limit else max(top, cur["scalars"])
        rows = self._con.execute(
            f"SELECT id, step, layer, {', '.join(STAT_COLUMNS)} FROM layer_stats "
            "WHERE id > ? ORDER BY id LIMIT ?",
            (cur["layer_stats"], limit),
        ).fetchall()
        if rows:
            cur["layer_stats"] = rows[-1][0]
            out.layer_stats = [r[1:] for r in rows]
        rows = self._con.execute(
            "SELECT id, step, wall, kind, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (cur["events"], limit),
        ).fetchall()
        if rows:
            cur["events"] = rows[-1][0]
            out.events = [(s, w, k, json.loads(d)) for _, s, w, k, d in rows]
        return out

    def events(self, kind: str | None = None) -> list[tuple[int, float, str, dict[str, Any]]]:
        sql = "SELECT step, wall, kind, data FROM events"
        args: tuple[Any, ...] = ()
        if kind:
            sql += " WHERE kind = ?"
            args = (kind,)
        rows = self._con.execute(sql + " ORDER BY id", args).fetchall()
        return [(s, w, k, json.loads(d)) for s, w, k, d in rows]

    def series(self, name: str) -> list[tuple[int, float | None]]:
        rows = self._con.execute(
            "SELECT s.step, s.value FROM scalars s JOIN names n ON n.id = s.name_id "
            "WHERE n.name = ? ORDER BY s.step, s.id",
            (name,),
        )
        return [(int(s), v) for s, v in rows]

    def last_values(self) -> dict[str, float | None]:
        """The last recorded value of every scalar."""
        rows = self._con.execute(
            "SELECT n.name, s.value FROM scalars s JOIN names n ON n.id = s.name_id "
            "WHERE s.id IN (SELECT MAX(id) FROM scalars GROUP BY name_id)"
        )
        return {n: v for n, v in rows}

    def curve(self, name: str, columns: int = 200) -> list[tuple[int, float, float, float]]:
        """The curve decimated to ``columns`` buckets of steps: (first step, min, max, mean).

        Min and max of every bucket are kept, so a spike is never hidden. Long curves are
        decimated from the writer's roll-ups (BLOCK values a row) plus the raw tail.
        """
        row = self._con.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
        if row is None:
            return []
        nid = row[0]
        blocks = self._con.execute(
            "SELECT id_hi, step_lo, step_hi, vmin, vmax, vsum, n FROM scalar_blocks "
            "WHERE name_id = ? ORDER BY id_hi",
            (nid,),
        ).fetchall()
        if len(blocks) * BLOCK < columns * BLOCKS_FROM:
            blocks = []
        after = blocks[-1][0] if blocks else 0
        raw = self._con.execute(
            "SELECT step, value FROM scalars WHERE name_id = ? AND id > ? AND value IS NOT NULL",
            (nid, after),
        ).fetchall()
        if not blocks and not raw:
            return []
        lo = min([b[1] for b in blocks[:1]] + [r[0] for r in raw[:1]])
        hi = max([b[2] for b in blocks[-1:]] + [r[0] for r in raw[-1:]])
        width = max(1, (hi - lo + columns) // columns)
        out: dict[int, list[float]] = {}
        for _, s0, _, vmin, vmax, vsum, n in blocks:
            _merge(out, (s0 - lo) // width, s0, vmin, vmax, vsum, n)
        for step, v in raw:
            _merge(out, (step - lo) // width, step, v, v, v, 1)
        return [
            (int(b[0]), b[1], b[2], b[3] / b[4]) for _, b in sorted(out.items())
        ]

    def layer_stat_matrix(self, column: str) -> tuple[list[int], list[list[float | None]]]:
        """(steps, rows[layer][i]) of one statistic over all samples."""
        if column not in STAT_COLUMNS:
            raise ValueError(f"unknown statistic {column!r}")
        rows = self._con.execute(
            f"SELECT step, layer, {column} FROM layer_stats ORDER BY step, layer"
        ).fetchall()
        steps = sorted({r[0] for r in rows})
        index = {s: i for i, s in enumerate(steps)}
        nlayers = max((r[1] for r in rows), default=-1) + 1
        out: list[list[float | None]] = [[None] * len(steps) for _ in range(nlayers)]
        for step, layer, value in rows:
            out[layer][index[step]] = value
        return steps, out

    def send(self, command: str) -> int:
        """Ask the training process to pause, resume, stop or checkpoint."""
        if command not in CONTROL_COMMANDS:
            raise ValueError(f"unknown control command {command!r}")
        cur = self._con.execute(
            "INSERT INTO control (wall, command) VALUES (?, ?)", (time.time(), command)
        )
        return int(cur.lastrowid or 0)

    def controls(self) -> list[tuple[int, str, bool]]:
        rows = self._con.execute("SELECT id, command, done FROM control ORDER BY id")
        return [(int(i), str(c), bool(d)) for i, c, d in rows]

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _merge(
    out: dict[int, list[float]], key: int, step: int, vmin: float, vmax: float, vsum: float, n: int
) -> None:
    b = out.get(key)
    if b is None:
        out[key] = [step, vmin, vmax, vsum, n]
        return
    b[0] = min(b[0], step)
    b[1] = min(b[1], vmin)
    b[2] = max(b[2], vmax)
    b[3] += vsum
    b[4] += n


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as dead
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def effective_status(meta: dict[str, Any]) -> str:
    status = str(meta.get("status", "created"))
    if status in ("running", "paused") and meta.get("host") == socket.gethostname():
        pid = meta.get("pid")
        if isinstance(pid, int) and not _pid_alive(pid):
            return "crashed"
    return status


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_dir: Path
    preset: str
    variant: str
    status: str
    created: float
    steps: int
    best: dict[str, float]


def list_runs(runs_dir: str | os.PathLike[str] | None = None) -> list[RunInfo]:
    """Runs under the runs directory, newest first."""
    root = runs_root(runs_dir)
    out: list[RunInfo] = []
    if not root.is_dir():
        return out
    for d in root.iterdir():
        if not (d / "run.db").is_file():
            continue
        try:
            with RunReader(d) as r:
                meta = r.meta()
                steps = meta.get("step") or 0
                best = meta.get("best") or {}
        except sqlite3.Error:
            continue
        out.append(
            RunInfo(
                run_id=d.name,
                run_dir=d,
                preset=str(meta.get("preset", "?")),
                variant=str(meta.get("variant", "")),
                status=effective_status(meta),
                created=float(meta.get("created", 0.0)),
                steps=int(steps),
                best=dict(best),
            )
        )
    out.sort(key=lambda r: (r.created, r.run_id), reverse=True)
    return out


def resolve_run(ref: str, runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """A run directory from ``latest``, a run id, a unique id prefix or a path to a run."""
    root = runs_root(runs_dir)
    if ref == "latest":
        runs = list_runs(root)
        if not runs:
            raise StoreError(f"no runs in {root}")
        return runs[0].run_dir
    p = Path(ref)
    if (p / "run.db").is_file():
        return p
    if not _RUN_ID.match(ref):
        raise StoreError(f"run {ref!r}: not a run id or a run directory")
    if (root / ref / "run.db").is_file():
        return root / ref
    matches = [r.run_dir for r in list_runs(root) if r.run_id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise StoreError(f"run {ref!r}: not found in {root}")
    raise StoreError(f"run {ref!r}: ambiguous in {root} ({len(matches)} runs match)")
