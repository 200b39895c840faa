"""Provides LayerHistory: per-layer statistics over time in a bounded number of buckets.

Plain Python (no Textual). The heatmap's data: for each tracked statistic and layer, the
mean of the transformed value (log10 for norms and ratios) per bucket of steps, buckets
doubling in width when full like MinMaxSeries; plus the latest row of every layer and a
short ring buffer of recent rows for sparklines.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tui_trainer.tui.series import LOG_FLOOR

__all__ = ["HeatData", "LayerHistory"]


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
        self.add_rows([(step, layer, *values)])

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows as ``RunReader.tail`` gives them: (step, layer, *statistics).

        The hot loop of following a run (50 layers x 200 samples/s at 2,000 steps/s):
        everything it touches is a local, and a row's bucket is looked up once per step.
        """
        log10, floor, inf = math.log10, LOG_FLOOR, math.inf
        plan = [(s, ci + 2, lg) for s, (ci, lg) in enumerate(zip(self.col, self.log, strict=True))]
        latest, sparks, spark_len = self.latest, self.sparks, self.spark_len
        cur_start: int | None = None
        sums = counts = array("d")
        n = self.layers
        for row in rows:
            step, layer = row[0], row[1]
            if layer >= self.layers:
                self._grow(layer + 1)
                n, cur_start = self.layers, None
            if step >= self.latest_step:
                self.latest_step = step
                values = tuple(row[2:])
                latest[layer] = values
                spark = sparks.get(layer)
                if spark is None:
                    spark = sparks[layer] = deque(maxlen=spark_len)
                spark.append(values)
            start = step - step % self.width
            if start != cur_start:
                b = self._bucket(start)
                sums, counts, cur_start = self.sums[b], self.counts[b], start
            for s, ci, lg in plan:
                v = row[ci]
                if v is None or not -inf < v < inf:  # NaN fails both comparisons
                    continue
                if lg:
                    v = log10(v) if v > 0 else (log10(-v) if v < 0 else floor)
                i = s * n + layer
                sums[i] += v
                counts[i] += 1
            if len(self.starts) > self.capacity:
                self._compact()
                cur_start = None

    def seed(self, width: int, layers: int, rows: Iterable[Sequence[Any]]) -> None:
        """Start from per-bucket sums read in bulk (``RunReader.layer_stat_buckets`` over
        this history's statistics, transformed as it transforms them): rows (start, layer,
        sum_0, count_0, sum_1, count_1, ...); ``add_rows`` then goes on from there."""
        self.width = max(1, width)
        if layers > self.layers:
            self._grow(layers)
        n, k = self.layers, len(self.stats)
        for row in rows:
            b = self._bucket(int(row[0]))
            layer, sums, counts = int(row[1]), self.sums[b], self.counts[b]
            for s in range(k):
                total, count = row[2 + 2 * s], row[3 + 2 * s]
                if count:
                    sums[s * n + layer] += total
                    counts[s * n + layer] += count
        if len(self.starts) > self.capacity:
            self._compact()

    def _bucket(self, start: int) -> int:
        starts = self.starts
        if starts and start == starts[-1]:
            return len(starts) - 1
        if not starts or start > starts[-1]:
            self._new_bucket(len(starts), start)
            return len(starts) - 1
        b = bisect_left(starts, start)
        if b == len(starts) or starts[b] != start:
            self._new_bucket(b, start)
        return b

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
            for s, sm, ct in zip(self.starts, self.sums, self.counts, strict=False):
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
                    for sm, ct in zip(self.sums, self.counts, strict=False)
                )
            )
        return HeatData(stat, self.log[s], tuple(self.starts), tuple(rows))

    def spark(self, column: int) -> tuple[tuple[float | None, ...], ...]:
        """Recent raw values of one statistic (index into ``columns``) per layer."""
        return tuple(
            tuple(row[column] for row in self.sparks.get(layer, ())) for layer in range(self.layers)
        )

    def latest_rows(self) -> tuple[tuple[float | None, ...] | None, ...]:
        return tuple(self.latest.get(layer) for layer in range(self.layers))
