"""Provides LayerPane: one layer's own view, its statistics over time and its histograms.

Opened with Enter on the dashboard's selected layer (j/k move the selection) or by a click
on a heatmap or activation-table row. The store is read in a thread worker (``read_layer``)
when the layer or run changes, and again while the run is live, never more than a tenth of
the time (a long run's scan costs more).
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import Static

from tui_trainer.text import first_line
from tui_trainer.tui.fmt import fmt_num
from tui_trainer.tui.follow import LOG_STATS, RunSnapshot
from tui_trainer.tui.layer_view import LAYER_STATS, LayerData, read_layer
from tui_trainer.tui.messages import LayerReady
from tui_trainer.tui.plot import ChartSeries
from tui_trainer.tui.widgets.curve_chart import CurveChart
from tui_trainer.tui.widgets.heat_strip import HeatStrip

__all__ = ["LayerPane"]

REREAD_S = 2.0
COLOR = "#4ea1ff"
NO_DATA = {
    "dead_frac": "not recorded for this layer (no ReLU-like activation)",
    "sat_frac": "not recorded for this layer (no sigmoid or tanh)",
}


class LayerPane(Vertical):
    """A head line, a chart per statistic and, when recorded, histogram heat strips."""

    DEFAULT_CSS = """
    LayerPane #layer-head { height: 1; padding: 0 1; }
    LayerPane #layer-charts { grid-size: 4; grid-rows: 1fr; grid-gutter: 0 1; height: 2fr;
                              min-height: 12; }
    LayerPane #layer-charts CurveChart { height: 1fr; min-height: 6; }
    LayerPane #layer-strips { height: 1fr; display: none; }
    LayerPane.-strips #layer-strips { display: block; }
    LayerPane #layer-strips HeatStrip { width: 1fr; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.layer_index = 0  # set by the dashboard before ``show``
        self.run_dir: Path | None = None
        self.shown: tuple[Path, int] | None = None
        self.data: LayerData | None = None
        self._read_at = 0.0
        self._cost = 0.0
        self._snap: RunSnapshot | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="layer-head")
        with Grid(id="layer-charts"):
            for stat, title in LAYER_STATS:
                yield CurveChart(title, id=f"layer-{stat}")
        with Horizontal(id="layer-strips"):
            yield HeatStrip(id="layer-strip-0")
            yield HeatStrip(id="layer-strip-1")

    def show(self, snap: RunSnapshot) -> None:
        if not snap.layers:
            self.query_one("#layer-head", Static).update(Text("no layers recorded", "dim"))
            return
        self.layer_index = min(max(self.layer_index, 0), len(snap.layers) - 1)
        self._snap = snap
        key = (snap.run_dir, self.layer_index)
        now = time.monotonic()
        wait = max(REREAD_S, 10 * self._cost)
        if key != self.shown or (snap.live and now - self._read_at >= wait):
            if key != self.shown:
                self.data = None
                name = str(snap.layers[self.layer_index]["name"])
                self.border_title = (
                    f"layer {self.layer_index} {name} [dim](j/k: other layer, esc: back)[/]"
                )
            self.shown, self._read_at = key, now
            self.read(snap.run_dir, self.layer_index, str(snap.layers[self.layer_index]["name"]))
        self._head(snap)

    def stop(self) -> None:
        self.shown = None

    def focus_view(self) -> None:
        pass

    @work(thread=True, exclusive=True, exit_on_error=False, group="layer")
    def read(self, run_dir: Path, layer: int, name: str) -> None:
        started = time.monotonic()
        try:
            data = read_layer(run_dir, layer, name)
        except Exception as exc:  # noqa: BLE001 (a store gone or locked: say so)
            self.post_message(LayerReady(run_dir, layer, None, first_line(exc)))
            return
        self._cost = time.monotonic() - started
        self.post_message(LayerReady(run_dir, layer, data))

    @on(LayerReady)
    def _ready(self, message: LayerReady) -> None:
        message.stop()
        if self.shown != (message.run_dir, message.layer):
            return  # another layer was asked for since
        if message.data is None:
            self.query_one("#layer-head", Static).update(Text(message.error, "red"))
            return
        self.data = data = message.data
        for stat, _ in LAYER_STATS:
            chart = self.query_one(f"#layer-{stat}", CurveChart)
            curve = data.curves.get(stat)
            chart.empty = NO_DATA.get(stat, "no samples yet")
            # a log axis for norms and ratios, unless a value is 0 (an update under Adam's eps)
            chart.log = stat in LOG_STATS and curve is not None and min(curve.lows) > 0
            chart.set_series([ChartSeries(stat, curve, COLOR)] if curve else [], {})
        strips = self.query(HeatStrip)
        for i, widget in enumerate(strips):
            widget.set_strip(data.strips[i] if i < len(data.strips) else None)
        self.set_class(bool(data.strips), "-strips")
        if self._snap is not None:
            self._head(self._snap)

    def _head(self, snap: RunSnapshot) -> None:
        info = snap.layers[self.layer_index]
        text = Text(f"{self.layer_index} {info['name']}", "bold")
        text.append(f"  {info.get('kind', '')} {info.get('activation', '')}", "dim")
        text.append(f"  {int(info.get('params') or 0):,} params", "dim")
        data = self.data
        if data is not None and data.last_step is not None:
            text.append(f"  step {data.last_step}:", "dim")
            for stat in ("grad_norm", "update_ratio", "act_std"):
                text.append(f" {stat} ")
                text.append(fmt_num(data.last.get(stat), 3), "bold")
        self.query_one("#layer-head", Static).update(text)
