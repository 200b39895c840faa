"""Provides LayerBars: the latest sample of the heatmap's statistic, one bar per layer row.

Rows line up with GradientHeatmap's (same grouping, same height) and share its scale.
"""

from __future__ import annotations

from rich.text import Text

from tui_trainer.tui.fmt import fmt_num
from tui_trainer.tui.history import HeatData
from tui_trainer.tui.series import transform
from tui_trainer.tui.widgets.heatmap import group_mean, layer_groups, ramp_style, value_range
from tui_trainer.tui.widgets.lines import TextLines

__all__ = ["LayerBars"]


class LayerBars(TextLines):
    """Horizontal bars: the statistic's latest value per layer (log length for norms)."""

    DEFAULT_CSS = """
    LayerBars { height: 1fr; width: 1fr; min-width: 16; padding-left: 2; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.heat: HeatData | None = None
        self.latest: list[float | None] = []
        self.step = -1

    def set_data(self, heat: HeatData | None, latest: list[float | None], step: int) -> None:
        self.heat, self.latest, self.step = heat, latest, step
        self.invalidate()

    def lines(self, width: int, height: int) -> list[Text]:
        heat = self.heat
        if heat is None or not self.latest:
            return []
        lo, hi = value_range(heat)
        span = hi - lo
        groups = layer_groups(len(heat.rows), max(1, height - 2))
        lines = [Text(f"latest (step {self.step})", "dim")]
        value_w = 8
        bar_w = max(1, width - value_w - 1)
        mono = self.app.no_color
        for start, end, first in groups:
            values = self.latest[start:end]
            shown = group_mean([transform(v, heat.log) for v in values])
            line = Text()
            if not first:
                line.append(" " * (value_w + 1))
            elif shown is None:
                line.append("-".rjust(value_w) + " ", "dim")
            elif heat.log and all(v == 0 for v in values if v is not None):
                line.append("0".rjust(value_w) + " ")  # exact zeros: not the log floor's 1e-12
            else:
                value = 10**shown if heat.log else shown
                line.append(fmt_num(value, 2).rjust(value_w) + " ")
            if shown is not None:
                t = min(max((shown - lo) / span, 0.0), 1.0)
                n = max(1, round(t * bar_w))
                line.append("■" * n if mono else "█" * n, None if mono else ramp_style(t))
            lines.append(line)
        return lines
