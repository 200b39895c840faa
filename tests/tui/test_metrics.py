"""The metrics view: every recorded scalar a chart, paged, filtered, the filter remembered."""

from __future__ import annotations

from pathlib import Path

from textual import events

from tui_trainer.store import RunStore
from tui_trainer.tui.app import TrainerApp
from tui_trainer.tui.metrics import grid_for, load_filter, matching, read_curves, save_filter
from tui_trainer.tui.screens.dashboard import DashboardScreen
from tui_trainer.tui.screens.metrics import MetricsScreen
from tui_trainer.tui.widgets.chart_grid import ChartGrid

from .conftest import T0, dashboard_ready, wait_for, write_run

NAMES = [f"grad_norm/blocks.{i}.weight" for i in range(6)] + ["custom/temperature", "my_metric"]


def write_many(run_dir: Path) -> None:
    """Extra scalars in a recorded run: per-parameter norms and names of a script's own."""
    store = RunStore(run_dir)
    for step in range(10, 301, 10):
        values = {n: (i + 1) * 0.01 * step for i, n in enumerate(NAMES)}
        store.scalars(step, values, wall=T0 + step * 0.01)
    store.close()


def visible(screen: MetricsScreen) -> list[str]:
    return screen.query_one(ChartGrid).titles


def drawn(screen: MetricsScreen) -> str:
    """The grid as the terminal shows it (plain text)."""
    grid = screen.query_one(ChartGrid)
    return "\n".join(line.plain for line in grid.lines(grid.size.width, grid.size.height))


def test_matching_is_a_glob_or_a_substring():
    names = ["train/loss", "val/loss", "val/acc", "grad_norm/blocks.1.weight", "grad_norm/head"]
    assert matching(names, "val/*") == ["val/acc", "val/loss"]
    assert matching(names, "grad_norm/blocks.1*") == ["grad_norm/blocks.1.weight"]
    assert matching(names, "blocks.1*") == ["grad_norm/blocks.1.weight"]  # after a /
    assert matching(names, "*/loss") == ["train/loss", "val/loss"]
    assert matching(names, "oss*") == []  # a glob does not start inside a part
    assert matching(names, "LOSS") == ["train/loss", "val/loss"]
    assert matching(names, "acc, head") == ["grad_norm/head", "val/acc"]
    assert matching(names, "") == sorted(names)


def test_the_grid_has_more_columns_on_a_larger_terminal():
    small, large = grid_for(80, 22), grid_for(200, 58)
    assert large.columns > small.columns and large.per_page > small.per_page
    assert small.page_of(list("abcdefgh"), 1) == list("efgh")[: small.per_page]


def test_the_filter_is_remembered_in_the_run_dir(tmp_path):
    assert load_filter(tmp_path) == ""
    assert save_filter(tmp_path, "val/*") and load_filter(tmp_path) == "val/*"
    (tmp_path / "view.json").write_text("not json")
    assert load_filter(tmp_path) == ""


def test_read_curves_keeps_the_stored_values(recorded_run):
    curves = read_curves(recorded_run, ["val/acc", "nope"], columns=400)
    assert list(curves) == ["val/acc"]
    assert curves["val/acc"].steps == (50, 100, 150, 200, 250, 300)


async def test_every_scalar_is_a_chart_and_the_filter_hides_the_others(tmp_path, fake_diagnose):
    run = write_run(tmp_path / "runs")
    write_many(run)
    app = TrainerApp(runs_dir=str(run.parent), attach=run)
    async with app.run_test(size=(200, 60)) as pilot:
        await dashboard_ready(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.names)
        screen = app.screen
        assert set(NAMES) <= set(screen.names) and "train/loss" in screen.names
        wide = screen.grid.columns
        assert len(visible(screen)) == min(len(screen.names), screen.grid.per_page)
        await pilot.press("slash", *"grad_norm/blocks.1*", "enter")
        await wait_for(pilot, lambda: visible(screen) == ["grad_norm/blocks.1.weight"])
        grid = screen.query_one(ChartGrid)
        chart = grid.charts[0]
        assert max(chart.series[0].data.highs) == 0.02 * 300  # the stored value at step 300
        assert "6" in drawn(screen).split("\n")[1]  # the y axis' top label: that value
        assert load_filter(run) == "grad_norm/blocks.1*"
        await pilot.press("f")
        assert grid.view.full and "grad_norm/blocks.1.weight (full range)" in drawn(screen)
        await pilot.press("l")
        assert grid.view.log and not grid.view.full and "(log)" in drawn(screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
    app = TrainerApp(runs_dir=str(run.parent), attach=run)
    async with app.run_test(size=(80, 24)) as pilot:
        await dashboard_ready(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.names)
        screen = app.screen
        assert screen.pattern == "grad_norm/blocks.1*"  # remembered for this run
        assert screen.grid.columns < wide
        await pilot.press("slash", *["backspace"] * 19, "enter")
        await wait_for(pilot, lambda: screen.pattern == "" and len(visible(screen)) > 1)
        pages = screen.grid.pages(len(screen.shown))
        assert pages > 1
        first = visible(screen)
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: screen.page == 1 and visible(screen) != first)
        await pilot.press("pageup")
        await wait_for(pilot, lambda: screen.page == 0 and visible(screen) == first)


async def test_a_scripts_own_names_appear_without_configuration(tmp_path, fake_diagnose):
    import torch
    from torch import nn

    import tui_trainer

    model = nn.Sequential(nn.Linear(4, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = tui_trainer.watch(model, name="own", runs_dir=tmp_path)
    for step in range(1, 6):
        loss = model(torch.ones(2, 4)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.step(loss=loss)
        mon.log({"reward": float(step), "my/odd name": 2.0 * step})
    mon.finish()
    app = TrainerApp(runs_dir=str(tmp_path), attach=mon.run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot, findings=False)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.names)
        assert {"reward", "my/odd name"} <= set(visible(app.screen))


async def test_a_filter_typed_before_the_box_has_the_focus_is_kept(recorded_run, fake_diagnose):
    """The focus moves after the keys already read: "/" and what follows are the filter."""
    app = TrainerApp(runs_dir=str(recorded_run.parent), attach=recorded_run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.names)
        screen = app.screen
        # one burst, as a script or a fast typist sends it: every key is read before the focus
        # moves (and before a binding of "/" would run)
        for ch in "/val/acc":
            screen.on_key(events.Key("slash" if ch == "/" else ch, ch))
        screen.on_key(events.Key("enter", "\r"))
        await wait_for(pilot, lambda: visible(screen) == ["val/acc"])
        assert screen.pattern == "val/acc" and app.focused is None
        await pilot.press("l")  # a command again once the filter is entered
        assert screen.query_one(ChartGrid).view.log


async def test_the_view_is_kept_between_opens_and_reads_what_came_meanwhile(
    tmp_path, fake_diagnose
):
    run = write_run(tmp_path / "runs")
    app = TrainerApp(runs_dir=str(run.parent), attach=run)
    async with app.run_test(size=(120, 40)) as pilot:
        await dashboard_ready(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.names)
        first = app.screen
        assert not set(NAMES) & set(first.names)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        write_many(run)  # recorded while the view was hidden
        await pilot.press("a")
        await wait_for(pilot, lambda: app.screen is first and set(NAMES) <= set(first.names))
