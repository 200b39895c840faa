"""Provides ``python -m tui_trainer``."""

from tui_trainer.cli import main

main()
