"""The app with a real training child (xor-mlp): start, pause, resume, stop; kill -9.

The child is launched exactly as the picker launches it (a StartRequested message) and
controlled with the dashboard's keys; the store is the judge of what happened.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from textual.geometry import Region

from tui_trainer.store import RunReader
from tui_trainer.tui.app import TrainerApp
from tui_trainer.tui.messages import RunProcessEnded, RunsLaunched, StartRequested
from tui_trainer.tui.screens.dashboard import DashboardScreen
from tui_trainer.tui.widgets.findings_panel import FindingsPanel

# Enough steps that the run is still training when the test pauses it.
SETS = ["train.max_steps=2000000", "train.device=cpu", "train.eval_every=1000"]
TIMEOUT = 60.0


async def _until(pilot, predicate, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.1)


def _status(run_dir) -> str:
    with RunReader(run_dir) as reader:
        return reader.status()


async def _start(pilot, app, seen) -> DashboardScreen:
    app.post_message(StartRequested("xor-mlp", ["hidden-4"], SETS))
    await _until(pilot, lambda: any(isinstance(m, RunsLaunched) for m in seen), "launch")
    await _until(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
    screen = app.screen
    await _until(
        pilot,
        lambda: screen.current is not None and screen.current.status == "running"
        and screen.current.step > 0,
        "the child to train",
    )
    return screen


def test_start_pause_resume_stop_a_real_child(tmp_path):
    asyncio.run(_start_pause_resume_stop(tmp_path))


def test_a_killed_child_shows_as_crashed(tmp_path):
    asyncio.run(_killed_child(tmp_path))


async def _start_pause_resume_stop(tmp_path):
    seen: list = []
    app = TrainerApp(runs_dir=str(tmp_path / "runs"))
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        screen = await _start(pilot, app, seen)
        run_dir = screen.current_dir
        await pilot.press("space")
        await _until(pilot, lambda: _status(run_dir) == "paused", "paused")
        await _until(pilot, lambda: screen.current.status == "paused", "the dashboard to see it")
        paused_at = screen.current.step
        await pilot.press("space")
        await _until(pilot, lambda: _status(run_dir) == "running", "running again")
        await _until(pilot, lambda: screen.current.step > paused_at, "steps after resume")
        await pilot.press("s", "y")
        await _until(pilot, lambda: any(isinstance(m, RunProcessEnded) for m in seen), "exit")
        ended = next(m for m in seen if isinstance(m, RunProcessEnded))
        assert ended.returncode == 1  # stopped: the exit code of a headless `run`
        assert _status(run_dir) == "stopped"
        await _until(pilot, lambda: screen.current.status == "stopped", "stopped on screen")
        assert (run_dir / "checkpoints" / "last.pt").is_file()
        assert not app.runs.live()


async def _killed_child(tmp_path):
    seen: list = []
    app = TrainerApp(runs_dir=str(tmp_path / "runs"))
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        screen = await _start(pilot, app, seen)
        run_dir = screen.current_dir
        (process,) = app.runs.processes.values()
        os.kill(process.pid, signal.SIGKILL)
        await _until(pilot, lambda: any(isinstance(m, RunProcessEnded) for m in seen), "exit")
        assert _status(run_dir) == "crashed"
        await _until(pilot, lambda: screen.current.status == "crashed", "crashed on screen")
        await _until(pilot, lambda: screen.current.error != "", "the error")
        assert "killed by signal 9" in screen.current.error
        screen._dirty = True
        screen.redraw()
        await pilot.pause(0.1)
        panel = screen.query_one(FindingsPanel)
        lines = panel.render_lines(Region(0, 0, *panel.size))
        assert "killed by signal 9" in " ".join(" ".join(s.text for s in lines).split())
        assert app.is_running  # the app stays up
