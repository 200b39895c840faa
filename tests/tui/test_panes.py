"""The dashboard's panes: console (o), overview (v), system (y) and a layer's view (enter)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from textual.geometry import Region
from textual.widgets import Static

from tui_trainer.store import STAT_COLUMNS, RunReader, RunStore, list_runs
from tui_trainer.tui.app import TrainerApp
from tui_trainer.tui.screens.help import HelpScreen
from tui_trainer.tui.widgets.activation_table import ActivationTable
from tui_trainer.tui.widgets.console_pane import ConsolePane
from tui_trainer.tui.widgets.console_view import ConsoleView
from tui_trainer.tui.widgets.curve_chart import CurveChart
from tui_trainer.tui.widgets.heatmap import GradientHeatmap
from tui_trainer.tui.widgets.layer_pane import LayerPane
from tui_trainer.tui.widgets.overview_pane import OverviewPane
from tui_trainer.tui.widgets.run_tabs import RunTabs
from tui_trainer.tui.widgets.system_pane import SystemPane, _label, _one_gpu, system_groups

from .conftest import LAYERS, dashboard_ready, stat_row, wait_for, write_run


def _text(widget) -> str:
    width, height = widget.size
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, width, height)))


def _pane_text(pane) -> str:
    """All of a scrolling pane's text, also what is below its bottom edge."""
    from rich.console import Console

    console = Console(width=pane.size.width - 2, record=True, file=open(os.devnull, "w"))
    for static in pane.query(Static):
        console.print(static.content)
    return console.export_text()


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    """A run trained by ``tui-trainer run`` in a subprocess (its output.log is the tee's)."""
    runs = tmp_path_factory.mktemp("real") / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "tui_trainer", "run", "xor-mlp", "--set", "train.max_steps=40",
         "--runs-dir", str(runs)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (info,) = list_runs(runs)
    return runs / info.run_id


async def test_console_shows_the_log_of_a_real_run(real_run, fake_diagnose):
    log_lines = (real_run / "output.log").read_text().splitlines()
    assert any("finished after 40 steps" in line for line in log_lines)
    app = TrainerApp(runs_dir=str(real_run.parent), attach=real_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        await pilot.press("o")
        pane = app.screen.query_one(ConsolePane)
        view = pane.query_one(ConsoleView)
        await wait_for(pilot, lambda: view.lines == log_lines, timeout=30)
        assert pane.display and not app.screen.query_one("#curves").display
        assert "finished after 40 steps" in _text(view)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.zoom == "", timeout=30)


async def test_console_follows_appended_lines_and_finds_text(recorded_run, fake_diagnose):
    log = recorded_run / "output.log"
    log.write_text("".join(f"line {i}\n" for i in range(200)))
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        await pilot.press("o")
        view = app.screen.query_one(ConsoleView)
        await wait_for(pilot, lambda: len(view.lines) == 200, timeout=30)
        with log.open("a") as f:
            f.write("Traceback (most recent call last):\nValueError: boom\n")
        await wait_for(pilot, lambda: view.lines[-1] == "ValueError: boom", timeout=30)
        await pilot.pause(0.1)
        assert "ValueError: boom" in _text(view)  # it follows the end
        await pilot.press("slash", *"line 1", "enter")
        # line 1, 10-19, 100-199: 111 matching lines; the first from the view's top
        assert len(view.matches) == 111
        first = view.current_line
        await pilot.press("n")
        assert view.current_line == view.matches[(view.matches.index(first) + 1) % 111]
        await pilot.press("N", "N")
        assert view.current_line == view.matches[(view.matches.index(first) - 1) % 111]
        assert f"line {view.current_line}" in _text(view)
        head = _text(app.screen.query_one("#console-head"))
        assert "find 'line 1'" in head


