"""Provides stop_on_signals: Ctrl+C, SIGTERM and SIGHUP end training cleanly."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["stop_on_signals"]


@contextmanager
def stop_on_signals(trainer: Any, ending: bool = False) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP only set ``trainer.stop_requested``, which the loop reads
    between steps (and between pre-training batches, and while paused): the trainer then
    checkpoints a whole step and stops. A handler never raises, so no signal can tear a
    step, an optimizer update or a store transaction, and a second Ctrl+C cannot replace the
    last good checkpoint with a half-applied one; it only repeats the request.

    ``ending``: the process ends when training does (a headless command, the training
    child): after a signal's stop, further signals stay ignored, so a second Ctrl+C during
    its last words (the store's close, the summary) is no KeyboardInterrupt, and the exit
    code stays the documented one. Otherwise the old handlers come back."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if not trainer.stop_requested:
            trainer.stop_requested = f"signal {signal.Signals(signum).name}"

    sigs = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):
        sigs.append(signal.SIGHUP)
    old = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield
    finally:
        keep_ignoring = ending and bool(trainer.stop_requested)
        for s, h in old.items():
            signal.signal(s, signal.SIG_IGN if keep_ignoring else h)
