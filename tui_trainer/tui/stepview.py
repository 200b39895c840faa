"""Provides the step axis a dashboard's charts share: a zoom window, panning, and the
inspect cursor's neighbours (plain Python, no Textual).

The window is kept as fractions of the runs' step extent, so a zoomed view of a live run
keeps its place as the run grows; ``steps`` turns it into the steps a chart draws.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from tui_trainer.tui.series import CurveData

__all__ = ["MIN_SPAN", "StepWindow", "extent", "snap_step"]

MIN_SPAN = 1 / 1024  # the deepest zoom: a thousandth of the run


@dataclass(frozen=True)
class StepWindow:
    """The part of the step axis shown, as fractions ``lo`` < ``hi`` of the extent."""

    lo: float = 0.0
    hi: float = 1.0

    @property
    def full(self) -> bool:
        return self.lo <= 0.0 and self.hi >= 1.0

    def zoom(self, factor: float, center: float | None = None) -> StepWindow:
        """Zoom in (``factor`` > 1) or out around ``center`` (a fraction; default the middle)."""
        span = min(1.0, max(MIN_SPAN, (self.hi - self.lo) / factor))
        mid = (self.lo + self.hi) / 2 if center is None else center
        share = (mid - self.lo) / (self.hi - self.lo) if self.hi > self.lo else 0.5
        return _clamped(mid - span * share, span)

    def pan(self, by: float) -> StepWindow:
        """Move by ``by`` spans (negative: towards the start), stopping at the ends."""
        span = self.hi - self.lo
        return _clamped(self.lo + by * span, span)

    def steps(self, x0: float, x1: float) -> tuple[float, float] | None:
        """The steps shown of the extent ``x0``..``x1``; None for all of them."""
        if self.full:
            return None
        width = x1 - x0
        return x0 + self.lo * width, x0 + self.hi * width

    def fraction(self, step: float, x0: float, x1: float) -> float:
        """Where ``step`` lies in the extent, as a fraction."""
        return (step - x0) / (x1 - x0) if x1 > x0 else 0.0


def _clamped(lo: float, span: float) -> StepWindow:
    lo = min(max(lo, 0.0), 1.0 - span)
    return StepWindow(lo, lo + span)


def extent(curves: Iterable[CurveData]) -> tuple[int, int] | None:
    """The first and last step of any of ``curves`` (None when none has a point)."""
    firsts, lasts = [], []
    for d in curves:
        if d.steps:
            firsts.append(d.steps[0])
            lasts.append(max(d.steps[-1], d.end))
    return (min(firsts), max(lasts)) if firsts else None


def snap_step(curves: Iterable[CurveData], step: float, direction: int = 0) -> int | None:
    """The recorded step (bucket start) nearest ``step`` in any curve; ``direction`` 1 or -1:
    the nearest strictly after or before it. None when there is no such step."""
    best: int | None = None
    for d in curves:
        steps = d.steps
        if not steps:
            continue
        i = bisect_right(steps, step)  # the first step after ``step``
        if direction > 0:
            cands = steps[i : i + 1]
        elif direction < 0:
            k = bisect_left(steps, step) - 1  # the last step before it
            cands = steps[k : k + 1] if k >= 0 else ()
        else:
            cands = steps[max(i - 1, 0) : i + 1]
        for c in cands:
            if best is None or abs(c - step) < abs(best - step):
                best = c
    return best
