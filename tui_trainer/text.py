"""Provides the one-line texts every layer shows alike: a run's label, an error's first line.

Standard library only, imported by the config, the engine, the store's readers and the
faces, so that "preset/variant" and "what went wrong" read the same everywhere.
"""

from __future__ import annotations

import re

__all__ = ["clean_line", "first_line", "run_label"]

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def run_label(preset: str, variant: str | None = "") -> str:
    """``preset/variant``, or the preset alone for a preset without variants."""
    return f"{preset}/{variant}" if variant else preset


def first_line(exc: BaseException, with_type: bool = False) -> str:
    """The first line of an exception's message, else its type's name.

    ``with_type`` prefixes the type (``ValueError: ...``), for errors that are not the
    project's own one-line messages (a crash in training, a user's factory)."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text}" if with_type else text


def clean_line(line: str) -> str:
    """One printed line as a log shows it: no terminal escape sequences, and after a
    carriage return only the line's last state (a progress bar redrawn in place)."""
    line = _ANSI.sub("", line)
    if "\r" in line:
        parts = [p for p in line.split("\r") if p]
        line = parts[-1] if parts else ""
    return line
