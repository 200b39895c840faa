"""Provides RunTabs: the runs of the dashboard's group, each in its curve colour."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui_trainer.tui.fmt import STATUS_ICON, STATUS_STYLE
from tui_trainer.tui.follow import RunSnapshot
from tui_trainer.tui.overlay import RUN_COLORS

__all__ = ["RunTabs"]



class RunTabs(Static):
    """One line: every run of the group; the selected one is reversed."""

    DEFAULT_CSS = """
    RunTabs { height: 1; }
    """

    def show(self, runs: list[tuple[str, RunSnapshot | None]], selected: int) -> None:
        text = Text()
        for i, (label, snap) in enumerate(runs):
            status = snap.status if snap is not None else "created"
            color = RUN_COLORS[i % len(RUN_COLORS)]
            part = Text(f" {label} ", style=f"bold {color}" + (" reverse" if i == selected else ""))
            text.append_text(part)
            text.append(f"{STATUS_ICON.get(status, '?')} ", STATUS_STYLE.get(status, ""))
        if len(runs) > 1:
            text.append("  tab: next run", "dim")
        snap = runs[selected][1] if runs else None
        if snap is not None:
            text.append(f"  {snap.title}  " if snap.title else "  ", "italic")
            text.append(snap.run_id, "dim")
        self.update(text)
