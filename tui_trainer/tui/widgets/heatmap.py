"""Provides GradientHeatmap: one statistic per layer over time, on a log colour scale.

Rows are layers in depth order (input at the top), columns are buckets of sampled steps,
the colour is log10 of the statistic (a viridis-like ramp; Rich lowers it to 256 or 16
colours when the terminal needs it). With NO_COLOR the ramp is drawn in shade characters.
When there are more layers than rows, neighbouring layers share a row (their mean).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from functools import lru_cache

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.events import Click, MouseScrollDown, MouseScrollUp

from tui_trainer.tui.fmt import fmt_num, fmt_steps
from tui_trainer.tui.history import HeatData
from tui_trainer.tui.messages import LayerChosen, StepClicked
from tui_trainer.tui.plot import append_runs
from tui_trainer.tui.widgets.lines import TextLines

__all__ = [
    "GradientHeatmap",
    "layer_groups",
    "ramp_style",
    "shade",
    "value_range",
    "window_buckets",
]

_RAMP = [
    "#440154",
    "#472d7b",
    "#3b528b",
    "#2c728e",
    "#21918c",
    "#28ae80",
    "#5ec962",
    "#addc30",
    "#fde725",
]  # viridis: dark = small, bright = large
_RAMP_RGB = [Color.parse(c).get_truecolor() for c in _RAMP]
SHADES = "░▒▓█"


RAMP_LEVELS = 64  # distinct colours of the ramp (styles are cached per level)


def ramp_style(t: float, background: bool = False) -> Style:
    """The ramp's colour at t in [0, 1]."""
    level = round(min(max(t, 0.0), 1.0) * (RAMP_LEVELS - 1))
    return _ramp_style(level, background)


@lru_cache(maxsize=2 * RAMP_LEVELS)
def _ramp_style(level: int, background: bool) -> Style:
    t = level / (RAMP_LEVELS - 1) * (len(_RAMP_RGB) - 1)
    i = min(int(t), len(_RAMP_RGB) - 2)
    f = t - i
    a, b = _RAMP_RGB[i], _RAMP_RGB[i + 1]
    rgb = Color.from_rgb(*(round(x + (y - x) * f) for x, y in zip(a, b, strict=False)))
    return Style(bgcolor=rgb) if background else Style(color=rgb)


def shade(t: float) -> str:
    return SHADES[min(len(SHADES) - 1, int(min(max(t, 0.0), 1.0) * len(SHADES)))]


MAX_ROWS_PER_LAYER = 3


