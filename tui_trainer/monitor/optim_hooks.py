"""Provides OptimizerWatch: the optimizer step hooks that bound a watched run's sample.

On a sampled step the gradients and weights are read just before the optimizer's
``step()`` and the update just after it. With ``watch(optimizer=opt)`` the hooks are on
``opt``; otherwise global step hooks (``torch.optim.optimizer.register_optimizer_step_*``)
take the first optimizer that steps one of the model's parameters. On an unsampled step a
hook costs one call and an attribute test. A GradScaler that calls ``step()`` is found on
the stack (its ``_maybe_opt_step``): its scale then divides the output gradients, and a
step it skips (inf/NaN gradients) is recorded as skipped.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from tui_trainer.engine.probes import LayerProbe

if TYPE_CHECKING:
    from tui_trainer.monitor.monitor import Monitor

__all__ = ["OptimizerWatch"]

STACK_DEPTH = 8  # frames searched for a GradScaler above the optimizer's step hooks


class OptimizerWatch:
    """Where a sample meets the optimizer; ``stage`` says how far the armed step got."""

    def __init__(self, mon: Monitor, optimizer: Any, scaler: Any) -> None:
        self.mon = mon
        self.optimizer = optimizer
        self.scaler = scaler
        self.armed = False
        self.stage = "none"  # "none" -> "read" (before step) -> "stepped" (after step)
        self._probe: LayerProbe | None = None
        self._not_ours: set[int] = set()
        self._param_ids = {id(p) for p in mon.model.parameters()}
        if optimizer is not None:
            self._handles = [
                optimizer.register_step_pre_hook(self._pre),
                optimizer.register_step_post_hook(self._post),
            ]
        else:
            self._handles = [
                register_optimizer_step_pre_hook(self._pre),
                register_optimizer_step_post_hook(self._post),
            ]

    def attach_scale(self, probe: LayerProbe) -> None:
        self._probe = probe
        scaler = self.scaler
        if scaler is not None:
            probe.grad_scale = lambda: getattr(scaler, "_scale", None)  # a tensor: no sync

    def arm(self) -> None:
        self.armed = True
        self.stage = "none"

    def disarm(self) -> str:
        """The armed step's end: "stepped", "read" (no step after the read), "skipped" (a
        GradScaler skipped the step) or "none" (no optimizer step seen)."""
        stage, self.armed, self.stage = self.stage, False, "none"
        if stage == "none" and self.scaler is not None and self.optimizer is not None:
            return "skipped"
        return stage

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _ours(self, opt: Any) -> bool:
        if self.optimizer is not None:
            return opt is self.optimizer
        if id(opt) in self._not_ours:
            return False
        ids = self._param_ids
        if any(id(p) in ids for group in opt.param_groups for p in group["params"]):
            self.optimizer = opt
            return True
        self._not_ours.add(id(opt))
        return False

    def _pre(self, opt: Any, args: Any, kwargs: Any) -> Any:
        if not self.armed or self.stage != "none" or not self._ours(opt):
            return None
        probe = self._probe
        if probe is None:
            return None
        if self.scaler is None:
            self._find_scaler(probe)
        # args holds the optimizer itself first (torch's step wrapper passes them as given)
        closure = kwargs.get("closure", args[1] if len(args) > 1 else None)
        if closure is None:
            self._read(probe)
            return None

        # step(closure): the forward and backward run inside step() (LBFGS, Lightning), so
        # the gradients exist only once the closure returns: read them then, once.
        def read_after() -> Any:
            loss = closure()
            if self.stage == "none":
                self._read(probe)
            return loss

        if len(args) > 1:
            return (args[0], read_after, *args[2:]), kwargs
        return args, {**kwargs, "closure": read_after}

    def _read(self, probe: LayerProbe) -> None:
        if self.mon._guard_probe(probe.after_backward):  # noqa: SLF001 (its own helper)
            self.stage = "read"

    def _post(self, opt: Any, args: Any, kwargs: Any) -> None:
        if not self.armed or self.stage != "read" or opt is not self.optimizer:
            return
        probe, mon = self._probe, self.mon
        assert probe is not None
        step = mon.global_step + 1  # mon.step for this step comes next
        keep = mon.sampler.will_sample(step)
        if mon._guard_probe(lambda: probe.after_step(step, keep=keep)):  # noqa: SLF001
            self.stage = "stepped"

    def _find_scaler(self, probe: LayerProbe) -> None:
        frame = sys._getframe(2)  # noqa: SLF001 (above this hook and the optimizer's wrapper)
        for _ in range(STACK_DEPTH):
            if frame is None:
                return
            in_scaler = frame.f_code.co_name == "_maybe_opt_step"
            owner = frame.f_locals.get("self") if in_scaler else None
            if isinstance(owner, torch.amp.GradScaler):
                self.scaler = owner
                self.attach_scale(probe)
                return
            frame = frame.f_back
