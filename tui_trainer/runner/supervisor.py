"""Provides RunSupervisor: the training children one face started, from launch to the end.

The app (and any other face) asks it to start a preset's variants, to watch each child
until it ends, to send control rows, and on quit to stop them all and wait. Blocking calls
take a ``cancelled`` callable, so a UI can run them in its worker threads; nothing here
imports a UI package.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from tui_trainer.config import RunConfig, find_preset
from tui_trainer.config.preflight import check_inputs
from tui_trainer.runner.process import RunProcess, child_threads, launch
from tui_trainer.store import send_control
from tui_trainer.text import first_line

__all__ = ["STOP_WAIT_S", "SUPERVISE_S", "RunSupervisor"]

SUPERVISE_S = 0.25  # seconds between polls of a child
STOP_WAIT_S = 10.0  # how long a stop may take (a checkpoint) before the child is terminated


class RunSupervisor:
    """Training children started by one face, by run directory."""

    def __init__(
        self,
        runs_dir: str | os.PathLike[str] | None = None,
        presets_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.runs_dir, self.presets_dir = runs_dir, presets_dir
        self.processes: dict[Path, RunProcess] = {}
        self.labels: dict[Path, str] = {}

    def start(
        self, preset: str, variants: list[str | None], overrides: list[str]
    ) -> list[RunProcess]:
        """Check every variant's config, then launch one child each, sharing the cores.

        Raises ConfigError / StoreError / OSError (one-line messages) before any child
        starts when a config is bad."""
        found = find_preset(preset, self.presets_dir)
        return self.start_configs([found.resolve(v, overrides) for v in variants])

    def start_configs(self, configs: list[RunConfig]) -> list[RunProcess]:
        """Launch one child per resolved config, sharing ``cores - 1`` torch threads.

        The children are in their own sessions: they outlive this process and its
        terminal (the app's "leave running", ``tui-trainer run --detach``)."""
        for cfg in configs:  # data files and factories: refused before any child starts
            check_inputs(cfg)
        threads = max(1, child_threads() // len(configs))
        started = []
        for cfg in configs:
            process = launch(cfg, self.runs_dir, threads=threads)
            self.adopt(process, cfg.label)
            started.append(process)
        return started

    def adopt(self, process: RunProcess, label: str = "") -> None:
        """Supervise a child started elsewhere."""
        self.processes[process.run_dir] = process
        self.labels[process.run_dir] = label or process.run_dir.name

    def label(self, run_dir: Path) -> str:
        return self.labels.get(run_dir, run_dir.name)

    def wait_for_end(
        self, process: RunProcess, cancelled: Callable[[], bool] = lambda: False
    ) -> tuple[int | None, str]:
        """Block until the child ends: (exit code, why its run could not be marked crashed).

        RunProcess.poll marks a run that died live as crashed; if marking fails (a locked
        or vanished store) the child has still ended, and the error says why it is unmarked.
        (None, "") when cancelled first."""
        while not cancelled():
            try:
                code = process.poll()
            except Exception as exc:  # marking failed: it still ended
                return process.returncode, first_line(exc)
            if code is not None:
                return code, ""
            time.sleep(SUPERVISE_S)
        return None, ""

    def forget(self, run_dir: Path) -> None:
        self.processes.pop(run_dir, None)

    def live(self) -> list[RunProcess]:
        return [p for p in self.processes.values() if p.alive()]

    @staticmethod
    def send(run_dir: Path, command: str) -> None:
        """Write a control row (the trainer honours it within ~0.2 s)."""
        send_control(run_dir, command)

    def stop_all(self, processes: list[RunProcess] | None = None) -> None:
        """Ask each child to checkpoint and stop; terminate those not done in STOP_WAIT_S."""
        processes = self.live() if processes is None else processes
        for process in processes:
            try:
                send_control(process.run_dir, "stop")
            except Exception:  # the store is gone: terminate instead
                process.terminate()
        deadline = time.monotonic() + STOP_WAIT_S
        for process in processes:
            while process.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if process.alive():
                process.terminate()
