"""The app driven by keys (Pilot), fed by recorded stores: no training, no torch."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from textual.geometry import Region

from tui_trainer.runner import RunProcess
from tui_trainer.store import RunReader
from tui_trainer.tui.app import TrainerApp
from tui_trainer.tui.follow import RunFollower, RunSnapshot
from tui_trainer.tui.messages import ControlDone, RunProcessEnded, RunSnapshotReady
from tui_trainer.tui.screens.confirm import ConfirmScreen, QuitScreen
from tui_trainer.tui.screens.dashboard import DashboardScreen
from tui_trainer.tui.screens.edit import EditScreen
from tui_trainer.tui.screens.help import HelpScreen
from tui_trainer.tui.screens.picker import PickerScreen
from tui_trainer.tui.screens.runs import RunsScreen
from tui_trainer.tui.widgets.curve_chart import CurveChart
from tui_trainer.tui.widgets.findings_panel import FindingsPanel
from tui_trainer.tui.widgets.heatmap import GradientHeatmap
from tui_trainer.tui.widgets.status_line import StatusLine

from .conftest import dashboard_ready, wait_for, write_run


def _text(widget) -> str:
    """What the widget shows on screen, as plain text."""
    width, height = widget.size
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, width, height)))


async def test_dashboard_shows_a_recorded_run(recorded_run, fake_diagnose):
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        status = _text(screen.query_one(StatusLine))
        assert "finished" in status and "step 300/300" in status
        loss = screen.query_one("#loss", CurveChart)
        assert [s.label for s in loss.series] == ["train", "val"]
        assert max(loss.series[0].data.highs) == 9.0
        assert screen.query_one("#metric", CurveChart).title == "accuracy"
        heat = screen.query_one(GradientHeatmap)
        assert heat.heat is not None and len(heat.heat.rows) == 6
        assert "blocks.0" in _text(heat)
        findings = _text(screen.query_one(FindingsPanel))
        assert "vanishing_gradient" in findings and "residual" in findings


async def test_view_keys(recorded_run, fake_diagnose):
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        screen = app.screen
        loss = screen.query_one("#loss", CurveChart)
        await pilot.press("l")
        assert loss.log and "log" in str(loss.border_title)
        assert not screen.query_one("#metric", CurveChart).log  # accuracy stays linear
        await pilot.press("m", "m")
        assert loss.smoothing == 0.9
        await pilot.press("g")
        assert screen.heat_stat == "out_grad_norm"
        heat = screen.query_one(GradientHeatmap)
        await wait_for(pilot, lambda: heat.heat is not None and heat.heat.stat == "out_grad_norm")
        await pilot.press("2")
        await wait_for(pilot, lambda: screen.has_class("-zoom", "-zoom-gradients"))
        assert not screen.query_one("#curves").display
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.zoom == "")
        assert screen.query_one("#curves").display
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("escape")  # back to the picker
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))


async def test_controls_write_control_rows(live_run, fake_diagnose):
    seen: list = []
    app = TrainerApp(runs_dir=str(live_run.parent), attach=live_run)
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        await dashboard_ready(pilot)
        await pilot.press("space")
        await pilot.press("c")
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: sum(isinstance(m, ControlDone) for m in seen) == 3)
    with RunReader(live_run) as reader:
        assert [c for _, c, _ in reader.controls()] == ["pause", "checkpoint", "stop"]
    assert all(not m.error for m in seen if isinstance(m, ControlDone))


async def test_controls_are_refused_on_a_finished_run(recorded_run, fake_diagnose):
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        await pilot.press("space", "s", "c")
        await pilot.pause(0.2)
        assert app.screen is not None and isinstance(app.screen, DashboardScreen)
        assert any("nothing to control" in n.message for n in app._notifications)
    with RunReader(recorded_run) as reader:
        assert reader.controls() == []


async def test_a_group_overlays_runs_and_tab_switches(tmp_path, fake_diagnose):
    runs = tmp_path / "runs"
    a = write_run(runs, variant="sigmoid", run_id="a")
    b = write_run(runs, variant="relu", run_id="b", loss_scale=0.5)
    app = TrainerApp(runs_dir=str(runs))
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_dashboard([a, b])
        await dashboard_ready(pilot, runs=2)
        screen = app.screen
        loss = screen.query_one("#loss", CurveChart)
        assert len(loss.series) == 4
        assert list(loss.legend) == ["sigmoid", "relu", "val"]
        assert screen.current_dir == a
        await pilot.press("tab")
        assert screen.current_dir == b
        await pilot.press("shift+tab")
        assert screen.current_dir == a


async def test_a_crashed_run_shows_its_error_and_log(tmp_path, fake_diagnose):
    from tui_trainer.store import RunStore

    run = write_run(tmp_path / "runs", status="running", pid=os.getpid(), run_id="boom")
    store = RunStore(run)
    store.set_status(
        "crashed", 300, error="training process was killed by signal 9", log="epoch 3\nKilled"
    )
    store.close()
    app = TrainerApp(runs_dir=str(run.parent), attach=run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        text = " ".join(_text(app.screen.query_one(FindingsPanel)).split())
        assert "crashed: training process was killed by signal 9" in text
        assert "Killed" in text
        assert "crashed" in _text(app.screen.query_one(StatusLine))


async def test_findings_unavailable_without_diagnose(recorded_run, monkeypatch):
    from tui_trainer.tui import findings

    def missing(run_dir):
        return findings.run_diagnose(run_dir, module="tui_trainer.no_such_diagnose")

    monkeypatch.setattr("tui_trainer.tui.screens.dashboard.run_diagnose", missing)
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        assert "findings unavailable" in _text(app.screen.query_one(FindingsPanel))


async def test_runs_screen_opens_compares_and_deletes(tmp_path, fake_diagnose):
    runs = tmp_path / "runs"
    write_run(runs, variant="one", run_id="r1")
    write_run(runs, variant="two", run_id="r2")
    live = write_run(runs, variant="live", run_id="r3", status="running", pid=os.getpid())
    app = TrainerApp(runs_dir=str(runs))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await wait_for(pilot, lambda: len(screen.runs) == 3)
        await pilot.press("enter")
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("space", "space", "c")
        assert isinstance(app.screen, DashboardScreen) and len(app.screen.run_dirs) == 2
        await pilot.press("escape")
        table = screen.query_one("DataTable")
        table.move_cursor(row=table.get_row_index("r3"))
        await pilot.press("d")
        assert app.screen is screen  # a live run is not deleted
        assert live.is_dir()
        table.move_cursor(row=table.get_row_index("r1"))
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: not (runs / "r1").exists() and "r1" not in screen.runs)


async def test_picker_groups_presets_and_enter_trains_all_variants(presets, tmp_path, monkeypatch):
    started: list = []
    monkeypatch.setattr(TrainerApp, "launch_runs", lambda self, *a: started.append(a))
    app = TrainerApp(runs_dir=str(tmp_path / "runs"))
    async with app.run_test(size=(120, 40)) as pilot:
        picker = app.screen
        await wait_for(pilot, lambda: len(picker.entries) == 4)
        options = picker.query_one("#presets")
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert prompts[0] == "A prehistory"
        assert [p.split()[-1] if "×" not in p else p.split()[-2] for p in prompts[1:3]] == [
            "beta-gate",
            "alpha-mlp",
        ]
        assert "Why it failed then" in prompts and "Other presets" in prompts
        await pilot.press("down", "enter")  # the second preset: alpha-mlp, two variants
        await wait_for(pilot, lambda: started)
    assert started == [("alpha-mlp", ["wide", "narrow"], [])]


async def test_edit_screen_checks_overrides(presets, tmp_path, monkeypatch):
    started: list = []
    monkeypatch.setattr(TrainerApp, "launch_runs", lambda self, *a: started.append(a))
    app = TrainerApp(runs_dir=str(tmp_path / "runs"))
    async with app.run_test(size=(120, 40)) as pilot:
        picker = app.screen
        await wait_for(pilot, lambda: len(picker.entries) == 4)
        await pilot.press("down", "e")
        edit = app.screen
        assert isinstance(edit, EditScreen)
        await pilot.press(*"optim.lrr=1")
        assert "unknown key" in _text(edit.query_one("#check"))
        await pilot.press("enter")
        assert app.screen is edit  # refused
        await pilot.press(*["backspace"] * 11)
        missing = f'data.name="mnist" data.dir="{tmp_path / "nope"}"'  # checked before a child
        await pilot.press(*missing)
        check = " ".join(_text(edit.query_one("#check")).split())
        assert "✗ data.dir" in check and "does not exist" in check, check
        await pilot.press("enter")
        assert app.screen is edit and not started  # refused in place, nothing launched
        await pilot.press(*["backspace"] * len(missing), *"optim.lr=0.01 train.max_steps=20")
        assert "✓ 2 runs, 20 steps each" in _text(edit.query_one("#check"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: started)
    assert started == [("alpha-mlp", ["wide", "narrow"], ["optim.lr=0.01", "train.max_steps=20"])]


@pytest.fixture
def sleeper(live_run):
    """A stand-in training child: a live process attached to a live run directory."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield RunProcess(live_run, proc)
    proc.kill()
    proc.wait()


