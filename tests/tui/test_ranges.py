"""The y range of a chart: log chosen for decades, outliers clipped, nothing hidden."""

from __future__ import annotations

import math

from tui_trainer.tui.plot import ChartSeries, ChartView, render_chart, resolve_log
from tui_trainer.tui.ranges import quantile, wants_log, y_range
from tui_trainer.tui.series import MinMaxSeries


def test_one_spike_is_clipped_and_the_rest_sets_the_range():
    values = [1.0 + 0.01 * math.sin(i) for i in range(200)]
    values[100] = 50.0
    r = y_range(values)
    assert r is not None and r.clipped_hi and not r.clipped_lo
    assert 1.0 < r.hi < 1.1 and 0.9 < r.lo < 1.0
    full = y_range(values, robust=False)
    assert full is not None and full.hi >= 50.0 and not full.clipped


def test_a_decaying_explosion_wants_log_and_keeps_its_decades():
    values = [1e11 * math.exp(-i / 8.0) + 2.0 for i in range(300)]
    assert wants_log(values)
    logs = [math.log10(v) for v in values]
    r = y_range(logs, robust=False, floor_zero=False)
    assert r is not None and r.lo < math.log10(2.0) and r.hi > 11.0


def test_a_spread_out_curve_keeps_its_full_extent():
    values = [2.3 * math.exp(-i / 90.0) + 0.08 for i in range(300)]
    assert not wants_log(values)
    r = y_range(values)
    assert r is not None and not r.clipped
    assert 0.0 <= r.lo < min(values) and r.hi > max(values)  # padded, never below zero


def test_a_flat_curve_and_all_equal_values_get_a_visible_band():
    r = y_range([3.0] * 50)
    assert r is not None and r.lo < 3.0 < r.hi and not r.clipped
    r = y_range([0.0] * 20)
    assert r is not None and r.lo == -1.0 and r.hi == 1.0
    assert not wants_log([5.0] * 10)


def test_negative_values_are_neither_logged_nor_floored():
    values = [-5.0 + 0.1 * i for i in range(100)]
    values[10] = -500.0
    assert not wants_log(values)
    r = y_range(values)
    assert r is not None and r.clipped_lo and r.lo > -10.0 and r.hi > 4.9
    assert not wants_log([-1e-3, -1e5])


def test_nan_and_inf_are_left_out():
    values = [1.0, float("nan"), 2.0, float("inf"), None, 1.5, float("-inf")]
    r = y_range(values)
    assert r is not None and 0.9 < r.lo < 1.0 and 2.0 < r.hi < 2.1
    assert y_range([float("nan"), None]) is None
    assert wants_log([1e-3, float("nan"), 10.0, float("inf")])


def test_quantile_interpolates():
    assert quantile([0.0, 10.0], 0.5) == 5.0 and quantile([1.0], 0.98) == 1.0


def _data(values):
    s = MinMaxSeries()
    for i, v in enumerate(values):
        s.add(i, v)
    return s.data()


def test_the_chart_marks_a_clipped_spike_and_full_range_shows_it():
    values = [1.0 + 0.001 * i for i in range(1000)]
    values[500] = 50.0
    series = [ChartSeries("train", _data(values), "blue")]
    lines = render_chart(series, 60, 12)
    assert "▲" in lines[0].plain and float(lines[0].plain[:7]) < 3
    full = render_chart(series, 60, 12, view=ChartView(full=True))
    assert "▲" not in "".join(t.plain for t in full) and float(full[0].plain[:7]) >= 50


def test_the_chart_chooses_log_for_decades():
    series = [ChartSeries("loss", _data([1e11 * 10 ** (-i / 30) + 2 for i in range(400)]), "red")]
    auto = render_chart(series, 60, 12, view=ChartView(log=None))
    assert float(auto[0].plain[:7]) > 1e10  # the top label: the start, on a log axis
    assert 0.5 < float(auto[-2].plain[:7]) < 2  # the bottom label: where it ends (2)
    linear = render_chart(series, 60, 12, view=ChartView(log=False))
    assert float(linear[-2].plain[:7]) == 0


def test_the_scale_is_chosen_from_the_steps_shown():
    data = _data([1e6 * 10 ** (-i / 100) + 1 for i in range(600)])  # 1e6 down to ~1
    series = [ChartSeries("loss", data, "red")]
    assert resolve_log(series, ChartView(log=None))
    assert not resolve_log(series, ChartView(log=None, x_range=(400, 599)))  # ~2..101
    assert not resolve_log(series, ChartView(log=None, full=True))
    assert resolve_log(series, ChartView(log=True, x_range=(400, 599)))
