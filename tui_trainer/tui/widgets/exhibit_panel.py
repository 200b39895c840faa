"""Provides ExhibitPanel: what some lecture presets record beside the curves.

- ``truth_table`` (a threshold unit or a perceptron): its weights, its threshold and the
  truth table with the unit's output for every input.
- ``features`` (a LeNet): the first layer's filters as half-block images, how far they
  moved from their initial values, and the mean hidden activation per class.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widget import Widget

from tui_trainer.tui.fmt import fmt_num
from tui_trainer.tui.widgets.heatmap import ramp_style, shade

__all__ = ["ExhibitPanel", "image_rows"]

_NEG, _POS = (58, 110, 220), (230, 90, 60)  # diverging colours of filter weights


def _diverging(t: float) -> str:
    """t in [-1, 1]: blue for negative, black at zero, red for positive weights."""
    r, g, b = _POS if t >= 0 else _NEG
    a = min(abs(t), 1.0)
    return f"rgb({round(r * a)},{round(g * a)},{round(b * a)})"


def image_rows(image: list[list[float]], mono: bool) -> list[Text]:
    """A small 2-D array as text: two pixel rows per line (▀ with fg/bg colours)."""
    flat = [abs(v) for row in image for v in row]
    scale = max(flat) if flat and max(flat) > 0 else 1.0
    if mono:
        return [Text("".join(shade(abs(v) / scale) for v in row)) for row in image]
    lines = []
    for r in range(0, len(image), 2):
        top = image[r]
        bottom = image[r + 1] if r + 1 < len(image) else None
        text = Text()
        for c, v in enumerate(top):
            below = bottom[c] / scale if bottom is not None else None
            style = Style.parse(
                f"{_diverging(v / scale)} on {_diverging(below)}"
                if below is not None
                else _diverging(v / scale)
            )
            text.append("▀", style)
        lines.append(text)
    return lines


def truth_table(data: dict[str, Any], step: int) -> RenderableType:
    weights = ", ".join(fmt_num(w) for w in data.get("weights", []))
    head = Text(f"{data.get('unit', 'unit')} unit at step {step}: ", "bold")
    head.append(f"w = [{weights}], fires when w·x {data.get('rule', '>=')} ")
    head.append(fmt_num(data.get("threshold")))
    table = Table(box=None, padding=(0, 1), header_style="bold dim")
    table.add_column("x")
    table.add_column("target", justify="right")
    table.add_column("output", justify="right")
    table.add_column("")
    for x, t, o in zip(data.get("inputs", []), data.get("target", []), data.get("output", []),
                       strict=False):
        ok = int(t) == int(o)
        table.add_row(
            " ".join(fmt_num(v) for v in x), str(int(t)), str(int(o)),
            Text("✓" if ok else "✗", "green" if ok else "bold red"),
        )
    score = Text(f"{data.get('correct', 0)}/{data.get('total', 0)} correct", "bold")
    return Group(head, table, score)


def features(data: dict[str, Any], step: int, mono: bool, width: int) -> RenderableType:
    filters = data.get("filters", [])
    parts: list[RenderableType] = []
    change = data.get("filter_change")
    layer = data.get("layer", "")
    head = Text(f"{len(filters)} first-layer filters ({layer}) at step {step}", "bold")
    if change is not None:
        head.append(f"; moved {100 * change:.0f}% from their initial values", "dim")
    parts.append(head)
    images = [image_rows(f[0], mono) for f in filters if f and f[0]]
    if images:
        per_line = max(1, width // (len(filters[0][0][0]) + 1))
        for start in range(0, len(images), per_line):
            chunk = images[start : start + per_line]
            for r in range(max(len(im) for im in chunk)):
                line = Text()
                for im in chunk:
                    line.append_text(im[r] if r < len(im) else Text(" " * len(im[0])))
                    line.append(" ")
                parts.append(line)
    hidden = data.get("hidden_by_class", [])
    classes = data.get("classes", [])
    if hidden:
        hidden_layer = data.get("hidden_layer", "hidden")
        parts.append(Text(f"mean {hidden_layer} activation per class", "bold"))
        peak = max((abs(v) for row in hidden for v in row), default=0.0) or 1.0
        for name, row in zip(classes, hidden, strict=False):
            line = Text(f"{str(name)[:3]:>3} ")
            for v in row[: max(1, width - 4)]:
                t = abs(v) / peak
                line.append(shade(t) if mono else "█", None if mono else ramp_style(t))
            parts.append(line)
    return Group(*parts)


class ExhibitPanel(Widget):
    """The latest truth table or feature record of the selected run."""

    DEFAULT_CSS = """
    ExhibitPanel { height: auto; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.exhibits: dict[str, tuple[int, dict[str, Any]]] = {}

    def show(self, exhibits: dict[str, tuple[int, dict[str, Any]]]) -> None:
        self.exhibits = exhibits
        self.refresh(layout=True)

    def render(self) -> RenderableType:
        """Laid out for the width the panel has now (it changes when zoomed)."""
        parts: list[RenderableType] = []
        mono = self.app.no_color
        if "truth_table" in self.exhibits:
            step, data = self.exhibits["truth_table"]
            parts.append(truth_table(data, step))
        if "features" in self.exhibits:
            step, data = self.exhibits["features"]
            parts.append(features(data, step, mono, max(self.size.width, 20)))
        return Group(*parts) if parts else Text("")
