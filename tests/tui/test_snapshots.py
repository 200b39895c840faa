"""Screenshots of the main screens (pytest-textual-snapshot), from recorded stores.

Update them with ``pytest tests/tui/test_snapshots.py --snapshot-update`` after a
deliberate change, and look at the SVGs under tests/tui/__snapshots__ before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def _dressed_run(tmp_path, monkeypatch):
    """The recorded run with what the panes show, all fixed: output.log, config.toml, host,
    versions, a checkpoint, sys/* scalars, histograms, and status times."""
    import math
    import sqlite3

    from tui_trainer.store import RunStore

    from .conftest import LAYERS, T0
    from .test_panes import _add_histograms

    monkeypatch.chdir(tmp_path)
    run_dir = write_run(tmp_path / "runs")
    (run_dir / "output.log").write_text(
        "step 100/300 loss 1.02\nUserWarning: the learning rate is large\n"
        "step 200/300 loss 0.41\nTraceback (most recent call last):\n"
        '  File "train.py", line 3, in <module>\nValueError: a recorded failure\n'
        "step 300/300 loss 0.12\nfinished after 300 steps in 3.5s\n"
    )
    (run_dir / "config.toml").write_text(
        'preset = "vanishing"\nvariant = "sigmoid"\n\n[model]\nkind = "mlp"\ndepth = 5\n'
        'activation = "sigmoid"\n\n[train]\nmax_steps = 300\n'
    )
    ckpt = run_dir / "checkpoints" / "last.pt"
    ckpt.write_bytes(b"0" * 20_480)
    os.utime(ckpt, (T0 + 3.0, T0 + 3.0))
    store = RunStore(run_dir)
    store.set_meta(host="box", versions={"python": "3.11.7", "torch": "2.5.0", "cuda": "12.4"})
    for step in range(5, 301, 5):
        wave = math.sin(step / 20)
        store.scalars(step, {"sys/cpu_percent": 95 + 5 * wave, "sys/rss_mb": 300 + step / 10,
                             "sys/gpu0/util_pct": 60 + 30 * wave, "sys/gpu0/mem_used_mb": 2048.0,
                             "sys/gpu0/mem_total_mb": 81559.0, "sys/gpu0/temp_c": 50 + step / 20,
                             "sys/gpu0/power_w": 300 + 200 * wave,
                             "sys/gpu0/sm_clock_mhz": 1980 - 10 * wave,
                             "sys/gpu0/mem_clock_mhz": 2619.0},
                      wall=T0 + step * 0.01)  # fmt: skip
    store.close()
    _add_histograms(run_dir)
    con = sqlite3.connect(run_dir / "run.db")
    con.execute("UPDATE events SET wall = ? + step * 0.01 WHERE kind = 'status'", (T0,))
    con.commit()
    con.close()
    assert len(LAYERS) == 6
    return Path("runs") / run_dir.name


def _pane(keys, ready):
    async def run_before(pilot):
        await dashboard_ready(pilot)
        await pilot.press(*keys)
        await wait_for(pilot, lambda: ready(pilot.app.screen))
        await pilot.pause(0.2)

    return run_before


def test_console_pane(tmp_path, monkeypatch, fake_diagnose, snap_compare):
    run = _dressed_run(tmp_path, monkeypatch)
    app = TrainerApp(runs_dir="runs", attach=run)
    ready = _pane(["o", "slash", *"loss", "enter", "n"], lambda s: len(s.query_one(
        "ConsoleView").matches) == 3)  # fmt: skip
    assert snap_compare(app, terminal_size=(120, 40), run_before=ready)


def test_overview_pane(tmp_path, monkeypatch, fake_diagnose, snap_compare):
    run = _dressed_run(tmp_path, monkeypatch)
    app = TrainerApp(runs_dir="runs", attach=run)
    ready = _pane(["v"], lambda s: s.query_one("OverviewPane").overview is not None)
    assert snap_compare(app, terminal_size=(120, 40), run_before=ready)


def test_system_pane(tmp_path, monkeypatch, fake_diagnose, snap_compare):
    run = _dressed_run(tmp_path, monkeypatch)
    app = TrainerApp(runs_dir="runs", attach=run)
    ready = _pane(["y"], lambda s: len(s.query_one("SystemPane").charts) == 7)
    assert snap_compare(app, terminal_size=(120, 40), run_before=ready)


def test_layer_view(tmp_path, monkeypatch, fake_diagnose, snap_compare):
    run = _dressed_run(tmp_path, monkeypatch)
    app = TrainerApp(runs_dir="runs", attach=run)
    ready = _pane(["j", "j", "enter"], lambda s: s.query_one("LayerPane").data is not None)
    assert snap_compare(app, terminal_size=(120, 40), run_before=ready)


def test_layer_view_80x24(tmp_path, monkeypatch, fake_diagnose, snap_compare):
    run = _dressed_run(tmp_path, monkeypatch)
    app = TrainerApp(runs_dir="runs", attach=run)
    ready = _pane(["enter"], lambda s: s.query_one("LayerPane").data is not None)
    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


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
