"""Provides LogTail: follows a growing text file (a run's output.log), appended bytes only.

Plain Python (no Textual). Each ``read`` stats the file and reads only the bytes added
since the last one; the first read starts at most ``start_bytes`` from the end, so a
week-long log opens at once. A file that shrank (rewritten, truncated) is read again from
its start and the caller is told to forget what it had. Whole lines only: a line still
being written waits for its newline.
"""

from __future__ import annotations

import os
from pathlib import Path

from tui_trainer.text import clean_line

__all__ = ["LogTail"]

START_BYTES = 256 * 1024  # the first read: the last 256 KiB of the file
READ_BYTES = 1024 * 1024  # at most this much per read: a huge burst is read in slices


class LogTail:
    """The lines appended to ``path`` since the last ``read``."""

    def __init__(self, path: Path, start_bytes: int = START_BYTES) -> None:
        self.path = Path(path)
        self.start_bytes = start_bytes
        self.offset: int | None = None  # bytes consumed; None before the first read
        self.partial = b""
        self.skipped = 0  # bytes of the file's start left out by the first read
        self._mid_line = False  # the first read began inside a line: drop that piece

    def read(self) -> tuple[list[str], bool]:
        """(new whole lines, reset): ``reset`` when the file shrank and is read anew."""
        try:
            size = os.stat(self.path).st_size
        except OSError:  # not there (yet): a run that printed nothing
            return [], False
        reset = False
        if self.offset is None:
            self.offset = self.skipped = max(0, size - self.start_bytes)
            self._mid_line = self.skipped > 0
        elif size < self.offset:
            self.offset, self.partial, self.skipped, reset = 0, b"", 0, True
            self._mid_line = False
        if size == self.offset:
            return [], reset
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(min(size - self.offset, READ_BYTES))
        except OSError:
            return [], reset
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        if self._mid_line and lines:
            lines, self._mid_line = lines[1:], False
        text = [clean_line(raw.decode("utf-8", errors="replace")) for raw in lines]
        return text, reset

    @property
    def more(self) -> bool:
        """More bytes are waiting than the last read took (a burst read in slices)."""
        try:
            return self.offset is not None and os.stat(self.path).st_size > self.offset
        except OSError:
            return False
