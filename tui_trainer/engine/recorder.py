"""Provides Recorder: what the trainer needs from wherever its records go.

The store's RunStore is the recorder of every real run; the trainer depends only on this
protocol, so a test or a user's own sink can stand in for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["Recorder", "note_meta"]


@runtime_checkable
class Recorder(Protocol):
    """Batched records of one run, plus the control requests addressed to it."""

    run_dir: Path

    def set_meta(self, **values: Any) -> None: ...

    def set_status(self, status: str, step: int = 0, **data: Any) -> None: ...

    def set_layers(self, layers: Iterable[tuple[str, str, str, int]]) -> None: ...

    def scalars(self, step: int, values: dict[str, float], wall: float | None = None) -> None: ...

    def layer_stats(self, step: int, rows: Sequence[Sequence[float | None]]) -> None: ...

    def event(self, step: int, kind: str, data: dict[str, Any] | None = None) -> None: ...

    def pending_controls(self) -> list[tuple[int, str]]: ...

    def flush(self) -> None: ...


def note_meta(recorder: Recorder, **values: Any) -> None:
    """Metadata that may wait for the recorder's next batched write (RunStore.note_meta: an
    evaluation's step and best); a recorder without ``note_meta`` writes it at once."""
    getattr(recorder, "note_meta", recorder.set_meta)(**values)
