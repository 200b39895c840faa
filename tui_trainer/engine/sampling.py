"""Provides ProbeSchedule: which steps the probes sample, chosen to keep overhead in budget.

With ``every = "auto"`` it first samples every CALIBRATION_EVERY steps while timing plain
and sampled steps, then picks the smallest interval N for which the extra cost of one
sample, spread over N steps, stays under the budget (3% by default): see ``choose_every``.
The extra cost of a sample is measured against the plain steps just before it (the median
of the last few), and the estimates are medians of recent steps: a machine that slows down
or speeds up, or a burst of load from another process, moves both sides alike. A sample
also slows the AFTER_STEPS plain steps after it (caches, the allocator: on the CPU ~10% of
a digits-mlp step each); their excess counts in its cost, and they are not plain steps. On the CPU
it keeps timing and adapts (with hysteresis); on CUDA it synchronises only while
calibrating. Histogram steps (``histogram_every``) are sampled too, but never timed: they
cost more by design and are paid for separately.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque

import torch

__all__ = ["CALIBRATION_EVERY", "MAX_EVERY", "TARGET_SHARE", "ProbeSchedule", "choose_every"]

CALIBRATION_EVERY = 6  # a sample, its AFTER_STEPS, then plain steps
AFTER_STEPS = 2  # plain steps after a sample whose excess is the sample's
WARMUP_STEPS = 5  # the first steps pay for allocation and kernel selection: not timed
MIN_SAMPLED, MIN_PLAIN = 3, 7  # medians of this many steps decide the first interval
MAX_EVERY = 1000
PLAIN_WINDOW = 32  # recent plain steps kept: their median is the plain step time
PAIR_WINDOW = 8  # ... of which the last this many are what a sample is compared with
EXTRA_WINDOW = 9  # recent samples' extra costs kept: their median is the cost of a sample
HYSTERESIS = 0.25  # after calibration: change the interval only when off by more than this
# Aim at this share of the budget: step timings are noisy (medians of a few steps; on the
# shared 2-core benchmark machine two identical loops differed by 2-10%), and the
# calibration's samples come on top.
TARGET_SHARE = 2 / 3


def choose_every(t_plain: float, t_sampled: float, budget: float) -> int:
    """Smallest N with (t_sampled - t_plain) / (N * t_plain) <= TARGET_SHARE * budget, in
    [1, MAX_EVERY].

    Sampling every N steps costs one extra (t_sampled - t_plain) per N plain steps, so the
    loop runs at N t_plain / (N t_plain + extra) of the bare speed: >= 0.97 for budget 0.03.
    """
    extra = max(t_sampled - t_plain, 0.0)
    if t_plain <= 0:
        return MAX_EVERY if extra > 0 else 1
    wanted = math.ceil(extra / (TARGET_SHARE * budget * t_plain) - 1e-9)
    return min(max(wanted, 1), MAX_EVERY)


class ProbeSchedule:
    """Decides, step by step, whether the probes sample; with ``"auto"`` it times steps."""

    def __init__(self, every: int | str, budget: float = 0.03, histogram_every: int = 0) -> None:
        self.auto = every == "auto"
        self.every = CALIBRATION_EVERY if self.auto else int(every)
        self.budget = budget
        self.histogram_every = histogram_every
        self.histogram = False  # the step due() just accepted also takes histograms
        self.calibrated = not self.auto
        self.changed = False  # set when the interval changes; the trainer records and clears
        self._next = 0
        self._next_hist = 0
        self._seen = 0
        self._plain: deque[float] = deque(maxlen=PLAIN_WINDOW)
        self._extra: deque[float] = deque(maxlen=EXTRA_WINDOW)
        self._after = 0  # plain steps still to come whose excess is the last sample's
        self._reference = 0.0  # the plain step time the last sample was measured against

    @property
    def t_plain(self) -> float:
        """Median of the recent plain steps (seconds); 0 before any."""
        return statistics.median(self._plain) if self._plain else 0.0

    @property
    def t_extra(self) -> float:
        """Median extra cost of the recent samples over the plain steps around them."""
        return statistics.median(self._extra) if self._extra else 0.0

    def due(self, step: int) -> bool:
        """Whether ``step`` is sampled (and sets ``histogram`` for it)."""
        self.histogram = self._histogram_due(step)
        if self.histogram:
            self._next_hist = step + self.histogram_every
        if not self._interval_due(step):
            return self.histogram
        self._next = step + self.every
        return True

    def _histogram_due(self, step: int) -> bool:
        return self.histogram_every > 0 and step >= self._next_hist

    def _interval_due(self, step: int) -> bool:
        return self.every > 0 and step >= self._next

    def will_sample(self, step: int) -> bool:
        """Whether ``due(step)`` will say yes, if nothing changes the interval before (a hint:
        the probe keeps its weight snapshot for the next step only when it is sampled)."""
        return self._histogram_due(step) or self._interval_due(step)

    def restore(self, every: int | None) -> None:
        """After a resume: keep the interval chosen before, sample at once."""
        if self.auto and isinstance(every, int) and every > 0:
            self.every = every
            self.calibrated = True
        self._next = self._next_hist = 0

    def observe(self, sampled: bool, started: float, device: torch.device) -> None:
        """Time one step that began at ``perf_counter() == started``."""
        if not self.auto:
            return
        if self.histogram:  # never timed; it ends the plain steps counted to a sample
            self._end_sample()
            return
        if self.calibrated and device.type != "cpu":
            return  # no more syncs once calibrated on an accelerator
        if device.type == "cuda":
            torch.cuda.synchronize()  # only while calibrating
        self.record(sampled, time.perf_counter() - started)

    def record(self, sampled: bool, seconds: float) -> None:
        """Take one step's duration into account (``observe`` times it; tests call this)."""
        self._seen += 1
        if self._seen <= WARMUP_STEPS and not self.calibrated:
            return
        if not sampled:
            if self._after > 0:  # just after a sample: part of its cost, not a plain step
                self._after -= 1
                self._extra[-1] += seconds - self._reference
                if self._after == 0:
                    self._measured()
            else:
                self._plain.append(seconds)
            return
        self._end_sample()  # the last one had fewer plain steps after it: it is complete
        if not self._plain:
            return  # nothing to compare with yet
        self._reference = statistics.median(list(self._plain)[-PAIR_WINDOW:])
        self._extra.append(seconds - self._reference)
        # at most every - 2 of them: one plain step of each interval at least stays plain,
        # so the reference follows the machine however short the interval
        self._after = max(0, min(AFTER_STEPS, self.every - 2))
        if not self._after:
            self._measured()

    def _end_sample(self) -> None:
        if self._after > 0:
            self._after = 0
            self._measured()

    def _measured(self) -> None:
        """A sample's cost is complete: calibrate, or adapt the interval."""
        if not self.calibrated:
            if len(self._extra) >= MIN_SAMPLED and len(self._plain) >= MIN_PLAIN:
                self.calibrated = True
                self._choose(force=True)
            return
        if len(self._extra) >= MIN_SAMPLED and len(self._plain) >= PAIR_WINDOW:
            self._choose()

    def _choose(self, force: bool = False) -> None:
        wanted = choose_every(self.t_plain, self.t_plain + self.t_extra, self.budget)
        if force or (wanted != self.every and abs(wanted - self.every) > HYSTERESIS * self.every):
            self.every = wanted
            self.changed = True  # the first choice is recorded even when it equals the start
