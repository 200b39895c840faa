"""Provides OverviewPane: a run's config, provenance, status history, checkpoints, and the
commands that repeat or continue it.

The files and the store are read in a thread worker (``read_overview``) when the pane is
shown or the run changes, and again every few seconds while the run is live.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui_trainer.text import first_line
from tui_trainer.tui.fmt import STATUS_STYLE, fmt_duration
from tui_trainer.tui.follow import RunSnapshot
from tui_trainer.tui.messages import OverviewReady
from tui_trainer.tui.overview import Overview, read_overview

__all__ = ["OverviewPane", "overview_renderable"]

REREAD_S = 3.0  # a live run's overview is read again this often while shown
VERSION_ORDER = ("python", "torch", "cuda", "cudnn", "gpu", "tui-trainer", "platform")


def _when(wall: object) -> str:
    if not isinstance(wall, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(wall)))


def _size(n: int) -> str:
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _grid() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def _about(o: Overview) -> Table:
    meta, cfg = o.meta, o.meta.get("config") or {}
    grid = _grid()
    grid.add_row("run", o.run_id)
    if cfg.get("claim") is not None:
        grid.add_row("claim", f"{cfg.get('claim')} ({cfg.get('section', '')})")
    if cfg.get("look_at"):
        grid.add_row("look at", str(cfg["look_at"]))
    grid.add_row("status", Text(o.status, STATUS_STYLE.get(o.status, "")))
    grid.add_row("host", f"{meta.get('host', '-')}  pid {meta.get('pid', '-')}")
    device = str(meta.get("device", "-"))
    name = str(meta.get("device_name", ""))
    grid.add_row("device", device + (f" ({name})" if name and name != device else ""))
    versions = dict(meta.get("versions") or {})
    if not versions and meta.get("torch_version"):
        versions["torch"] = meta["torch_version"]
    ordered = [k for k in VERSION_ORDER if k in versions] + sorted(
        set(versions) - set(VERSION_ORDER)
    )
    grid.add_row("versions", "  ".join(f"{k} {versions[k]}" for k in ordered) or "-")
    grid.add_row("started", _when(meta.get("started") or meta.get("created")))
    grid.add_row(
        "ended", _when(meta.get("ended")) if o.status not in ("running", "paused") else "-"
    )
    grid.add_row("duration", fmt_duration(o.duration_s))
    steps = f"{meta.get('step', 0)}/{meta.get('total_steps', '-')}"
    params = meta.get("params")
    grid.add_row("steps", steps + (f"  params {params:,}" if isinstance(params, int) else ""))
    return grid


def _history(o: Overview) -> Table:
    grid = _grid()
    for wall, step, data in o.statuses:
        status = str(data.get("status", ""))
        why = data.get("error") or data.get("reason") or ""
        if data.get("resumed"):
            why = why or "resumed"
        line = Text(f"step {step}  ", "dim")
        line.append(status, STATUS_STYLE.get(status, ""))
        if why:
            line.append(f"  {str(why).splitlines()[0]}")
        grid.add_row(_when(wall), line)
    return grid


def overview_renderable(o: Overview) -> RenderableType:
    cfg = o.meta.get("config") or {}
    label = "/".join(
        p for p in (str(o.meta.get("preset", "")), str(o.meta.get("variant", ""))) if p
    )
    parts: list[RenderableType] = [
        Text.assemble((label, "bold"), "  ", (str(cfg.get("title", "")), "italic"))
    ]
    parts += [_about(o), Text("\nstatus history", "bold"), _history(o)]
    parts.append(Text("\ncheckpoints", "bold"))
    if o.checkpoints:
        grid = _grid()
        for name, size, mtime in o.checkpoints:
            grid.add_row(name, f"{_size(size):>9}  {_when(mtime)}")
        parts.append(grid)
    else:
        parts.append(Text("none", "dim"))
    parts.append(Text("\nrepeat it", "bold"))
    for what, command in o.commands:
        parts += [Text(f"  {what}:", "dim"), Text(f"    {command}", "green")]
    parts.append(Text("\nconfig.toml (resolved)", "bold"))
    if o.config_toml.strip():
        parts.append(
            Syntax(o.config_toml.rstrip(), "toml", theme="ansi_dark", background_color="default")
        )
    else:
        parts.append(Text("no config.toml", "dim"))
    return Group(*parts)


class OverviewPane(VerticalScroll, can_focus=True):
    """What the run is: config, provenance, history, checkpoints, how to repeat it."""

    DEFAULT_CSS = """
    OverviewPane { padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "overview [dim](v: close)[/]"
        self.run_dir: Path | None = None
        self.overview: Overview | None = None
        self._read_at = 0.0

    def compose(self):  # noqa: ANN201
        yield Static(Text("reading…", "dim"), id="overview-body")

    def show(self, snap: RunSnapshot) -> None:
        now = time.monotonic()
        if snap.run_dir != self.run_dir or (snap.live and now - self._read_at >= REREAD_S):
            if snap.run_dir != self.run_dir:
                self.overview = None
            self.run_dir, self._read_at = snap.run_dir, now
            self.read(snap.run_dir)

    def stop(self) -> None:
        self.run_dir = None

    def focus_view(self) -> None:
        self.focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="overview")
    def read(self, run_dir: Path) -> None:
        try:
            self.post_message(OverviewReady(run_dir, read_overview(run_dir)))
        except Exception as exc:  # noqa: BLE001 (a store gone or locked: say so)
            self.post_message(OverviewReady(run_dir, None, first_line(exc)))

    @on(OverviewReady)
    def _ready(self, message: OverviewReady) -> None:
        message.stop()
        if message.run_dir != self.run_dir:
            return
        body = self.query_one("#overview-body", Static)
        if message.overview is None:
            body.update(Text(f"cannot read the run: {message.error}", "red"))
            return
        self.overview = message.overview
        body.update(overview_renderable(message.overview))
