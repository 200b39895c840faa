"""Provides StepAxis: zoom, pan and the inspect cursor of a dashboard's charts.

Mixed into DashboardScreen (which binds the keys): both curve charts and the heatmap share
one step window and one cursor (a click on a chart or a heatmap cell puts it there; the
wheel zooms about the step under the pointer). The values at the cursor are read from the
runs' stores in a thread worker, so what the inspector shows is the recorded value at that
step, not a decimated bucket: every curve's, and the selected layer's heatmap statistic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import work
from textual.binding import Binding
from textual.markup import escape
from textual.widgets import Static

from tui_trainer.store import RunReader
from tui_trainer.text import first_line
from tui_trainer.tui.fmt import fmt_num
from tui_trainer.tui.messages import InspectRead, StepClicked
from tui_trainer.tui.series import CurveData
from tui_trainer.tui.stepview import StepWindow, extent, snap_step
from tui_trainer.tui.widgets.curve_chart import CurveChart
from tui_trainer.tui.widgets.heatmap import GradientHeatmap

__all__ = ["STEP_BINDINGS", "StepAxis"]

PAN = 0.25  # a pan moves a quarter of the window
STEP_BINDINGS = [  # the dashboard's keys for the step axis (shown by the help screen)
    Binding("0", "reset_view", "overview, all steps", show=False),
    Binding("plus,equals_sign", "step_zoom(2)", "zoom steps in", show=False, key_display="+"),
    Binding("minus", "step_zoom(0.5)", "zoom steps out", show=False, key_display="-"),
    Binding(
        "less_than_sign,shift+left",
        "step_pan(-0.25)",
        "pan left",
        show=False,
        key_display="<, shift+←",
    ),
    Binding(
        "greater_than_sign,shift+right",
        "step_pan(0.25)",
        "pan right",
        show=False,
        key_display=">, shift+→",
    ),
    Binding("i", "inspect", "inspect"),
    Binding(
        "left",
        "cursor(-1)",
        "cursor left (inspecting)",
        show=False,
        priority=True,
        key_display="←",
    ),
    Binding(
        "right",
        "cursor(1)",
        "cursor right (inspecting)",
        show=False,
        priority=True,
        key_display="→",
    ),
]


class StepAxis:
    """The step window and inspect cursor; the screen provides ``run_dirs`` and labels."""

    window: StepWindow = StepWindow()
    cursor: float | None = None  # the inspected step (None: not inspecting)
    inspect_names: tuple[str, ...] = ()
    inspect_labels: tuple[str, ...] = ()
    run_dirs: list[Path]
    current_dir: Path
    selected_layer: int
    heat_stat: str
    zoom: str

    def check_action(self: Any, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The arrow keys move the inspect cursor only while it is shown."""
        return self.cursor is not None if action == "cursor" else True

    def _curves(self: Any) -> list[CurveData]:
        return [s.data for chart in self.query(CurveChart) for s in chart.series]

    def apply_step_axis(self: Any) -> None:
        """Give both charts the step range of the window and the cursor."""
        span = extent(self._curves())
        x_range = self.window.steps(*span) if span is not None else None
        for chart in self.query(CurveChart):
            chart.x_range = x_range
            chart.cursor = self.cursor
        self.query_one(GradientHeatmap).set_view(x_range, self.cursor)

    def _center(self: Any) -> float | None:
        span = extent(self._curves())
        if self.cursor is None or span is None:
            return None
        return self.window.fraction(self.cursor, *span)

    def action_step_zoom(self: Any, factor: float, at: float | None = None) -> None:
        """Zoom about the step ``at`` (the pointer's), else the cursor, else the middle."""
        span = extent(self._curves())
        center = self.window.fraction(at, *span) if at is not None and span else self._center()
        self.window = self.window.zoom(factor, center)
        self.apply_step_axis()

    def action_step_pan(self: Any, by: float) -> None:
        self.window = self.window.pan(by)
        self.apply_step_axis()

    def action_reset_view(self: Any) -> None:
        """All steps, every panel (0): the overview."""
        self.zoom = ""
        self.window = StepWindow()
        self.apply_step_axis()

    def action_inspect(self: Any) -> None:
        if self.cursor is not None:
            self.cursor = None
            self.set_class(False, "-inspect")
            self.apply_step_axis()
            return
        span = extent(self._curves())
        if span is None:
            self.notify("nothing to inspect yet", timeout=2)
            return
        x_range = self.window.steps(*span) or span
        self.cursor = snap_step(self._curves(), (x_range[0] + x_range[1]) / 2)
        self.set_class(True, "-inspect")
        self._cursor_moved()

    def action_cursor(self: Any, direction: int) -> None:
        if self.cursor is None:
            return
        step = snap_step(self._curves(), self.cursor, direction)
        if step is not None:
            self.cursor = step
            span = extent(self._curves())
            if span is not None:  # keep the cursor inside the window: pan to it
                f = self.window.fraction(step, *span)
                if not self.window.lo <= f <= self.window.hi:
                    self.window = self.window.pan(direction * PAN)
            self._cursor_moved()

    def on_step_clicked(self: Any, message: StepClicked) -> None:
        """A click on a chart (or a heatmap cell: that layer too) inspects that step."""
        if self.zoom not in ("", "curves", "gradients"):
            return  # a pane's own chart: the dashboard's cursor is not shown
        if message.layer is not None:
            self.selected_layer = message.layer
        step = snap_step(self._curves(), message.step)
        self.cursor = float(message.step if step is None else step)
        self.set_class(True, "-inspect")
        self._cursor_moved()

    def inspect_again(self: Any) -> None:
        """The layer or statistic changed while inspecting: read the values again."""
        if self.cursor is not None and self.is_mounted:
            self._cursor_moved()

    def _cursor_moved(self: Any) -> None:
        self.apply_step_axis()
        self.query_one("#inspect", Static).update(f"step {fmt_num(self.cursor)}: reading…")
        heat = self.query_one(GradientHeatmap)
        layer = self.selected_layer
        name = heat.layer_names[layer] if layer < len(heat.layer_names) else str(layer)
        self.read_inspected(
            int(self.cursor),
            list(self.run_dirs),
            self.inspect_labels,
            (self.current_dir, layer, name, self.heat_stat),
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="inspect")
    def read_inspected(
        self: Any,
        step: int,
        run_dirs: list[Path],
        labels: tuple[str, ...],
        heat: tuple[Path, int, str, str],
    ) -> None:
        """Every curve's recorded value at ``step`` in each run, and the heatmap's: the
        selected layer's statistic in the run it shows."""
        names = self.inspect_names
        rows: list[tuple[str, str, int | None, float | None]] = []
        layer = None
        try:
            for label, run_dir in zip(labels, run_dirs, strict=False):
                with RunReader(run_dir) as reader:
                    for name in names:
                        got = reader.value_at(name, step)
                        if got is not None:
                            rows.append((label, name, got[0], got[1]))
                    if run_dir == heat[0]:
                        got = reader.layer_value_at(heat[1], heat[3], step)
                        at, value = got if got is not None else (None, None)
                        layer = (heat[1], heat[2], heat[3], at, value)
        except (OSError, ValueError) as exc:
            self.post_message(InspectRead(step, [], first_line(exc)))
            return
        self.post_message(InspectRead(step, rows, layer=layer))

    def on_inspect_read(self: Any, message: InspectRead) -> None:
        if self.cursor is None or int(self.cursor) != message.step:
            return  # the cursor moved on
        self.query_one("#inspect", Static).update(inspect_text(message, len(self.run_dirs)))


