"""Provides the dashboard's panes and their keys: console, overview, system, a layer's view.

Each pane takes the dashboard's place below the run tabs (the status line stays), like the
zoomed panels: ``o``, ``v``, ``y``, Enter (the selected layer; ``j``/``k`` select), escape
returns. ``PaneKeys`` is mixed into DashboardScreen: the layer selection, clicks on a run's
tab or a layer's row, and telling the shown pane about each new snapshot.
"""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.events import Click

from tui_trainer.tui.follow import RunSnapshot
from tui_trainer.tui.messages import LayerChosen, TabClicked
from tui_trainer.tui.widgets.console_pane import ConsolePane
from tui_trainer.tui.widgets.layer_pane import LayerPane
from tui_trainer.tui.widgets.overview_pane import OverviewPane
from tui_trainer.tui.widgets.system_pane import SystemPane

__all__ = ["PANES", "PANE_BINDINGS", "PaneKeys"]

# zoom name -> pane: show(snap), stop(), focus_view()
PANES: dict[str, Any] = {
    "console": ConsolePane,
    "overview": OverviewPane,
    "system": SystemPane,
    "layer": LayerPane,
}
PANE_BINDINGS = [
    Binding("o", "zoom('console')", "console"),
    Binding("v", "zoom('overview')", "overview"),
    Binding("y", "zoom('system')", "system"),
    Binding("j", "layer(1)", "next layer"),
    Binding("k", "layer(-1)", "previous layer"),
    Binding("enter", "zoom('layer')", "layer view"),
]
PANELS = ("curves", "gradients", "activations", "findings", "exhibit")  # keys 1-5


class PaneKeys:
    """The panes' part of DashboardScreen (which owns ``zoom`` and ``selected_layer``)."""

    zoom: str
    selected: int
    selected_layer: int
    current: RunSnapshot | None
    _drawn: dict[str, Any]
    _dirty: bool

    def show_pane(self, snap: RunSnapshot) -> None:
        """Tell the pane shown (if one is) about the latest snapshot of the selected run."""
        if self.zoom in PANES:
            self.query_one(LayerPane).layer_index = self.selected_layer  # type: ignore[attr-defined]
            self.query_one(f"#{self.zoom}", PANES[self.zoom]).show(snap)  # type: ignore[attr-defined]

    def pane_changed(self, old: str, new: str) -> None:
        if old in PANES:
            self.query_one(f"#{old}", PANES[old]).stop()  # type: ignore[attr-defined]
        if new in PANES:
            self.query_one(f"#{new}", PANES[new]).focus_view()  # type: ignore[attr-defined]
            self._dirty = True
            self.redraw()  # type: ignore[attr-defined]

    def on_layer_chosen(self, message: LayerChosen) -> None:
        self.selected_layer = message.layer
        if message.open:
            self.zoom = "layer"

    def action_zoom(self, panel: str) -> None:
        """Keys 1-5 and the panes' keys: show that panel or pane alone (again: all)."""
        self.zoom = "" if panel == self.zoom else panel

    def on_click(self, event: Click) -> None:
        """A double click on a panel zooms it, again shows every panel (as keys 1-5)."""
        node = event.widget if event.chain == 2 else None
        while node is not None and node.id not in PANELS:
            node = node.parent
        if node is not None:
            self.action_zoom(str(node.id))

    def on_tab_clicked(self, message: TabClicked) -> None:
        self.selected = message.index

    def action_layer(self, delta: int) -> None:
        snap = self.current
        if snap is not None and snap.layers:
            self.selected_layer = (self.selected_layer + delta) % len(snap.layers)

    def watch_selected_layer(self) -> None:
        self._drawn.pop("selected", None)  # the lit row is part of what is drawn
        self._dirty = True
        if self.is_mounted:  # type: ignore[attr-defined]
            self.redraw()  # type: ignore[attr-defined]
            self.inspect_again()  # type: ignore[attr-defined]
