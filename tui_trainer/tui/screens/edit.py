"""Provides EditScreen: choose variants and type overrides before training a preset.

Overrides are ``key=value`` items separated by spaces (``optim.lr=0.01 train.epochs=5``),
checked as the user types by resolving the preset exactly as ``tui-trainer run --set``
would; Enter starts only when every chosen variant resolves.
"""

from __future__ import annotations

import shlex

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from tui_trainer.config import ConfigError, PresetFile
from tui_trainer.config.preflight import check_inputs
from tui_trainer.text import first_line
from tui_trainer.tui.messages import StartRequested

__all__ = ["EditScreen", "parse_overrides"]

ALL = "__all__"
HINT_KEYS = (
    ("optim.lr", lambda c: c.optim.lr),
    ("train.epochs", lambda c: c.train.epochs),
    ("train.max_steps", lambda c: c.train.max_steps),
    ("data.batch_size", lambda c: c.data.batch_size),
    ("train.device", lambda c: c.train.device),
    ("probe.every", lambda c: c.probe.every),
    ("train.seed", lambda c: c.train.seed),
)


def parse_overrides(text: str) -> list[str]:
    """Split the overrides field into ``key=value`` items (quotes group a value)."""
    try:
        items = shlex.split(text.replace(",", " "))
    except ValueError as exc:
        raise ConfigError(f"overrides: {exc}") from None
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{item}: expected key=value (e.g. optim.lr=0.01)")
    return items


class EditScreen(ModalScreen[StartRequested | None]):
    """Variants and ``--set`` overrides for one preset."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, name: str, preset: PresetFile) -> None:
        super().__init__()
        self.preset_name, self.preset = name, preset
        self.request: StartRequested | None = None

    def compose(self) -> ComposeResult:
        cfg = self.preset.resolve()
        hints = Text("keys: ", "dim")
        for key, get in HINT_KEYS:
            hints.append(f"{key}=", "dim")
            hints.append(f"{get(cfg)}  ", "cyan")
        with Vertical(classes="dialog edit"):
            yield Label(f"Train {self.preset_name}", classes="question")
            names = self.preset.variant_names
            if names:
                options = [("all variants, side by side", ALL)] + [(v, v) for v in names]
                yield Select(options, value=ALL, allow_blank=False, id="variant")
            yield Input(placeholder="overrides, e.g. optim.lr=0.01 train.max_steps=2000", id="sets")
            yield Static(hints, id="hints")
            yield Static(id="check")
            with Horizontal(classes="buttons"):
                yield Button("Train (enter)", id="start", variant="success")
                yield Button("Cancel (esc)", id="cancel", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#sets", Input).focus()
        self.validate()

    def variants(self) -> list[str | None]:
        names = self.preset.variant_names
        if not names:
            return [None]
        value = self.query_one("#variant", Select).value
        return list(names) if value == ALL else [str(value)]

    @on(Input.Changed)
    @on(Select.Changed)
    def validate(self) -> None:
        check = self.query_one("#check", Static)
        try:
            sets = parse_overrides(self.query_one("#sets", Input).value)
            variants = self.variants()
            configs = [self.preset.resolve(v, sets) for v in variants]
            for cfg in configs:
                check_inputs(cfg)  # data files and a factory's module, before a child starts
        except ConfigError as exc:
            self.request = None
            message = first_line(exc).removeprefix(f"{self.preset.path}: ")
            check.update(Text(f"✗ {message}", "bold red"))
            return
        self.request = StartRequested(self.preset_name, variants, sets)
        t = configs[0].train
        steps = f"{t.max_steps} steps" if t.max_steps else f"{t.epochs} epochs"
        n = len(configs)
        check.update(Text(f"✓ {n} run{'s' if n > 1 else ''}, {steps} each", "green"))

    @on(Input.Submitted)
    @on(Button.Pressed, "#start")
    def start(self) -> None:
        self.validate()
        if self.request is None:
            self.notify("fix the overrides first", severity="error")
            return
        self.dismiss(self.request)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
