"""Provides a braille line chart rendered to Rich text: min/max envelopes, log scale, EMA.

Each terminal cell holds 2x4 braille dots. A series is decimated to one pixel column per
dot column keeping each column's minimum and maximum; with smoothing the raw envelope is
drawn dim under the smoothed line, without it the line passes through every column's
full span, so a spike is drawn even when thousands of steps share one column.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text

from tui_trainer.tui.fmt import fmt_num, fmt_steps
from tui_trainer.tui.ranges import YRange, finite, wants_log, y_range
from tui_trainer.tui.series import Column, CurveData, decimate, ema

__all__ = ["BrailleCanvas", "ChartSeries", "ChartView", "render_chart", "resolve_log"]

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
        self.marks: dict[tuple[int, int], tuple[str, Style | None]] = {}  # (row, col): cell

    def cursor(self, cx: int) -> None:
        """A dim vertical rule through the empty cells of column ``cx``."""
        rule = Style(dim=True)
        for cy in range(self.height):
            if not self.bits[cy][cx] and (cy, cx) not in self.marks:
                self.marks[(cy, cx)] = ("┊", rule)

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

    def cell(self, cy: int, cx: int) -> tuple[str, Style | None]:
        mark = self.marks.get((cy, cx))
        if mark is not None:
            return mark
        b = self.bits[cy][cx]
        return (chr(0x2800 + b) if b else " "), self.styles[cy][cx]

    def rows(self) -> list[Text]:
        if not self.marks:
            return [
                append_runs(
                    Text(),
                    ((chr(0x2800 + b) if b else " ", st) for b, st in zip(bits, st_, strict=False)),
                )
                for bits, st_ in zip(self.bits, self.styles, strict=False)
            ]
        return [
            append_runs(Text(), (self.cell(cy, cx) for cx in range(self.width)))
            for cy in range(self.height)
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


@dataclass(frozen=True)
class ChartView:
    """How a chart is drawn: its scale (``log`` None: chosen from the data), robust or full
    y range, the step window (None: every step) and the inspect cursor's step."""

    log: bool | None = False
    full: bool = False
    smoothing: float = 0.0
    x_range: tuple[float, float] | None = None
    cursor: float | None = None


def _visible_extremes(d: CurveData, x_range: tuple[float, float] | None) -> tuple[float, float]:
    """The lowest low and highest high of the buckets inside ``x_range`` (inf, -inf if none)."""
    lows, highs = d.lows, d.highs
    if x_range is not None:
        i, j = bisect_left(d.steps, x_range[0]), bisect_right(d.steps, x_range[1])
        lows, highs = lows[i:j], highs[i:j]
    if not lows:
        return math.inf, -math.inf
    lo, hi = min(lows), max(highs)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # a NaN or inf from elsewhere
        vs = finite([*lows, *highs])
        return (min(vs), max(vs)) if vs else (math.inf, -math.inf)
    return lo, hi


def resolve_log(series: Sequence[ChartSeries], view: ChartView) -> bool:
    """The scale drawn: the view's, or (None) log when the visible values span decades."""
    if view.full:
        return False  # the full range is the linear one
    if view.log is not None:
        return view.log
    ends = [_visible_extremes(s.data, view.x_range) for s in series]
    return wants_log([min(e[0] for e in ends), max(e[1] for e in ends)]) if ends else False


def render_chart(
    series: Sequence[ChartSeries],
    width: int,
    height: int,
    *,
    log: bool | None = False,
    smoothing: float = 0.0,
    empty: str = "waiting for data…",
    view: ChartView | None = None,
) -> list[Text]:
    """The chart as ``height`` lines of ``width`` cells (axis labels included)."""
    view = view or ChartView(log=log, smoothing=smoothing)
    plot_w, plot_h = width - Y_LABEL, height - 1
    if plot_w < 4 or plot_h < 2:
        return [Text("(too small)", style="dim")]
    log = resolve_log(series, view)
    data = [(s, _log_data(s.data) if log else s.data) for s in series]
    data = [(s, d) for s, d in data if d.steps]
    if not data:
        return [Text(empty, style="dim")]
    if view.x_range is not None:
        x0, x1 = view.x_range
    else:
        x0 = min(d.steps[0] for _, d in data)
        x1 = max(max(d.steps[-1], d.end) for _, d in data)
    canvas = BrailleCanvas(plot_w, plot_h)
    cols: list[tuple[ChartSeries, list[Column | None]]] = []
    for s, d in data:
        cols.append((s, decimate(d.steps, d.lows, d.highs, canvas.px, d.means, x0, x1)))
    values = [v for _, cs in cols for c in cs if c is not None for v in (c.low, c.high)]
    yr = y_range(values, robust=not (log or view.full), floor_zero=not log)
    if yr is None:
        return [Text("no values in this step range", style="dim")]
    scale = (canvas.py - 1) / (yr.hi - yr.lo)
    _draw(canvas, cols, lambda y: int(round((yr.hi - y) * scale)), view.smoothing)
    if yr.clipped:
        _mark_clipped(canvas, cols, yr)
    if view.cursor is not None and x1 > x0 and x0 <= view.cursor <= x1:
        canvas.cursor((int((view.cursor - x0) * (canvas.px - 1) / (x1 - x0))) >> 1)
    return [*_with_y_labels(canvas, yr.lo, yr.hi, scale, log), _x_axis(width, plot_w, x0, x1)]


def _mark_clipped(
    canvas: BrailleCanvas, cols: list[tuple[ChartSeries, list[Column | None]]], yr: YRange
) -> None:
    """▲ on the top row above a value beyond the axis, ▼ on the bottom row below one."""
    for s, cs in cols:
        style = Style(color=s.color, bold=True)
        for x, c in enumerate(cs):
            if c is None:
                continue
            if c.high > yr.hi:
                canvas.marks[(0, x >> 1)] = ("▲", style)
            if c.low < yr.lo:
                canvas.marks[(canvas.height - 1, x >> 1)] = ("▼", style)


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
