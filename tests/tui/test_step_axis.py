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


def test_the_heatmap_draws_the_buckets_of_the_window():
    from tui_trainer.tui.widgets.heatmap import column_spans, window_buckets

    steps = [10, 20, 30, 40, 50]
    assert window_buckets(steps, None) == (0, 5)
    assert window_buckets(steps, (25, 41)) == (1, 4)  # 20-30 and 40-50 overlap it
    assert window_buckets(steps, (0, 5)) == (0, 1)  # never empty
    assert column_spans(2, 4) == [(0, 1), (0, 1), (1, 2), (1, 2)]  # a bucket, two columns
    assert column_spans(4, 2) == [(0, 2), (2, 4)]


def _stored(run_dir, layer, column, step):
    import sqlite3

    con = sqlite3.connect(run_dir / "run.db")
    row = con.execute(
        f"SELECT step, {column} FROM layer_stats WHERE layer = ? AND step <= ? "
        "ORDER BY step DESC LIMIT 1",
        (layer, step),
    ).fetchone()
    con.close()
    return row


async def test_the_heatmap_shares_the_window_and_shows_the_layer_under_the_cursor(
    recorded_run, fake_diagnose
):
    from tui_trainer.tui.widgets.heatmap import GradientHeatmap

    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        screen = app.screen
        loss = screen.query_one("#loss", CurveChart)
        heat = screen.query_one(GradientHeatmap)
        await pilot.press("plus")
        assert heat.x_range == loss.x_range is not None
        width = heat.size.width
        drawn = [line.plain for line in heat.lines(width, heat.size.height)]
        a, b = loss.x_range
        first, last = drawn[0].split()[1], drawn[0].split()[-1]
        assert a - 10 <= int(first) <= a and b - 10 <= int(last) <= b  # its buckets' steps

        await pilot.press("i")
        inspect = screen.query_one("#inspect")
        await wait_for(pilot, lambda: "▼ layer 0" in str(inspect.render()))
        step = int(screen.cursor)
        at, value = _stored(recorded_run, 0, "grad_norm", step)
        assert f"layer 0 blocks.0 grad_norm {fmt_num(value)}" in str(inspect.render())
        drawn = [line.plain for line in heat.lines(width, heat.size.height)]
        col = drawn[0].index("▼")
        assert all(line[col] == "│" for line in drawn[1:-1])  # the cursor's column
        await pilot.press("j", "j")  # another layer, same step
        await wait_for(pilot, lambda: "▼ layer 2" in str(inspect.render()))
        at, value = _stored(recorded_run, 2, "grad_norm", step)
        assert f"layer 2 blocks.2 grad_norm {fmt_num(value)}" in str(inspect.render())
        await pilot.press("g")  # another statistic
        await wait_for(pilot, lambda: "blocks.2 out_grad_norm" in str(inspect.render()))
        at, value = _stored(recorded_run, 2, "out_grad_norm", step)
        assert f"out_grad_norm {fmt_num(value)}" in str(inspect.render())

        await pilot.press("0", "i")  # all steps, no cursor
        assert screen.cursor is None and heat.cursor is None
        groups = heat._groups
        row = next(i for i, g in enumerate(groups) if g[0] == 4 and g[2])
        x = heat._label_w + len(heat._columns) * 3 // 4
        await pilot.click(GradientHeatmap, offset=(x, row + 1))  # a cell: inspect it
        want = heat._columns[x - heat._label_w]
        await wait_for(pilot, lambda: "▼ layer 4" in str(inspect.render()))
        assert screen.zoom == "" and screen.selected_layer == 4
        assert abs(screen.cursor - want) <= 5  # snapped to a logged step
        at, value = _stored(recorded_run, 4, "out_grad_norm", int(screen.cursor))
        assert f"layer 4 blocks.4 out_grad_norm {fmt_num(value)}" in str(inspect.render())


async def test_a_click_on_a_chart_inspects_and_the_wheel_zooms_about_the_pointer(
    recorded_run, fake_diagnose
):
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        screen = app.screen
        loss = screen.query_one("#loss", CurveChart)
        plot_w = loss.content_size.width - 8
        x = 1 + 8 + (plot_w - 1) * 9 // 10  # nine tenths of the way along
        loss.post_message(events.MouseScrollUp(loss, x, 3, 0, 0, 0, False, False, False))
        await wait_for(pilot, lambda: loss.x_range is not None)
        lo, hi = loss.x_range
        f = (x - 1 - 8) / (plot_w - 1)  # - 1: the event is in the chart's box, border included
        x0, x1 = extent(screen._curves())
        under = x0 + f * (x1 - x0)  # the step that was under the pointer stays under it
        assert abs((under - lo) / (hi - lo) - f) < 1e-6 and lo > 100
        await pilot.press("0")
        await pilot.click(CurveChart, offset=(1 + 8 + (plot_w - 1) // 2, 3))  # the middle
        await wait_for(pilot, lambda: screen.cursor is not None)
        assert abs(screen.cursor - (x0 + x1) / 2) <= 5
        inspect = screen.query_one("#inspect")
        await wait_for(pilot, lambda: "train/loss" in str(inspect.render()))
