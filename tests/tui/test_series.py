"""Decimation keeps every spike; the accumulators stay bounded whatever the run length."""

from __future__ import annotations

import random

from tui_trainer.store import STAT_COLUMNS
from tui_trainer.tui.follow import HEAT_STATS, LOG_STATS
from tui_trainer.tui.history import LayerHistory
from tui_trainer.tui.series import MinMaxSeries, decimate, ema, transform


def test_decimate_keeps_a_single_spike_in_a_million_points():
    rng = random.Random(0)
    n = 1_000_000
    xs = list(range(n))
    values = [rng.random() for _ in xs]
    values[654_321] = 1e6
    values[123_457] = -1e6
    cols = decimate(xs, values, values, 200)
    assert len(cols) == 200
    assert max(c.high for c in cols if c) == 1e6
    assert min(c.low for c in cols if c) == -1e6
    assert all(c is not None for c in cols)  # dense data fills every column


def test_decimate_leaves_gaps_and_clips_to_the_range():
    cols = decimate([0, 10], [1.0, 2.0], [1.0, 2.0], 11)
    assert cols[0] is not None and cols[10] is not None
    assert all(c is None for c in cols[1:10])
    assert decimate([], [], [], 5) == [None] * 5
    one = decimate([5], [3.0], [4.0], 3)
    assert one[0] is not None and one[0].low == 3.0 and one[0].high == 4.0
    clipped = decimate([0, 5, 10], [1.0, 9.0, 1.0], [1.0, 9.0, 1.0], 4, x_min=6, x_max=10)
    assert max(c.high for c in clipped if c) == 1.0


def test_min_max_series_is_bounded_and_keeps_the_spike():
    series = MinMaxSeries(capacity=256)
    for step in range(1_000_000):
        series.add(step, 100.0 if step == 777_777 else 1.0 + (step % 7) * 0.01)
    assert len(series) <= 256
    data = series.data()
    assert max(data.highs) == 100.0
    assert min(data.lows) == 1.0
    assert data.steps[0] == 0 and data.steps == tuple(sorted(data.steps))
    assert series.width >= 1_000_000 // 256


def test_min_max_series_counts_non_finite_and_accepts_a_rewind():
    series = MinMaxSeries(capacity=8)
    for step in range(20):
        series.add(step, float(step))
    series.add(5, float("nan"))
    series.add(3, -50.0)  # a resumed run re-records steps after its checkpoint
    data = series.data()
    assert data.nonfinite == 1
    assert min(data.lows) == -50.0
    assert len(series) <= 8


def test_layer_history_is_bounded_and_averages_log_values():
    hist = LayerHistory(HEAT_STATS, STAT_COLUMNS, LOG_STATS, capacity=64, spark_len=5)
    g = STAT_COLUMNS.index("grad_norm")
    for step in range(0, 100_000, 10):
        for layer in range(3):
            row: list[float | None] = [None] * len(STAT_COLUMNS)
            row[g] = 10.0 ** (-layer)
            hist.add(step, layer, row)
    assert len(hist.starts) <= 64
    heat = hist.heat("grad_norm")
    assert heat is not None and heat.log
    assert len(heat.rows) == 3
    for layer, row in enumerate(heat.rows):  # layer i's gradient is 10**-i: its log is -i
        assert all(abs(v + layer) < 1e-9 for v in row if v is not None)
    assert hist.latest_step == 99_990
    assert all(len(s) == 5 for s in hist.spark(g))
    assert hist.heat("no-such-stat") is None


def test_layer_history_grows_when_a_deeper_layer_appears():
    hist = LayerHistory(HEAT_STATS, STAT_COLUMNS, LOG_STATS)
    row = [1.0] * len(STAT_COLUMNS)
    hist.add(0, 0, row)
    hist.add(0, 4, row)
    heat = hist.heat("grad_norm")
    assert heat is not None and len(heat.rows) == 5
    assert heat.rows[0] == (0.0,) and heat.rows[2] == (None,)


def test_ema_and_transform():
    assert ema([1.0, None, 1.0], 0.9) == [1.0, None, 1.0]
    assert ema([0.0, 10.0], 0.0) == [0.0, 10.0]
    smoothed = ema([0.0, 10.0], 0.5)
    assert smoothed[1] is not None and 0 < smoothed[1] < 10
    assert transform(100.0, True) == 2.0
    assert transform(0.0, True) == -12.0
    assert transform(float("inf"), True) is None
    assert transform(None, False) is None
    assert transform(-3.0, False) == -3.0
