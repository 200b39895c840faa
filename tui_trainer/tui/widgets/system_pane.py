"""Provides SystemPane: the run's ``sys/*`` scalars over time, one small chart per figure.

What the training process recorded (engine/system_scalars: CPU %, RSS, torch's allocator,
each GPU's memory, and with NVML its utilisation, temperature, power and clocks), drawn
from the follower's curves, so it costs nothing beyond the dashboard's own snapshot. A
figure of the same kind on several GPUs shares a chart (a GPU's memory used and total, its
SM and memory clocks, too); any other ``sys/*`` name gets a chart of its own.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Static

from tui_trainer.tui.fmt import fmt_num
from tui_trainer.tui.follow import RunSnapshot
from tui_trainer.tui.overlay import RUN_COLORS
from tui_trainer.tui.plot import ChartSeries
from tui_trainer.tui.widgets.curve_chart import CurveChart

__all__ = ["SystemPane", "system_groups"]

KNOWN = (  # (pattern, chart title), in the order shown
    (r"sys/cpu_percent", "CPU % of one core (training process)"),
    (r"sys/rss_mb", "resident memory MB (training process)"),
    (r"sys/gpu\d+/util_pct", "GPU utilisation %"),
    (r"sys/gpu\d+/mem_(used|total)_mb", "GPU memory MB (used, total)"),
    (r"sys/cuda_mem_\w+_mb", "CUDA memory MB (torch's allocator)"),
    (r"sys/gpu\d+/temp_c", "GPU temperature °C"),
    (r"sys/gpu\d+/power_w", "GPU power W"),
    (r"sys/gpu\d+/(sm|mem)_clock_mhz", "GPU clocks MHz, SM and memory"),
)
_LABEL = re.compile(r"sys/(gpu\d+)/(\w+)|sys/cuda_mem_(\w+)_mb")
_SECOND = {"mem_used_mb": "used", "mem_total_mb": "total", "mem_clock_mhz": "mem",
           "sm_clock_mhz": "sm"}  # fmt: skip


def system_groups(names: list[str]) -> list[tuple[str, list[str]]]:
    """The charts for these scalar names: (title, names drawn in it), known kinds first."""
    groups: dict[str, list[str]] = {}
    order: list[tuple[int, str]] = []
    for name in sorted(n for n in names if n.startswith("sys/")):
        rank, title = _kind(name)
        if title not in groups:
            groups[title] = []
            order.append((rank, title))
        groups[title].append(name)
    return [(title, groups[title]) for _, title in sorted(order)]


def _kind(name: str) -> tuple[int, str]:
    for rank, (pattern, title) in enumerate(KNOWN):
        if re.fullmatch(pattern, name):
            return rank, title
    return len(KNOWN), name


def _label(name: str, one_gpu: bool = False) -> str:
    """A series' name in its chart's legend: ``gpu0``, ``gpu1 used``, ``alloc``; on one GPU
    the GPU's figures are told apart by what they are (``used``, ``total``) alone."""
    m = _LABEL.fullmatch(name)
    if m is None:
        return name.removeprefix("sys/")
    if m.group(1):
        second = _SECOND.get(m.group(2))
        if second is None:
            return m.group(1)
        return second if one_gpu else f"{m.group(1)} {second}"
    return m.group(3)


def _one_gpu(names: list[str]) -> bool:
    return len({m.group(1) for n in names if (m := _LABEL.fullmatch(n)) and m.group(1)}) == 1


class SystemPane(Vertical):
    """A line of the latest figures and a grid of charts, one per kind of figure."""

    DEFAULT_CSS = """
    SystemPane #system-head { height: 1; padding: 0 1; }
    SystemPane #system-charts { grid-size: 2; grid-rows: 1fr; grid-gutter: 0 1;
                                overflow-y: auto; height: 1fr; }
    SystemPane #system-charts CurveChart { height: 1fr; min-height: 8; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "system [dim](y: close)[/]"
        self.titles: list[str] = []
        self.charts: list[CurveChart] = []

    def compose(self) -> ComposeResult:
        yield Static(id="system-head")
        yield Grid(id="system-charts")

    def show(self, snap: RunSnapshot) -> None:
        groups = system_groups(list(snap.curves))
        grid = self.query_one("#system-charts", Grid)
        titles = [t for t, _ in groups]
        if titles != self.titles:
            self.titles = titles
            grid.remove_children()
            self.charts = [CurveChart(t) for t in titles]
            grid.mount_all(self.charts)
        for chart, (_, names) in zip(self.charts, groups, strict=True):
            one = _one_gpu(names)
            series = [
                ChartSeries(_label(n, one), snap.curves[n], RUN_COLORS[i % len(RUN_COLORS)])
                for i, n in enumerate(names)
            ]
            legend = {s.label: (s.color, False) for s in series} if len(series) > 1 else {}
            chart.set_series(series, legend)
        self.query_one("#system-head", Static).update(self._head(snap, groups))

    @staticmethod
    def _head(snap: RunSnapshot, groups: list[tuple[str, list[str]]]) -> Text:
        if not groups:
            why = (
                "the first figures come at the first log step"
                if snap.live
                else "this run recorded none (recorded before tui-trainer kept them, or "
                "a copy of a remote run)"
            )
            return Text(f"no sys/* scalars: {why}", "dim")
        text = Text("latest ", "dim")
        for _, names in groups:
            for n in names:
                value = snap.curves[n].last
                text.append(f"{n.removeprefix('sys/')} ", "dim")
                text.append(f"{fmt_num(value, 3)}  ", "bold")
        return text

    def stop(self) -> None:
        pass

    def focus_view(self) -> None:
        pass  # nothing to scroll or type into: the dashboard's keys stay as they are
