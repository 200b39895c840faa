"""Provides MetricsScreen: a grid of small charts, one per recorded scalar, paged, filtered.

Every scalar name of the runs shown is a chart (the runs of a group overlaid, one colour
each); ``/`` filters the names by glob or substring and the filter is remembered in each
run's directory. A thread worker reads the names and only the curves of the page shown,
again every REFRESH_S while a run is live, so a run with thousands of names costs no more
than its page.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.markup import escape
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from tui_trainer.text import first_line
from tui_trainer.tui.messages import MetricsRead
from tui_trainer.tui.metrics import (
    grid_for,
    load_filter,
    matching,
    read_curves,
    save_filter,
    scalar_names,
)
from tui_trainer.tui.overlay import RUN_COLORS
from tui_trainer.tui.plot import ChartSeries, ChartView
from tui_trainer.tui.widgets.chart_grid import ChartGrid, GridChart

__all__ = ["MetricsScreen"]

REFRESH_S = 1.0
TYPING_S = 0.15  # a filter being typed is read this long after the last key


class MetricsScreen(Screen[None]):
    """Every scalar of ``run_dirs`` (labelled ``labels``), a page of charts at a time."""

    AUTO_FOCUS = ""  # nothing: the filter box is focused by / only
    BINDINGS = [
        Binding("question_mark", "app.help", "help", key_display="?"),
        Binding("slash", "filter", "filter", key_display="/"),
        Binding("pagedown,right_square_bracket", "page(1)", "next page", key_display="]"),
        Binding("pageup,left_square_bracket", "page(-1)", "previous page", key_display="["),
        Binding("l", "toggle_log", "log"),
        Binding("f", "full_range", "full range"),
        Binding("escape", "back", "back", key_display="esc"),
    ]

    def __init__(
        self, run_dirs: list[Path], labels: list[str], live: bool = False, names: list[str] = ()
    ) -> None:
        """``names``: the scalar names already known (the dashboard's), drawn in the first
        frame; the store's full list and the curves replace them when read."""
        super().__init__()
        self.run_dirs, self.labels, self.live = [Path(d) for d in run_dirs], labels, live
        self.pattern = load_filter(self.run_dirs[0])
        self.page = 0
        self.names: list[str] = sorted(names)
        self.curves: dict[Path, dict[str, object]] = {}
        self.log_scale: bool | None = None
        self.full_range = False
        self.grid = grid_for(80, 20)
        self.pending = True  # curves asked for and not read yet
        self._load_timer: Timer | None = None
        self._typing = False  # a filter was begun with /: printable keys are its text
        self._laid_out = False

    def compose(self) -> ComposeResult:
        yield Static(id="metrics-head")
        yield Input(
            self.pattern, placeholder="val/*  grad_norm/blocks.1*  loss", id="metrics-filter"
        )
        yield ChartGrid(id="metrics-grid")
        yield Static(key_line(self.BINDINGS), id="metrics-keys")

    def on_mount(self) -> None:
        self.query_one("#metrics-filter").display = False
        self.set_interval(REFRESH_S, self._refresh_live)
        self.on_resize()

    def on_resize(self) -> None:
        grid = grid_for(self.size.width, self.size.height - 2)
        if grid != self.grid or not self._laid_out:
            self.grid, self._laid_out = grid, True
            self.reload()

    @property
    def shown(self) -> list[str]:
        """The names that match the filter."""
        return matching(self.names, self.pattern)

    # -- reading --------------------------------------------------------------------
    def _refresh_live(self) -> None:
        if self.live and self.is_current:  # kept between opens: not while hidden
            self.load()

    def on_screen_resume(self) -> None:
        """Shown again (the dashboard keeps this screen): read what came meanwhile."""
        if self._laid_out:  # the terminal may have changed size while hidden
            self.grid = grid_for(self.size.width, self.size.height - 2)
            self.reload()

    def reload(self, after: float = 0.0) -> None:
        """Draw the page's titles at once (a key is answered now), then read its curves
        (``after`` seconds later: typing a filter reads once, when the typing pauses)."""
        self.pending = True
        self.draw()
        if self._load_timer is not None:
            self._load_timer.stop()
            self._load_timer = None
        if after > 0:
            self._load_timer = self.set_timer(after, self.load)
        else:
            self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="metrics")
    def load(self) -> None:
        """The names of every run, then the curves of the page shown (in each run)."""
        try:
            names = scalar_names(self.run_dirs)
            if names != self.names:  # the header and titles first, the curves after
                self.post_message(MetricsRead(names, {}, partial=True))
            page = self.grid.page_of(matching(names, self.pattern), self.page)
            columns = max(2 * self.size.width // max(self.grid.columns, 1), 64)
            curves = {d: read_curves(d, page, columns) for d in self.run_dirs}
        except (OSError, ValueError) as exc:
            self.post_message(MetricsRead([], {}, first_line(exc)))
            return
        if not get_current_worker().is_cancelled:  # a newer read was asked for
            self.post_message(MetricsRead(names, curves))

    @on(MetricsRead)
    def _read(self, message: MetricsRead) -> None:
        if message.error:
            self.notify(message.error, severity="error")
            return
        self.names = message.names
        if not message.partial:
            self.curves, self.pending = message.curves, False
        self.draw()

    # -- drawing --------------------------------------------------------------------
    def draw(self) -> None:
        shown = self.shown
        pages = self.grid.pages(len(shown))
        self.page = min(self.page, pages - 1)
        page = self.grid.page_of(shown, self.page)
        view = ChartView(log=self.log_scale, full=self.full_range)
        self.query_one(ChartGrid).set_charts(
            [self._chart(name) for name in page], self.grid.columns, self.grid.rows, view
        )
        what = f"matching [b]{escape(self.pattern)}[/]" if self.pattern else "recorded"
        head = self.query_one("#metrics-head", Static)
        if self.pending and not self.names:
            head.update("[b]metrics[/]: reading the runs' scalar names…")
            return
        keys = (
            "reading their curves…" if self.pending else "(/ filter, [ ] page, l log, f full range)"
        )
        head.update(
            f"[b]metrics[/]: {len(shown)} of {len(self.names)} scalars {what} · page "
            f"{self.page + 1}/{pages} [dim]{keys}[/]"
        )

    def _chart(self, name: str) -> GridChart:
        single = len(self.run_dirs) == 1
        series, legend = [], {}
        for i, run_dir in enumerate(self.run_dirs):
            data = self.curves.get(run_dir, {}).get(name)
            color = RUN_COLORS[i % len(RUN_COLORS)]
            if data is not None:
                series.append(ChartSeries(self.labels[i], data, color))  # type: ignore[arg-type]
                if not single:
                    legend[self.labels[i]] = color
        empty = "reading…" if self.pending else "not recorded by these runs"
        return GridChart(name, tuple(series), legend, empty)

    # -- keys -----------------------------------------------------------------------
    def action_page(self, delta: int) -> None:
        pages = self.grid.pages(len(self.shown))
        page = min(max(self.page + delta, 0), pages - 1)
        if page != self.page:
            self.page = page
            self.reload()

    def action_filter(self) -> None:
        box = self.query_one("#metrics-filter", Input)
        box.display = True
        self._typing = True
        box.focus()

    def on_key(self, event: events.Key) -> None:
        """/ starts a filter here, and the keys typed after it before the filter box has
        the focus (it moves later, after the keys already read) are its text, not commands."""
        box = self.query_one("#metrics-filter", Input)
        if box.has_focus:
            return
        if not self._typing:
            if event.key == "slash":  # at once: the binding would run after the next keys
                self.action_filter()
                event.stop()
                event.prevent_default()
            return
        if event.key == "enter":
            self._typing = box.display = False
            self.app.call_later(self.set_focus, None)  # after the focus still on its way
        elif event.character and event.character.isprintable():
            box.value += event.character
            box.cursor_position = len(box.value)
        else:
            return
        event.stop()
        event.prevent_default()

    @on(Input.Changed, "#metrics-filter")
    def _typed(self, event: Input.Changed) -> None:
        self.set_filter(event.value)

    @on(Input.Submitted, "#metrics-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        self._typing = event.input.display = False
        self.set_focus(None)

    def set_filter(self, pattern: str) -> None:
        """Show only the names matching ``pattern`` and remember it for every run shown."""
        pattern = pattern.strip()
        if pattern == self.pattern:
            return
        self.pattern, self.page = pattern, 0
        for run_dir in self.run_dirs:
            save_filter(run_dir, pattern)
        self.reload(after=TYPING_S)

    def action_toggle_log(self) -> None:
        grid = self.query_one(ChartGrid)
        shown = any(grid.shows_log(c) for c in grid.charts)
        self.full_range, self.log_scale = False, not shown
        self.draw()

    def action_full_range(self) -> None:
        self.full_range = not self.full_range
        self.log_scale = None
        self.draw()

    def action_back(self) -> None:
        box = self.query_one("#metrics-filter", Input)
        if box.has_focus or self._typing:
            self._typing = box.display = False
            self.set_focus(None)
            return
        self.app.pop_screen()


def key_line(bindings: list[Binding]) -> Text:
    """The keys of ``bindings`` as one line, like Textual's footer (which costs 0.1 s to
    compose)."""
    line = Text()
    for b in bindings:
        line.append(f" {b.key_display or b.key.split(',')[0]} ", "bold reverse")
        line.append(f" {b.description}  ")
    return line
