"""Provides CurveChart: loss or accuracy curves of one or more runs, drawn in braille."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.markup import escape
from textual.reactive import reactive

from tui_trainer.tui.plot import ChartSeries, render_chart
from tui_trainer.tui.widgets.lines import TextLines

__all__ = ["CurveChart"]


class CurveChart(TextLines):
    """Curves with min/max envelopes; ``log`` and ``smoothing`` are set by the dashboard."""

    DEFAULT_CSS = """
    CurveChart { height: 1fr; min-height: 4; }
    """

    log: reactive[bool] = reactive(False)
    smoothing: reactive[float] = reactive(0.0)

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
        if self.log:
            flags.append("log")
        if self.smoothing:
            flags.append(f"ema {self.smoothing:g}")
        legend = "  ".join(
            f"[{color}]{'┈' if dotted else '━'}[/] {escape(label)}"
            for label, (color, dotted) in self.legend.items()
        )
        extra = f" [dim]({', '.join(flags)})[/]" if flags else ""
        self.border_title = f"[b]{self.title}[/]{extra}  {legend}"

    def watch_log(self) -> None:
        self._update_title()
        self.invalidate()

    def watch_smoothing(self) -> None:
        self._update_title()
        self.invalidate()

    def lines(self, width: int, height: int) -> list[Text]:
        return render_chart(
            self.series, width, height, log=self.log, smoothing=self.smoothing, empty=self.empty
        )