async def test_quit_can_leave_runs_training(sleeper):
    app = TrainerApp(runs_dir=str(sleeper.run_dir.parent))
    app.runs.adopt(sleeper)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, PickerScreen)
        await pilot.press("q", "l")
        await wait_for(pilot, lambda: not app.is_running)
    assert sleeper.process.poll() is None  # still training
    with RunReader(sleeper.run_dir) as reader:
        assert reader.controls() == []


async def test_quit_question_goes_away_when_the_runs_end(sleeper):
    app = TrainerApp(runs_dir=str(sleeper.run_dir.parent))
    app.runs.adopt(sleeper)
    async with app.run_test(size=(120, 40)) as pilot:
        app.supervise(sleeper)
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        sleeper.process.kill()
        await wait_for(pilot, lambda: not app.is_running)


async def test_a_child_that_ends_is_noticed_when_its_store_cannot_be_marked(sleeper, monkeypatch):
    """Marking the run crashed fails (a locked store): the app still learns it ended."""

    def locked(run_dir, code):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr("tui_trainer.runner.process.mark_if_crashed", locked)
    seen: list = []
    app = TrainerApp(runs_dir=str(sleeper.run_dir.parent))
    app.runs.adopt(sleeper)
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        app.supervise(sleeper)
        sleeper.process.kill()
        await wait_for(pilot, lambda: any(isinstance(m, RunProcessEnded) for m in seen))
        await pilot.pause()
        assert sleeper.run_dir not in app.runs.processes
        (ended,) = [m for m in seen if isinstance(m, RunProcessEnded)]
        assert ended.returncode == -9 and ended.error == "database is locked"
        assert any("database is locked" in str(n.message) for n in app._notifications)


