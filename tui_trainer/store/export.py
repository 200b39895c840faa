"""Provides export_csv: a run's records as plain CSV files (and its meta as JSON)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tui_trainer.store.reader import RunReader
from tui_trainer.store.schema import STAT_COLUMNS, StoreError

__all__ = ["export_csv", "prepare_out_dir"]


def prepare_out_dir(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{out}: cannot write there ({exc.strerror or exc})") from None
    return out


def export_csv(run_dir: Path, out: Path) -> list[Path]:
    """Write scalars.csv, layer_stats.csv (with layer names), events.csv and meta.json."""
    out = prepare_out_dir(out)
    written = []
    with RunReader(run_dir) as reader:
        names = {lay["index"]: lay["name"] for lay in reader.layers()}
        tail = reader.tail(limit=1 << 62)
        path = out / "scalars.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["step", "name", "value", "wall"])
            w.writerows(tail.scalars)
        written.append(path)
        path = out / "layer_stats.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["step", "layer", "layer_name", *STAT_COLUMNS])
            for step, layer, *stats in tail.layer_stats:
                w.writerow([step, layer, names.get(layer, ""), *stats])
        written.append(path)
        path = out / "events.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["step", "wall", "kind", "data"])
            for step, wall, kind, data in tail.events:
                w.writerow([step, wall, kind, json.dumps(data)])
        written.append(path)
        path = out / "meta.json"
        path.write_text(json.dumps(reader.meta(), indent=2, default=str), encoding="utf-8")
        written.append(path)
    return written
