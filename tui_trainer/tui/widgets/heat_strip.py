"""Provides HeatStrip: a histogram over time, steps across and value bins up, as colour.

Each column is one or more samples (their counts summed), scaled to its own largest bin,
so the shape of the distribution shows at every step whatever the batch size; with
NO_COLOR the ramp is drawn in shade characters.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from tui_trainer.tui.fmt import fmt_num, fmt_steps
from tui_trainer.tui.layer_view import Strip
from tui_trainer.tui.plot import append_runs
from tui_trainer.tui.widgets.heatmap import ramp_style, shade
from tui_trainer.tui.widgets.lines import TextLines

__all__ = ["HeatStrip", "strip_cells"]

LABEL = 8


def strip_cells(strip: Strip, cols: int, rows: int) -> list[list[float | None]]:
    """``cells[row][col]`` in [0, 1] (row 0 = the highest values); None: no sample."""
    n, bins = len(strip.counts), len(strip.counts[0]) if strip.counts else 0
    grid: list[list[float | None]] = [[None] * cols for _ in range(rows)]
    for c in range(cols):
        s0 = c * n // cols
        s1 = max(s0 + 1, (c + 1) * n // cols)
        if s0 >= n:
            continue
        sums = [0.0] * rows
        for sample in strip.counts[s0:s1]:
            for b, count in enumerate(sample):
                sums[rows - 1 - b * rows // bins] += count
        top = max(sums)
        for r in range(rows):
            grid[r][c] = sums[r] / top if top > 0 else 0.0
    return grid


class HeatStrip(TextLines):
    """One Strip: its title line, the cells, and the step axis."""

    DEFAULT_CSS = """
    HeatStrip { height: 1fr; min-height: 5; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.strip: Strip | None = None

    def set_strip(self, strip: Strip | None) -> None:
        self.strip = strip
        self.invalidate()

    def lines(self, width: int, height: int) -> list[Text]:
        strip = self.strip
        if strip is None or not strip.counts:
            return [Text("no histograms recorded (probe.histogram_every = 0)", "dim")]
        mono = self.app.no_color
        cols, rows = max(1, width - LABEL), max(1, height - 2)
        cells = strip_cells(strip, cols, rows)

        def value(v: float) -> str:
            return f"1e{v:.0f}" if strip.log else fmt_num(v, 2)

        out = [Text(strip.title, "bold").append(" (each column to its own top bin)", "dim")]
        for r, row in enumerate(cells):
            label = value(strip.hi) if r == 0 else value(strip.lo) if r == rows - 1 else ""
            line = Text(label.rjust(LABEL - 1)[: LABEL - 1] + " ", "dim")
            append_runs(line, ((("·", Style(dim=True)) if t is None else
                                (shade(t), Style()) if mono else ("█", ramp_style(t)))
                               for t in row))  # fmt: skip
            out.append(line)
        a, b = f"step {fmt_steps(strip.steps[0])}", fmt_steps(strip.steps[-1])
        out.append(Text(" " * LABEL + a + " " * max(1, cols - len(a) - len(b)) + b, "dim"))
        return out
