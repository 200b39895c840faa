"""Provides tee_output: what a headless run prints also goes, line by line, to output.log.

A training child's stdout and stderr *are* its ``output.log`` (runner.process.launch); an
in-process ``tui-trainer run`` keeps printing to its terminal and copies each complete line
of ``sys.stdout`` and ``sys.stderr`` (prints, warnings, tracebacks) into the run's log as
well, so the app's console pane shows a headless run like any other. Terminal control
sequences are dropped and a carriage return keeps the line's last state, so a progress
bar redrawn in place leaves its final form only. Standard library only.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from tui_trainer.text import clean_line

__all__ = ["OutputLog", "Tee", "clean_line", "tee_output"]

LOG_NAME = "output.log"


class OutputLog:
    """``output.log`` opened for appending; each stream's partial line is held until its
    newline, then written and flushed (a reader following the file sees whole lines)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._partial: dict[str, str] = {}
        self._lock = threading.Lock()

    def write(self, stream: str, text: str) -> None:
        if not text:
            return
        with self._lock:
            if self._file.closed:
                return
            pending = self._partial.get(stream, "") + text
            *lines, rest = pending.split("\n")
            self._partial[stream] = rest
            if lines:
                self._file.write("".join(clean_line(line) + "\n" for line in lines))
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            rest = [clean_line(p) for p in self._partial.values() if p]
            self._file.write("".join(line + "\n" for line in rest if line))
            self._partial.clear()
            self._file.close()


class Tee(io.TextIOBase):
    """A text stream that writes through to ``stream`` and copies into ``log``."""

    def __init__(self, stream: TextIO, log: OutputLog, name: str) -> None:
        super().__init__()
        self.stream, self.log, self.name = stream, log, name

    def write(self, text: str) -> int:
        self.stream.write(text)
        try:
            self.log.write(self.name, text)
        except (OSError, ValueError):  # a full disk: the terminal still gets every line
            pass
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextmanager
def tee_output(run_dir: Path) -> Iterator[OutputLog]:
    """Copy ``sys.stdout`` and ``sys.stderr`` into ``run_dir/output.log`` while inside.

    Installed innermost (inside a Rich live display, whose own redirection it wraps), so a
    print during training reaches both the terminal, above the bar, and the log.
    """
    log = OutputLog(Path(run_dir) / LOG_NAME)
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Tee(out, log, "stdout"), Tee(err, log, "stderr")
    try:
        yield log
    finally:
        sys.stdout, sys.stderr = out, err
        log.close()
