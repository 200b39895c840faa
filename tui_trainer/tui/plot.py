"""Provides a braille line chart rendered to Rich text: min/max envelopes, log scale, EMA.

Each terminal cell holds 2x4 braille dots. A series is decimated to one pixel column per
dot column keeping each column's minimum and maximum; with smoothing the raw envelope is
drawn dim under the smoothed line, without it the line passes through every column's
full span, so a spike is drawn even when thousands of steps share one column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text

from tui_trainer.tui.fmt import fmt_num, fmt_steps
from tui_trainer.tui.series import Column, CurveData, decimate, ema

__all__ = ["BrailleCanvas", "ChartSeries", "render_chart"]

_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] of a cell
Y_LABEL = 8


def append_runs(text: Text, cells: Iterable[tuple[str, Style | None]]) -> Text:
    """Append (character, style) cells to ``text``, one span per run of equal styles: a
    chart row is a few spans, not one per character."""
    run: list[str] = []
    style: Style | None = None
    for ch, st in cells:
        if st != style and run:
            text.append("".join(run), style)
            run = []
        style = st
        run.append(ch)
    if run:
        text.append("".join(run), style)
    return text


@dataclass(frozen=True)
class ChartSeries:
    """One curve to draw: its data, a colour and a line style."""

    label: str
    data: CurveData
    color: str
    dotted: bool = False


class BrailleCanvas:
    """A grid of braille cells; each cell keeps its dots and the style of its last writer."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.px, self.py = width * 2, height * 4
        self.bits = [[0] * width for _ in range(height)]
        self.styles: list[list[Style | None]] = [[None] * width for _ in range(height)]

    def dot(self, x: int, y: int, style: Style) -> None:
        if 0 <= x < self.px and 0 <= y < self.py:
            cy, cx = y >> 2, x >> 1
            self.bits[cy][cx] |= _BITS[y & 3][x & 1]
            self.styles[cy][cx] = style

    def vline(self, x: int, y0: int, y1: int, style: Style, dotted: bool = False) -> None:
        if y0 > y1:
            y0, y1 = y1, y0
        for y in range(y0, y1 + 1):
            if not dotted or (x + y) % 2 == 0:
                self.dot(x, y, style)

    def line(self, x0: int, y0: int, x1: int, y1: int, style: Style, dotted: bool) -> None:
        """Bresenham from (x0, y0) to (x1, y1)."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        n = 0
        while True:
            if not dotted or n % 3 != 2:
                self.dot(x0, y0, style)
            n += 1
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def rows(self) -> list[Text]:
        return [
            append_runs(
                Text(),
                ((chr(0x2800 + b) if b else " ", st) for b, st in zip(bits, styles, strict=False)),
            )
            for bits, styles in zip(self.bits, self.styles, strict=False)
        ]


def _log_data(d: CurveData) -> CurveData:
    """log10 of every bucket; non-positive values are dropped (they have no place)."""
    steps, lows, highs, means = [], [], [], []
    for s, lo, hi, m in zip(d.steps, d.lows, d.highs, d.means, strict=False):
        if hi <= 0:
            continue
        h = math.log10(hi)
        lo_ = math.log10(lo) if lo > 0 else h
        steps.append(s)
        lows.append(lo_)
        highs.append(h)
        means.append(math.log10(m) if m > 0 else lo_)
    return CurveData(tuple(steps), tuple(lows), tuple(highs), tuple(means), d.last, end=d.end)


def _y_label(y: float, log: bool) -> str:
    text = fmt_num(10**y if log else y)
    return text[: Y_LABEL - 1].rjust(Y_LABEL - 1)


def render_chart(
    series: Sequence[ChartSeries],
    width: int,
    height: int,
    *,
    log: bool = False,
    smoothing: float = 0.0,
    empty: str = "waiting for data…",
) -> list[Text]:
    """The chart as ``height`` lines of ``width`` cells (axis labels included)."""
    plot_w, plot_h = width - Y_LABEL, height - 1
    if plot_w < 4 or plot_h < 2:
        return [Text("(too small)", style="dim")]
    data = [(s, _log_data(s.data) if log else s.data) for s in series]
    data = [(s, d) for s, d in data if d.steps]
    if not data:
        return [Text(empty, style="dim")]
    x0 = min(d.steps[0] for _, d in data)
    x1 = max(max(d.steps[-1], d.end) for _, d in data)
    canvas = BrailleCanvas(plot_w, plot_h)
    cols: list[tuple[ChartSeries, list[Column | None]]] = []
    for s, d in data:
        cols.append((s, decimate(d.steps, d.lows, d.highs, canvas.px, d.means, x0, x1)))
    y_lo, y_hi = _y_range(cols, log)
    scale = (canvas.py - 1) / (y_hi - y_lo)
    _draw(canvas, cols, lambda y: int(round((y_hi - y) * scale)), smoothing)
    return [*_with_y_labels(canvas, y_lo, y_hi, scale, log), _x_axis(width, plot_w, x0, x1)]


def _y_range(cols: list[tuple[ChartSeries, list[Column | None]]], log: bool) -> tuple[float, float]:
    """The y axis: the columns' extent, padded 3%; zero-floored when the data is >= 0."""
    y_lo = min(c.low for _, cs in cols for c in cs if c is not None)
    y_hi = max(c.high for _, cs in cols for c in cs if c is not None)
    if y_hi - y_lo < 1e-12 * max(1.0, abs(y_hi)):
        pad = abs(y_hi) * 0.1 or 1.0
        return y_lo - pad, y_hi + pad
    pad = (y_hi - y_lo) * 0.03
    low = y_lo - pad
    if not log and y_lo >= 0 > low:
        low = 0.0  # a loss or an accuracy never goes below zero: nor does its axis
    return low, y_hi + pad


