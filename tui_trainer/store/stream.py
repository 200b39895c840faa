"""Provides write_stream: a run as JSON lines a remote client can rebuild it from
(``tui-trainer stream``; the schema is in ``docs/stream.md``).

Every line is strict JSON with a ``type`` and a ``cursor``: the stream's position in each of
the run's three record tables after that line (``s<id>.l<id>.e<id>``). A stream opens with
``hello``, ``meta`` and ``layers`` (on every connection), then ``scalar``, ``layer_stats``
and ``event`` records in store order (after each status event, a ``status`` line with the
same cursor: a convenience; a client resuming mid-way reads the status from the event), and ends
with ``end`` once the run is over (``follow``) or caught up. ``since`` resumes after a
cursor: the records after it, none lost or repeated. ``every=K`` sends the 1st, (K+1)th, ...
scalar of each name and row of each layer, counted from the start of the connection; events
and status are never thinned. Values that are not finite are ``"nan"``, ``"inf"``,
``"-inf"``. Standard library only.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from tui_trainer.store.reader import RunReader
from tui_trainer.store.schema import LIVE_STATUSES, STAT_COLUMNS, jsonable, strict_json

__all__ = ["SCHEMA_VERSION", "format_cursor", "parse_cursor", "write_stream"]

SCHEMA_VERSION = 1  # of the stream's lines; a client refuses a schema it does not know
TABLES = ("scalars", "layer_stats", "events")
BATCH = 5000  # rows read per table per round
CURSOR = re.compile(r"^s(\d+)\.l(\d+)\.e(\d+)$")


def parse_cursor(text: str) -> dict[str, int]:
    m = CURSOR.match(text.strip())
    if m is None:
        raise ValueError(f"--since {text!r}: expected a cursor from a stream line, like s12.l40.e3")
    return dict(zip(TABLES, map(int, m.groups()), strict=True))


def format_cursor(cur: dict[str, int]) -> str:
    return f"s{cur['scalars']}.l{cur['layer_stats']}.e{cur['events']}"


def write_stream(
    reader: RunReader,
    out: TextIO,
    *,
    follow: bool = False,
    since: str | None = None,
    every: int = 1,
    poll: float = 0.25,
    should_stop: Callable[[], bool] = lambda: False,
) -> str:
    """Write the run to ``out`` as JSON lines; returns the last cursor written."""
    if every < 1:
        raise ValueError(f"--every {every}: expected an integer >= 1")
    cur = parse_cursor(since) if since else dict.fromkeys(TABLES, 0)
    seen: defaultdict[Any, int] = defaultdict(int)  # per scalar name / layer, for every=K

    def emit(rec: dict[str, Any]) -> None:
        rec["cursor"] = format_cursor(cur)
        out.write(json.dumps(rec, allow_nan=False, default=str) + "\n")

    from tui_trainer import __version__

    emit({"type": "hello", "schema": SCHEMA_VERSION, "tool": "tui-trainer",
          "version": __version__, "run_id": reader.run_id})  # fmt: skip
    emit({"type": "meta", "meta": strict_json(reader.meta())})
    layers = reader.layers()
    emit({"type": "layers", "layers": layers})
    status = reader.status()
    while True:
        live = status in LIVE_STATUSES  # read before draining: what precedes the end is sent
        if live and (now := reader.layers()) != layers:  # a run still starting names them later
            layers = now
            emit({"type": "layers", "layers": layers})
        while _round(reader, cur, emit, every, seen):
            pass
        out.flush()
        new = reader.status()
        if new != status and new not in LIVE_STATUSES and not _ended_by_event(reader, new):
            emit({"type": "status", "status": new, "step": int(reader.meta().get("step") or 0)})
        status = new
        if should_stop():
            return format_cursor(cur)  # the reader went away: no end line
        if not follow or not live:
            emit({"type": "end", "status": status})
            out.flush()
            return format_cursor(cur)
        time.sleep(poll)


def _round(reader: RunReader, cur: dict[str, int], emit: Any, every: int, seen: Any) -> bool:
    """One batch of each table, in order; True when there may be more."""
    more = False
    for table in TABLES:
        rows = reader.rows_after(table, cur[table], BATCH)
        more |= len(rows) == BATCH
        for row in rows:
            cur[table] = row[0]
            for rec in _records(table, row):
                if every > 1 and table != "events":  # thinning: count per name / layer
                    key = (table, rec.get("name", rec.get("layer")))
                    seen[key] += 1
                    if (seen[key] - 1) % every:
                        continue
                emit(rec)
    return more


def _records(table: str, row: tuple[Any, ...]) -> Iterator[dict[str, Any]]:
    if table == "scalars":
        _, step, name, value, wall = row
        yield {"type": "scalar", "step": step, "name": name, "value": jsonable(value),
               "wall": wall}  # fmt: skip
    elif table == "layer_stats":
        _, step, layer, *stats = row
        rec: dict[str, Any] = {"type": "layer_stats", "step": step, "layer": layer}
        rec.update((k, jsonable(v)) for k, v in zip(STAT_COLUMNS, stats, strict=False))
        yield rec
    else:
        _, step, wall, kind, data = row
        yield {"type": "event", "step": step, "wall": wall, "kind": kind, "data": strict_json(data)}
        if kind == "status" and isinstance(data, dict) and "status" in data:
            yield {"type": "status", "status": data["status"], "step": step}


def _ended_by_event(reader: RunReader, status: str) -> bool:
    """The recorded status came with its event (already sent); a run whose process died
    while live (``crashed``, found by its pid) has none."""
    return reader.meta().get("status") == status
