"""Provides RunsScreen: past and live runs from the store, and from the app's remote boxes
(``tui-trainer --ssh HOST``; ``a`` adds one); open, compare (across boxes too), stop, delete."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui_trainer.store import LIVE_STATUSES, RunInfo, StoreError, list_runs, runs_root
from tui_trainer.store.runs import delete_run
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
        Binding("a", "add_box", "add a box"),
        Binding("escape", "app.pop_screen", "back"),
    ]

    def __init__(self, runs_dir: str | None = None) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.runs: dict[str, RunInfo] = {}
        self.hosts: dict[str, str] = {}  # row key -> the box a remote run is on
        self._boxed = False  # the table has a "box" column
        self.marked: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static(id="runs-title")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        self._set_columns(table)
        self.query_one("#runs-title", Static).update(
            Text(f"runs in {runs_root(self.runs_dir)}", "bold")
        )
        self.list_runs()
        self.set_interval(LIST_S, self.list_runs)
        table.focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="list")
    def list_runs(self) -> None:
        remote, errors = self.app.boxes.runs()  # type: ignore[attr-defined]
        self.post_message(RunsListed(list_runs(self.runs_dir), remote, errors))

    @on(RunsListed)
    def _listed(self, message: RunsListed) -> None:
        table = self.query_one(DataTable)
        keep = None
        if table.row_count and table.cursor_row is not None:
            keep = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        rows = [("", r) for r in message.runs] + message.remote
        self.runs = {_key(host, r): r for host, r in rows}
        self.hosts = {_key(host, r): host for host, r in rows if host}
        self.marked &= set(self.runs)
        for error in message.errors:
            self.notify(error, severity="error")
        boxed = bool(self.app.boxes.remotes)  # type: ignore[attr-defined]
        if boxed != self._boxed:  # a box was added: the "box" column joins
            table.clear(columns=True)
            self._set_columns(table)
        else:
            table.clear()
        for host, r in rows:
            key = _key(host, r)
            best = ", ".join(f"{k}={fmt_num(v)}" for k, v in r.best.items() if k != "step")
            box = [Text(host or "here", "cyan" if host else "dim")] if self._boxed else []
            table.add_row(
                Text("◆" if key in self.marked else " ", "bold magenta"),
                *box,
                r.preset,
                r.variant,
                Text(f"{STATUS_ICON.get(r.status, '?')} {r.status}", STATUS_STYLE.get(r.status)),
                str(r.steps),
                best,
                time.strftime("%m-%d %H:%M", time.localtime(r.created)),
                Text(r.run_id, "dim"),
                key=key,
            )
        if keep in self.runs:
            table.move_cursor(row=table.get_row_index(keep))
        if not rows:
            self.query_one("#runs-title", Static).update(
                Text(f"no runs in {runs_root(self.runs_dir)} yet: pick a preset to train", "dim")
            )

    def _set_columns(self, table: DataTable) -> None:
        """The columns; a "box" column once the app lists other boxes."""
        self._boxed = bool(self.app.boxes.remotes)  # type: ignore[attr-defined]
        # the run id last: it repeats preset and variant, and a narrow terminal cuts it
        labels = ["", *(["box"] if self._boxed else []), "preset", "variant", "status", "step"]
        for label in [*labels, "best", "created", "run"]:
            table.add_column(label, key=label or "mark")

    def _current_key(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def _current(self) -> RunInfo | None:
        key = self._current_key()
        return self.runs.get(key) if key is not None else None

    def action_open(self) -> None:
        key = self._current_key()
        if key in self.runs:
            self.open_runs([key])

    def action_mark(self) -> None:
        key = self._current_key()
        if key not in self.runs:
            return
        self.marked ^= {key}
        table = self.query_one(DataTable)
        table.update_cell(key, "mark", Text("◆" if key in self.marked else " ", "bold magenta"))
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_compare(self) -> None:
        keys = [k for k in self.runs if k in self.marked]
        if len(keys) < 2:
            self.notify("mark two or more runs with space, then press c", severity="warning")
            return
        self.open_runs(keys)

    def open_runs(self, keys: list[str]) -> None:
        """Local runs at once; with a remote one, through its local copy (a worker)."""
        if any(self.hosts.get(k) for k in keys):
            self.open_remote(keys)
        else:
            self.app.open_dashboard([self.runs[k].run_dir for k in keys])  # type: ignore[attr-defined]

    @work(thread=True, exit_on_error=False, group="open")
    def open_remote(self, keys: list[str]) -> None:
        dirs = []
        for key in keys:
            host = self.hosts.get(key)
            if not host:
                dirs.append(self.runs[key].run_dir)
                continue
            self.app.call_from_thread(self.notify, f"reading {key} over ssh…", timeout=3)
            try:
                dirs.append(self.app.boxes.open(host, self.runs[key].run_id))  # type: ignore[attr-defined]
            except Exception as exc:  # RemoteError: one line; nothing else opens
                self.app.call_from_thread(self.notify, str(exc), severity="error")
                return
        self.app.call_from_thread(self.app.open_dashboard, dirs)  # type: ignore[attr-defined]

    def action_add_box(self) -> None:
        from tui_trainer.tui.screens.host import HostScreen

        def added(host: str | None) -> None:
            if host:
                try:
                    self.app.add_box(host)  # type: ignore[attr-defined]
                except ValueError as exc:
                    self.notify(str(exc), severity="error")
                    return
                self.notify(f"listing runs on {host}…", timeout=3)
                self.list_runs()

        self.app.push_screen(HostScreen(), added)

    def action_stop(self) -> None:
        key, run = self._current_key(), self._current()
        if run is None or run.status not in LIVE_STATUSES:
            self.notify("that run is not training", severity="warning")
            return
        host = self.hosts.get(key or "")
        if host:
            self.stop_remote(host, run.run_id)
            return
        self.app.send_control(run.run_dir, "stop")  # type: ignore[attr-defined]

    @work(thread=True, exit_on_error=False, group="control")
    def stop_remote(self, host: str, run_id: str) -> None:
        remote = self.app.boxes.get(host)  # type: ignore[attr-defined]
        try:
            remote.run("control", run_id, "stop", timeout=30)
        except Exception as exc:
            self.app.call_from_thread(self.notify, f"stop failed: {exc}", severity="error")
            return
        self.app.call_from_thread(self.notify, f"asked {run_id} on {host} to stop", timeout=3)

    def action_delete(self) -> None:
        run = self._current()
        if run is None:
            return
        if self.hosts.get(self._current_key() or ""):
            self.notify("a run on another box: delete it there", severity="warning")
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
        try:
            delete_run(target)
        except (OSError, StoreError) as exc:
            self.app.call_from_thread(self.notify, f"delete failed: {exc}", severity="error")
        self.post_message(RunsListed(list_runs(self.runs_dir)))


def _key(host: str, run: RunInfo) -> str:
    return f"{host}:{run.run_id}" if host else run.run_id
