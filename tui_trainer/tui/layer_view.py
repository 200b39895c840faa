"""Provides read_layer: one layer's statistics over time and its histograms, for its view.

Plain Python (no Textual). Every statistic of the layer is read from the store decimated
to a few hundred buckets of steps (min, max and mean of each, so a spike stays), with the
layer's last row exactly as recorded; histograms (``histogram`` events) become heat
strips: one column per sample, one row per value bin. Activation histograms are recorded
over each sample's own [min, max]; they are re-binned onto the range of all samples, so a
row means the same value all along the strip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.store import RunReader
from tui_trainer.tui.series import CurveData

__all__ = ["LAYER_STATS", "LayerData", "Strip", "read_layer"]

# (statistic, chart title), in the order the view shows them
LAYER_STATS = (
    ("grad_norm", "gradient norm"),
    ("out_grad_norm", "out-gradient norm"),
    ("update_ratio", "update / weight"),
    ("weight_norm", "weight norm"),
    ("act_mean", "activation mean"),
    ("act_std", "activation std"),
    ("dead_frac", "dead fraction"),
    ("sat_frac", "saturated fraction"),
)
STRIP_BINS = 24  # value rows of a re-binned activation strip


@dataclass(frozen=True)
class Strip:
    """A histogram over time: ``counts[sample][bin]`` (bin 0 = ``lo``), per sample step."""

    title: str
    steps: tuple[int, ...]
    counts: tuple[tuple[float, ...], ...]
    lo: float
    hi: float
    log: bool  # the value axis is log10 (gradient magnitudes)


@dataclass(frozen=True)
class LayerData:
    """What one layer's view shows."""

    layer: int
    name: str
    curves: dict[str, CurveData]
    last: dict[str, float | None]  # the last recorded row
    last_step: int | None
    strips: tuple[Strip, ...] = field(default_factory=tuple)


def read_layer(run_dir: Path, layer: int, name: str, buckets: int = 200) -> LayerData:
    stats = [s for s, _ in LAYER_STATS]
    with RunReader(run_dir) as reader:
        raw, last_row = reader.layer_curves(layer, stats, buckets)
        hists = reader.histograms(name)
    curves = {}
    for stat, rows in raw.items():
        if rows:
            steps, lows, highs, means = zip(*rows, strict=True)
            curves[stat] = CurveData(steps, lows, highs, means, means[-1], 0, steps[-1])
    last = dict(zip(stats, last_row[1:], strict=True)) if last_row else {}
    if last_row:  # the curves end on the recorded value, not on a bucket's mean
        for stat, curve in curves.items():
            curves[stat] = _with_last(curve, last.get(stat))
    return LayerData(layer, name, curves, last, last_row[0] if last_row else None, _strips(hists))


def _with_last(curve: CurveData, value: float | None) -> CurveData:
    return CurveData(
        curve.steps, curve.lows, curve.highs, curve.means, value, curve.nonfinite, curve.end
    )


def _strips(hists: list[tuple[int, dict[str, Any]]]) -> tuple[Strip, ...]:
    if not hists:
        return ()
    out = []
    grads = [(s, h) for s, h in hists if h.get("grad") and any(h["grad"])]
    if grads:
        lo, hi = grads[0][1].get("grad_log10_range") or (-10.0, 2.0)
        out.append(
            Strip(
                "gradient |g| histogram (log10)",
                tuple(s for s, _ in grads),
                tuple(tuple(float(c) for c in h["grad"]) for _, h in grads),
                float(lo),
                float(hi),
                True,
            )
        )
    acts = [(s, h) for s, h in hists if h.get("act") and _range(h) is not None]
    if acts:
        out.append(_act_strip(acts))
    return tuple(out)


def _range(h: dict[str, Any]) -> tuple[float, float] | None:
    r = h.get("act_range") or ()
    if len(r) != 2 or r[0] is None or r[1] is None:
        return None
    return float(r[0]), float(r[1])


def _act_strip(acts: list[tuple[int, dict[str, Any]]]) -> Strip:
    ranges = [_range(h) for _, h in acts]
    lo = min(r[0] for r in ranges if r is not None)
    hi = max(r[1] for r in ranges if r is not None)
    span = hi - lo if hi > lo else 1.0
    counts = []
    for (_, h), r in zip(acts, ranges, strict=True):
        a, b = r if r is not None else (lo, hi)
        src = h["act"]
        row = [0.0] * STRIP_BINS
        for k, c in enumerate(src):
            centre = a + (k + 0.5) * (b - a) / len(src)
            row[min(STRIP_BINS - 1, max(0, int((centre - lo) / span * STRIP_BINS)))] += c
        counts.append(tuple(row))
    return Strip("activation histogram", tuple(s for s, _ in acts), tuple(counts), lo, hi, False)
