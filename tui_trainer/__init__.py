"""Provides tui-trainer: watch a deep network learn in the terminal.

Importing this package is cheap: torch, Textual and Typer load only when used.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
