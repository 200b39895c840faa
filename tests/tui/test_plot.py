"""The braille chart and the small formats."""

from __future__ import annotations

from tui_trainer.sysinfo import parse_nvidia_smi
from tui_trainer.tui.fmt import fmt_duration, fmt_num, fmt_steps, sparkline
from tui_trainer.tui.plot import ChartSeries, ChartView, render_chart
from tui_trainer.tui.series import MinMaxSeries


def _series(values, spike_at=None):
    s = MinMaxSeries()
    for i, v in enumerate(values):
        s.add(i, 50.0 if i == spike_at else v)
    return s.data()


def test_chart_has_the_requested_size_and_draws_the_spike_at_the_top():
    data = _series([1.0 + 0.001 * i for i in range(10_000)], spike_at=5_000)
    lines = render_chart([ChartSeries("train", data, "blue")], 60, 12)
    assert len(lines) == 12
    assert all(line.cell_len == 60 for line in lines)
    top = lines[0].plain[9:]
    assert "▲" in top, "the spike, clipped, is marked on the top row"
    assert float(lines[0].plain[:7]) < 13  # the robust range: the curve (1..11), not the spike
    full = render_chart([ChartSeries("train", data, "blue")], 60, 12, view=ChartView(full=True))
    assert full[0].plain[9:].strip() and "▲" not in full[0].plain
    assert 50 <= float(full[0].plain[:7]) < 53  # the full range: the maximum plus a margin
    assert lines[-1].plain.split() == ["0", "4999", "9999"]


def test_log_scale_labels_and_empty_and_small_charts():
    data = _series([10.0 ** (-i / 100) for i in range(400)])
    lines = render_chart([ChartSeries("loss", data, "red")], 40, 8, log=True, smoothing=0.9)
    assert lines[0].plain.strip().startswith("1")
    assert 5e-5 < float(lines[-2].plain[:7]) < 1.1e-4  # the smallest value (1e-4) less a margin
    assert not lines[0].style  # only the labels are dim, never the curve
    assert render_chart([], 40, 8)[0].plain == "waiting for data…"
    assert render_chart([ChartSeries("x", data, "red")], 8, 2)[0].plain == "(too small)"


def test_formats():
    assert fmt_num(None) == "-" and fmt_num(0.0) == "0"
    assert fmt_num(0.012345) == "0.0123" and fmt_num(1.5e-7) == "1.5e-7"
    assert fmt_num(float("inf")) == "inf" and fmt_num(float("nan")) == "nan"
    assert fmt_num(2270.0) == "2270" and fmt_num(123456.0) == "123456"
    assert [fmt_steps(n) for n in (999, 12_345, 2_000_000)] == ["999", "12.3k", "2.00M"]
    assert [fmt_duration(s) for s in (7, 3725, None)] == ["0:07", "1:02:05", "-"]
    assert sparkline([0.0, 1.0]) == "▁█" and sparkline([None]) == ""


def test_nvidia_smi_parsing():
    text = "0, NVIDIA H100 80GB HBM3, 87, 40123, 81559\n1, NVIDIA H100, [N/A], 1, 81559\nbad\n"
    gpus = parse_nvidia_smi(text)
    assert [g.index for g in gpus] == [0, 1]
    assert gpus[0].util_pct == 87 and gpus[0].mem_used_mb == 40123
    assert gpus[1].util_pct is None
    row = "2, NVIDIA H200, 99, 70000, 143771, 64, 612.34, 1980, 3201\n"  # today's query
    (gpu,) = parse_nvidia_smi(row)
    assert (gpu.index, gpu.util_pct, gpu.mem_total_mb) == (2, 99, 143771)
    assert (gpu.temp_c, gpu.power_w) == (64, 612.34)
    assert (gpu.sm_clock_mhz, gpu.mem_clock_mhz) == (1980, 3201)


def test_gpu_stats_prefer_nvml(monkeypatch):
    """With nvidia-ml-py installed, GPU figures come from NVML (a stand-in module here)."""
    import sys
    import types

    from tui_trainer import sysinfo

    fake = types.ModuleType("pynvml")
    fake.nvmlInit = lambda: None
    fake.nvmlDeviceGetCount = lambda: 2
    fake.nvmlDeviceGetHandleByIndex = lambda i: i
    fake.nvmlDeviceGetName = lambda h: b"H100" if h == 0 else "H200"
    fake.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=40 + h)
    fake.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(
        used=(h + 1) * 2**30, total=80 * 2**30
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    stats = sysinfo.gpu_stats()
    assert [(g.index, g.name, g.util_pct, g.mem_used_mb, g.mem_total_mb) for g in stats] == [
        (0, "H100", 40.0, 1024.0, 81920.0),
        (1, "H200", 41.0, 2048.0, 81920.0),
    ]

    def broken(*args: object) -> None:
        raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setattr(sysinfo.shutil, "which", lambda name: None)
    fake.nvmlDeviceGetCount = broken  # a driver gone after NVML started
    assert sysinfo.gpu_stats() == []  # NVML fails, no nvidia-smi: nothing, no exception
    no_driver = types.ModuleType("pynvml")
    no_driver.nvmlInit = broken
    monkeypatch.setitem(sys.modules, "pynvml", no_driver)
    assert sysinfo.gpu_stats() == []
