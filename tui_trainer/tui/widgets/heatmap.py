"""Provides GradientHeatmap: one statistic per layer over time, on a log colour scale.

Rows are layers in depth order (input at the top), columns are buckets of sampled steps,
the colour is log10 of the statistic (a viridis-like ramp; Rich lowers it to 256 or 16
colours when the terminal needs it). With NO_COLOR the ramp is drawn in shade characters.
When there are more layers than rows, neighbouring layers share a row (their mean).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.events import Click

from tui_trainer.tui.fmt import fmt_num, fmt_steps
from tui_trainer.tui.history import HeatData
from tui_trainer.tui.messages import LayerChosen
from tui_trainer.tui.plot import append_runs
from tui_trainer.tui.widgets.lines import TextLines

__all__ = ["GradientHeatmap", "layer_groups", "ramp_style", "shade", "value_range"]

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
        self._groups: list[tuple[int, int, bool]] = []

    def set_data(self, heat: HeatData | None, layers: list[str], empty: str = "") -> None:
        self.heat, self.layer_names = heat, layers
        self.empty = empty or self.empty
        self.invalidate()

    def lines(self, width: int, height: int) -> list[Text]:
        heat = self.heat
        if heat is None or not heat.steps or not heat.rows:
            return [Text(self.empty, "dim")]
        mono = self.app.no_color
        label_w = min(16, max(8, width // 5))
        cols = max(1, width - label_w)
        groups = self._groups = layer_groups(len(heat.rows), max(1, height - 2))
        lo, hi = value_range(heat)
        span = hi - lo
        nb = len(heat.steps)
        header = Text(" " * label_w, "dim")
        a, b = f"step {fmt_steps(heat.steps[0])}", fmt_steps(heat.steps[-1])
        header.append(a + " " * max(1, cols - len(a) - len(b)) + b, "dim")
        lines = [header]
        missing = Style(dim=True)
        for start, end, first in groups:
            label = layer_label(self.layer_names, start, end, label_w - 1) if first else ""
            lit = self.selected is not None and start <= self.selected < end
            line = Text(label.ljust(label_w), "bold reverse" if lit and first else "bold")

            def cells(start: int = start, end: int = end) -> Iterator[tuple[str, Style]]:
                for c in range(cols):
                    b0 = c * nb // cols
                    b1 = max(b0 + 1, (c + 1) * nb // cols)
                    v = group_mean(
                        [r[b] for r in heat.rows[start:end] for b in range(b0, min(b1, nb))]
                    )
                    if v is None:
                        yield "·", missing
                    else:
                        t = (v - lo) / span
                        yield (shade(t), Style()) if mono else ("█", ramp_style(t))

            append_runs(line, cells())
            lines.append(line)
        lines.append(self.legend(lo, hi, heat.log, label_w, mono))
        return lines

    def on_click(self, event: Click) -> None:
        """A click on a row opens that layer's view (the first layer of a shared row)."""
        offset = event.get_content_offset(self)
        if offset is None or not 1 <= offset.y <= len(self._groups):
            return
        self.post_message(LayerChosen(self._groups[offset.y - 1][0]))

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
