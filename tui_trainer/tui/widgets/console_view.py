"""Provides ConsoleView: a long, growing list of log lines, scrollable, with found text lit.

A Line API widget (Textual's ScrollView): only the rows on screen are drawn, so a log of
tens of thousands of lines costs what a screenful does. It follows the end while it is
scrolled to the end; scrolled up, new lines arrive without moving what is read.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

__all__ = ["MAX_LINES", "ConsoleView"]

MAX_LINES = 20_000  # lines kept; older ones are dropped (the file keeps them)
_ERROR = re.compile(r"^(Traceback|\w*(Error|Exception)\b|error:)|^\s*raise\b")
_WARNING = re.compile(r"Warning\b|^warning:")


class ConsoleView(ScrollView, can_focus=True):
    """Lines, the matches of ``query`` highlighted, the ``current`` match's line lit."""

    DEFAULT_CSS = """
    ConsoleView { height: 1fr; }
    """
    BINDINGS = [
        Binding("home", "scroll_home", "top", show=False),
        Binding("end", "scroll_end", "end (follow)", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[str] = []
        self.query_text = ""
        self.matches: list[int] = []  # line numbers holding the query
        self.current = -1  # index into matches
        self._width = 0
        self._set_key: tuple[int, int] | None = None
        self._set: frozenset[int] = frozenset()

    # -- content --------------------------------------------------------------------
    def clear(self) -> None:
        self.lines, self.matches, self.current, self._width = [], [], -1, 0
        self._resize()
        self.scroll_to(0, 0, animate=False)

    def append(self, lines: list[str]) -> None:
        """Add lines at the end; keep following the end when the view is there."""
        if not lines:
            return
        at_end = self.scroll_y >= self.max_scroll_y
        lines = [line.expandtabs(4) for line in lines]
        first = len(self.lines)
        self.lines.extend(lines)
        self._width = max(self._width, max(len(line) for line in lines))
        if len(self.lines) > MAX_LINES + MAX_LINES // 10:
            self.lines = self.lines[-MAX_LINES:]
            self._find_all()
        elif self.query_text:
            q = self.query_text.lower()
            self.matches += [first + i for i, line in enumerate(lines) if q in line.lower()]
        self._resize()
        if at_end:
            self.scroll_end(animate=False)

    def _resize(self) -> None:
        self.virtual_size = Size(self._width + 1, len(self.lines))
        self.refresh()

    # -- finding --------------------------------------------------------------------
    def find(self, query: str) -> int:
        """Light every line holding ``query`` (case-insensitive) and go to the first match
        from the top of the view; returns the number of matching lines."""
        self.query_text = query
        self._find_all()
        top = int(self.scroll_y)
        after = [k for k, line in enumerate(self.matches) if line >= top]
        self.current = after[0] if after else (0 if self.matches else -1)
        self._show_current()
        return len(self.matches)

    def _find_all(self) -> None:
        q = self.query_text.lower()
        self.matches = [i for i, line in enumerate(self.lines) if q and q in line.lower()]
        self.current = min(self.current, len(self.matches) - 1)

    def step(self, delta: int) -> None:
        """The next (``delta`` 1) or previous (-1) match, wrapping around."""
        if not self.matches:
            return
        self.current = (self.current + delta) % len(self.matches)
        self._show_current()

    @property
    def current_line(self) -> int | None:
        return self.matches[self.current] if 0 <= self.current < len(self.matches) else None

    def _show_current(self) -> None:
        line = self.current_line
        if line is not None:
            height = self.scrollable_content_region.height
            self.scroll_to(y=max(0, line - height // 2), animate=False)
        self.refresh()

    # -- drawing --------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        i = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if i >= len(self.lines):
            return Strip.blank(width, base)
        line = self.lines[i]
        style = "red" if _ERROR.search(line) else "yellow" if _WARNING.search(line) else ""
        text = Text(line, style=style, no_wrap=True, end="")
        q = self.query_text
        if q and i in self._match_set():
            lit = "bold black on yellow" if i == self.current_line else "reverse"
            low, n = line.lower(), len(q)
            at = low.find(q.lower())
            while at >= 0:
                text.stylize(lit, at, at + n)
                at = low.find(q.lower(), at + n)
        strip = Strip(list(text.render(self.app.console)))
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_style(base)

    def _match_set(self) -> frozenset[int]:
        key = (id(self.matches), len(self.matches))
        if self._set_key != key:
            self._set_key, self._set = key, frozenset(self.matches)
        return self._set
