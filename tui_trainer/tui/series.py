"""Provides bounded, decimating accumulators for curves and per-layer histories.

Plain Python (no Textual): what the follower keeps in memory while it tails a run. Every
structure here has a fixed upper size whatever the run's length. A curve keeps at most
``capacity`` buckets of steps and doubles the bucket width when full; each bucket keeps its
minimum and maximum, so a spike is never averaged away.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Column",
    "CurveData",
    "HeatData",
    "LayerHistory",
    "MinMaxSeries",
    "decimate",
    "ema",
    "transform",
]

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
        c = int((x - lo_x) * scale) if span > 0 else 0
        if c < 0 or c >= columns:
            continue
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
        self.last_step = -1
        self.nonfinite = 0

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, step: int, value: float | None) -> None:
        self.last, self.last_step = value, step
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
                self.starts, self.lows, self.highs, self.sums, self.counts
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
        return CurveData(
            tuple(self.starts),
            tuple(self.lows),
            tuple(self.highs),
            tuple(s / n for s, n in zip(self.sums, self.counts)),
            self.last,
            self.nonfinite,
        )


@dataclass(frozen=True)
class HeatData:
    """One statistic over time: bucket start steps and, per layer, the bucket means."""

    stat: str
    log: bool
    steps: tuple[int, ...]
    rows: tuple[tuple[float | None, ...], ...]  # rows[layer][bucket], transformed


class LayerHistory:
    """Per-layer statistics over time, bucketed like MinMaxSeries (bounded memory).

    For each tracked statistic and layer it keeps the mean of the transformed value (log10
    for norms and ratios) per bucket of steps, plus the latest raw row of every layer and a
    short ring buffer of recent raw values for sparklines.
    """

    def __init__(
        self,
        stats: Sequence[str],
        columns: Sequence[str],
        log_stats: frozenset[str],
        capacity: int = 256,
        spark_len: int = 24,
    ) -> None:
        self.stats = tuple(stats)
        self.log = tuple(s in log_stats for s in self.stats)
        self.col = tuple(columns.index(s) for s in self.stats)
        self.capacity = max(2, capacity)
        self.spark_len = spark_len
        self.width = 1
        self.layers = 0
        self.starts: list[int] = []
        self.sums: list[array[float]] = []  # per bucket: [stat * layers + layer]
        self.counts: list[array[float]] = []
        self.latest: dict[int, tuple[float | None, ...]] = {}
        self.latest_step = -1
        self.sparks: dict[int, deque[tuple[float | None, ...]]] = {}

    def _grow(self, layers: int) -> None:
        old, k = self.layers, len(self.stats)
        for arrs in (self.sums, self.counts):
            for b, a in enumerate(arrs):
                new = array("d", bytes(8 * k * layers))
                for s in range(k):
                    new[s * layers : s * layers + old] = a[s * old : (s + 1) * old]
                arrs[b] = new
        self.layers = layers

    def add(self, step: int, layer: int, values: Sequence[float | None]) -> None:
        """One layer's row of statistics (in ``columns`` order) at ``step``."""
        if layer >= self.layers:
            self._grow(layer + 1)
        if step >= self.latest_step:
            self.latest_step = step
            self.latest[layer] = tuple(values)
            spark = self.sparks.get(layer)
            if spark is None:
                spark = self.sparks[layer] = deque(maxlen=self.spark_len)
            spark.append(tuple(values))
        start = step - step % self.width
        starts = self.starts
        if starts and start == starts[-1]:
            b = len(starts) - 1
        elif not starts or start > starts[-1]:
            b = len(starts)
            self._new_bucket(b, start)
        else:
            b = bisect_left(starts, start)
            if b == len(starts) or starts[b] != start:
                self._new_bucket(b, start)
        sums, counts, n = self.sums[b], self.counts[b], self.layers
        for s, (ci, lg) in enumerate(zip(self.col, self.log)):
            v = transform(values[ci], lg)
            if v is not None:
                sums[s * n + layer] += v
                counts[s * n + layer] += 1
        if len(starts) > self.capacity:
            self._compact()

    def _new_bucket(self, b: int, start: int) -> None:
        size = len(self.stats) * self.layers
        self.starts.insert(b, start)
        self.sums.insert(b, array("d", bytes(8 * size)))
        self.counts.insert(b, array("d", bytes(8 * size)))

    def _compact(self) -> None:
        while len(self.starts) > self.capacity // 2:
            self.width *= 2
            w = self.width
            starts: list[int] = []
            sums: list[array[float]] = []
            counts: list[array[float]] = []
            for s, sm, ct in zip(self.starts, self.sums, self.counts):
                s -= s % w
                if starts and starts[-1] == s:
                    a, c = sums[-1], counts[-1]
                    for i in range(len(a)):
                        a[i] += sm[i]
                        c[i] += ct[i]
                else:
                    starts.append(s)
                    sums.append(array("d", sm))
                    counts.append(array("d", ct))
            self.starts, self.sums, self.counts = starts, sums, counts

    def heat(self, stat: str) -> HeatData | None:
        if stat not in self.stats:
            return None
        s = self.stats.index(stat)
        n = self.layers
        rows = []
        for layer in range(n):
            i = s * n + layer
            rows.append(
                tuple(
                    sm[i] / ct[i] if ct[i] else None
                    for sm, ct in zip(self.sums, self.counts)
                )
            )
        return HeatData(stat, self.log[s], tuple(self.starts), tuple(rows))

    def spark(self, column: int) -> tuple[tuple[float | None, ...], ...]:
        """Recent raw values of one statistic (index into ``columns``) per layer."""
        return tuple(
            tuple(row[column] for row in self.sparks.get(layer, ()))
            for layer in range(self.layers)
        )

    def latest_rows(self) -> tuple[tuple[float | None, ...] | None, ...]:
        return tuple(self.latest.get(layer) for layer in range(self.layers))
