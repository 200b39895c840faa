"""Provides the one-line texts every layer shows alike: a run's label, an error's first line.

Standard library only, imported by the config, the engine, the store's readers and the
faces, so that "preset/variant" and "what went wrong" read the same everywhere.
"""

from __future__ import annotations

__all__ = ["first_line", "run_label"]


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