async def test_quit_can_stop_runs(sleeper, monkeypatch):
    monkeypatch.setattr("tui_trainer.runner.supervisor.STOP_WAIT_S", 0.3)
    app = TrainerApp(runs_dir=str(sleeper.run_dir.parent))
    app.runs.adopt(sleeper)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("q", "s")
        await wait_for(pilot, lambda: not app.is_running)
    with RunReader(sleeper.run_dir) as reader:
        assert [c for _, c, _ in reader.controls()] == ["stop"]
    assert sleeper.process.wait(5) is not None  # it did not stop by itself: terminated


def test_importing_the_app_does_not_load_torch():
    code = "import sys, tui_trainer.tui.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_many_runs_each_get_a_follower_and_a_supervisor(tmp_path, fake_diagnose):
    """Workers are long-lived threads: eight children and eight runs must not starve."""
    runs = tmp_path / "runs"
    dirs = [write_run(runs, variant=f"v{i}", run_id=f"r{i}", events=False) for i in range(8)]
    sleepers = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in dirs
    ]
    app = TrainerApp(runs_dir=str(runs))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            for d, proc in zip(dirs, sleepers, strict=True):
                app.runs.adopt(RunProcess(d, proc))
                app.supervise(app.runs.processes[d])
            app.open_dashboard(dirs)
            await dashboard_ready(pilot, runs=8)
            assert len(app.screen.snaps) == 8
    finally:
        for proc in sleepers:
            proc.kill()
            proc.wait()


