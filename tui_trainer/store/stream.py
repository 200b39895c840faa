"""Provides stream_records: a run's rows as JSON-able dicts, one per record, in store order.

``tui-trainer stream`` writes them as JSON lines; a remote reader rebuilds a run from them.
Values that are not finite become the strings ``"nan"``, ``"inf"`` and ``"-inf"``, so every
line is strict JSON. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tui_trainer.store.reader import Tail
from tui_trainer.store.schema import STAT_COLUMNS, jsonable

__all__ = ["stream_records"]


def stream_records(tail: Tail) -> Iterator[dict[str, Any]]:
    """Scalars, then layer statistics, then events of one ``RunReader.tail()``."""
    for step, name, value, wall in tail.scalars:
        yield {"type": "scalar", "step": step, "name": name, "value": jsonable(value), "wall": wall}
    for step, layer, *stats in tail.layer_stats:
        rec: dict[str, Any] = {"type": "layer_stats", "step": step, "layer": layer}
        rec.update((k, jsonable(v)) for k, v in zip(STAT_COLUMNS, stats, strict=False))
        yield rec
    for step, wall, kind, data in tail.events:
        yield {"type": "event", "step": step, "wall": wall, "kind": kind, "data": _strict(data)}


def _strict(v: Any) -> Any:
    """``jsonable`` all the way down an event's data."""
    if isinstance(v, dict):
        return {k: _strict(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_strict(x) for x in v]
    return jsonable(v)
