"""Provides the run store's schema, constants and paths (standard library only)."""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

__all__ = [
    "BLOCK",
    "BLOCKS_FROM",
    "FLUSH_INTERVAL",
    "LIVE_STATUSES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STAT_COLUMNS",
    "STATUSES",
    "StoreError",
    "connect",
    "jsonable",
    "strict_json",
    "new_run_id",
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
    "dead_frac",  # fraction of units zero for every example of the batch (dead ReLUs)
    "sat_frac",  # fraction saturated (sigmoid < .01 or > .99, tanh |y| > .99); NULL otherwise
    "nonfinite",  # count of non-finite values in the layer's gradients and activations
)

SCHEMA = f"""
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

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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


def connect(path: Path, create: bool = True) -> sqlite3.Connection:
    """A connection in autocommit mode; ``create=False`` (readers) never makes the file:
    a reader that races a deletion gets an error instead of leaving an empty ``run.db``."""
    target: str | Path = path if create else path.resolve().as_uri() + "?mode=rw"
    con = sqlite3.connect(
        target, timeout=10.0, isolation_level=None, check_same_thread=False, uri=not create
    )
    con.execute("PRAGMA busy_timeout = 10000")
    return con


def jsonable(v: Any) -> Any:
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return str(v)
    return v


def strict_json(v: Any) -> Any:
    """``jsonable`` all the way down dicts, lists and tuples: what strict JSON can hold."""
    if isinstance(v, dict):
        return {k: strict_json(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [strict_json(x) for x in v]
    return jsonable(v)
