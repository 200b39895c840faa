"""Provides tui-trainer: watch a deep network learn in the terminal.

Importing this package is cheap: torch, Textual and Typer load only when used.
``tui_trainer.watch(model)`` (``tui_trainer.monitor``) loads torch when first looked up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui_trainer.monitor import Monitor, watch

__version__ = "0.1.0"
__all__ = ["Monitor", "__version__", "watch"]


def __getattr__(name: str) -> Any:
    if name in ("watch", "Monitor"):
        from tui_trainer import monitor

        return getattr(monitor, name)
    raise AttributeError(f"module 'tui_trainer' has no attribute {name!r}")
