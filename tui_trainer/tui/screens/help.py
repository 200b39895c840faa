"""Provides HelpScreen: the keys of the screen underneath and what the dashboard shows."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

__all__ = ["HelpScreen"]

ABOUT = {
    "DashboardScreen": (
        "Curves: solid = train, dotted = validation; every column keeps its min and max, "
        "so spikes stay visible. Heatmap: one row per layer (input at the top), colour = "
        "log10 of the statistic over time; the bars show its latest sample. A row fading "
        "to dark towards the input is a vanishing gradient. Keys 1-5 zoom a panel; o, v "
        "and y show the console (output.log), the overview (config, versions, history, "
        "how to repeat the run) and the system figures; j/k select a layer and enter (or "
        "a click on its row's label) opens its own view; escape returns, 0 shows every panel and "
        "every step; a double click on a panel zooms it too. A click on a run's tab "
        "selects it (tab does the same). A curve "
        "spanning 3+ decades is drawn on a log axis by itself (the title says 'log, "
        "auto'); a lone outlier does not set the range: it is clipped and marked ▲ or ▼ "
        "at the chart's edge (f shows the full linear range). + and - (or the mouse wheel, "
        "about the step under the pointer) zoom the step axis of the charts and the "
        "heatmap, < > pan; i (or a click on a chart or a heatmap cell) puts a cursor there "
        "and lists every curve's recorded value at its step and the selected layer's "
        "heatmap statistic (← → move it, j/k another layer, g another statistic). a: every "
        "recorded scalar as a grid of charts."
    ),
    "MetricsScreen": (
        "One chart per recorded scalar (a script's own mon.log names too), the runs of a "
        "group overlaid. / filters: a glob (val/*, grad_norm/blocks.1*) or a substring; "
        "several, separated by spaces, match any. The filter is remembered in each run's "
        "view.json. [ ] or PageUp/PageDown turn the page."
    ),
    "PickerScreen": (
        "Presets grouped by lecture section, ordered by the lecture's claim. Enter trains "
        "every variant of the preset side by side; e edits overrides (optim.lr=0.01 ...)."
    ),
    "RunsScreen": (
        "Past and live runs, newest first. Space marks runs for compare; delete refuses "
        "a run that still trains."
    ),
}


def _key(binding: Binding) -> str:
    return binding.key_display or ", ".join(
        {"question_mark": "?", "space": "space", "escape": "esc", "slash": "/"}.get(k, k)
        for k in binding.key.split(",")
    )


def widget_bindings(screen: Screen[object]) -> list[Binding]:
    """The keys of the screen's own widgets (a pane's find keys), once per widget class."""
    out: list[Binding] = []
    seen: set[type] = set()
    for widget in screen.query("*"):
        cls = type(widget)
        if cls in seen or not cls.__module__.startswith("tui_trainer."):
            continue
        seen.add(cls)
        out += [b for b in cls.__dict__.get("BINDINGS", ()) if isinstance(b, Binding)]
    return out


class HelpScreen(ModalScreen[None]):
    """Lists every binding of ``screen`` and of the app."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close")]

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__()
        self.target = screen

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 2), show_header=False)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        seen = set()
        bindings = [*self.target.BINDINGS, *widget_bindings(self.target), *self.app.BINDINGS]
        for b in bindings:
            if isinstance(b, Binding) and b.description and b.description not in seen:
                seen.add(b.description)
                table.add_row(_key(b), b.description)
        about = ABOUT.get(type(self.target).__name__, "")
        with VerticalScroll(classes="dialog help"):
            yield Static(Text(f"Keys: {type(self.target).__name__.removesuffix('Screen')}", "bold"))
            yield Static(table)
            if about:
                yield Static(Text(about, "dim"))
            yield Static(Text("escape or ? closes", "dim italic"))
