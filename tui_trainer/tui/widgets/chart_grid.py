"""Provides ChartGrid: a page of small charts drawn by one widget (the metrics view).

A page holds up to 30 charts. As 30 widgets, opening the view cost Textual a layout and a
style pass per chart (0.25 s on an idle 2-core machine, over a second under load); drawn
here as one widget, each chart is a box of ``render_chart`` lines joined side by side, and
the view answers its key in one frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.style import Style
from rich.text import Text

from tui_trainer.tui.plot import ChartSeries, ChartView, render_chart, resolve_log
from tui_trainer.tui.widgets.lines import TextLines

__all__ = ["ChartGrid", "GridChart"]


@dataclass(frozen=True)
class GridChart:
    """One chart of the page: its title (a scalar name), series, legend, and the text shown
    when it has no series."""

    title: str
    series: tuple[ChartSeries, ...] = ()
    legend: dict[str, str] = field(default_factory=dict)  # label -> colour
    empty: str = "reading…"


class ChartGrid(TextLines):
    """Up to ``columns`` x ``rows`` boxed charts sharing one ``view`` (log, full range); a
    page with fewer charts spreads them over the whole widget."""

    COMPONENT_CLASSES = {"chart-grid--box"}
    DEFAULT_CSS = """
    ChartGrid { height: 1fr; width: 1fr; }
    ChartGrid > .chart-grid--box { color: $panel-lighten-2; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.charts: tuple[GridChart, ...] = ()
        self.columns, self.rows = 1, 1
        self.view = ChartView(log=None)

    def set_charts(
        self, charts: Sequence[GridChart], columns: int, rows: int, view: ChartView
    ) -> None:
        self.charts, self.columns, self.rows, self.view = tuple(charts), columns, rows, view
        self.invalidate()

    @property
    def titles(self) -> list[str]:
        return [c.title for c in self.charts]

    def shows_log(self, chart: GridChart) -> bool:
        return resolve_log(chart.series, self.view)

    def heading(self, chart: GridChart) -> str:
        """A chart's title with its flags (log, full range), as drawn in its top border."""
        flags = []
        if self.shows_log(chart):
            flags.append("log" if self.view.log else "log, auto")
        if self.view.full:
            flags.append("full range")
        return chart.title + (f" ({', '.join(flags)})" if flags else "")

    def lines(self, width: int, height: int) -> list[Text]:
        if not self.charts:
            return []
        n = len(self.charts)  # a short page: fewer, larger charts, as square as it fits
        rows = max(1, min(self.rows, -(-n // max(1, min(self.columns, n)))))
        cols = max(1, -(-n // rows))
        box = self.get_component_rich_style("chart-grid--box", partial=True)
        out: list[Text] = []
        for r in range(rows):
            y0, y1 = r * height // rows, (r + 1) * height // rows
            band = [Text() for _ in range(y1 - y0)]
            for c in range(cols):
                i = r * cols + c
                x0, x1 = c * width // cols, (c + 1) * width // cols
                cell = (
                    self._box(self.charts[i], x1 - x0, y1 - y0, box)
                    if i < len(self.charts)
                    else [Text(" " * (x1 - x0))] * (y1 - y0)
                )
                for line, part in zip(band, cell, strict=False):
                    line.append_text(part)
            out.extend(band)
        return out

    def _box(self, chart: GridChart, width: int, height: int, box: Style) -> list[Text]:
        """The chart in a rounded box, its title and legend in the top border."""
        inner_w, inner_h = max(0, width - 2), max(0, height - 2)
        if width < 3 or height < 3:
            return [Text(" " * width)] * height
        top = Text("╭─ ", box)
        top.append(self.heading(chart), "bold")
        for label, color in chart.legend.items():
            top.append("  ━ ", color)
            top.append(label)
        top.append(" ")
        top.truncate(width - 1, overflow="ellipsis")
        top.append("─" * max(0, width - 1 - top.cell_len), box)
        top.append("╮", box)
        body = render_chart(chart.series, inner_w, inner_h, empty=chart.empty, view=self.view)
        lines = [top]
        for k in range(inner_h):
            line = Text("│", box)
            part = body[k] if k < len(body) else Text()
            part = part.copy()
            part.truncate(inner_w, pad=True)
            line.append_text(part)
            line.append("│", box)
            lines.append(line)
        lines.append(Text("╰" + "─" * inner_w + "╯", box))
        return lines
