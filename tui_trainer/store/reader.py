"""Provides RunReader: reads a run, live or finished, from any process; tails new rows."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.store.bulk import BulkReads, merge_bucket
from tui_trainer.store.liveness import recorded_process_alive
from tui_trainer.store.schema import (
    BLOCK,
    BLOCKS_FROM,
    LIVE_STATUSES,
    SCHEMA_VERSION,
    STAT_COLUMNS,
    StoreError,
    connect,
)

__all__ = ["RunReader", "Tail", "effective_status"]


@dataclass
class Tail:
    """Rows newer than a reader's cursors, oldest first."""

    scalars: list[tuple[int, str, float | None, float]] = field(default_factory=list)
    layer_stats: list[tuple[Any, ...]] = field(default_factory=list)  # (step, layer, *STATS)
    events: list[tuple[int, float, str, dict[str, Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.scalars or self.layer_stats or self.events)


class RunReader(BulkReads):
    """Reads a run (live or finished) from any process; keeps cursors for ``tail``."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        db = self.run_dir / "run.db"
        if not db.is_file():
            raise StoreError(f"{self.run_dir}: not a run directory (no run.db)")
        self._con = connect(db, create=False)
        self._names: dict[int, str] = {}
        self.cursor = {"scalars": 0, "layer_stats": 0, "events": 0}
        check_schema(self._con, self.run_dir)

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
        keys = ("index", "name", "kind", "activation", "params")
        return [dict(zip(keys, row, strict=True)) for row in cur]

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
        for table in ("layer_stats", "events"):
            rows = self.rows_after(table, cur[table], limit)
            if rows:
                cur[table] = rows[-1][0]
                setattr(out, table, [r[1:] for r in rows])
        return out

    def rows_after(self, table: str, after: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` rows of ``table`` with id > ``after``, id first, in id order:
        scalars (id, step, name, value, wall), layer_stats (id, step, layer, *STAT_COLUMNS),
        events (id, step, wall, kind, data as a dict)."""
        if table == "scalars":
            rows = self._con.execute(
                "SELECT id, step, name_id, value, wall FROM scalars WHERE id > ? "
                "ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
            return [(i, s, self._name(n), v, w) for i, s, n, v, w in rows]
        if table == "layer_stats":
            return self._con.execute(
                f"SELECT id, step, layer, {', '.join(STAT_COLUMNS)} FROM layer_stats "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
        if table == "events":
            rows = self._con.execute(
                "SELECT id, step, wall, kind, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
            return [(i, s, w, k, json.loads(d)) for i, s, w, k, d in rows]
        raise ValueError(f"no table {table!r}")

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

    def value_at(self, name: str, step: int) -> tuple[int, float | None] | None:
        """(step, value) of ``name``'s row at ``step``, else at the last step before it (the
        one written last when a step has several); None when there is none."""
        row = self._con.execute(
            "SELECT s.step, s.value FROM scalars s JOIN names n ON n.id = s.name_id "
            "WHERE n.name = ? AND s.step <= ? ORDER BY s.step DESC, s.id DESC LIMIT 1",
            (name, int(step)),
        ).fetchone()
        return (int(row[0]), row[1]) if row is not None else None

    def last_values(self) -> dict[str, float | None]:
        """The last recorded value of every scalar."""
        out = {}
        for nid, name in self._con.execute("SELECT id, name FROM names ORDER BY id").fetchall():
            row = self._con.execute(  # one index probe a name, whatever the run's length
                "SELECT value FROM scalars WHERE name_id = ? ORDER BY id DESC LIMIT 1", (nid,)
            ).fetchone()
            if row is not None:
                out[name] = row[0]
        return out

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
            merge_bucket(out, (s0 - lo) // width, s0, vmin, vmax, vsum, n)
        for step, v in raw:
            merge_bucket(out, (step - lo) // width, step, v, v, v, 1)
        return [(int(b[0]), b[1], b[2], b[3] / b[4]) for _, b in sorted(out.items())]

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

    def layer_value_at(self, layer: int, column: str, step: int) -> tuple[int, float | None] | None:
        """(step, value) of one layer's statistic at ``step``, else at the last sample
        before it; None when there is none."""
        if column not in STAT_COLUMNS:
            raise ValueError(f"unknown statistic {column!r}")
        row = self._con.execute(
            f"SELECT step, {column} FROM layer_stats WHERE layer = ? AND step <= ? "
            "ORDER BY step DESC, id DESC LIMIT 1",
            (int(layer), int(step)),
        ).fetchone()
        return (int(row[0]), row[1]) if row is not None else None

    def layer_curves(
        self, layer: int, columns: Sequence[str], buckets: int = 200
    ) -> tuple[dict[str, list[tuple[int, float, float, float]]], tuple[Any, ...] | None]:
        """One layer's statistics over time, each decimated to ``buckets`` buckets of
        steps: {column: [(first step, min, max, mean)]} (buckets without a value left
        out), and its last row (step, *columns) as recorded."""
        bad = [c for c in columns if c not in STAT_COLUMNS]
        if bad:
            raise ValueError(f"unknown statistic {bad[0]!r}")
        lo, hi = self._con.execute(
            "SELECT MIN(step), MAX(step) FROM layer_stats WHERE layer = ?", (layer,)
        ).fetchone()
        if lo is None:
            return {c: [] for c in columns}, None
        width = max(1, (hi - lo + buckets) // buckets)
        aggs = ", ".join(f"MIN({c}), MAX({c}), AVG({c})" for c in columns)
        rows = self._con.execute(
            f"SELECT MIN(step), {aggs} FROM layer_stats WHERE layer = ? "
            "GROUP BY (step - ?) / ? ORDER BY 1",
            (layer, lo, width),
        ).fetchall()
        out: dict[str, list[tuple[int, float, float, float]]] = {}
        for k, c in enumerate(columns):
            i = 1 + 3 * k
            out[c] = [(r[0], r[i], r[i + 1], r[i + 2]) for r in rows if r[i] is not None]
        last = self._con.execute(
            f"SELECT step, {', '.join(columns)} FROM layer_stats WHERE layer = ? "
            "ORDER BY step DESC, id DESC LIMIT 1",
            (layer,),
        ).fetchone()
        return out, last

    def histograms(self, layer: str, limit: int = 160) -> list[tuple[int, dict[str, Any]]]:
        """A layer's recorded histograms (``histogram`` events), at most ``limit`` of them
        spread evenly over the run: (step, {"bins", "grad_log10_range", "grad", "act",
        "act_range"})."""
        ids = [i for (i,) in self._con.execute(
            "SELECT id FROM events WHERE kind = 'histogram' ORDER BY id"
        )]  # fmt: skip
        if len(ids) > limit:
            ids = [ids[round(k * (len(ids) - 1) / (limit - 1))] for k in range(limit)]
        out = []
        for i in ids:
            step, data = self._con.execute(
                "SELECT step, data FROM events WHERE id = ?", (i,)
            ).fetchone()
            event = json.loads(data)
            for entry in event.get("layers", ()):
                if entry.get("layer") == layer:
                    info = {"bins": event.get("bins"), "grad_log10_range": event.get(
                        "grad_log10_range"), **entry}  # fmt: skip
                    out.append((int(step), info))
                    break
        return out

    def controls(self) -> list[tuple[int, str, bool]]:
        rows = self._con.execute("SELECT id, command, done FROM control ORDER BY id")
        return [(int(i), str(c), bool(d)) for i, c, d in rows]

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def effective_status(meta: dict[str, Any]) -> str:
    """The recorded status, except that a live status whose process is certainly gone (or
    is now another process: pid reuse, a reboot) reads ``crashed``."""
    status = str(meta.get("status", "created"))
    if status in LIVE_STATUSES and recorded_process_alive(meta) is False:
        return "crashed"
    return status


def check_schema(con: sqlite3.Connection, run_dir: Path) -> None:
    """One line, not an SQL error, for a file that is not a run store or a store of another
    schema version (newer: upgrade tui-trainer; there is no older one yet)."""
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        con.close()
        raise StoreError(f"{run_dir}: run.db is not a tui-trainer store ({exc})") from None
    version = json.loads(row[0]) if row else None
    if version is None:
        return  # created, its metadata not written yet (a run starting this instant)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        con.close()
        raise StoreError(
            f"{run_dir}: written by a newer tui-trainer (store schema {version}; this one "
            f"reads {SCHEMA_VERSION}): upgrade tui-trainer to read it"
        )
