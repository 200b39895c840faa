"""Provides the small modal questions: ConfirmScreen (yes/no) and QuitScreen (runs live)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

__all__ = ["ConfirmScreen", "QuitScreen"]


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; y/enter answers yes, n/escape answers no."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question, self.detail = question, detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="question")
            if self.detail:
                yield Static(self.detail, classes="detail")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class QuitScreen(ModalScreen[str]):
    """Runs started here still train: stop them, leave them running, or stay."""

    BINDINGS = [
        Binding("s", "answer('stop')", "stop them"),
        Binding("l", "answer('leave')", "leave running"),
        Binding("escape,c", "answer('cancel')", "cancel"),
    ]

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def compose(self) -> ComposeResult:
        n = len(self.names)
        shown = ", ".join(self.names[:3]) + (f" and {n - 3} more" if n > 3 else "")
        with Vertical(classes="dialog"):
            runs = f"{n} run{'s' if n > 1 else ''}"
            yield Static(f"{runs} still training: {shown}", classes="question")
            yield Static(
                "Stop them (each saves a checkpoint), or leave them running: "
                "`tui-trainer attach latest` finds them again.",
                classes="detail",
            )
            with Horizontal(classes="buttons"):
                yield Button("Stop and quit (s)", id="stop", variant="error")
                yield Button("Leave running (l)", id="leave", variant="warning")
                yield Button("Cancel (esc)", id="cancel", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_answer(self, choice: str) -> None:
        self.dismiss(choice)