def layer_groups(layers: int, rows: int) -> list[tuple[int, int, bool]]:
    """The text rows for ``layers`` in ``rows``: (start, end, first row of its group).

    More layers than rows: neighbouring layers share a row. Few layers: each gets up to
    MAX_ROWS_PER_LAYER rows, so a two-layer net is not two thin lines.
    """
    if layers <= 0 or rows <= 0:
        return []
    n = min(layers, rows)
    repeat = max(1, min(MAX_ROWS_PER_LAYER, rows // layers))
    return [
        (g * layers // n, (g + 1) * layers // n, r == 0) for g in range(n) for r in range(repeat)
    ]


def value_range(heat: HeatData | None) -> tuple[float, float]:
    """The colour scale: the data's range (log stats) or [0, 1] (fractions)."""
    if heat is None or not heat.log:
        return 0.0, 1.0
    vals = [v for row in heat.rows for v in row if v is not None]
    if not vals:
        return -6.0, 0.0
    lo, hi = min(vals), max(vals)
    if hi - lo < 0.5:
        mid = (hi + lo) / 2
        lo, hi = mid - 0.5, mid + 0.5
    return lo, hi


def window_buckets(steps: Sequence[int], x_range: tuple[float, float] | None) -> tuple[int, int]:
    """The buckets [lo, hi) that overlap the step window (all of them for None); a bucket
    runs from its start step to the next bucket's."""
    if x_range is None or not steps:
        return 0, len(steps)
    lo = max(0, bisect_right(steps, x_range[0]) - 1)
    hi = max(lo + 1, bisect_right(steps, x_range[1]))
    return lo, min(hi, len(steps))


def column_spans(buckets: int, cols: int) -> list[tuple[int, int]]:
    """The buckets [b0, b1) each of ``cols`` columns draws (a bucket may span columns)."""
    return [
        (c * buckets // cols, max(c * buckets // cols + 1, (c + 1) * buckets // cols))
        for c in range(cols)
    ]


def _cursor_style(t: float, mono: bool, mark: Style) -> Style:
    return mark if mono else ramp_style(t, background=True) + mark


def group_mean(values: list[float | None]) -> float | None:
    nums = [v for v in values if v is not None]
    return sum(nums) / len(nums) if nums else None


def layer_label(layers: list[str], start: int, end: int, width: int) -> str:
    name = layers[start] if start < len(layers) else str(start)
    if end - start > 1:
        name = f"{start}-{end - 1}"
    else:
        name = f"{start} {name}"
    return (name if len(name) <= width else name[: width - 1] + "…").ljust(width)


class GradientHeatmap(TextLines):
    """Layers x time; the value is the mean of log10(statistic) over each cell."""

    DEFAULT_CSS = """
    GradientHeatmap { height: 1fr; width: 2fr; min-width: 20; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.heat: HeatData | None = None
        self.layer_names: list[str] = []
        self.empty = "no layer statistics yet"
        self.selected: int | None = None  # the dashboard's selected layer (j/k), lit
        self.x_range: tuple[float, float] | None = None  # the dashboard's step window
        self.cursor: float | None = None  # the inspected step
        self._groups: list[tuple[int, int, bool]] = []
        self._columns: list[int] = []  # per drawn column: the step its first bucket starts at
        self._label_w = 0

    def set_view(self, x_range: tuple[float, float] | None, cursor: float | None) -> None:
        """The charts' step window and inspect cursor (drawn as a column)."""
        if (x_range, cursor) != (self.x_range, self.cursor):
            self.x_range, self.cursor = x_range, cursor
            self.invalidate()

    def set_data(self, heat: HeatData | None, layers: list[str], empty: str = "") -> None:
        self.heat, self.layer_names = heat, layers
        self.empty = empty or self.empty
        self.invalidate()

    def lines(self, width: int, height: int) -> list[Text]:
        heat = self.heat
        if heat is None or not heat.steps or not heat.rows:
            return [Text(self.empty, "dim")]
        mono = self.app.no_color
        label_w = self._label_w = min(16, max(8, width // 5))
        cols = max(1, width - label_w)
        groups = self._groups = layer_groups(len(heat.rows), max(1, height - 2))
        lo, hi = value_range(heat)
        span = hi - lo
        b_lo, b_hi = window_buckets(heat.steps, self.x_range)
        spans = [(b_lo + b0, b_lo + b1) for b0, b1 in column_spans(b_hi - b_lo, cols)]
        self._columns = [heat.steps[b0] for b0, _ in spans]
        at = self._cursor_column(spans)
        lines = [self._header(heat.steps[b_lo], heat.steps[b_hi - 1], label_w, cols, at)]
        missing = Style(dim=True)
        mark = Style(color="#ffffff", bold=True)
        for start, end, first in groups:
            label = layer_label(self.layer_names, start, end, label_w - 1) if first else ""
            lit = self.selected is not None and start <= self.selected < end
            line = Text(label.ljust(label_w), "bold reverse" if lit and first else "bold")

            def cells(start: int = start, end: int = end) -> Iterator[tuple[str, Style]]:
                for c, (b0, b1) in enumerate(spans):
                    v = group_mean([r[b] for r in heat.rows[start:end] for b in range(b0, b1)])
                    if c == at:  # the inspect cursor's column
                        yield (
                            ("┊", missing)
                            if v is None
                            else ("│", _cursor_style((v - lo) / span, mono, mark))
                        )
                    elif v is None:
                        yield "·", missing
                    else:
                        t = (v - lo) / span
                        yield (shade(t), Style()) if mono else ("█", ramp_style(t))

            append_runs(line, cells())
            lines.append(line)
        lines.append(self.legend(lo, hi, heat.log, label_w, mono))
        return lines

    def _cursor_column(self, spans: list[tuple[int, int]]) -> int | None:
        """The column whose buckets hold the cursor's step (None: no cursor in the window)."""
        heat = self.heat
        if self.cursor is None or heat is None:
            return None
        b = bisect_right(heat.steps, self.cursor) - 1
        return next((c for c, (b0, b1) in enumerate(spans) if b0 <= b < b1), None)

    @staticmethod
    def _header(first: int, last: int, label_w: int, cols: int, at: int | None) -> Text:
        """``step A`` ... ``B`` above the cells, and ▼ over the cursor's column."""
        a, b = f"step {fmt_steps(first)}", fmt_steps(last)
        axis = list(a + " " * max(1, cols - len(a) - len(b)) + b)
        if at is not None and at < len(axis):
            axis[at] = "▼"
        return Text(" " * label_w + "".join(axis), "dim")

    def _cell_at(self, event: Click | MouseScrollUp | MouseScrollDown) -> tuple[int, int] | None:
        """(text row, column of the cells) under the pointer; column -1: the labels."""
        offset = event.get_content_offset(self)
        if offset is None or not 1 <= offset.y <= len(self._groups):
            return None
        return offset.y - 1, min(offset.x - self._label_w, len(self._columns) - 1)

    def on_click(self, event: Click) -> None:
        """A click on a row's label opens that layer's view (the first layer of a shared
        row); a click on its cells inspects that layer at that step."""
        cell = self._cell_at(event)
        if cell is None:
            return
        layer = self._groups[cell[0]][0]
        if cell[1] < 0 or not self._columns:
            self.post_message(LayerChosen(layer))
        else:
            self.post_message(StepClicked(self._columns[cell[1]], layer))

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        self._wheel(event, 2.0)

    def on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        self._wheel(event, 0.5)

    def _wheel(self, event: MouseScrollUp | MouseScrollDown, factor: float) -> None:
        """The wheel zooms the dashboard's step axis about the step under the pointer."""
        zoom, cell = getattr(self.screen, "action_step_zoom", None), self._cell_at(event)
        if zoom is not None and cell is not None and cell[1] >= 0 and self._columns:
            event.stop()
            zoom(factor, self._columns[cell[1]])

    @staticmethod
    def legend(lo: float, hi: float, log: bool, offset: int, mono: bool) -> Text:
        lo_s = fmt_num(10**lo if log else lo, 2)
        hi_s = fmt_num(10**hi if log else hi, 2)
        text = Text("scale".ljust(max(0, offset - len(lo_s) - 1)) + lo_s + " ", "dim")
        steps = 24
        for i in range(steps):
            t = i / (steps - 1)
            if mono:
                text.append(shade(t))
            else:
                text.append("█", ramp_style(t))
        text.append(f" {hi_s}", "dim")
        text.append("  log colour scale" if log else "  linear scale", "dim")
        text.append("  · = no data", "dim")
        return text
