"""Provides the app's messages: what thread workers tell the UI thread, and screen requests.

A "latest value" message replaces its queued predecessor for the same run (``can_replace``);
a message that reports an event (a process ended, a run was launched) never does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.message import Message

from tui_trainer.runner import RunProcess
from tui_trainer.store import RunInfo
from tui_trainer.sysinfo import GpuStat, ProcessStat
from tui_trainer.tui.follow import RunSnapshot

__all__ = [
    "ConsoleLines",
    "ControlDone",
    "FindingsReady",
    "InspectRead",
    "LaunchFailed",
    "LayerChosen",
    "LayerReady",
    "OverviewReady",
    "MetricsRead",
    "RunProcessEnded",
    "RunSnapshotReady",
    "RunsLaunched",
    "RunsListed",
    "StartRequested",
    "StepClicked",
    "SystemStatsReady",
    "TabClicked",
]


@dataclass
class InspectRead(Message):
    """The recorded values at the inspected step: (run label, name, step, value) rows."""

    step: int
    rows: list[tuple[str, str, int | None, float | None]]
    error: str = ""
    layer: tuple[int, str, str, int | None, float | None] | None = None  # the heatmap's:
    # (index, name, statistic, step of the sample, value)

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, InspectRead)


@dataclass
class MetricsRead(Message):
    """The metrics view's names and the curves of its page, read from the runs' stores."""

    names: list[str]
    curves: dict[Path, dict[str, Any]]  # run -> name -> CurveData
    error: str = ""
    partial: bool = False  # the names only: the curves follow in the next message

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, MetricsRead)


@dataclass
class RunSnapshotReady(Message):
    """A follower has a new snapshot of a run."""

    snapshot: RunSnapshot

    def can_replace(self, message: Message) -> bool:
        return (
            isinstance(message, RunSnapshotReady)
            and message.snapshot.run_dir == self.snapshot.run_dir
        )


@dataclass
class FindingsReady(Message):
    """diagnose produced findings for a run (or could not: ``error``)."""

    run_dir: Path
    findings: list[dict[str, Any]]  # Finding.to_dict() of each
    error: str = ""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FindingsReady) and message.run_dir == self.run_dir


@dataclass
class SystemStatsReady(Message):
    """GPU and training-process statistics for a run."""

    run_dir: Path
    process: ProcessStat | None
    gpus: list[GpuStat] = field(default_factory=list)

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SystemStatsReady) and message.run_dir == self.run_dir


@dataclass
class StartRequested(Message):
    """The picker asks to train a preset: these variants with these overrides."""

    preset: str
    variants: list[str | None]
    overrides: list[str] = field(default_factory=list)


@dataclass
class RunsLaunched(Message):
    """Training child processes started (one per variant)."""

    processes: list[RunProcess]
    labels: list[str]  # preset/variant of each

    @property
    def run_dirs(self) -> list[Path]:
        return [p.run_dir for p in self.processes]


@dataclass
class LaunchFailed(Message):
    """A run could not be started; ``error`` is one line."""

    error: str


@dataclass
class RunProcessEnded(Message):
    """A training child process launched by this app has exited.

    ``error``: why its run could not be marked crashed (one line), else empty.
    """

    run_dir: Path
    returncode: int
    error: str = ""


@dataclass
class ControlDone(Message):
    """A control row (pause, resume, stop, checkpoint) was written, or failed."""

    run_dir: Path
    command: str
    error: str = ""


@dataclass
class RunsListed(Message):
    """The runs directory was listed (and the remote boxes, when there are any)."""

    runs: list[RunInfo]
    remote: list[tuple[str, RunInfo]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsListed)


@dataclass
class ConsoleLines(Message):
    """Lines appended to a run's output.log (``reset``: it was rewritten; forget the old)."""

    run_dir: Path
    lines: list[str]
    reset: bool = False
    missing: bool = False  # there is no output.log (yet)
    generation: int = 0  # which start of following the lines come from


@dataclass
class OverviewReady(Message):
    """A run's overview was read (``error``: it could not be; one line)."""

    run_dir: Path
    overview: Any
    error: str = ""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, OverviewReady) and message.run_dir == self.run_dir


@dataclass
class LayerReady(Message):
    """One layer's statistics and histograms were read for its view (or ``error``)."""

    run_dir: Path
    layer: int
    data: Any
    error: str = ""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LayerReady) and message.run_dir == self.run_dir


@dataclass
class LayerChosen(Message):
    """A layer was clicked (heatmap row, activation table row): select it, ``open`` its view."""

    layer: int
    open: bool = True


@dataclass
class StepClicked(Message):
    """A chart or the heatmap was clicked at ``step`` (and, on the heatmap, ``layer``):
    inspect there."""

    step: float
    layer: int | None = None


@dataclass
class TabClicked(Message):
    """A run's tab was clicked."""

    index: int