async def test_overview_shows_config_provenance_and_commands(real_run, fake_diagnose):
    app = TrainerApp(runs_dir=str(real_run.parent), attach=real_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        await pilot.press("v")
        pane = app.screen.query_one(OverviewPane)
        await wait_for(pilot, lambda: pane.overview is not None, timeout=30)
        await pilot.pause(0.1)
        text = _pane_text(pane)
        meta = pane.overview.meta
        assert meta["versions"]["torch"] and meta["versions"]["python"]  # provenance recorded
        assert f"torch {meta['versions']['torch']}" in text
        assert "max_steps = 40" in text  # the resolved config.toml
        assert "xor-mlp/hidden-4" in text and "A multi-layer perceptron learns XOR" in text
        assert "tui-trainer run xor-mlp --variant hidden-4 --set train.max_steps=40" in text
        assert "last.pt" in text  # the checkpoint the finished run saved
        assert "running" in text and "finished" in text  # the status history


async def test_system_pane_draws_the_sys_scalars_a_real_run_recorded(real_run, fake_diagnose):
    with RunReader(real_run) as reader:
        rss = reader.series("sys/rss_mb")
        assert rss and all(v > 0 for _, v in rss)  # the training process recorded them
        assert reader.series("sys/cpu_percent")
    app = TrainerApp(runs_dir=str(real_run.parent), attach=real_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        await pilot.press("y")
        pane = app.screen.query_one(SystemPane)
        await wait_for(pilot, lambda: len(pane.charts) == 2, timeout=30)
        titles = [c.title for c in pane.charts]
        assert titles == ["CPU % of one core (training process)",
                          "resident memory MB (training process)"]  # fmt: skip
        (series,) = pane.charts[1].series
        assert series.data.last == rss[-1][1]
        assert "rss_mb" in _text(pane.query_one("#system-head"))


def test_system_groups_put_each_kind_of_figure_in_one_chart():
    names = ["sys/gpu1/util_pct", "sys/gpu0/util_pct", "sys/cuda_mem_peak_mb",
             "sys/cuda_mem_alloc_mb", "sys/rss_mb", "sys/disk_mb", "train/loss"]  # fmt: skip
    assert system_groups(names) == [
        ("resident memory MB (training process)", ["sys/rss_mb"]),
        ("GPU utilisation %", ["sys/gpu0/util_pct", "sys/gpu1/util_pct"]),
        ("CUDA memory MB (torch's allocator)", ["sys/cuda_mem_alloc_mb", "sys/cuda_mem_peak_mb"]),
        ("sys/disk_mb", ["sys/disk_mb"]),
    ]


def test_a_gpus_nvml_figures_get_charts_and_legends_that_tell_them_apart():
    fields = ("util_pct", "mem_used_mb", "mem_total_mb", "temp_c", "power_w", "sm_clock_mhz",
              "mem_clock_mhz")  # fmt: skip
    one = [f"sys/gpu0/{f}" for f in fields]
    groups = system_groups(one)
    assert [t for t, _ in groups] == ["GPU utilisation %", "GPU memory MB (used, total)",
                                      "GPU temperature °C", "GPU power W",
                                      "GPU clocks MHz, SM and memory"]  # fmt: skip
    memory, clocks = groups[1][1], groups[4][1]
    assert [_label(n, _one_gpu(memory)) for n in memory] == ["total", "used"]
    assert [_label(n, _one_gpu(clocks)) for n in clocks] == ["mem", "sm"]
    two = sorted(memory + ["sys/gpu1/mem_used_mb", "sys/gpu1/mem_total_mb"])
    assert [_label(n, _one_gpu(two)) for n in two] == ["gpu0 total", "gpu0 used",
                                                       "gpu1 total", "gpu1 used"]  # fmt: skip
    assert _label("sys/gpu3/temp_c") == "gpu3" and _label("sys/cuda_mem_peak_mb") == "peak"


def _add_histograms(run_dir: Path) -> None:
    """Histogram events as the probe records them (histogram_every), at steps 100..300."""
    store = RunStore(run_dir)
    for step in (100, 200, 300):
        layers = [
            {"layer": name, "grad": [0, step // 100, 5, 1], "act": [1, 2, 3, step // 100],
             "act_range": [0.0, step / 300]}
            for name, *_ in LAYERS
        ]  # fmt: skip
        store.event(
            step, "histogram", {"bins": 4, "grad_log10_range": [-10.0, 2.0], "layers": layers}
        )
    store.close()


async def test_layer_view_shows_what_the_store_holds(recorded_run, fake_diagnose):
    _add_histograms(recorded_run)
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        await pilot.press("j", "j", "enter")
        screen = app.screen
        pane = screen.query_one(LayerPane)
        await wait_for(pilot, lambda: pane.data is not None and pane.data.layer == 2, timeout=30)
        assert screen.zoom == "layer" and pane.display
        steps = list(range(10, 301, 10))
        for stat in ("grad_norm", "out_grad_norm", "update_ratio", "act_std", "sat_frac"):
            (series,) = pane.query_one(f"#layer-{stat}", CurveChart).series
            want = [stat_row(s, 2, len(LAYERS))[STAT_COLUMNS.index(stat)] for s in steps]
            assert list(series.data.steps) == steps
            assert list(series.data.means) == pytest.approx(want, rel=1e-12)
            assert series.data.last == want[-1]
        assert pane.query_one("#layer-dead_frac", CurveChart).series == ()  # NULL: not drawn
        strips = pane.data.strips
        assert [s.steps for s in strips] == [(100, 200, 300)] * 2
        assert strips[0].counts[2] == (0.0, 3.0, 5.0, 1.0) and strips[0].log
        assert (strips[1].lo, strips[1].hi) == (0.0, 1.0)  # re-binned onto all samples' range
        assert sum(strips[1].counts[0]) == 1 + 2 + 3 + 1
        head = _text(pane.query_one("#layer-head"))
        assert "2 blocks.2" in head and "1,056 params" in head and "step 300" in head
        await pilot.press("k")  # another layer from inside the view
        await wait_for(pilot, lambda: pane.data is not None and pane.data.layer == 1, timeout=30)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.zoom == "", timeout=30)


async def test_clicks_on_a_heatmap_row_and_a_run_tab(tmp_path, fake_diagnose):
    runs = tmp_path / "runs"
    dirs = [
        write_run(runs, variant="sigmoid", run_id="a"),
        write_run(runs, variant="relu", run_id="b"),
    ]
    app = TrainerApp(runs_dir=str(runs))
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_dashboard(dirs)
        await dashboard_ready(pilot, runs=2)
        screen = app.screen
        tabs = screen.query_one(RunTabs)
        start, _ = tabs.spans[1]
        await pilot.click(RunTabs, offset=(start + 2, 0))  # the second run's tab
        await wait_for(pilot, lambda: screen.selected == 1, timeout=30)
        heat = screen.query_one(GradientHeatmap)
        groups = heat._groups
        row = next(i for i, g in enumerate(groups) if g[0] == 4 and g[2])
        await pilot.click(GradientHeatmap, offset=(3, row + 1))  # +1: the step axis line
        await wait_for(
            pilot, lambda: screen.zoom == "layer" and screen.selected_layer == 4, timeout=30
        )
        pane = screen.query_one(LayerPane)
        await wait_for(pilot, lambda: pane.data is not None and pane.data.layer == 4, timeout=30)
        assert pane.shown == (dirs[1], 4)


async def test_a_double_click_on_a_panel_zooms_it(recorded_run, fake_diagnose):
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        screen = app.screen
        await pilot.double_click(GradientHeatmap, offset=(30, 3))
        await wait_for(pilot, lambda: screen.zoom == "gradients")
        await pilot.double_click(GradientHeatmap, offset=(30, 3))
        await wait_for(pilot, lambda: screen.zoom == "")
        await pilot.double_click("#findings", offset=(5, 2))
        await wait_for(pilot, lambda: screen.zoom == "findings")
        await pilot.click("#findings", offset=(5, 2))  # a single click does not
        assert screen.zoom == "findings"


async def test_every_pane_is_reachable_at_80x24_and_listed_in_help(recorded_run, fake_diagnose):
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(80, 24)) as pilot:
        await dashboard_ready(pilot)
        screen = app.screen
        for key, pane in (("o", "console"), ("v", "overview"), ("y", "system"), ("enter", "layer")):
            await pilot.press(key)
            await wait_for(pilot, lambda pane=pane: screen.zoom == pane, timeout=30)
            widget = screen.query_one(f"#{pane}")
            assert widget.display and widget.region.height >= 15 and widget.region.width == 80
            await pilot.press("escape")
            await wait_for(pilot, lambda: screen.zoom == "", timeout=30)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), timeout=30)
        table = app.screen.query(Static)[1].content
        keys = {str(row) for row in table.columns[0]._cells}
        descriptions = {str(row) for row in table.columns[1]._cells}
        assert {"o", "v", "y", "j", "k", "enter", "/", "n", "N"} <= keys
        assert {"console", "overview", "system", "layer view", "find in log"} <= descriptions


