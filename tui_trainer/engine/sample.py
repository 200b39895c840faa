"""Provides Sample, the statistics of one sampled step on the host, and ``unpack``, which
turns the flat list of numbers a LayerProbe produces into it.

The flat layout, in order (P parameter tensors, U layer units, B histogram bins)::

    grad norms (P) | weight norms (P) | non-finite gradient counts (P) | total grad norm |
    GradScaler scale before the step | out-gradient norms (U) | [grad histograms (P*B)] |
    update norms (P) | scale after the step | activation summaries (U*ACT_FIELDS) |
    [activation histograms (U*B)]

What is left after the device's reductions happens here, in Python floats: sums of squares
into per-layer norms (weight and bias apart), counts into fractions, moments into mean and
std, parameter histograms into layer histograms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tui_trainer.engine.reductions import ACT_FIELDS, GRAD_HIST_LOG10, moments
from tui_trainer.store import STAT_COLUMNS

__all__ = ["COL", "Layout", "Sample", "record_sample", "unpack"]

NCOL = len(STAT_COLUMNS)
COL = {name: i for i, name in enumerate(STAT_COLUMNS)}
NAN = float("nan")


@dataclass(frozen=True)
class Sample:
    """The statistics of one sampled step, on the host."""

    step: int
    rows: list[list[float]]  # per layer, STAT_COLUMNS order; NaN = not applicable
    param_grad_norms: dict[str, float]  # per parameter tensor, by name
    total_grad_norm: float
    act_nonfinite: list[float]  # per layer: non-finite activation values
    skipped: bool = False  # the optimizer skipped the step (fp16 GradScaler overflow)
    histograms: dict[str, Any] | None = None

    def first_nonfinite_layer(self) -> int | None:
        """Depth index of the first layer where non-finite values appeared, else None.

        Where they appeared: the first layer whose activations are non-finite (the forward
        pass carries them on to every later layer, and the backward pass to every
        gradient); when the activations are all finite, the first layer with a non-finite
        gradient value or an infinite statistic (a norm that overflowed float32).
        """
        for i, bad in enumerate(self.act_nonfinite):
            if bad > 0:
                return i
        for i, row in enumerate(self.rows):
            if row[COL["nonfinite"]] > 0 or any(math.isinf(v) for v in row):
                return i
        return None

    def nonfinite_where(self, layer: int) -> str:
        """ "activations", "gradients" or "statistics" (finite values, overflowing norm)."""
        if self.act_nonfinite[layer] > 0:
            return "activations"
        row = self.rows[layer]
        if row[COL["nonfinite"]] > 0 or math.isinf(row[COL["grad_norm"]]):
            return "gradients"
        return "statistics"


@dataclass(frozen=True)
class Layout:
    """What the flat list describes: the parameters, their layers, the histogram bins."""

    param_names: Sequence[str]
    unit_of_param: Sequence[int]  # depth index of the owning unit; -1: none
    is_weight: Sequence[bool]  # ndim >= 2 (a weight), else a bias or a norm's scale/shift
    units: int
    bins: int


def unpack(lay: Layout, step: int, v: Sequence[float], hist: bool, numel: dict[int, int]) -> Sample:
    """The Sample a flat list (the layout in this module's docstring) describes."""
    nu, npar, b = lay.units, len(lay.param_names), lay.bins
    gn, v = v[:npar], v[npar:]
    wn, v = v[:npar], v[npar:]
    bad, v = v[:npar], v[npar:]
    total, scale0, v = v[0], v[1], v[2:]
    og, v = v[:nu], v[nu:]
    ghist: Sequence[float] = []
    if hist:
        ghist, v = v[: npar * b], v[npar * b :]
    dn, v = v[:npar], v[npar:]
    scale1, v = v[0], v[1:]
    act, v = v[: nu * ACT_FIELDS], v[nu * ACT_FIELDS :]
    rows = [[NAN] * NCOL for _ in range(nu)]
    sums = [[0.0] * 7 for _ in range(nu)]  # g², gw², gb², w² (weights), w² (all), d², bad
    have = [[False] * 3 for _ in range(nu)]  # any param, any weight, any bias
    for j, u in enumerate(lay.unit_of_param):
        if u < 0:
            continue
        s, w = sums[u], lay.is_weight[j]
        g2, w2 = gn[j] * gn[j], wn[j] * wn[j]
        s[0] += g2
        s[1 if w else 2] += g2
        if w:
            s[3] += w2
        s[4] += w2
        s[5] += dn[j] * dn[j]
        s[6] += bad[j]
        have[u][0] = True
        have[u][1 if w else 2] = True
    acts = [act[i * ACT_FIELDS : (i + 1) * ACT_FIELDS] for i in range(nu)]
    for i, (row, s, h, a) in enumerate(zip(rows, sums, have, acts, strict=True)):
        if h[0]:
            row[COL["grad_norm"]] = math.sqrt(s[0])
            row[COL["update_ratio"]] = math.sqrt(s[5]) / math.sqrt(s[4]) if s[4] > 0 else NAN
        if h[1]:
            row[COL["weight_grad_norm"]] = math.sqrt(s[1])
            row[COL["weight_norm"]] = math.sqrt(s[3])
        if h[2]:
            row[COL["bias_grad_norm"]] = math.sqrt(s[2])
        row[COL["out_grad_norm"]] = og[i]
        n = numel.get(i, 0)
        row[COL["act_mean"]], row[COL["act_std"]] = moments(a[0], a[1], a[7], n)
        row[COL["act_min"]], row[COL["act_max"]] = a[2], a[3]
        row[COL["dead_frac"]] = a[4] if a[4] >= 0 and n > 0 else NAN
        row[COL["sat_frac"]] = a[5] / n if a[5] >= 0 and n > 0 else NAN
        act_bad = a[6] if a[6] == a[6] else 0.0
        row[COL["nonfinite"]] = s[6] + act_bad
    histograms = _histograms(lay, ghist, v[: nu * b], acts) if hist else None
    return Sample(
        step=step,
        rows=rows,
        param_grad_norms=dict(zip(lay.param_names, gn, strict=True)),
        total_grad_norm=total,
        act_nonfinite=[a[6] if a[6] == a[6] else 0.0 for a in acts],
        skipped=scale1 < scale0,  # the GradScaler backed off: this step was skipped
        histograms=histograms,
    )


def _histograms(
    lay: Layout, ghist: Sequence[float], ahist: Sequence[float], acts: list[Sequence[float]]
) -> dict[str, Any]:
    nu, b = lay.units, lay.bins
    grad = [[0] * b for _ in range(nu)]
    for j, u in enumerate(lay.unit_of_param):
        if u >= 0:
            for k in range(b):
                grad[u][k] += int(ghist[j * b + k])
    layers = []
    for i in range(nu):
        counts = ahist[i * b : (i + 1) * b]
        layers.append(
            {
                "grad": grad[i],
                "act_range": [v if math.isfinite(v) else None for v in acts[i][2:4]],
                "act": [int(c) if c == c else 0 for c in counts],
            }
        )
    return {"bins": b, "grad_log10_range": list(GRAD_HIST_LOG10), "layers": layers}


def record_sample(recorder: Any, s: Sample, layer_names: list[str]) -> None:
    """Write one sample: its layer-statistics rows, per-parameter gradient norms and the
    total as scalars, and its histograms (named by layer) as an event."""
    recorder.layer_stats(s.step, s.rows)
    values = {f"grad_norm/{n}": v for n, v in s.param_grad_norms.items()}
    values["grad/total_norm"] = s.total_grad_norm
    recorder.scalars(s.step, values)
    if s.histograms is not None:
        for name, layer in zip(layer_names, s.histograms["layers"], strict=True):
            layer["layer"] = name
        recorder.event(s.step, "histogram", s.histograms)
