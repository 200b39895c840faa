"""Provides RunsScreen: past and live runs from the store; open, compare, stop, delete."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui_trainer.store import LIVE_STATUSES, RunInfo, list_runs, runs_root
from tui_trainer.tui.fmt import STATUS_ICON, STATUS_STYLE, fmt_num
from tui_trainer.tui.messages import RunsListed
from tui_trainer.tui.screens.confirm import ConfirmScreen

__all__ = ["RunsScreen"]

LIST_S = 2.0


class RunsScreen(Screen[None]):
    """Every run under the runs directory, newest first, refreshed every few seconds."""

    BINDINGS = [
        Binding("question_mark", "app.help", "help"),
        Binding("enter", "open", "open", priority=True),
        Binding("space", "mark", "mark"),
        Binding("c", "compare", "compare marked"),
        Binding("s", "stop", "stop"),
        Binding("d", "delete", "delete"),
        Binding("escape", "app.pop_screen", "back"),
    ]

    def __init__(self, runs_dir: str | None = None) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.runs: dict[str, RunInfo] = {}
        self.marked: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static(id="runs-title")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        # the run id last: it repeats preset and variant, and a narrow terminal cuts it
        for label in ("", "preset", "variant", "status", "step", "best", "created", "run"):
            table.add_column(label, key=label or "mark")
        self.query_one("#runs-title", Static).update(
            Text(f"runs in {runs_root(self.runs_dir)}", "bold")
        )
        self.list_runs()
        self.set_interval(LIST_S, self.list_runs)
        table.focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="list")
    def list_runs(self) -> None:
        self.post_message(RunsListed(list_runs(self.runs_dir)))

    @on(RunsListed)
    def _listed(self, message: RunsListed) -> None:
        table = self.query_one(DataTable)
        keep = None
        if table.row_count and table.cursor_row is not None:
            keep = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        self.runs = {r.run_id: r for r in message.runs}
        self.marked &= set(self.runs)
        table.clear()
        for r in message.runs:
            best = ", ".join(f"{k}={fmt_num(v)}" for k, v in r.best.items() if k != "step")
            table.add_row(
                Text("◆" if r.run_id in self.marked else " ", "bold magenta"),
                r.preset,
                r.variant,
                Text(f"{STATUS_ICON.get(r.status, '?')} {r.status}", STATUS_STYLE.get(r.status)),
                str(r.steps),
                best,
                time.strftime("%m-%d %H:%M", time.localtime(r.created)),
                Text(r.run_id, "dim"),
                key=r.run_id,
            )
        if keep in self.runs:
            table.move_cursor(row=table.get_row_index(keep))
        if not message.runs:
            self.query_one("#runs-title", Static).update(
                Text(f"no runs in {runs_root(self.runs_dir)} yet: pick a preset to train", "dim")
            )

    def _current(self) -> RunInfo | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.runs.get(str(key))

    def action_open(self) -> None:
        run = self._current()
        if run is not None:
            self.app.open_dashboard([run.run_dir])  # type: ignore[attr-defined]

    def action_mark(self) -> None:
        run = self._current()
        if run is None:
            return
        self.marked ^= {run.run_id}
        table = self.query_one(DataTable)
        mark = Text("◆" if run.run_id in self.marked else " ", "bold magenta")
        table.update_cell(run.run_id, "mark", mark)
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_compare(self) -> None:
        dirs = [self.runs[r].run_dir for r in self.runs if r in self.marked]
        if len(dirs) < 2:
            self.notify("mark two or more runs with space, then press c", severity="warning")
            return
        self.app.open_dashboard(dirs)  # type: ignore[attr-defined]

    def action_stop(self) -> None:
        run = self._current()
        if run is None or run.status not in LIVE_STATUSES:
            self.notify("that run is not training", severity="warning")
            return
        self.app.send_control(run.run_dir, "stop")  # type: ignore[attr-defined]

    def action_delete(self) -> None:
        run = self._current()
        if run is None:
            return
        if run.status in LIVE_STATUSES:
            self.notify("that run is still training: stop it first (s)", severity="error")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.delete(run.run_dir)

        self.app.push_screen(
            ConfirmScreen(f"Delete {run.run_id}?", "Its store, checkpoints and log are removed."),
            answer,
        )

    @work(thread=True, exit_on_error=False, group="delete")
    def delete(self, run_dir: Path) -> None:
        root = runs_root(self.runs_dir).resolve()
        target = run_dir.resolve()
        if target.parent != root or not (target / "run.db").is_file():
            self.app.call_from_thread(self.notify, f"refusing to delete {target}", severity="error")
            return
        shutil.rmtree(target, ignore_errors=True)
        self.post_message(RunsListed(list_runs(self.runs_dir)))
