"""Provides RunTabs: the runs of the dashboard's group, each in its curve colour."""

from __future__ import annotations

from rich.text import Text
from textual.events import Click
from textual.widgets import Static

from tui_trainer.tui.fmt import STATUS_ICON, STATUS_STYLE
from tui_trainer.tui.follow import RunSnapshot
from tui_trainer.tui.messages import TabClicked
from tui_trainer.tui.overlay import RUN_COLORS

__all__ = ["RunTabs"]


class RunTabs(Static):
    """One line: every run of the group; the selected one is reversed."""

    DEFAULT_CSS = """
    RunTabs { height: 1; }
    """

    spans: list[tuple[int, int]] = []  # the cells of each tab, for clicks

    def show(self, runs: list[tuple[str, RunSnapshot | None]], selected: int) -> None:
        text = Text()
        spans = []
        for i, (label, snap) in enumerate(runs):
            status = snap.status if snap is not None else "created"
            color = RUN_COLORS[i % len(RUN_COLORS)]
            part = Text(f" {label} ", style=f"bold {color}" + (" reverse" if i == selected else ""))
            start = text.cell_len
            text.append_text(part)
            spans.append((start, text.cell_len + 2))
            text.append(f"{STATUS_ICON.get(status, '?')} ", STATUS_STYLE.get(status, ""))
        if len(runs) > 1:
            text.append("  tab: next run", "dim")
        snap = runs[selected][1] if runs else None
        if snap is not None:
            text.append(f"  {snap.title}  " if snap.title else "  ", "italic")
            text.append(snap.run_id, "dim")
        self.spans = spans
        self.update(text)

    def on_click(self, event: Click) -> None:
        """A click on a run's tab selects it."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        for i, (start, end) in enumerate(self.spans):
            if start <= offset.x < end:
                self.post_message(TabClicked(i))
                return
