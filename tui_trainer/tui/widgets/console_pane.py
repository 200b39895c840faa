"""Provides ConsolePane: the tail of a run's output.log, live, scrollable and searchable.

A thread worker follows the file (``LogTail``: it stats the file and reads appended bytes
only) while the pane is shown, and posts the new lines; ``/`` finds a text, ``n`` and
``N`` go to the next and previous match.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from tui_trainer.tui.follow import RunSnapshot
from tui_trainer.tui.logtail import LogTail
from tui_trainer.tui.messages import ConsoleLines
from tui_trainer.tui.widgets.console_view import ConsoleView

__all__ = ["ConsolePane"]

POLL_S = 0.25  # output.log is checked four times a second while the pane is shown


class ConsolePane(Vertical):
    """The header line, the lines of output.log, and the find box (``/``)."""

    DEFAULT_CSS = """
    ConsolePane { height: 1fr; }
    ConsolePane #console-head { height: 1; }
    ConsolePane #console-find { height: 1; border: none; padding: 0 1; display: none; }
    ConsolePane.-finding #console-find { display: block; }
    """
    BINDINGS = [
        Binding("slash", "find", "find in log"),
        Binding("n", "step(1)", "next match"),
        Binding("N", "step(-1)", "previous match"),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "console [dim](o: close)[/]"
        self.run_dir: Path | None = None
        self.missing = False
        self.remote = False
        self.watched = False  # a script's own loop (tui_trainer.watch): its output is its own
        self.generation = 0  # bumped at each start: lines of an older worker are dropped

    def compose(self) -> ComposeResult:
        yield Static(id="console-head")
        yield ConsoleView(id="console-view")
        yield Input(placeholder="find (enter: go, escape: cancel)", id="console-find")

    @property
    def view(self) -> ConsoleView:
        return self.query_one(ConsoleView)

    def show(self, snap: RunSnapshot) -> None:
        """Follow ``snap``'s run (a new run: start over)."""
        if snap.run_dir == self.run_dir:
            return
        self.run_dir, self.missing, self.remote = snap.run_dir, False, bool(snap.remote)
        self.watched = snap.kind == "watch"
        self.view.clear()
        self.generation += 1
        self.tail(snap.run_dir, self.generation)
        self._head()

    def stop(self) -> None:
        """The pane is hidden: stop reading the file (``show`` starts again)."""
        self.workers.cancel_group(self, "console")
        self.run_dir = None

    @work(thread=True, exclusive=True, exit_on_error=False, group="console")
    def tail(self, run_dir: Path, generation: int) -> None:
        worker = get_current_worker()
        log = LogTail(run_dir / "output.log")
        missing: bool | None = None
        while not worker.is_cancelled:
            lines, reset = log.read()
            gone = not (run_dir / "output.log").exists()
            if lines or reset or gone != missing:
                missing = gone
                self.post_message(ConsoleLines(run_dir, lines, reset, gone, generation))
            if not log.more:
                time.sleep(POLL_S)

    @on(ConsoleLines)
    def _lines(self, message: ConsoleLines) -> None:
        message.stop()
        if message.run_dir != self.run_dir or message.generation != self.generation:
            return  # a worker started before (another run, or this one shown before)
        view = self.view
        if message.reset:
            view.clear()
        self.missing = message.missing
        view.append(message.lines)
        self.call_after_refresh(self._head)  # after the view has scrolled to its new end

    def _head(self) -> None:
        view = self.view
        text = Text("output.log", "bold")
        if self.missing:
            why = (
                "a copy of a remote run has no log here"
                if self.remote
                else "a watched script prints to its own terminal"
                if self.watched
                else "nothing printed yet"
            )
            text.append(f"  (none: {why})", "dim")
        else:
            n = len(view.lines)
            text.append(f"  {n} line{'' if n == 1 else 's'}", "dim")
            following = view.scroll_y >= view.max_scroll_y
            text.append("  following the end" if following else "  end: follow", "dim")
        if view.query_text:
            n = len(view.matches)
            at = f"{view.current + 1}/{n}" if n else "no match"
            text.append(f"  find {view.query_text!r}: {at}", "yellow" if n else "red")
            text.append("  n/N: next/previous", "dim")
        else:
            text.append("  /: find", "dim")
        self.query_one("#console-head", Static).update(text)

    # -- finding --------------------------------------------------------------------
    def action_find(self) -> None:
        self.add_class("-finding")
        box = self.query_one("#console-find", Input)
        box.value = self.view.query_text
        box.focus()

    @on(Input.Submitted, "#console-find")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.remove_class("-finding")
        self.view.find(event.value)
        self.view.focus()
        self._head()

    def on_key(self, event) -> None:  # noqa: ANN001 (textual.events.Key)
        if event.key == "escape" and self.has_class("-finding"):
            event.stop()
            event.prevent_default()
            self.remove_class("-finding")
            self.view.focus()

    def action_step(self, delta: int) -> None:
        self.view.step(delta)
        self._head()

    def focus_view(self) -> None:
        self.view.focus()
