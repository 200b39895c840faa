"""Provides the ``tui-trainer`` command line: Typer commands (thin), the headless run
display, ``verify`` and ``doctor``. torch loads only inside commands that train."""

from __future__ import annotations

from tui_trainer.cli import preset_commands, run_commands  # noqa: F401 (they register)
from tui_trainer.cli.root import app, main

__all__ = ["app", "main"]