async def test_lecture_exhibits_are_shown(tmp_path, fake_diagnose):
    from tui_trainer.store import RunStore
    from tui_trainer.tui.widgets.exhibit_panel import ExhibitPanel

    run = write_run(tmp_path / "runs", run_id="exhibits")
    store = RunStore(run)
    store.event(
        0,
        "truth_table",
        {
            "unit": "threshold",
            "weights": [1.0, 1.0],
            "threshold": 2.0,
            "rule": ">=",
            "inputs": [[0, 0], [0, 1], [1, 0], [1, 1]],
            "target": [0, 0, 0, 1],
            "output": [0, 0, 0, 1],
            "correct": 4,
            "total": 4,
        },
    )
    filt = [[[0.1 * (r - c) for c in range(5)] for r in range(5)]]
    store.event(
        300,
        "features",
        {
            "layer": "h1",
            "hidden_layer": "h3",
            "filters": [filt] * 12,
            "filter_change": 0.33,
            "classes": ["0", "1"],
            "maps_by_class": [],
            "hidden_by_class": [[0.1, 0.9], [0.5, 0.2]],
        },
    )
    store.close()
    app = TrainerApp(runs_dir=str(run.parent), attach=run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        screen = app.screen
        assert screen.has_class("-exhibit")
        assert not screen.query_one("#activations").display
        await pilot.press("5")
        await pilot.pause(0.1)
        text = " ".join(_text(screen.query_one(ExhibitPanel)).split())
        assert "w = [1, 1], fires when w·x >= 2" in text and "4/4 correct" in text
        assert "12 first-layer filters (h1) at step 300; moved 33%" in text
        assert "▀▀▀▀▀ ▀▀▀▀▀" in text  # filters side by side when the panel is wide
        await pilot.press("3")
        assert screen.query_one("#activations").display


async def test_typing_filters_the_picker(tmp_path):
    from textual.widgets import Input, OptionList

    app = TrainerApp(runs_dir=str(tmp_path / "runs"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, PickerScreen)
        await wait_for(pilot, lambda: len(screen.all_entries) > 3)

        def shown() -> set[str]:
            ol = screen.query_one("#presets", OptionList)
            ids = (ol.get_option_at_index(i).id for i in range(ol.option_count))
            return {i for i in ids if i}

        everything = shown()
        await pilot.press("x", "o", "r")  # 'r' is text once a filter has begun
        await pilot.pause()
        assert isinstance(app.screen, PickerScreen)
        expected = {e.name for e in screen.all_entries if PickerScreen.matches(e, "xor")}
        assert shown() == expected and "xor-mlp" in expected and len(expected) < len(everything)
        assert "digits-mlp" not in expected
        await pilot.press("escape")
        await pilot.pause()
        assert shown() == everything and screen.query_one("#filter", Input).value == ""
        await pilot.press("slash", "r", "e", "l", "u")  # '/' lets a filter start with r
        await pilot.pause()
        assert isinstance(app.screen, PickerScreen)
        assert shown() and all(
            "relu" in (screen.entries[n].config.description + n).lower() for n in shown()
        )
        await pilot.press("escape", "r")  # with no filter, r is the runs screen again
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


async def test_a_new_heat_statistic_is_drawn_when_the_run_has_not_changed(
    recorded_run, fake_diagnose
):
    """Pressing g on a finished run: a redraw may come before the follower's answer.

    The answer has the same version (the run did not change); it must still be drawn.
    """
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        screen = app.screen
        screen.workers.cancel_group(screen, "follow")  # this test posts the snapshots
        await pilot.pause()
        old = screen.current
        assert old.heat is not None and old.heat.stat != "out_grad_norm"
        screen.heat_stat = "out_grad_norm"
        screen._dirty = True
        screen.redraw()  # before the answer: nothing to show for the new statistic
        heat = screen.query_one(GradientHeatmap)
        assert heat.heat is None and "reading out_grad_norm" in _text(heat)
        other = RunFollower(recorded_run, "out_grad_norm")
        while other.poll():
            pass
        answer = dataclasses.replace(old, heat=other.snapshot().heat)
        other.reader.close()
        screen.post_message(RunSnapshotReady(answer))
        await wait_for(pilot, lambda: heat.heat is not None and heat.heat.stat == "out_grad_norm")
        assert len(heat.heat.rows) == len(old.heat.rows)


async def test_latest_bars_show_exact_zeros_as_zero_not_the_log_floor():
    """A sigmoid net's first layers get updates that round to nothing in float32: 0."""
    from textual.app import App

    from tui_trainer.tui.history import HeatData
    from tui_trainer.tui.widgets.layer_bars import LayerBars

    class Bars(App):
        def compose(self):
            yield LayerBars()

    app = Bars()
    async with app.run_test(size=(40, 6)) as pilot:
        bars = app.query_one(LayerBars)
        heat = HeatData("update_ratio", True, (0,), ((-12.0,), (-3.0,)))
        bars.set_data(heat, [0.0, 1e-3], 10)
        await pilot.pause()
        tokens = [line.split()[0] for line in _text(bars).splitlines()[1:] if line.strip()]
        values = [t for t in tokens if t[0] not in "█■"]  # a layer's second line: a bar only
        assert values == ["0", "0.001"]


def test_status_line_says_a_created_run_is_starting():
    """Before its first step a child imports PyTorch and loads data: seconds of 'step 0'."""
    from tui_trainer.tui.widgets.status_line import status_text

    created = RunSnapshot(run_dir=Path("r"), run_id="r", status="created")
    assert "starting" in status_text(created).plain
    running = dataclasses.replace(created, status="running", step=3)
    assert "starting" not in status_text(running).plain


def test_status_line_shows_the_runs_gpu_with_its_temperature_and_power():
    from tui_trainer.sysinfo import GpuStat
    from tui_trainer.tui.widgets.status_line import status_text

    snap = RunSnapshot(run_dir=Path("r"), run_id="r", status="running", device="cuda:1")
    gpus = [GpuStat(0, "H200", 5.0, 1024.0, 143_771.0, 30.0, 80.0),
            GpuStat(1, "H200", 97.0, 70_000.0, 143_771.0, 64.0, 612.3, 1980.0, 3201.0),
            GpuStat(2, "old board", 50.0, 1024.0, 8192.0)]  # fmt: skip
    line = status_text(snap, gpus=gpus).plain
    assert "GPU1 97%" in line and "64°C 612 W" in line
    assert "GPU0" not in line and "GPU2" not in line  # the run's GPU only
    snap = dataclasses.replace(snap, device="cuda")
    line = status_text(snap, gpus=gpus[2:]).plain
    assert "GPU2 50%" in line and "°C" not in line and " W" not in line  # no sensors: left out
