"""Provides CurveChart: loss or accuracy curves of one or more runs, drawn in braille."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.events import Click, MouseEvent, MouseScrollDown, MouseScrollUp
from textual.markup import escape
from textual.reactive import reactive

from tui_trainer.tui.fmt import fmt_steps
from tui_trainer.tui.messages import StepClicked
from tui_trainer.tui.plot import Y_LABEL, ChartSeries, ChartView, render_chart, resolve_log
from tui_trainer.tui.stepview import extent
from tui_trainer.tui.widgets.lines import TextLines

__all__ = ["CurveChart"]


class CurveChart(TextLines):
    """Curves with min/max envelopes; the dashboard sets the view: ``log`` (None: log when
    the values span decades), ``full`` (the full linear range, outliers included),
    ``smoothing``, the step window ``x_range`` and the inspect ``cursor``."""

    DEFAULT_CSS = """
    CurveChart { height: 1fr; min-height: 4; }
    """

    log: reactive[bool | None] = reactive(None)
    full: reactive[bool] = reactive(False)
    smoothing: reactive[float] = reactive(0.0)
    x_range: reactive[tuple[float, float] | None] = reactive(None)
    cursor: reactive[float | None] = reactive(None)

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.series: tuple[ChartSeries, ...] = ()
        self.legend: dict[str, tuple[str, bool]] = {}
        self.empty = "waiting for data…"
        self._update_title()

    def set_series(
        self,
        series: Sequence[ChartSeries],
        legend: dict[str, tuple[str, bool]],
        title: str | None = None,
    ) -> None:
        """``legend``: label -> (colour, dotted), in the order shown."""
        self.series, self.legend = tuple(series), dict(legend)
        if title is not None:
            self.title = title
        self._update_title()
        self.invalidate()

    def _update_title(self) -> None:
        flags = []
        if self.shows_log:
            flags.append("log" if self.log else "log, auto")
        if self.full:
            flags.append("full range")
        if self.x_range is not None:
            a, b = self.x_range
            flags.append(f"steps {fmt_steps(int(a))}–{fmt_steps(int(b))}")
        if self.smoothing:
            flags.append(f"ema {self.smoothing:g}")
        legend = "  ".join(
            f"[{color}]{'┈' if dotted else '━'}[/] {escape(label)}"
            for label, (color, dotted) in self.legend.items()
        )
        extra = f" [dim]({', '.join(flags)})[/]" if flags else ""
        self.border_title = f"[b]{self.title}[/]{extra}  {legend}"

    @property
    def view(self) -> ChartView:
        return ChartView(self.log, self.full, self.smoothing, self.x_range, self.cursor)

    @property
    def shows_log(self) -> bool:
        """Whether the chart is drawn on a log scale (asked for, or chosen from the data)."""
        return resolve_log(self.series, self.view)

    def _view_changed(self) -> None:
        self._update_title()
        self.invalidate()

    watch_log = watch_full = watch_smoothing = watch_x_range = _view_changed

    def watch_cursor(self) -> None:
        self.invalidate()

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        self._wheel(event, 2.0)

    def on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        self._wheel(event, 0.5)

    def _wheel(self, event: MouseScrollUp | MouseScrollDown, factor: float) -> None:
        """The mouse wheel zooms the step axis of a screen that has one (the dashboard),
        about the step under the pointer."""
        zoom = getattr(self.screen, "action_step_zoom", None)
        if zoom is not None:
            event.stop()
            zoom(factor, self.step_at(event))

    def on_click(self, event: Click) -> None:
        """A click inspects the step under the pointer (a screen with a cursor)."""
        step = self.step_at(event)
        if step is not None:
            self.post_message(StepClicked(step))

    def step_at(self, event: MouseEvent) -> float | None:
        """The step under the pointer (None: off the plot, or nothing drawn)."""
        offset = event.get_content_offset(self)
        span = self.x_range or extent(s.data for s in self.series)
        plot_w = self.content_size.width - Y_LABEL
        if offset is None or span is None or plot_w < 2 or offset.x < Y_LABEL:
            return None
        f = min(1.0, (offset.x - Y_LABEL) / (plot_w - 1))
        return span[0] + f * (span[1] - span[0])

    def lines(self, width: int, height: int) -> list[Text]:
        return render_chart(self.series, width, height, empty=self.empty, view=self.view)
