"""Provides the y range of a chart: log scale for series spanning decades, robust limits.

Plain Python (no Textual, no Rich). ``wants_log`` says whether positive values span so many
decades that a linear axis would show one spike and a flat line (a loss that starts at
1e11 and ends at 2). ``y_range`` chooses limits from quantiles with a margin, so one
isolated outlier does not squash the rest of the curve: the outlier is clipped (the chart
marks it at its edge) only when few values lie outside and they lie far outside; a curve
whose values are spread out keeps its full extent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DECADES", "YRange", "finite", "quantile", "wants_log", "y_range"]

DECADES = 3.0  # max / min >= 10**DECADES: a log axis by default
Q = 0.02  # the robust limits start from the 2% and 98% quantiles ...
MARGIN = 0.1  # ... widened by 10% of their spread ...
REACH = 0.5  # ... and reach the extreme itself when it is within 50% of the spread
OUTLIER_SHARE = 0.05  # clip only when at most 5% of the values lie outside
PAD = 0.03  # the full range is padded by 3%


@dataclass(frozen=True)
class YRange:
    """The limits of a y axis and whether values were left above or below them."""

    lo: float
    hi: float
    clipped_hi: bool = False
    clipped_lo: bool = False

    @property
    def clipped(self) -> bool:
        return self.clipped_hi or self.clipped_lo


def finite(values: Iterable[float | None]) -> list[float]:
    """The finite values, in order (None, NaN and inf left out)."""
    return [v for v in values if v is not None and math.isfinite(v)]


def quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values, linearly interpolated."""
    pos = q * (len(ordered) - 1)
    i = int(pos)
    if i + 1 >= len(ordered):
        return ordered[-1]
    return ordered[i] + (ordered[i + 1] - ordered[i]) * (pos - i)


def wants_log(values: Iterable[float | None], decades: float = DECADES) -> bool:
    """True when every finite value is positive and max / min is at least 10**decades."""
    vs = finite(values)
    if not vs or min(vs) <= 0:
        return False
    return max(vs) / min(vs) >= 10.0**decades


def y_range(
    values: Iterable[float | None], *, robust: bool = True, floor_zero: bool = True
) -> YRange | None:
    """The axis limits for ``values`` (None when there is no finite value).

    ``robust``: isolated outliers are clipped rather than setting the range. ``floor_zero``:
    values that are all >= 0 never get an axis below zero (a loss, an accuracy).
    """
    vs = sorted(finite(values))
    if not vs:
        return None
    v_lo, v_hi = vs[0], vs[-1]
    if v_hi - v_lo < 1e-12 * max(1.0, abs(v_hi)):
        pad = abs(v_hi) * 0.1 or 1.0
        return YRange(v_lo - pad, v_hi + pad)
    lo, hi = v_lo, v_hi
    clip_lo = clip_hi = False
    if robust and len(vs) >= 10:
        lo, hi, clip_lo, clip_hi = _robust(vs)
    pad = (hi - lo) * PAD
    low = lo if clip_lo else lo - pad
    high = hi if clip_hi else hi + pad
    if floor_zero and v_lo >= 0 > low:
        low = 0.0
    return YRange(low, high, clip_hi, clip_lo)


def _robust(vs: list[float]) -> tuple[float, float, bool, bool]:
    """(low, high, clipped low, clipped high) of sorted values from their quantiles."""
    q_lo, q_hi = quantile(vs, Q), quantile(vs, 1 - Q)
    spread = q_hi - q_lo
    if spread <= 0:
        spread = abs(q_hi) * 0.1 or 1.0
    lo = q_lo - MARGIN * spread
    hi = q_hi + MARGIN * spread
    clip_lo = vs[0] < q_lo - REACH * spread
    clip_hi = vs[-1] > q_hi + REACH * spread
    outside = sum(1 for v in vs if v < lo or v > hi) if clip_lo or clip_hi else 0
    if outside > OUTLIER_SHARE * len(vs):
        return vs[0], vs[-1], False, False  # spread out, not isolated: show it all
    return (lo if clip_lo else vs[0]), (hi if clip_hi else vs[-1]), clip_lo, clip_hi
