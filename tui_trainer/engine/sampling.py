"""Provides ProbeSchedule: which steps the probes sample, chosen to keep overhead in budget.

With ``every = "auto"`` it first samples every CALIBRATION_EVERY steps while timing plain
and sampled steps, then picks the smallest interval N for which the extra cost of one
sample, spread over N steps, stays under the budget (3% by default). On the CPU it keeps
timing and adapts; on CUDA it synchronises only while calibrating.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

__all__ = ["ProbeSchedule"]

CALIBRATION_EVERY = 4
WARMUP_STEPS = 5  # the first steps pay for allocation and kernel selection: not timed
MIN_SAMPLED, MIN_PLAIN = 5, 15
MAX_EVERY = 1000
EMA = 0.05


class ProbeSchedule:
    def __init__(self, every: int | str, budget: float = 0.03) -> None:
        self.auto = every == "auto"
        self.every = CALIBRATION_EVERY if self.auto else int(every)
        self.budget = budget
        self.calibrated = not self.auto
        self.changed = False
        self._next = 0
        self._seen = 0
        self._plain: list[float] = []
        self._sampled: list[float] = []
        self._t_plain = self._t_sampled = 0.0

    def due(self, step: int) -> bool:
        if self.every <= 0 or step < self._next:
            return False
        self._next = step + self.every
        return True

    def restore(self, every: int | None) -> None:
        """After a resume: keep the interval chosen before, sample at once."""
        if isinstance(every, int) and every > 0:
            self.every = every
            self.calibrated = True
        self._next = 0

    def observe(self, sampled: bool, started: float, device: torch.device) -> None:
        """Time one step that began at perf_counter() == started."""
        if not self.auto:
            return
        self._seen += 1
        if not self.calibrated:
            if device.type == "cuda":
                torch.cuda.synchronize()  # only while calibrating
            elapsed = time.perf_counter() - started
            if self._seen <= WARMUP_STEPS:
                return
            (self._sampled if sampled else self._plain).append(elapsed)
            if len(self._sampled) >= MIN_SAMPLED and len(self._plain) >= MIN_PLAIN:
                self._t_plain = statistics.median(self._plain)
                self._t_sampled = statistics.median(self._sampled)
                self.calibrated = True
                self._choose(force=True)
            return
        if device.type == "cuda":
            return
        elapsed = time.perf_counter() - started
        if sampled:
            self._t_sampled += EMA * (elapsed - self._t_sampled)
            self._choose()
        else:
            self._t_plain += EMA * (elapsed - self._t_plain)

    def _choose(self, force: bool = False) -> None:
        extra = max(self._t_sampled - self._t_plain, 0.0)
        wanted = math.ceil(extra / max(self.budget * self._t_plain, 1e-12))
        wanted = min(max(wanted, 1), MAX_EVERY)
        # Hysteresis: after calibration, a new interval only when it differs by over a quarter.
        if wanted != self.every and (force or abs(wanted - self.every) > 0.25 * self.every):
            self.every = wanted
            self.changed = True
