"""Screenshots of the main screens (pytest-textual-snapshot), from recorded stores.

Update them with ``pytest tests/tui/test_snapshots.py --snapshot-update`` after a
deliberate change, and look at the SVGs under tests/tui/__snapshots__ before committing.
"""

from __future__ import annotations

import os

from tui_trainer.tui.app import TrainerApp

from .conftest import dashboard_ready, wait_for, write_run


def test_picker(presets, tmp_path, snap_compare):
    async def loaded(pilot):
        await wait_for(pilot, lambda: len(pilot.app.screen.entries) == 4)
        await pilot.press("down")

    app = TrainerApp(runs_dir="runs")
    assert snap_compare(app, terminal_size=(120, 40), run_before=loaded)


def test_dashboard_120x40(recorded_run, fake_diagnose, snap_compare):
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    assert snap_compare(app, terminal_size=(120, 40), run_before=dashboard_ready)


def test_dashboard_80x24(recorded_run, fake_diagnose, snap_compare):
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    assert snap_compare(app, terminal_size=(80, 24), run_before=dashboard_ready)


def test_dashboard_no_color(recorded_run, fake_diagnose, snap_compare, monkeypatch):
    monkeypatch.setitem(os.environ, "NO_COLOR", "1")
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    assert snap_compare(app, terminal_size=(120, 40), run_before=dashboard_ready)


def test_dashboard_group_zoomed_curves(tmp_path, fake_diagnose, snap_compare):
    runs = tmp_path / "runs"
    dirs = [
        write_run(runs, variant="sigmoid", run_id="a"),
        write_run(runs, variant="relu", run_id="b", loss_scale=0.4),
    ]

    async def zoomed(pilot):
        pilot.app.open_dashboard(dirs)
        await dashboard_ready(pilot, runs=2)
        await pilot.press("1", "l")
        await dashboard_ready(pilot, runs=2)

    app = TrainerApp(runs_dir=str(runs))
    assert snap_compare(app, terminal_size=(120, 40), run_before=zoomed)


def test_runs_screen(tmp_path, snap_compare, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    write_run(runs, variant="sigmoid", run_id="20260101-000000-vanishing-sigmoid-a1b2")
    write_run(runs, variant="relu", run_id="20260101-000100-vanishing-relu-c3d4", status="stopped")
    write_run(
        runs,
        preset="xor-mlp",
        variant="hidden-2",
        run_id="20260101-000200-xor-mlp-e5f6",
        status="running",
        pid=os.getpid(),
    )

    async def listed(pilot):
        await pilot.press("r")
        await wait_for(pilot, lambda: len(getattr(pilot.app.screen, "runs", {})) == 3)
        await pilot.press("space")
        await pilot.pause(0.1)

    app = TrainerApp(runs_dir="runs")
    assert snap_compare(app, terminal_size=(120, 40), run_before=listed)


def test_metrics_view(tmp_path, fake_diagnose, snap_compare):
    from tui_trainer.tui.screens.metrics import MetricsScreen

    from .test_metrics import write_many

    runs = tmp_path / "runs"
    dirs = [
        write_run(runs, variant="sigmoid", run_id="a"),
        write_run(runs, variant="relu", run_id="b", loss_scale=0.4),
    ]
    write_many(dirs[0])

    async def metrics(pilot):
        pilot.app.open_dashboard(dirs)
        await dashboard_ready(pilot, runs=2)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MetricsScreen))
        await wait_for(pilot, lambda: pilot.app.screen.names)
        await pilot.press("slash", *"val/* grad_norm/blocks.1* my", "enter")
        await wait_for(pilot, lambda: pilot.app.screen.pattern.endswith("my"))
        await wait_for(pilot, lambda: not pilot.app.screen.pending)  # the page's curves read
        await pilot.pause(0.1)

    app = TrainerApp(runs_dir=str(runs))
    assert snap_compare(app, terminal_size=(120, 40), run_before=metrics)


def test_dashboard_zoomed_and_inspected(recorded_run, fake_diagnose, snap_compare):
    async def inspected(pilot):
        await dashboard_ready(pilot)
        await pilot.press("plus", "i")
        inspect = pilot.app.screen.query_one("#inspect")
        await wait_for(pilot, lambda: "train/loss" in str(inspect.render()))
        await pilot.pause(0.1)

    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    assert snap_compare(app, terminal_size=(120, 40), run_before=inspected)
