"""Provides Finding (one thing wrong with a run) and RunData (what the rules read from a run,
fetched once), and the small helpers the rules share to read and phrase numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tui_trainer.store import RunReader


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a run, in plain language, with the numbers behind it."""

    rule: str
    severity: str  # "error", "warning" or "info"
    message: str
    layers: tuple[str, ...] = ()
    first_step: int | None = None
    numbers: dict[str, float] = field(default_factory=dict)
    remedy: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "layers": list(self.layers),
            "first_step": self.first_step,
            "numbers": {k: _json_number(v) for k, v in self.numbers.items()},
            "remedy": self.remedy,
        }


def _json_number(v: float) -> float | str | None:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


class RunData:
    """What the rules read from a run, fetched once."""

    def __init__(self, reader: RunReader) -> None:
        self.reader = reader
        self.layers = reader.layers()
        self.names = [layer["name"] for layer in self.layers]
        self.activations = [layer["activation"] for layer in self.layers]
        self.meta = reader.meta()
        self.status = reader.status()
        self._matrices: dict[str, tuple[list[int], list[list[float | None]]]] = {}

    def matrix(self, column: str) -> tuple[list[int], list[list[float | None]]]:
        if column not in self._matrices:
            self._matrices[column] = self.reader.layer_stat_matrix(column)
        return self._matrices[column]

    def series(self, name: str) -> list[tuple[int, float | None]]:
        return self.reader.series(name)


# -- helpers for the rules -------------------------------------------------------------------------
def is_finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def late_values(row: Sequence[float | None]) -> list[float]:
    """The finite values of the later half of the samples (where a run has settled)."""
    return [v for v in row[len(row) // 2 :] if is_finite(v)]  # type: ignore[misc]


def fmt_value(v: float) -> str:
    return f"{v:.2g}" if abs(v) < 1e-2 or abs(v) >= 1e3 else f"{v:.3g}"


def name_list(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
