"""Provides the end of a watched run that its script did not end: at interpreter exit the
run is ``finished``, after an uncaught exception ``crashed`` (``stopped`` for Ctrl-C).

One ``atexit`` handler and one ``sys.excepthook`` wrapper for the process, installed with
the first monitor; the previous hook still runs (and prints the traceback)."""

from __future__ import annotations

import atexit
import sys
from typing import Any

__all__ = ["register", "unregister"]

_live: list[Any] = []
_installed = False


def register(mon: Any) -> None:
    global _installed
    _live.append(mon)
    if not _installed:
        _installed = True
        atexit.register(_at_exit)
        previous = sys.excepthook

        def excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
            for m in list(_live):
                try:
                    if isinstance(exc, KeyboardInterrupt):
                        m.finish("stopped", "interrupted")
                    else:
                        m.crashed(exc.with_traceback(tb))
                except Exception:  # noqa: S110 - never hide the script's own exception
                    pass
            previous(kind, exc, tb)

        sys.excepthook = excepthook


def unregister(mon: Any) -> None:
    if mon in _live:
        _live.remove(mon)


def _at_exit() -> None:
    for m in list(_live):
        try:
            m.finish()
        except Exception:  # noqa: S110 - the interpreter is exiting
            pass
