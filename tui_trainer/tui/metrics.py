"""Provides the logic of the metrics view: which scalars match a filter, how many charts fit
a page, the remembered filter of a run, and the curves of a page read from the store.

Plain Python (no Textual): the metrics screen and the tests call these directly. Every
scalar name a run recorded is a candidate, including those a script logged itself with
``mon.log`` under any name; only the charts of the page shown are read from the store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from tui_trainer.store import RunReader
from tui_trainer.tui.series import CurveData

__all__ = [
    "CHART_H",
    "CHART_W",
    "VIEW_FILE",
    "Grid",
    "grid_for",
    "load_filter",
    "matching",
    "read_curves",
    "save_filter",
]

CHART_W = 38  # the narrowest chart of the grid, in cells (borders and labels included)
CHART_H = 9  # and the lowest
VIEW_FILE = "view.json"  # a run directory's remembered view settings (the app writes it)


def matching(names: Iterable[str], pattern: str) -> list[str]:
    """The names that match ``pattern``, sorted: a glob when it has ``*?[`` (matching the
    whole name or what follows one of its ``/``), else a substring; case-insensitive;
    several patterns separated by spaces or commas match any of them."""
    terms = [t for t in pattern.replace(",", " ").lower().split() if t]
    out = []
    for name in sorted(set(names)):
        low = name.lower()
        if not terms or any(_match(low, t) for t in terms):
            out.append(name)
    return out


def _match(name: str, term: str) -> bool:
    if any(ch in term for ch in "*?["):
        parts = name.split("/")
        return any(fnmatchcase("/".join(parts[i:]), term) for i in range(len(parts)))
    return term in name


@dataclass(frozen=True)
class Grid:
    """Charts per page: ``columns`` across, ``rows`` down."""

    columns: int
    rows: int

    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    def pages(self, count: int) -> int:
        return max(1, math.ceil(count / self.per_page))

    def page_of(self, names: Sequence[str], page: int) -> list[str]:
        """The names on ``page`` (clamped to the last page)."""
        page = min(max(page, 0), self.pages(len(names)) - 1)
        return list(names[page * self.per_page : (page + 1) * self.per_page])


def grid_for(width: int, height: int) -> Grid:
    """As many charts as fit ``width`` x ``height`` cells at CHART_W x CHART_H or more."""
    return Grid(max(1, width // CHART_W), max(1, height // CHART_H))


def load_filter(run_dir: Path) -> str:
    """The metrics filter remembered for a run ('' when none or unreadable)."""
    try:
        data = json.loads((Path(run_dir) / VIEW_FILE).read_text())
    except (OSError, ValueError):
        return ""
    value = data.get("metrics_filter", "") if isinstance(data, dict) else ""
    return value if isinstance(value, str) else ""


def save_filter(run_dir: Path, pattern: str) -> bool:
    """Remember ``pattern`` for a run (a temporary file renamed); False when it cannot."""
    path = Path(run_dir) / VIEW_FILE
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data["metrics_filter"] = pattern
    tmp = path.with_name(f".{VIEW_FILE}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(path)
    except OSError:
        return False
    return True


def scalar_names(run_dirs: Iterable[Path]) -> list[str]:
    """Every scalar name recorded by any of the runs (a run that cannot be read: none)."""
    names: set[str] = set()
    for run_dir in run_dirs:
        try:
            with RunReader(run_dir) as reader:
                names.update(reader.scalar_names())
        except (OSError, ValueError):
            continue
    return sorted(names)


def read_curves(run_dir: Path, names: Sequence[str], columns: int = 200) -> dict[str, CurveData]:
    """The curves of ``names`` in one run, each decimated to ``columns`` buckets (min/max
    kept); a name the run did not record is left out."""
    out: dict[str, CurveData] = {}
    with RunReader(run_dir) as reader:
        for name in names:
            rows = reader.curve(name, columns)
            if not rows:
                continue
            steps, lows, highs, means = (tuple(col) for col in zip(*rows, strict=True))
            out[name] = CurveData(steps, lows, highs, means, means[-1], end=steps[-1])
    return out
