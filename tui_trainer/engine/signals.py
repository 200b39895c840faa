"""Provides stop_on_signals: Ctrl+C, SIGTERM and SIGHUP end training cleanly."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["stop_on_signals"]


@contextmanager
def stop_on_signals(trainer: Any) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP set ``trainer.stop_requested``: the trainer checkpoints
    and stops after the current step. A second SIGINT interrupts at once."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if trainer.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        trainer.stop_requested = f"signal {signal.Signals(signum).name}"

    sigs = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):
        sigs.append(signal.SIGHUP)
    old = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
