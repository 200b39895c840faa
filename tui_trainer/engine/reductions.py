"""Provides the reductions of the probes: activation summaries, sums of squares, non-finite
counts, histograms.

Two kinds. For an accelerator (``activation_summary``, ``nonfinite_counts``, the histograms):
0-d or small tensors on the device, never a number read back, so nothing waits on the
device. For the CPU (``activation_summary_host``, ``sumsq``): Python floats at once, since
reading a number there costs no synchronisation, and the choices that reading allows (a
second pass only for a nearly constant layer, counting non-finite values only when a sum
says there are some) save work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "ACT_FIELDS",
    "GRAD_HIST_LOG10",
    "HIST_BINS",
    "NO_DEAD",
    "activation_summary",
    "activation_summary_host",
    "grad_histograms",
    "linear_histogram",
    "moments",
    "nonfinite_counts",
    "saturation_count",
    "flat_sumsq",
    "sumsq",
]

SIGMOID_LOW, SIGMOID_HIGH = 0.01, 0.99  # the definition of a saturated sigmoid
TANH_BOUND = 0.99  # |tanh| above this counts as saturated
NO_DEAD = ("identity", "sigmoid", "tanh")  # "a unit dead for the batch" means nothing there
HIST_BINS = 24
GRAD_HIST_LOG10 = (-10.0, 2.0)  # |grad| histogram edges: 1e-10 .. 1e2, half a decade a bin
NAN = float("nan")
ACT_FIELDS = 8  # sum, norm, min, max, dead units, saturated, non-finite, centred norm
# The one-pass spread E[y²] - E[y]² is used when it is at least this share of E[y²]: float32
# sums are good to ~1e-7 of E[y²], so the variance then to ~1e-5 (the tests ask 1e-4).
ONE_PASS_MIN_SPREAD = 1e-2
# sumsq: a BLAS dot over at most this many values at a time, the parts added in float64, so
# float32 rounding does not grow with a tensor's size (2**20 values: ~4e-7 of the sum here).
DOT_CHUNK = 1 << 20
FLAT_DTYPES = (torch.float32, torch.float64)  # what a BLAS dot takes as it is


def saturation_count(y: torch.Tensor, activation: str) -> torch.Tensor | None:
    """How many values of a sigmoid/tanh output are near its bounds; None for others."""
    if activation == "sigmoid":
        return (
            torch.lt(y, SIGMOID_LOW).logical_or_(torch.gt(y, SIGMOID_HIGH)).sum(dtype=torch.int32)
        )
    if activation == "tanh":
        return (y.abs() > TANH_BOUND).sum(dtype=torch.int32)
    return None


def dead_unit_fraction(y: torch.Tensor) -> torch.Tensor:
    """The fraction of a layer's units (dim 1: features, or a conv map's channels) that are
    exactly zero for every example of the batch (and every position of a map): a dead ReLU
    gets no gradient from that batch. Healthy ReLU layers have about half their entries at
    zero, but few units zero everywhere. A 1-d output is one unit."""
    if y.dim() < 2:
        return (~y.bool().any()).float()
    dims = (0, *range(2, y.dim()))
    alive = y.bool().any(dim=dims) if len(dims) > 1 else y.bool().any(dim=0)
    return 1.0 - alive.sum(dtype=torch.int32) / alive.numel()


def dead_unit_fraction_host(y: torch.Tensor) -> float:
    """``dead_unit_fraction`` as a float, in two ops (a count of the nonzero entries of each
    unit, then of the units with any) where the device version takes five."""
    if y.dim() < 2:
        return 0.0 if bool(y.any()) else 1.0
    counts = torch.count_nonzero(y, dim=(0, *range(2, y.dim())))
    return 1.0 - int(torch.count_nonzero(counts)) / counts.numel()


def activation_summary(y: torch.Tensor, activation: str) -> tuple[torch.Tensor, ...]:
    """[sum, ‖y‖, min, max, dead units, saturated, non-finite, ‖y - mean‖] of an output, as 0-d
    tensors on its device (the probe stacks every layer's at once); ``moments`` turns them
    into mean and std on the host. Counts are -1 where they do not apply.

    The spread: E[y²] - E[y]² from the one pass (sum, norm) is exact enough when the spread
    is a fair share of E[y²]; on a nearly constant layer (a deep sigmoid's: mean 0.6, std
    1e-4) it loses every digit. Nothing can be read here to choose, so the centred norm (a
    second pass) and the non-finite count are always computed; ``moments`` uses the centred
    norm.
    """
    y = y.detach()
    if y.dtype not in (torch.float32, torch.float64):
        y = y.float()  # bf16/fp16 under autocast: reduce in float32
    n = y.numel()
    if n == 0:
        return tuple(torch.full((), NAN, device=y.device) for _ in range(ACT_FIELDS))
    minus1 = _minus_one(y.device)
    total = y.sum()
    norm = torch.linalg.vector_norm(y)
    lo, hi = torch.aminmax(y)
    dead = minus1 if activation in NO_DEAD else dead_unit_fraction(y)
    sat = saturation_count(y, activation)
    centred = torch.linalg.vector_norm(y - total / n)
    bad = n - torch.isfinite(y).sum()
    return total, norm, lo, hi, dead, minus1 if sat is None else sat, bad, centred


def activation_summary_host(y: torch.Tensor, activation: str) -> list[float]:
    """``activation_summary`` of a CPU tensor, as Python floats read as they are computed:
    the centred norm only for a nearly constant layer (where the one-pass spread,
    ``ONE_PASS_MIN_SPREAD``, loses its digits; ~1 ms on an 8 MB activation here), and
    non-finite values counted only when the sums say there are some."""
    y = y.detach()
    if y.dtype not in FLAT_DTYPES:
        y = y.float()
    n = y.numel()
    if n == 0:
        return [NAN] * ACT_FIELDS
    v = y.view(-1) if y.is_contiguous() else y.reshape(-1)  # a channels-last map: a copy
    total, sq = float(v.sum()), flat_sumsq(v)
    lo, hi = torch.aminmax(v)
    dead = -1.0 if activation in NO_DEAD else dead_unit_fraction_host(y)
    sat = saturation_count(v, activation)
    centred, bad = NAN, 0.0
    if not (math.isfinite(total) and math.isfinite(sq)):
        bad = float(n - torch.isfinite(v).sum())
    elif sq / n - (total / n) ** 2 < ONE_PASS_MIN_SPREAD * sq / n:
        centred = flat_sumsq(v - total / n) ** 0.5
    sat_n = -1.0 if sat is None else float(sat)
    return [total, sq**0.5, float(lo), float(hi), dead, sat_n, bad, centred]


def sumsq(t: torch.Tensor) -> float:
    """The sum of squares of a CPU tensor's values, as a Python float.

    A BLAS dot for contiguous float32/float64 (three times faster than
    ``torch.linalg.vector_norm`` on the CPU here, and nearer the float64 value on large
    tensors: 4e-7 against 2e-5 on 786,432 values); other types and layouts: ``vector_norm``
    in float32. Non-finite values give inf or NaN, as a norm does.
    """
    t = t.detach()
    if t.dtype in FLAT_DTYPES and t.is_contiguous():
        return flat_sumsq(t.view(-1))
    return float(torch.linalg.vector_norm(t, dtype=torch.float32)) ** 2


def flat_sumsq(v: torch.Tensor) -> float:
    """``sumsq`` of a 1-D contiguous float32/float64 tensor that needs no grad, unchecked (the
    probe's per-parameter loop), by parts of DOT_CHUNK values added in float64."""
    if v.numel() <= DOT_CHUNK:
        return float(torch.dot(v, v))
    return math.fsum(float(torch.dot(c, c)) for c in v.split(DOT_CHUNK))


def moments(total: float, norm: float, centred: float, n: int) -> tuple[float, float]:
    """(mean, population std) from an ``activation_summary``'s sums, on the host."""
    if n <= 0:
        return NAN, NAN
    mean = total / n
    if centred == centred:  # computed: the layer was nearly constant
        return mean, centred / math.sqrt(n)
    var = norm * norm / n - mean * mean
    return mean, math.sqrt(var) if var > 0 else (0.0 if var == var else var)


_MINUS_ONE: dict[torch.device, torch.Tensor] = {}


def _minus_one(device: torch.device) -> torch.Tensor:
    """-1 (int64), 0-d on ``device``, made once (a new tensor is an op)."""
    if device not in _MINUS_ONE:
        _MINUS_ONE[device] = torch.tensor(-1, device=device)
    return _MINUS_ONE[device]


def nonfinite_counts(grads: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Per tensor: how many values are not finite (float32, on the device, no host sync).

    Two small kernels a tensor: on an accelerator that is launch time only, and the CPU
    calls this only when a norm says there is something to count.
    """
    if not grads:
        return torch.zeros(0, device=device)
    sizes = tuple(g.numel() for g in grads)
    key = (device, sizes)
    if key not in _NUMELS:  # made once: a host-to-device copy at every sample could sync
        _NUMELS.clear()
        _NUMELS[key] = torch.tensor(sizes, dtype=torch.float32, device=device)
    return _NUMELS[key] - torch.stack([torch.isfinite(g).sum() for g in grads]).float()


_NUMELS: dict[tuple[torch.device, tuple[int, ...]], torch.Tensor] = {}


def grad_histograms(grads: Sequence[torch.Tensor], bins: int) -> torch.Tensor:
    """(P, bins) counts of log10|g| over GRAD_HIST_LOG10; values beyond go to the end bins
    (exact zeros to the first)."""
    lo, hi = GRAD_HIST_LOG10
    rows = []
    for g in grads:
        x = g.detach().float().abs().clamp_(10.0**lo, 10.0**hi).log10_()
        rows.append(torch.histc(x, bins, lo, hi))
    return torch.stack(rows)


def linear_histogram(
    y: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bins: int
) -> torch.Tensor:
    """Counts of y in ``bins`` equal bins over [lo, hi], without reading lo and hi."""
    y = y.float()
    t = (y - lo) / (hi - lo).clamp_min(torch.finfo(torch.float32).tiny)
    return torch.histc(t, bins, 0.0, 1.0)
