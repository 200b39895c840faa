"""Provides the on-device reductions of the probes: activation summaries, non-finite counts,
histograms. Each returns 0-d or small tensors and never reads a number back to the host,
except where the CPU makes that free (see ``activation_summary``).
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
    "grad_histograms",
    "linear_histogram",
    "moments",
    "nonfinite_counts",
    "saturation_count",
]

SIGMOID_LOW, SIGMOID_HIGH = 0.01, 0.99  # the definition of a saturated sigmoid
TANH_BOUND = 0.99  # |tanh| above this counts as saturated
NO_DEAD = ("identity", "sigmoid", "tanh")  # "fraction exactly zero" means nothing there
HIST_BINS = 24
GRAD_HIST_LOG10 = (-10.0, 2.0)  # |grad| histogram edges: 1e-10 .. 1e2, half a decade a bin
NAN = float("nan")
ACT_FIELDS = 8  # sum, norm, min, max, nonzero, saturated, non-finite, centred norm
# The one-pass spread E[y²] - E[y]² is used when it is at least this share of E[y²]: float32
# sums are good to ~1e-7 of E[y²], so the variance then to ~1e-5 (the tests ask 1e-4).
ONE_PASS_MIN_SPREAD = 1e-2


def saturation_count(y: torch.Tensor, activation: str) -> torch.Tensor | None:
    """How many values of a sigmoid/tanh output are near its bounds; None for others."""
    if activation == "sigmoid":
        return (
            torch.lt(y, SIGMOID_LOW).logical_or_(torch.gt(y, SIGMOID_HIGH)).sum(dtype=torch.int32)
        )
    if activation == "tanh":
        return (y.abs() > TANH_BOUND).sum(dtype=torch.int32)
    return None


def activation_summary(
    y: torch.Tensor, activation: str, exact_counts: bool
) -> tuple[torch.Tensor, ...]:
    """[sum, ‖y‖, min, max, nonzero, saturated, non-finite, ‖y - mean‖] of an output, as 0-d
    tensors on its device (the probe stacks every layer's at once); ``moments`` turns them
    into mean and std on the host. Counts are -1 where they do not apply.

    The spread: E[y²] - E[y]² from the one pass (sum, norm) is exact enough when the spread
    is a fair share of E[y²]; on a nearly constant layer (a deep sigmoid's: mean 0.6, std
    1e-4) it loses every digit, and only there is ‖y - mean‖ computed, a second pass that
    costs ~1 ms on an 8 MB activation here. With ``exact_counts`` False (the CPU, where
    reading a number is free) that choice, and counting non-finite values (only when the
    norm says there are some), are made by reading the sums; on an accelerator nothing is
    read: the second pass and the count are always done.
    """
    y = y.detach()
    if y.dtype not in (torch.float32, torch.float64):
        y = y.float()  # bf16/fp16 under autocast: reduce in float32
    n = y.numel()
    if n == 0:
        return tuple(torch.full((), NAN, device=y.device) for _ in range(ACT_FIELDS))
    minus1, zero, nan = _constants(y.device)
    total = y.sum()
    norm = torch.linalg.vector_norm(y)
    lo, hi = torch.aminmax(y)
    # int32 sums of a bool tensor: ~3x faster than count_nonzero here (activations < 2**31)
    nonzero = minus1 if activation in NO_DEAD else y.bool().sum(dtype=torch.int32)
    sat = saturation_count(y, activation)
    centred, bad = nan, zero
    if exact_counts:
        centred = torch.linalg.vector_norm(y - total / n)
        bad = n - torch.isfinite(y).sum()
    else:
        s1, s2 = total.item(), norm.item()
        if not (math.isfinite(s1) and math.isfinite(s2)):
            bad = n - torch.isfinite(y).sum()
        elif s2 * s2 / n - (s1 / n) ** 2 < ONE_PASS_MIN_SPREAD * s2 * s2 / n:
            centred = torch.linalg.vector_norm(y - s1 / n)
    return total, norm, lo, hi, nonzero, minus1 if sat is None else sat, bad, centred


def moments(total: float, norm: float, centred: float, n: int) -> tuple[float, float]:
    """(mean, population std) from an ``activation_summary``'s sums, on the host."""
    if n <= 0:
        return NAN, NAN
    mean = total / n
    if centred == centred:  # computed: the layer was nearly constant
        return mean, centred / math.sqrt(n)
    var = norm * norm / n - mean * mean
    return mean, math.sqrt(var) if var > 0 else (0.0 if var == var else var)


_CONSTANTS: dict[torch.device, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-1 and 0 (int64) and NaN (float32), 0-d on ``device``, made once (a new tensor is an
    op)."""
    if device not in _CONSTANTS:
        _CONSTANTS[device] = (
            torch.tensor(-1, device=device),
            torch.tensor(0, device=device),
            torch.tensor(NAN, device=device),
        )
    return _CONSTANTS[device]


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