def inspect_text(message: InspectRead, runs: int) -> str:
    """``step N  name value · name value`` (a group: each run's values after its label)."""
    if message.error:
        return f"step {message.step}: {message.error}"
    parts: dict[str, list[str]] = {}
    for label, name, at, value in message.rows:
        when = "" if at == message.step else f" [dim](@{at})[/]"
        parts.setdefault(label, []).append(f"{name} [b]{fmt_num(value)}[/]{when}")
    heat = _layer_text(message)
    if not parts and not heat:
        return f"[b]step {message.step}[/]: no values recorded at or before it"
    body = " │ ".join(
        [heat] * bool(heat)
        + [
            (f"[u]{label}[/] " if runs > 1 else "") + " · ".join(items)
            for label, items in parts.items()
        ]
    )
    return f"[b]step {message.step}[/]  {body}  [dim](←/→ move, j/k layer, i: close)[/]"


def _layer_text(message: InspectRead) -> str:
    """The heatmap's part: ``▼ layer 3 blocks.3 grad_norm 2.1e-05 (@240)``."""
    if message.layer is None:
        return ""
    index, name, stat, at, value = message.layer
    head = f"▼ layer {index} {escape(name)} {stat}"
    if at is None:
        return f"{head} [dim]not sampled yet[/]"
    when = "" if at == message.step else f" [dim](@{at})[/]"
    return f"{head} [b]{fmt_num(value)}[/]{when}"
