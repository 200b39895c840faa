"""Provides ActivationTable: per-layer activation statistics of the latest sample, each
(mean, std, dead %, saturated %) followed by a sparkline of its recent history.

Drawn as fixed-width text rather than a Rich Table: a 50-layer table redrawn five times a
second cost more than everything else on the dashboard together.
"""

from __future__ import annotations

from rich.text import Text
from textual.events import Click
from textual.geometry import Size

from tui_trainer.store import STAT_COLUMNS
from tui_trainer.tui.fmt import fmt_num, sparkline
from tui_trainer.tui.follow import RunSnapshot
from tui_trainer.tui.messages import LayerChosen
from tui_trainer.tui.widgets.lines import TextLines

__all__ = ["ActivationTable"]

_COL = {name: i for i, name in enumerate(STAT_COLUMNS)}
_ACT = {"sigmoid": "sigm", "identity": "id", "leaky_relu": "lrelu"}
WARN_FRAC = 0.5  # dead or saturated fractions from here on are shown in red
# (title, width, right-aligned)
SPARK = 5  # characters of history after each statistic's latest value
COLUMNS = (
    ("layer", 12, False),
    ("act", 4, False),
    ("mean", 5 + SPARK, False),
    ("std", 5 + SPARK, False),
    ("dead", 4 + SPARK, False),
    ("sat", 4 + SPARK, False),
    ("range", 9, False),
    ("upd/w", 5, True),
)


def _cell(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


def _pct(v: float | None) -> tuple[str, str]:
    if v is None:
        return "-", "dim"
    return f"{v * 100:.0f}%", "bold red" if v >= WARN_FRAC else ""


class ActivationTable(TextLines):
    """Mean, spread, dead and saturated fractions per layer, each with its sparkline."""

    DEFAULT_CSS = """
    ActivationTable { height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[Text] = [Text("no layers yet", "dim")]
        self.selected: int | None = None  # the dashboard's selected layer (j/k), lit
        self.n_layers = 0

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.rows)

    def lines(self, width: int, height: int) -> list[Text]:
        return self.rows

    def show(self, snap: RunSnapshot | None) -> None:
        if snap is None or not snap.layers:
            self.rows = [Text("no layers yet", "dim")]
            self.invalidate()
            return
        header = Text(" ".join(_cell(t, w, r) for t, w, r in COLUMNS), style="bold dim")
        rows = [header]
        for i, layer in enumerate(snap.layers):
            latest = snap.latest[i] if i < len(snap.latest) else None
            text = Text()
            for k, segments in enumerate(_layer_cells(snap, i, layer, latest)):
                if k:
                    text.append(" ")
                for value, style in segments:
                    lit = k == 0 and i == self.selected
                    text.append(value, "reverse bold" if lit else style or None)
            rows.append(text)
        if len(rows) != len(self.rows):
            self.refresh(layout=True)
        self.rows, self.n_layers = rows, len(snap.layers)
        self.invalidate()

    def on_click(self, event: Click) -> None:
        """A click on a layer's row opens its view."""
        offset = event.get_content_offset(self)
        if offset is not None and 1 <= offset.y <= self.n_layers:
            self.post_message(LayerChosen(offset.y - 1))


Segments = list[tuple[str, str]]  # (text, style) pieces of one column


def _layer_cells(
    snap: RunSnapshot, i: int, layer: dict, row: tuple[float | None, ...] | None
) -> list[Segments]:
    """Layer ``i``'s columns: name, activation, each statistic with its trend, range, upd/w."""

    def get(name: str) -> float | None:
        return row[_COL[name]] if row is not None else None

    def stat(text: str, width: int, style: str, name: str, shown: bool = True) -> Segments:
        hist = snap.sparks.get(name, ())
        spark = sparkline(hist[i] if i < len(hist) else (), SPARK) if shown else ""
        return [(_cell(text, width, True), style), (spark.ljust(SPARK), "cyan")]

    act = str(layer.get("activation", ""))
    lo, hi = get("act_min"), get("act_max")
    dead, dead_style = _pct(get("dead_frac"))
    sat, sat_style = _pct(get("sat_frac"))
    span = f"{fmt_num(lo, 2)}…{fmt_num(hi, 2)}" if lo is not None else "-"
    return [
        [(_cell(f"{i} {layer['name']}", 12, False), "")],
        [(_cell(_ACT.get(act, act), 4, False), "dim")],
        stat(fmt_num(get("act_mean"), 2), 5, "", "act_mean"),
        stat(fmt_num(get("act_std"), 2), 5, "", "act_std"),
        stat(dead, 4, dead_style, "dead_frac", shown=dead != "-"),
        stat(sat, 4, sat_style, "sat_frac", shown=sat != "-"),
        [(_cell(span, 9, False), "")],
        [(_cell(fmt_num(get("update_ratio"), 2), 5, True), "")],
    ]
