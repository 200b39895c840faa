"""Provides TextLines: a widget drawn line by line (Textual's Line API) from Rich Text.

The charts and the heatmap are thousands of styled cells redrawn several times a second.
Returning them from ``render()`` sends them through Textual's content pipeline (markup,
wrapping) on every refresh; here they become Strips once per data change and are cached.
"""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

__all__ = ["TextLines"]


class TextLines(Widget):
    """Subclasses implement ``lines(width, height)``; call ``invalidate()`` on new data."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._strips: list[Strip] | None = None
        self._strips_size = Size(0, 0)

    def lines(self, width: int, height: int) -> list[Text]:
        raise NotImplementedError

    def invalidate(self) -> None:
        self._strips = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        size = self.size
        base = self.visual_style.rich_style
        if self._strips is None or self._strips_size != size:
            console = self.app.console
            self._strips = [
                Strip(list(text.render(console))).apply_style(base).adjust_cell_length(
                    size.width, base
                )
                for text in self.lines(size.width, size.height)[: size.height]
            ]
            self._strips_size = size
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(size.width, base)
