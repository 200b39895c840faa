"""Provides curve decimation: a pure function for drawing and a bounded accumulator.

Plain Python (no Textual): what the follower keeps in memory while it tails a run. A curve
keeps at most ``capacity`` buckets of steps and doubles the bucket width when full; each
bucket keeps its minimum and maximum, so a spike is never averaged away, and memory does
not grow with the run's length.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LOG_FLOOR", "Column", "CurveData", "MinMaxSeries", "decimate", "ema", "transform"]

LOG_FLOOR = -12.0  # log10 of an exact zero (a dead layer's gradient) is drawn as 1e-12


@dataclass(frozen=True)
class Column:
    """One column of a decimated curve."""

    low: float
    high: float
    mean: float


def decimate(
    xs: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    columns: int,
    means: Sequence[float] | None = None,
    x_min: float | None = None,
    x_max: float | None = None,
) -> list[Column | None]:
    """Points (x, low, high[, mean]) into ``columns`` equal-width columns of x.

    Each column keeps the lowest low and the highest high of its points (so one spike in a
    million points survives) and the average of their means; a column with no point is None.
    Raw points are passed as ``lows = highs = values``. ``xs`` must be sorted.
    """
    out: list[Column | None] = [None] * max(columns, 0)
    if not xs or columns <= 0:
        return out
    lo_x = xs[0] if x_min is None else x_min
    hi_x = xs[-1] if x_max is None else x_max
    span = hi_x - lo_x
    scale = (columns - 1) / span if span > 0 else 0.0
    mid = means if means is not None else None
    cur = -1
    c_lo = c_hi = c_sum = 0.0
    c_n = 0
    for i, x in enumerate(xs):
        if x < lo_x or x > hi_x:
            continue
        c = int((x - lo_x) * scale)
        lo, hi = lows[i], highs[i]
        m = mid[i] if mid is not None else (lo + hi) / 2
        if c != cur:
            if cur >= 0:
                out[cur] = Column(c_lo, c_hi, c_sum / c_n)
            cur, c_lo, c_hi, c_sum, c_n = c, lo, hi, m, 1
            continue
        if lo < c_lo:
            c_lo = lo
        if hi > c_hi:
            c_hi = hi
        c_sum += m
        c_n += 1
    if cur >= 0:
        out[cur] = Column(c_lo, c_hi, c_sum / c_n)
    return out


def ema(values: Sequence[float | None], weight: float) -> list[float | None]:
    """TensorBoard-style exponential smoothing with bias correction; None stays None."""
    if weight <= 0:
        return list(values)
    out: list[float | None] = []
    acc, norm = 0.0, 0.0
    for v in values:
        if v is None:
            out.append(None)
            continue
        acc = acc * weight + (1 - weight) * v
        norm = norm * weight + (1 - weight)
        out.append(acc / norm)
    return out


def transform(value: float | None, log: bool) -> float | None:
    """The plotted value: log10|v| (exact zero at LOG_FLOOR) or v itself; None if unusable."""
    if value is None or not math.isfinite(value):
        return None
    if not log:
        return value
    v = abs(value)
    return math.log10(v) if v > 0 else LOG_FLOOR


@dataclass(frozen=True)
class CurveData:
    """An immutable copy of a curve: bucket start steps, minima, maxima and means."""

    steps: tuple[int, ...]
    lows: tuple[float, ...]
    highs: tuple[float, ...]
    means: tuple[float, ...]
    last: float | None
    nonfinite: int = 0
    end: int = 0  # the largest step recorded (the last bucket starts at or before it)


class MinMaxSeries:
    """A scalar series decimated on the fly into at most ``capacity`` buckets of steps."""

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = max(2, capacity)
        self.width = 1  # steps per bucket; doubles when the buckets overflow
        self.starts: list[int] = []
        self.lows: list[float] = []
        self.highs: list[float] = []
        self.sums: list[float] = []
        self.counts: list[int] = []
        self.last: float | None = None
        self.end = 0
        self.nonfinite = 0
        self._data: CurveData | None = None  # the last copy, until the next add

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, step: int, value: float | None) -> None:
        self._data = None
        self.last = value
        if step > self.end:
            self.end = step
        if value is None or not math.isfinite(value):
            self.nonfinite += 1
            return
        start = step - step % self.width
        starts = self.starts
        if starts and start == starts[-1]:
            i = len(starts) - 1
        elif not starts or start > starts[-1]:
            self._append(start, value)
            if len(starts) > self.capacity:
                self._compact()
            return
        else:  # out of order: a run resumed from an earlier checkpoint
            i = bisect_left(starts, start)
            if i == len(starts) or starts[i] != start:
                self._insert(i, start, value)
                if len(starts) > self.capacity:
                    self._compact()
                return
        if value < self.lows[i]:
            self.lows[i] = value
        if value > self.highs[i]:
            self.highs[i] = value
        self.sums[i] += value
        self.counts[i] += 1

    def seed(
        self,
        width: int,
        buckets: Sequence[tuple[int, float, float, float, int]],
        bad: int = 0,
        end: int = 0,
    ) -> None:
        """Start from buckets read in bulk (``RunReader.scalar_buckets``): (start, min, max,
        sum, count), sorted, starts multiples of ``width`` (a power of two), with the count
        of non-finite values and the last step; ``add`` then goes on as if it had seen
        every value."""
        self._data = None
        self.width = max(1, width)
        self.starts = [b[0] for b in buckets]
        self.lows = [b[1] for b in buckets]
        self.highs = [b[2] for b in buckets]
        self.sums = [b[3] for b in buckets]
        self.counts = [b[4] for b in buckets]
        self.nonfinite = bad
        self.end = max(self.end, end)
        if buckets:
            self.last = buckets[-1][3] / buckets[-1][4]
        if len(self.starts) > self.capacity:
            self._compact()

    def _append(self, start: int, value: float) -> None:
        self.starts.append(start)
        self.lows.append(value)
        self.highs.append(value)
        self.sums.append(value)
        self.counts.append(1)

    def _insert(self, i: int, start: int, value: float) -> None:
        self.starts.insert(i, start)
        self.lows.insert(i, value)
        self.highs.insert(i, value)
        self.sums.insert(i, value)
        self.counts.insert(i, 1)

    def _compact(self) -> None:
        """Double the bucket width and merge the buckets that now share a start."""
        while len(self.starts) > self.capacity // 2:
            self.width *= 2
            w = self.width
            starts: list[int] = []
            lows: list[float] = []
            highs: list[float] = []
            sums: list[float] = []
            counts: list[int] = []
            for s, lo, hi, sm, n in zip(
                self.starts, self.lows, self.highs, self.sums, self.counts, strict=False
            ):
                s -= s % w
                if starts and starts[-1] == s:
                    lows[-1] = min(lows[-1], lo)
                    highs[-1] = max(highs[-1], hi)
                    sums[-1] += sm
                    counts[-1] += n
                else:
                    starts.append(s)
                    lows.append(lo)
                    highs.append(hi)
                    sums.append(sm)
                    counts.append(n)
            self.starts, self.lows, self.highs = starts, lows, highs
            self.sums, self.counts = sums, counts

    def data(self) -> CurveData:
        if self._data is None:
            self._data = self._copy()
        return self._data

    def _copy(self) -> CurveData:
        return CurveData(
            tuple(self.starts),
            tuple(self.lows),
            tuple(self.highs),
            tuple(s / n for s, n in zip(self.sums, self.counts, strict=False)),
            self.last,
            self.nonfinite,
            self.end,
        )
