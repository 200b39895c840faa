"""Provides DashboardScreen: one run or a group of runs, live or finished.

Each run is followed by a thread worker (RunFollower) that posts snapshots; the screen
keeps the latest snapshot of each run and redraws at most every REFRESH_S seconds, so the
cost of the UI does not grow with the speed of training. Keys control the selected run
through the store (control rows), from a worker: a slow disk never blocks a key press.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from tui_trainer.store import STAT_COLUMNS
from tui_trainer.sysinfo import GpuStat, ProcessStat, ProcessWatch, gpu_stats
from tui_trainer.tui.findings import run_diagnose
from tui_trainer.tui.follow import HEAT_STATS, RunFollower, RunSnapshot
from tui_trainer.tui.messages import FindingsReady, RunSnapshotReady, SystemStatsReady
from tui_trainer.tui.overlay import LOSS_LINES, metric_lines, overlay, run_labels
from tui_trainer.tui.screens.confirm import ConfirmScreen
from tui_trainer.tui.screens.metrics import MetricsScreen
from tui_trainer.tui.screens.panes import PANE_BINDINGS, PANES, PaneKeys
from tui_trainer.tui.screens.step_axis import STEP_BINDINGS, StepAxis
from tui_trainer.tui.widgets.activation_table import ActivationTable
from tui_trainer.tui.widgets.curve_chart import CurveChart
from tui_trainer.tui.widgets.exhibit_panel import ExhibitPanel
from tui_trainer.tui.widgets.findings_panel import FindingsPanel
from tui_trainer.tui.widgets.heatmap import GradientHeatmap
from tui_trainer.tui.widgets.layer_bars import LayerBars
from tui_trainer.tui.widgets.run_tabs import RunTabs
from tui_trainer.tui.widgets.status_line import StatusLine, status_note, status_text

__all__ = ["DashboardScreen"]

REFRESH_S = 0.2  # the dashboard redraws at most 5 times a second
SYSTEM_S = 2.0
DIAGNOSE_S = 10.0
SMOOTHING = (0.0, 0.6, 0.9, 0.99)
STAT_TITLE = {
    "grad_norm": "gradient norm of each layer's parameters",
    "out_grad_norm": "gradient norm flowing out of each layer",
    "update_ratio": "update / weight ratio",
    "act_std": "activation std",
    "dead_frac": "dead fraction (exact zeros)",
    "sat_frac": "saturated fraction",
}


class DashboardScreen(PaneKeys, StepAxis, Screen[None]):
    """Curves, gradient heatmap, layer bars, activations, findings and status of runs."""

    BINDINGS = [
        Binding("question_mark", "app.help", "help"),
        Binding("space", "pause_resume", "pause/resume"),
        Binding("s", "stop", "stop"),
        Binding("c", "checkpoint", "checkpoint"),
        Binding("l", "toggle_log", "log"),
        Binding("f", "full_range", "full range", show=False),
        Binding("m", "smoothing", "smooth"),
        Binding("g", "next_stat", "statistic"),
        Binding("a", "metrics", "all metrics"),
        Binding("tab", "switch_run(1)", "next run", priority=True),
        Binding("shift+tab", "switch_run(-1)", "previous run", show=False, priority=True),
        Binding("1", "zoom('curves')", "curves", show=False),
        Binding("2", "zoom('gradients')", "gradients", show=False),
        Binding("3", "zoom('activations')", "activations", show=False),
        Binding("4", "zoom('findings')", "findings", show=False),
        Binding("5", "zoom('exhibit')", "exhibit", show=False),
        *PANE_BINDINGS,  # o, v, y, j/k, enter (screens/panes.py)
        *STEP_BINDINGS,  # 0, + -, < >, i, ← → (screens/step_axis.py)
        Binding("r", "app.show_runs", "runs"),
        Binding("escape", "back", "back"),
    ]

    zoom: reactive[str] = reactive("")
    selected: reactive[int] = reactive(0)
    log_scale: reactive[bool | None] = reactive(None)  # None: log when a curve spans decades
    full_range: reactive[bool] = reactive(False)
    smoothing: reactive[float] = reactive(0.0)
    heat_stat: reactive[str] = reactive(HEAT_STATS[0])
    selected_layer: reactive[int] = reactive(0)

    def __init__(self, run_dirs: list[Path]) -> None:
        super().__init__()
        self.run_dirs = [Path(d) for d in run_dirs]
        self.snaps: dict[Path, RunSnapshot] = {}
        self.followers: dict[Path, RunFollower] = {}
        self.findings: dict[Path, tuple[list[dict[str, Any]] | None, str]] = {}
        self.system: dict[Path, tuple[ProcessStat | None, list[GpuStat]]] = {}
        self.watches: dict[int, ProcessWatch] = {}
        self._dirty = True
        self._drawn: dict[str, Any] = {}
        self._drawn_at = 0.0
        self._diagnosed_at = 0.0
        self._diagnose_cost = 0.0
        self._metrics: MetricsScreen | None = None  # installed at its first open

    # -- layout ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield RunTabs(id="tabs")
        with Horizontal(id="curves"):
            yield CurveChart("loss", id="loss")
            yield CurveChart("accuracy", id="metric")
        yield Static(id="inspect")
        with Horizontal(id="gradients", classes="panel"):
            yield GradientHeatmap(id="heatmap")
            yield LayerBars(id="bars")
        with Horizontal(id="details"):
            with VerticalScroll(id="activations", classes="panel"):
                yield ActivationTable()
            with VerticalScroll(id="exhibit", classes="panel"):
                yield ExhibitPanel()
            with VerticalScroll(id="findings", classes="panel"):
                yield FindingsPanel()
        for name, pane in PANES.items():
            yield pane(id=name, classes="panel pane")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#activations").border_title = "activations"
        self.query_one("#findings").border_title = "findings"
        exhibit = self.query_one("#exhibit")
        exhibit.border_title = "lecture exhibit [dim](5: zoom, 3: activations)[/]"
        self._title_gradients()
        for run_dir in self.run_dirs:
            self.follow(run_dir)
        self.set_interval(REFRESH_S, self.redraw)
        self.set_interval(SYSTEM_S, self.sample_selected)
        self.set_interval(1.0, self.diagnose_if_live)
        self.diagnose(self.current_dir)
        self.redraw()

    def on_screen_resume(self) -> None:
        self.redraw()  # what came while the metrics view covered it

    def on_resize(self) -> None:
        compact = self.size.width < 100 or self.size.height < 30
        self.set_class(compact, "-compact")
        self.query_one(Footer).compact = compact

    def watch_zoom(self, old: str, new: str) -> None:
        self.remove_class(f"-zoom-{old}") if old else None
        self.set_class(bool(new), "-zoom")
        if new:
            self.add_class(f"-zoom-{new}")
        self.pane_changed(old, new)

    @property
    def current_dir(self) -> Path:
        return self.run_dirs[self.selected % len(self.run_dirs)]

    @property
    def current(self) -> RunSnapshot | None:
        return self.snaps.get(self.current_dir)

    # -- workers --------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="follow")
    def follow(self, run_dir: Path) -> None:
        worker = get_current_worker()
        follower = RunFollower(run_dir, self.heat_stat)
        self.followers[run_dir] = follower
        follower.run(
            lambda snap: self.post_message(RunSnapshotReady(snap)),
            lambda: worker.is_cancelled,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="diagnose")
    def diagnose(self, run_dir: Path) -> None:
        started = time.monotonic()
        self._diagnosed_at = started
        found, error = run_diagnose(run_dir)
        self._diagnose_cost = time.monotonic() - started
        self.post_message(FindingsReady(run_dir, found, error))

    @work(thread=True, exclusive=True, exit_on_error=False, group="system")
    def sample_system(self, snap: RunSnapshot) -> None:
        process = None
        if snap.live and isinstance(snap.pid, int):
            watch = self.watches.get(snap.pid)
            if watch is None:
                watch = self.watches[snap.pid] = ProcessWatch(snap.pid)
            process = watch.sample()
        here = snap.live and not snap.remote  # a remote run's GPUs are not this box's
        gpus = gpu_stats() if here and snap.device.startswith("cuda") else []
        self.post_message(SystemStatsReady(snap.run_dir, process, gpus))

    def sample_selected(self) -> None:
        snap = self.current
        if snap is not None and snap.live:
            self.sample_system(snap)

    def diagnose_if_live(self) -> None:
        """Findings of a live run, refreshed; never more than a tenth of the time."""
        snap = self.current
        wait = max(DIAGNOSE_S, 10 * self._diagnose_cost)
        if snap is None or not snap.live or snap.latest_step < 0:
            return
        if time.monotonic() - self._diagnosed_at >= wait:
            self.diagnose(snap.run_dir)

    # -- messages -------------------------------------------------------------------
    @on(RunSnapshotReady)
    def _snapshot(self, message: RunSnapshotReady) -> None:
        snap = message.snapshot
        old = self.snaps.get(snap.run_dir)
        self.snaps[snap.run_dir] = snap
        self._dirty = True
        if time.monotonic() - self._drawn_at >= REFRESH_S:
            self.redraw()  # at once; else the timer draws it within REFRESH_S
        if old is not None and old.status != snap.status:
            note = status_note(snap)
            if note is not None:
                self.notify(note[0], severity=note[1])  # type: ignore[arg-type]
            if not snap.live:
                self.diagnose(snap.run_dir)

    @on(FindingsReady)
    def _findings(self, message: FindingsReady) -> None:
        self.findings[message.run_dir] = (message.findings, message.error)
        self._dirty = True

    @on(SystemStatsReady)
    def _system(self, message: SystemStatsReady) -> None:
        self.system[message.run_dir] = (message.process, message.gpus)
        self._dirty = True

    # -- drawing --------------------------------------------------------------------
    def redraw(self) -> None:
        """Draw from the latest snapshots (a timer: at most every REFRESH_S); not while a
        full screen (the metrics view) covers this one: it is drawn when it shows again."""
        top = self.app.screen
        if not self._dirty or (top is not self and not isinstance(top, ModalScreen)):
            return
        self._dirty = False
        self._drawn_at = time.monotonic()
        snaps = [self.snaps.get(d) for d in self.run_dirs]
        labels = run_labels(self.run_dirs, snaps)
        selected = self.selected % len(snaps)
        self.query_one(RunTabs).show(list(zip(labels, snaps, strict=True)), selected)
        self._draw_curves(snaps, labels)
        snap = self.current
        if snap is None:
            return
        self.show_pane(snap)
        # the statistic the snapshot carries is part of the key: after a key press the
        # follower's answer has the same version as the snapshot drawn before it came
        carried = snap.heat.stat if snap.heat is not None else None
        key = (snap.run_dir, snap.version, self.heat_stat, carried)
        if self._drawn.get("selected") != key:
            self._drawn["selected"] = key
            self._draw_layers(snap)
            self.query_one(ActivationTable).show(snap)
            self.set_class(bool(snap.exhibits), "-exhibit")
            if snap.exhibits:
                self.query_one(ExhibitPanel).show(snap.exhibits)
        found, error = self.findings.get(snap.run_dir, (None, ""))
        self.query_one(FindingsPanel).show(snap, found, error)
        process, gpus = self.system.get(snap.run_dir, (None, []))
        n_findings = len(found) if found else None
        self.query_one(StatusLine).update(status_text(snap, process, gpus, n_findings))

    def _draw_curves(self, snaps: list[RunSnapshot | None], labels: list[str]) -> None:
        title, lines, log_ok = metric_lines([s for s in snaps if s is not None])
        selected = self.selected % len(snaps)
        for chart_id, chart_lines in (("#loss", LOSS_LINES), ("#metric", lines)):
            series, legend = overlay(snaps, labels, selected, chart_lines)
            chart = self.query_one(chart_id, CurveChart)
            chart.set_series(series, legend, title if chart_id == "#metric" else None)
        self.query_one("#metric", CurveChart).log = self.log_scale if log_ok else False
        self.inspect_names = tuple(line.name for line in (*LOSS_LINES, *lines))
        self.inspect_labels = tuple(labels)
        self.apply_step_axis()

    def _draw_layers(self, snap: RunSnapshot) -> None:
        names = [str(layer["name"]) for layer in snap.layers]
        heat = snap.heat if snap.heat is not None and snap.heat.stat == self.heat_stat else None
        if snap.heat is not None and heat is None:
            empty = f"reading {self.heat_stat}…"  # the follower's answer to a key press
        elif snap.live:
            empty = "no layer statistics yet (the first probe sample comes soon)"
        else:
            empty = "no layer statistics were recorded (probe.every = 0, or nothing was trained)"
        self.query_one(GradientHeatmap).selected = self.selected_layer
        self.query_one(ActivationTable).selected = self.selected_layer
        self.query_one(GradientHeatmap).set_data(heat, names, empty)
        col = STAT_COLUMNS.index(self.heat_stat)
        latest = [row[col] if row is not None else None for row in snap.latest]
        self.query_one(LayerBars).set_data(heat, latest, snap.latest_step)

    def _title_gradients(self) -> None:
        title = STAT_TITLE.get(self.heat_stat, self.heat_stat)
        self.query_one(
            "#gradients"
        ).border_title = f"[b]{title}[/] [dim]({self.heat_stat}; g: next)[/]"

    # -- actions --------------------------------------------------------------------
    def _live(self) -> RunSnapshot | None:
        snap = self.current
        if snap is None or not snap.live:
            status = snap.status if snap is not None else "not started"
            self.notify(f"the run is {status}: nothing to control", severity="warning")
            return None
        return snap

    def action_pause_resume(self) -> None:
        snap = self._live()
        if snap is not None:
            self.app.send_control(snap.run_dir, "resume" if snap.status == "paused" else "pause")

    def action_checkpoint(self) -> None:
        snap = self._live()
        if snap is not None:
            self.app.send_control(snap.run_dir, "checkpoint")

    def action_stop(self) -> None:
        snap = self._live()
        if snap is None:
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.app.send_control(snap.run_dir, "stop")

        detail = (
            "Its script sees `mon.should_stop` and ends its loop."
            if snap.kind == "watch"
            else "It saves a checkpoint first; `tui-trainer resume` continues it later."
        )
        self.app.push_screen(ConfirmScreen(f"Stop {snap.label}?", detail), answer)

    def action_switch_run(self, delta: int) -> None:
        if len(self.run_dirs) < 2:
            self.notify("this dashboard shows one run", timeout=2)
            return
        self.selected = (self.selected + delta) % len(self.run_dirs)

    def watch_selected(self) -> None:
        self._dirty = True
        if self.is_mounted:
            self.redraw()
            self.diagnose(self.current_dir)
            self.inspect_again()

    def action_toggle_log(self) -> None:
        """Log on or off, against what the loss chart shows now (chosen or asked for)."""
        shown = self.query_one("#loss", CurveChart).shows_log
        self.full_range = False
        self.log_scale = not shown

    def watch_log_scale(self, value: bool | None) -> None:
        self.query_one("#loss", CurveChart).log = value
        self._dirty = True

    def action_full_range(self) -> None:
        """The full linear range (every outlier inside the axis); again: back to automatic."""
        self.full_range = not self.full_range
        if self.full_range:
            self.log_scale = None

    def watch_full_range(self, value: bool) -> None:
        for chart in self.query(CurveChart):
            chart.full = value
        self._dirty = True

    def action_smoothing(self) -> None:
        i = SMOOTHING.index(self.smoothing) if self.smoothing in SMOOTHING else 0
        self.smoothing = SMOOTHING[(i + 1) % len(SMOOTHING)]

    def watch_smoothing(self, value: float) -> None:
        for chart in self.query(CurveChart):
            chart.smoothing = value

    def action_next_stat(self) -> None:
        self.heat_stat = HEAT_STATS[(HEAT_STATS.index(self.heat_stat) + 1) % len(HEAT_STATS)]

    def watch_heat_stat(self, stat: str) -> None:
        for follower in self.followers.values():
            follower.request(stat)
        if self.is_mounted:
            self._title_gradients()
            self.inspect_again()

    def action_metrics(self) -> None:
        """Every scalar of the runs shown (MetricsScreen), kept between opens (composing it
        costs more than a key may take); its first frame has the names known here."""
        snaps = [self.snaps.get(d) for d in self.run_dirs]
        live, labels = any(s is None or s.live for s in snaps), run_labels(self.run_dirs, snaps)
        names = sorted({n for s in snaps if s is not None for n in s.last})
        if self._metrics is None:
            self._metrics = MetricsScreen(self.run_dirs, labels, live, names)
            self.app.install_screen(self._metrics, f"metrics-{id(self)}")
        self._metrics.live = live
        self.app.push_screen(self._metrics)

    def on_unmount(self) -> None:  # (at the app's exit Textual uninstalls it)
        if self._metrics is not None and self._metrics not in self.app.screen_stack:
            self.app.uninstall_screen(self._metrics) and self._metrics.remove()

    def action_back(self) -> None:
        if self.cursor is not None:
            self.action_inspect()
        elif self.zoom:
            self.zoom = ""
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        else:
            self.app.action_show_picker()  # type: ignore[attr-defined]
