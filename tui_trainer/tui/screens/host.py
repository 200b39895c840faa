"""Provides HostScreen: ask for a box to list runs of (an ssh destination or alias)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

__all__ = ["HostScreen"]


class HostScreen(ModalScreen[str | None]):
    """One line: the host (``user@box``, or an alias of your ssh config); escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Add a box: its runs join the list (read over ssh)", classes="question")
            yield Input(placeholder="user@gpu-box or an ssh alias", id="host")
            yield Static(
                "tui-trainer there: $TUI_TRAINER_REMOTE_CMD, or --remote-cmd on tui-trainer",
                classes="detail",
            )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