def _draw(
    canvas: BrailleCanvas,
    cols: list[tuple[ChartSeries, list[Column | None]]],
    row: Callable[[float], int],
    smoothing: float,
) -> None:
    """Each series: its min-max column per x, joined; smoothed, an EMA over a dim envelope."""
    if smoothing > 0:  # the raw envelope first, dim, under every smoothed line
        for s, cs in cols:
            dim = Style(color=s.color, dim=True)
            for x, c in enumerate(cs):
                if c is not None:
                    canvas.vline(x, row(c.high), row(c.low), dim, dotted=True)
    for s, cs in cols:
        style = Style(color=s.color, bold=True)
        if smoothing > 0:
            line = ema([c.mean if c is not None else None for c in cs], smoothing)
            points = [(x, row(v), row(v)) for x, v in enumerate(line) if v is not None]
        else:
            points = [(x, row(c.high), row(c.low)) for x, c in enumerate(cs) if c is not None]
        prev: tuple[int, int] | None = None
        for x, top, bottom in points:
            mid = (top + bottom) // 2
            if prev is not None:
                canvas.line(prev[0], prev[1], x, mid, style, s.dotted)
            canvas.vline(x, top, bottom, style, s.dotted)
            prev = (x, mid)


def _with_y_labels(
    canvas: BrailleCanvas, y_lo: float, y_hi: float, scale: float, log: bool
) -> list[Text]:
    """The canvas rows behind the y axis: labels at the top, bottom and (>= 5 rows) middle."""
    plot_h = canvas.height
    label_rows = {0: y_hi, plot_h - 1: y_lo}
    if plot_h >= 5:
        label_rows[(plot_h - 1) // 2] = (y_hi + y_lo) / 2
    out: list[Text] = []
    for r, text in enumerate(canvas.rows()):
        if r in label_rows:
            y = y_hi - (r * 4 + 1.5) / scale if r else y_hi
            y = y_lo if r == plot_h - 1 else y
            head = Text.assemble((_y_label(y, log) + "┤", "dim"))
        else:
            head = Text.assemble((" " * (Y_LABEL - 1) + "│", "dim"))
        out.append(head.append_text(text))
    return out


def _x_axis(width: int, plot_w: int, x0: float, x1: float) -> Text:
    """Step labels at the left, middle and right, each only where it does not collide."""
    axis = [" "] * width
    for pos, step in ((Y_LABEL, x0), (width - 1, x1), (Y_LABEL + plot_w // 2, (x0 + x1) // 2)):
        label = fmt_steps(int(step))
        start = min(max(pos - len(label) // 2, Y_LABEL), width - len(label))
        if pos == Y_LABEL:
            start = Y_LABEL
        if all(ch == " " for ch in axis[max(start - 1, 0) : start + len(label) + 1]):
            axis[start : start + len(label)] = list(label)
    return Text("".join(axis), style="dim")
