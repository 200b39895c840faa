"""Provides BulkReads: a long run's history read in bulk, decimated by SQLite (RunReader's).

Curves from the writer's roll-ups (``scalar_blocks``), the heatmap's per-bucket sums from
``layer_stats``: what opening a finished million-step run needs, in a few thousand rows
instead of millions (the follower's first look; ``tui/follow.py``).
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from tui_trainer.store.schema import STAT_COLUMNS

__all__ = ["BulkReads", "merge_bucket"]


class BulkReads:
    """Mixed into RunReader, whose connection (``_con``) they read."""

    _con: sqlite3.Connection

    def last_ids(self) -> dict[str, int]:
        """The id of the newest row of each table (0 when empty): where a tail would end."""
        return {
            t: int(self._con.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}").fetchone()[0])
            for t in ("scalars", "layer_stats", "events")
        }

    def last_step(self) -> int:
        """The step of the newest scalar or layer row (0 when there is none)."""
        steps = [
            self._con.execute(f"SELECT step FROM {t} ORDER BY id DESC LIMIT 1").fetchone()
            for t in ("scalars", "layer_stats")
        ]
        return max((int(r[0]) for r in steps if r), default=0)

    def scalar_buckets(
        self, name: str, width: int, upto: int
    ) -> tuple[list[tuple[int, float, float, float, int]], int, int]:
        """The finite values of ``name`` with id <= ``upto`` in buckets of ``width`` steps
        (start = step - step % width): (start, min, max, sum, count), how many of the values
        read one by one were not finite, and the step of the last value.

        From the writer's roll-ups, summed by SQLite, plus the raw values of a roll-up that
        straddles two buckets (or holds an infinity) and of those after the last one: a
        million-step curve is a few hundred raw rows, bucketed as every value would be.
        (A NaN inside a roll-up's span is not counted: roll-ups hold finite values.)"""
        row = self._con.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
        if row is None:
            return [], 0, 0
        nid, w = row[0], width
        inside = f"step_lo / {w} = step_hi / {w} AND vmin >= -1e308 AND vmax <= 1e308"
        out: dict[int, list[float]] = {
            int(k): [s0, lo, hi, total, n]
            for k, s0, lo, hi, total, n in self._con.execute(
                f"SELECT step_lo - step_lo % {w} AS k, MIN(step_lo), MIN(vmin), MAX(vmax), "
                f"SUM(vsum), SUM(n) FROM scalar_blocks WHERE name_id = ? AND id_hi <= ? "
                f"AND {inside} GROUP BY k",
                (nid, upto),
            )
        }
        spans = self._con.execute(  # (previous id_hi, id_hi) of the roll-ups read raw
            f"SELECT prev, id_hi FROM (SELECT id_hi, {inside} AS ok, "
            "LAG(id_hi, 1, 0) OVER (ORDER BY id_hi) AS prev FROM scalar_blocks "
            "WHERE name_id = ? AND id_hi <= ?) WHERE NOT ok",
            (nid, upto),
        ).fetchall()
        after = self._con.execute(
            "SELECT COALESCE(MAX(id_hi), 0) FROM scalar_blocks WHERE name_id = ? AND id_hi <= ?",
            (nid, upto),
        ).fetchone()[0]
        bad = 0
        raw = "SELECT step, value FROM scalars WHERE name_id = ? AND id > ? AND id <= ?"
        for lo, hi in [*spans, (after, upto)]:
            for step, v in self._con.execute(raw, (nid, lo, hi)):
                if v is None or not math.isfinite(v):
                    bad += 1
                else:
                    merge_bucket(out, step - step % w, step, v, v, v, 1)
        end = self._con.execute(
            "SELECT step FROM scalars WHERE name_id = ? AND id <= ? ORDER BY id DESC LIMIT 1",
            (nid, upto),
        ).fetchone()
        buckets = [(k, b[1], b[2], b[3], int(b[4])) for k, b in sorted(out.items())]
        return buckets, bad, int(end[0]) if end else 0

    def layer_stat_buckets(
        self,
        columns: list[str],
        logs: list[bool],
        width: int,
        upto: int,
        floor: float,
        every: tuple[int, int] = (1, 1),
    ) -> list[tuple[Any, ...]]:
        """Per bucket of ``width`` steps and layer, the sum and count of each statistic's
        finite values (log10|v| where ``logs`` says, ``floor`` for an exact zero) over the
        rows with id <= ``upto``: (start, layer, sum_0, count_0, sum_1, ...), aggregated by
        SQLite, so a long run's heatmap is read without a row per sample in Python.
        ``every = (rows, k)``: only one run of ``rows`` consecutive rows (a sample's layers)
        in ``k``, for a quick first look."""
        for c in columns:
            if c not in STAT_COLUMNS:
                raise ValueError(f"unknown statistic {c!r}")
        exprs = []
        for c, lg in zip(columns, logs, strict=True):
            if lg:
                e = (
                    f"CASE WHEN {c} > 1e308 OR {c} < -1e308 THEN NULL WHEN {c} > 0 THEN "
                    f"log10({c}) WHEN {c} < 0 THEN log10(-{c}) WHEN {c} = 0 THEN {floor} END"
                )
            else:
                e = f"CASE WHEN {c} BETWEEN -1e308 AND 1e308 THEN {c} END"
            exprs.append(f"SUM({e}), COUNT({e})")
        sql = (
            f"SELECT step - step % ? AS b, layer, {', '.join(exprs)} FROM layer_stats "
            "WHERE id <= ? AND (id / ?) % ? = 0 GROUP BY b, layer ORDER BY b, layer"
        )
        args = (width, upto, max(1, every[0]), max(1, every[1]))
        try:
            return self._con.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:  # an SQLite built without math functions
            if "log10" not in str(exc):
                raise
            self._con.create_function("log10", 1, math.log10, deterministic=True)
            return self._con.execute(sql, args).fetchall()


def merge_bucket(
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