async def test_a_click_on_an_activation_row_opens_that_layer(recorded_run, fake_diagnose):
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        screen = app.screen
        await pilot.click(ActivationTable, offset=(2, 4))  # row 0 is the header: layer 3
        await wait_for(
            pilot, lambda: screen.zoom == "layer" and screen.selected_layer == 3, timeout=30
        )
        pane = screen.query_one(LayerPane)
        await wait_for(
            pilot, lambda: pane.data is not None and pane.data.name == "blocks.3", timeout=30
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.zoom == "", timeout=30)
        table = screen.query_one(ActivationTable)
        assert table.selected == 3  # the selection stays, lit in the table and the heatmap
        assert screen.query_one(GradientHeatmap).selected == 3


async def test_console_of_a_run_without_a_log_says_so(recorded_run, fake_diagnose):
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        await pilot.press("o")
        pane = app.screen.query_one(ConsolePane)
        await wait_for(pilot, lambda: pane.missing, timeout=30)
        await pilot.pause(0.1)
        assert "(none: nothing printed yet)" in _text(pane.query_one("#console-head"))
        (recorded_run / "output.log").write_text("late line\n")  # it appears when written
        await wait_for(pilot, lambda: pane.view.lines == ["late line"], timeout=30)
        assert not pane.missing
