"""Zoom, pan and inspect of the dashboard's step axis: shared by its charts, exact values."""

from __future__ import annotations

from textual import events

from tui_trainer.store import RunReader
from tui_trainer.tui.app import TrainerApp
from tui_trainer.tui.fmt import fmt_num
from tui_trainer.tui.series import MinMaxSeries
from tui_trainer.tui.stepview import MIN_SPAN, StepWindow, extent, snap_step
from tui_trainer.tui.widgets.curve_chart import CurveChart

from .conftest import dashboard_ready, wait_for


def _wheel(kind, widget):
    return kind(widget, 20, 3, 0, 1, 0, False, False, False)


def _curve(steps):
    s = MinMaxSeries()
    for step in steps:
        s.add(step, 1.0)
    return s.data()


def test_the_window_zooms_pans_and_stops_at_the_ends():
    w = StepWindow().zoom(2)
    assert (w.lo, w.hi) == (0.25, 0.75) and w.steps(0, 400) == (100, 300)
    assert StepWindow().steps(0, 400) is None  # the full window: every step
    assert w.pan(-10) == StepWindow(0.0, 0.5) and w.pan(10) == StepWindow(0.5, 1.0)
    assert w.zoom(0.25) == StepWindow()  # out past the whole run: the whole run
    at = StepWindow().zoom(4, center=0.9)  # around a point: it stays where it was
    assert abs(at.lo + 0.9 * (at.hi - at.lo) - 0.9) < 1e-9
    deep = StepWindow()
    for _ in range(20):
        deep = deep.zoom(2)
    assert abs((deep.hi - deep.lo) - MIN_SPAN) < 1e-12


def test_snap_step_and_extent():
    a, b = _curve([10, 20, 30]), _curve([25, 50])
    assert extent([a, b]) == (10, 50) and extent([]) is None
    assert snap_step([a, b], 24) == 25 and snap_step([a, b], 22) == 20
    assert snap_step([a, b], 25, 1) == 30 and snap_step([a, b], 25, -1) == 20
    assert snap_step([a, b], 50, 1) is None


async def test_zoom_is_shared_and_the_cursor_shows_the_stored_values(recorded_run, fake_diagnose):
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        screen = app.screen
        loss, metric = (
            screen.query_one("#loss", CurveChart),
            screen.query_one("#metric", CurveChart),
        )
        await pilot.press("plus")
        assert loss.x_range is not None and loss.x_range == metric.x_range
        a, b = loss.x_range
        assert abs((b - a) - (300 - 5) / 2) < 1e-9 and "steps" in str(loss.border_title)
        await pilot.press("greater_than_sign")
        assert loss.x_range[0] > a and loss.x_range == metric.x_range
        await pilot.press("minus", "minus")
        assert loss.x_range is None  # zoomed out to every step
        loss.post_message(_wheel(events.MouseScrollUp, loss))  # the wheel zooms in too
        await wait_for(pilot, lambda: loss.x_range is not None)
        loss.post_message(_wheel(events.MouseScrollDown, loss))
        await wait_for(pilot, lambda: loss.x_range is None)
        await pilot.press("plus", "shift+left", "0")
        assert loss.x_range is None and metric.x_range is None  # 0: all steps again

        await pilot.press("i")
        inspect = screen.query_one("#inspect")
        await wait_for(pilot, lambda: inspect.display and "train/loss" in str(inspect.render()))
        step = int(screen.cursor)
        assert loss.cursor == step == metric.cursor
        with RunReader(recorded_run) as reader:
            for name in ("train/loss", "val/loss", "train/acc", "val/acc"):
                at, value = reader.value_at(name, step)
                assert f"{name} {fmt_num(value)}" in str(inspect.render())
        assert step == 150 and "train/loss 9 " in str(inspect.render())  # the spike as stored
        await pilot.press("right", "right", "right")
        await wait_for(pilot, lambda: screen.cursor == 165 and "step 165" in str(inspect.render()))
        with RunReader(recorded_run) as reader:
            value = dict(reader.series("train/loss"))[165]
        assert f"train/loss {fmt_num(value)}" in str(inspect.render())
        await pilot.press("left")
        await wait_for(pilot, lambda: screen.cursor == 160)
        await pilot.press("escape")  # closes the inspector first
        assert screen.cursor is None and loss.cursor is None and not inspect.display
        await pilot.press("right")  # no cursor: the key does nothing here
        assert screen.cursor is None
