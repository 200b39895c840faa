"""Provides TrainerApp and run_app: screens, app-wide keys and the training children.

Wiring only: each screen owns its handlers. The training children are a
``runner.RunSupervisor``'s: the app calls it from thread workers (launch, wait for each
child's end, control rows) and on quit asks whether to stop the runs it started or leave
them training.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from tui_trainer.remote import Remote
from tui_trainer.runner import RunProcess, RunSupervisor
from tui_trainer.text import first_line
from tui_trainer.tui.boxes import Boxes
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

WORKER_THREADS = 64  # long-lived workers: a follower per run shown, a supervisor per child


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
        hosts: list[str] | None = None,
        remote_cmd: str | None = None,
    ) -> None:
        super().__init__()
        self.runs_dir, self.presets_dir, self.attach = runs_dir, presets_dir, attach
        self.runs = RunSupervisor(runs_dir, presets_dir)
        self.remote_cmd = remote_cmd
        self.boxes = Boxes([Remote(h, remote_cmd) for h in hosts or []])

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
        elif self.boxes.remotes:
            self.action_show_runs()  # asked for boxes: their runs first

    def on_unmount(self) -> None:
        self.boxes.close()

    # -- navigation -----------------------------------------------------------------
    def open_dashboard(self, run_dirs: list[Path]) -> None:
        self.push_screen(DashboardScreen(run_dirs))

    def action_show_runs(self) -> None:
        if not isinstance(self.screen, RunsScreen):
            self.push_screen(RunsScreen(self.runs_dir))

    def add_box(self, host: str) -> None:
        """List runs of ``host`` too (ValueError for a host that is not one)."""
        self.boxes.add(Remote(host, self.remote_cmd))

    def action_show_picker(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    # -- training children (their lifecycle is runner.RunSupervisor's) ---------------
    @on(StartRequested)
    def _start(self, message: StartRequested) -> None:
        self.notify(f"starting {message.preset} ({len(message.variants)} run(s))…", timeout=3)
        self.launch_runs(message.preset, message.variants, message.overrides)

    @work(thread=True, exit_on_error=False, group="launch")
    def launch_runs(self, preset: str, variants: list[str | None], overrides: list[str]) -> None:
        try:
            processes = self.runs.start(preset, variants, overrides)
        except (ValueError, OSError) as exc:  # ConfigError, StoreError: one line
            self.post_message(LaunchFailed(first_line(exc)))
            return
        self.post_message(RunsLaunched(processes, [self.runs.label(p.run_dir) for p in processes]))

    @on(RunsLaunched)
    def _launched(self, message: RunsLaunched) -> None:
        for process in message.processes:
            self.supervise(process)
        self.open_dashboard(message.run_dirs)

    @on(LaunchFailed)
    def _launch_failed(self, message: LaunchFailed) -> None:
        self.notify(message.error, title="could not start", severity="error", timeout=10)

    @work(thread=True, exit_on_error=False, group="supervise")
    def supervise(self, process: RunProcess) -> None:
        """Wait for a child to end (a run that died live is marked crashed), then say so."""
        worker = get_current_worker()
        code, error = self.runs.wait_for_end(process, lambda: worker.is_cancelled)
        if code is not None:
            self.post_message(RunProcessEnded(process.run_dir, code, error))

    @on(RunProcessEnded)
    def _ended(self, message: RunProcessEnded) -> None:
        self.runs.forget(message.run_dir)
        if message.error:
            self.notify(
                f"{message.run_dir.name} ended (code {message.returncode}) but could not be "
                f"marked crashed: {message.error}",
                severity="error",
                timeout=10,
            )
        if isinstance(self.screen, QuitScreen) and not self.runs.live():
            self.screen.dismiss("leave")  # the question is moot: nothing trains any more

    @work(thread=True, exit_on_error=False, group="control")
    def send_control(self, run_dir: Path, command: str) -> None:
        """Write a control row (the trainer honours it within ~0.2 s)."""
        try:
            send_anywhere(self.runs, run_dir, command)
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
    async def action_quit(self) -> None:
        live = self.runs.live()
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

        self.push_screen(QuitScreen([self.runs.label(p.run_dir) for p in live]), answer)

    @work(thread=True, exit_on_error=False, group="quit")
    def stop_and_exit(self, live: list[RunProcess]) -> None:
        self.runs.stop_all(live)
        self.call_from_thread(self.exit)


def run_app(
    runs_dir: str | None = None,
    presets_dir: str | None = None,
    attach: Path | None = None,
    hosts: list[str] | None = None,
    remote_cmd: str | None = None,
) -> None:
    """Open the app: the preset picker, the dashboard of ``attach``, or (``hosts``) the runs
    of this machine and those boxes."""
    TrainerApp(runs_dir, presets_dir, attach, hosts, remote_cmd).run()


def send_anywhere(runs: RunSupervisor, run_dir: Path, command: str) -> None:
    """A control row here, or, for a copy of a remote run, ``control`` run there over ssh."""
    from tui_trainer.remote.mirror import mirror_info

    info = mirror_info(run_dir)
    if info is None:
        runs.send(run_dir, command)
        return
    remote = Remote(str(info["host"]), info.get("remote_cmd"), info.get("runs_dir"))
    remote.run("control", str(info["run_id"]), command, timeout=30)
