"""Provides TrainerApp and run_app: screens, app-wide keys and the training children.

Wiring only: each screen owns its handlers. The app launches training child processes
(runner.launch) from a thread worker, supervises each with a worker that polls it, and
on quit asks whether to stop the runs it started or leave them training.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from tui_trainer.runner import RunProcess, child_threads, launch
from tui_trainer.store import send_control
from tui_trainer.text import first_line
from tui_trainer.tui.messages import (
    ControlDone,
    LaunchFailed,
    RunProcessEnded,
    RunsLaunched,
    StartRequested,
)
from tui_trainer.tui.screens.confirm import QuitScreen
from tui_trainer.tui.screens.dashboard import DashboardScreen
from tui_trainer.tui.screens.help import HelpScreen
from tui_trainer.tui.screens.picker import PickerScreen
from tui_trainer.tui.screens.runs import RunsScreen

__all__ = ["TrainerApp", "run_app"]

SUPERVISE_S = 0.25
WORKER_THREADS = 64  # long-lived workers: a follower per run shown, a supervisor per child
STOP_WAIT_S = 10.0


class TrainerApp(App[None]):
    """Picker, dashboards and the runs list over one runs directory."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-trainer"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    def __init__(
        self,
        runs_dir: str | None = None,
        presets_dir: str | None = None,
        attach: Path | None = None,
    ) -> None:
        super().__init__()
        self.runs_dir, self.presets_dir, self.attach = runs_dir, presets_dir, attach
        self.processes: dict[Path, RunProcess] = {}
        self.labels: dict[Path, str] = {}

    def get_default_screen(self) -> Screen[None]:
        return PickerScreen(self.presets_dir)

    def on_mount(self) -> None:
        # Thread workers run in the loop's default executor, min(32, cores + 4) threads:
        # on a 2-core machine five supervisors would leave one thread for every follower.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="tui-trainer")
        )
        if self.attach is not None:
            self.open_dashboard([self.attach])

    # -- navigation -----------------------------------------------------------------
    def open_dashboard(self, run_dirs: list[Path]) -> None:
        self.push_screen(DashboardScreen(run_dirs))

    def action_show_runs(self) -> None:
        if not isinstance(self.screen, RunsScreen):
            self.push_screen(RunsScreen(self.runs_dir))

    def action_show_picker(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    # -- training children ----------------------------------------------------------
    @on(StartRequested)
    def _start(self, message: StartRequested) -> None:
        self.notify(f"starting {message.preset} ({len(message.variants)} run(s))…", timeout=3)
        self.launch_runs(message.preset, message.variants, message.overrides)

    @work(thread=True, exit_on_error=False, group="launch")
    def launch_runs(self, preset: str, variants: list[str | None], overrides: list[str]) -> None:
        from tui_trainer.config import find_preset

        try:
            found = find_preset(preset, self.presets_dir)
            configs = [found.resolve(v, overrides) for v in variants]
            threads = max(1, child_threads() // len(configs))
            processes = [launch(cfg, self.runs_dir, threads=threads) for cfg in configs]
        except (ValueError, OSError) as exc:  # ConfigError, StoreError: one line
            self.post_message(LaunchFailed(first_line(exc)))
            return
        labels = [c.label for c in configs]
        self.post_message(RunsLaunched(processes, labels))

    @on(RunsLaunched)
    def _launched(self, message: RunsLaunched) -> None:
        for process, label in zip(message.processes, message.labels, strict=True):
            self.processes[process.run_dir] = process
            self.labels[process.run_dir] = label
            self.supervise(process)
        self.open_dashboard(message.run_dirs)

    @on(LaunchFailed)
    def _launch_failed(self, message: LaunchFailed) -> None:
        self.notify(message.error, title="could not start", severity="error", timeout=10)

    @work(thread=True, exit_on_error=False, group="supervise")
    def supervise(self, process: RunProcess) -> None:
        """Wait for a child to end; RunProcess.poll marks it crashed if it died live."""
        worker = get_current_worker()
        while not worker.is_cancelled:
            error = ""
            try:
                code = process.poll()
            except Exception as exc:  # marking it failed (a locked store): it still ended
                code = process.process.returncode
                error = first_line(exc)
            if code is not None:
                self.post_message(RunProcessEnded(process.run_dir, code, error))
                return
            time.sleep(SUPERVISE_S)

    @on(RunProcessEnded)
    def _ended(self, message: RunProcessEnded) -> None:
        self.processes.pop(message.run_dir, None)
        if message.error:
            self.notify(
                f"{message.run_dir.name} ended (code {message.returncode}) but could not be "
                f"marked crashed: {message.error}",
                severity="error",
                timeout=10,
            )
        if isinstance(self.screen, QuitScreen) and not self.live_processes():
            self.screen.dismiss("leave")  # the question is moot: nothing trains any more

    @work(thread=True, exit_on_error=False, group="control")
    def send_control(self, run_dir: Path, command: str) -> None:
        """Write a control row (the trainer honours it within ~0.2 s)."""
        try:
            send_control(run_dir, command)
        except Exception as exc:  # a locked or vanished store: say so, never crash
            self.post_message(ControlDone(run_dir, command, first_line(exc)))
            return
        self.post_message(ControlDone(run_dir, command))

    @on(ControlDone)
    def _control_done(self, message: ControlDone) -> None:
        if message.error:
            self.notify(f"{message.command} failed: {message.error}", severity="error")
        else:
            self.notify(f"asked {message.run_dir.name} to {message.command}", timeout=3)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.notify(f"{event.worker.name}: {error}", title="error", severity="error")

    # -- quitting -------------------------------------------------------------------
    def live_processes(self) -> list[RunProcess]:
        return [p for p in self.processes.values() if p.process.poll() is None]

    async def action_quit(self) -> None:
        live = self.live_processes()
        if not live:
            self.exit()
            return
        if isinstance(self.screen, QuitScreen):
            return

        def answer(choice: str | None) -> None:
            if choice == "stop":
                self.notify("stopping runs (each saves a checkpoint)…")
                self.stop_and_exit(live)
            elif choice == "leave":
                self.exit()

        names = [self.labels.get(p.run_dir, p.run_dir.name) for p in live]
        self.push_screen(QuitScreen(names), answer)

    @work(thread=True, exit_on_error=False, group="quit")
    def stop_and_exit(self, live: list[RunProcess]) -> None:
        for process in live:
            try:
                send_control(process.run_dir, "stop")
            except Exception:  # the store is gone: terminate instead
                process.terminate()
        deadline = time.monotonic() + STOP_WAIT_S
        for process in live:
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if process.poll() is None:
                process.terminate()
        self.call_from_thread(self.exit)


def run_app(
    runs_dir: str | None = None,
    presets_dir: str | None = None,
    attach: Path | None = None,
) -> None:
    """Open the app: the preset picker, or the dashboard of ``attach``."""
    TrainerApp(runs_dir=runs_dir, presets_dir=presets_dir, attach=attach).run()
