"""Provides LayerProbe: per-layer statistics of sampled training steps.

Only a sampled step carries hooks. The trainer calls, on a sampled step::

    probe.attach()            # before forward: hooks on every layer unit
    ... forward, backward (and GradScaler.unscale_) ...
    probe.after_backward()    # gradient norms, weight norms, weight snapshot
    ... clip_grad_norm_, optimizer.step(), GradScaler.update() ...
    probe.after_step(step)    # update norms, detach hooks, the sample on its way to the host
    probe.drain()             # -> finished samples (sample.Sample), oldest first

Two paths to the same numbers (sample.py's flat layout, then ``sample.unpack``):

- On an accelerator, statistics are reduced on the device to 0-d tensors, packed into one
  tensor and copied to the host once (non-blocking into pinned memory, read at the next
  sample or at a flush): a sampled step adds no host synchronisation.
- On the CPU, where reading a number costs nothing, each is read as it is computed:
  no packing, a second pass over an activation only when its sums call for one, and per
  parameter tensor the gradient norm, weight norm and snapshot copy one after another
  while the tensor is in cache, sums of squares by a BLAS dot (``reductions.sumsq``).

Costs (why it is built this way, DESIGN §4): activation statistics are computed inside the
forward hook, because a later in-place op (``ReLU(inplace=True)``) changes the tensor; the
gradient flowing out of a layer comes from a pre-hook on the autograd node that produced
its output (``grad_fn.register_prehook``: half a tensor hook's cost; a tensor hook only
where the output has no node), not a module backward hook (~9% even when idle, and they
raise with in-place ops); where a unit's output is its activation's output (most layers),
one forward hook serves both.

torch.compile (``train.compile``): hooks added to a compiled module never fire
(pytorch#117758), and compiling them in would put their cost on every step. So plain steps
run the compiled model and sampled steps run the original module eagerly. What degrades:
a sampled step runs at eager speed, and with ``every = "auto"`` that penalty is part of
the measured cost of a sample, so the interval grows to keep the loop within budget; the
statistics describe the eager forward pass, which equals the compiled one up to
floating-point reassociation. Evaluation runs eagerly too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tui_trainer.engine.probe_paths import ProbePaths
from tui_trainer.engine.reductions import (
    HIST_BINS,
    activation_summary,
    activation_summary_host,
    linear_histogram,
    sumsq,
)
from tui_trainer.engine.sample import Layout, Sample, unpack

__all__ = ["LayerProbe", "Sample", "first_tensor"]


def first_tensor(out: object) -> torch.Tensor | None:
    """A module's output as the probes read it: the tensor, or the first tensor of a tuple,
    list or dict (an LSTM's output, attention's (output, weights), a model output)."""
    if isinstance(out, torch.Tensor):
        return out
    items = out.values() if isinstance(out, dict) else out if isinstance(out, tuple | list) else ()
    return next((v for v in items if isinstance(v, torch.Tensor)), None)


@dataclass
class _Pending:
    """A sample on its way to the host: a packed tensor (accelerator) or the floats (CPU)."""

    step: int
    host: torch.Tensor | list[float]
    event: torch.cuda.Event | None
    histogram: bool
    numel: dict[int, int]


class LayerProbe(ProbePaths):
    """Statistics of each layer unit of a model on the steps the trainer samples."""

    def __init__(
        self,
        units: Sequence[Any],
        named_params: Sequence[tuple[str, nn.Parameter]],
        stats: Sequence[str] = ("grad", "weight", "update", "out_grad", "act"),
        device: torch.device | None = None,
        histogram_bins: int = HIST_BINS,
        direct_params: bool = False,
    ) -> None:
        """``direct_params``: a unit owns only the parameters its module holds itself (units
        found in any model, where one may sit inside another); else all below it."""
        self.units = list(units)
        self.stats = set(stats)
        self.device = device or torch.device("cpu")
        # The accelerator path (device reductions, one packed copy); tests switch it on CPU.
        self.accelerator_path = self.device.type != "cpu"
        self.bins = histogram_bins
        owner: dict[int, int] = {}
        for i, unit in enumerate(self.units):
            for p in unit.module.parameters(recurse=not direct_params):
                owner.setdefault(id(p), i)
        # Every trainable parameter counts in the total (as in clip_grad_norm_); one no unit
        # owns is in no layer's row.
        params = [(n, p) for n, p in named_params if p.requires_grad]
        self.params = [p for _, p in params]
        self.layout = Layout(
            param_names=[n for n, _ in params],
            unit_of_param=[owner.get(id(p), -1) for p in self.params],
            is_weight=[p.ndim >= 2 for p in self.params],
            units=len(self.units),
            bins=histogram_bins,
        )
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._act: dict[int, Sequence[torch.Tensor | float]] = {}
        self._act_hist: dict[int, torch.Tensor] = {}
        self._out: dict[int, torch.Tensor | float] = {}
        self._histogram = False
        self._head: torch.Tensor | list[float] | None = None  # after_backward's part
        self._snapshot: list[torch.Tensor] | None = None
        self._flat: list[torch.Tensor | None] = []  # the CPU path's 1-D parameter views
        # after_step(keep=True) on the CPU: the snapshot already holds the weights the next
        # sample starts from, with their sums of squares, valid while no version changes.
        self._kept: tuple[list[int], list[float]] | None = None
        self._numel: dict[int, int] = {}  # activation sizes, for the fractions
        self._pending: list[_Pending] = []
        # Where a unit's output is its activation's output (most layers), one forward hook
        # serves both: learned at the first sample, when both hooks run and compare.
        self._same_output: list[bool | None] = [None] * len(self.units)
        self._act_out: dict[int, torch.Tensor] = {}
        # on_error: a hook that fails calls it instead of raising into the forward or
        # backward pass (tui_trainer.watch: the user's training must go on); None: raise.
        # It gets the unit's index; ``disabled`` units get no hooks from then on.
        self.on_error: Callable[[int, BaseException], None] | None = None
        self.disabled: set[int] = set()
        n, guard = len(self.units), self._guarded
        self._act_hooks = [
            guard(i, self._make_act_hook(i, u.activation)) for i, u in enumerate(units)
        ]
        self._out_hooks = [guard(i, self._make_out_hook(i)) for i in range(n)]
        self._grad_fns = [guard(i, self._make_grad_fn(i)) for i in range(n)]
        self._out_nr = [0] * n  # which output of its autograd node it is
        self._pre_fns = [guard(i, self._make_prehook(i)) for i in range(n)]
        # fp16: the GradScaler's scale (a tensor) divides the out-gradients; its drop after
        # update() tells that the optimizer skipped the step.
        self.grad_scale: Callable[[], torch.Tensor | None] = lambda: None

    def _guarded(self, i: int, hook: Callable[..., None]) -> Callable[..., None]:
        def guarded(*args: Any) -> None:
            try:
                hook(*args)
            except Exception as exc:
                if self.on_error is None:
                    raise
                self.disabled.add(i)
                self.on_error(i, exc)

        return guarded

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    # -- one sampled step -----------------------------------------------------------------
    def attach(self, histogram: bool = False) -> None:
        """Hook every unit for the coming forward and backward pass."""
        self.detach()
        self._act.clear()
        self._act_hist.clear()
        self._numel.clear()
        self._out.clear()
        self._head = None
        self._histogram = histogram
        acts, outs = "act" in self.stats, "out_grad" in self.stats
        for i, unit in enumerate(self.units):
            if i in self.disabled:
                continue
            if acts:
                act_module = unit.act_module or unit.module
                self._handles.append(act_module.register_forward_hook(self._act_hooks[i]))
            if outs and not (acts and self._same_output[i]):
                self._handles.append(unit.module.register_forward_hook(self._out_hooks[i]))

    def _make_act_hook(self, i: int, activation: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: object, output: object) -> None:
            out = first_tensor(output)
            if out is None:
                return
            # Inside the hook: a later in-place op would change the tensor.
            if self.accelerator_path:
                s: Sequence[Any] = activation_summary(out, activation)
            else:
                s = activation_summary_host(out, activation)
            self._act[i] = s
            self._numel[i] = out.numel()
            if self._histogram:
                lo, hi = (torch.as_tensor(v, device=out.device) for v in s[2:4])
                self._act_hist[i] = linear_histogram(out.detach(), lo, hi, self.bins)
            if self._same_output[i] is None:
                self._act_out[i] = out  # the unit's hook compares, at the first sample
            elif self._same_output[i] and out.requires_grad and "out_grad" in self.stats:
                self._hook_grad(i, out)  # the unit's output: one hook, not two

        return hook

    def _make_out_hook(self, i: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: object, output: object) -> None:
            out = first_tensor(output)
            if out is None:
                return
            if self._same_output[i] is None and i in self._act_out:
                self._same_output[i] = out is self._act_out.pop(i)
            if out.requires_grad:
                self._hook_grad(i, out)

        return hook

    def _hook_grad(self, i: int, out: torch.Tensor) -> None:
        """Have the gradient reaching ``out`` measured: a pre-hook on the autograd node that
        made it (half the cost of a tensor hook, which wraps one: 12 against 25 us here),
        freed with the graph; a tensor hook where there is no node."""
        node = out.grad_fn
        if node is None:
            out.register_hook(self._grad_fns[i])
        else:
            self._out_nr[i] = out.output_nr
            node.register_prehook(self._pre_fns[i])

    def _make_prehook(self, i: int) -> Callable[[tuple[torch.Tensor | None, ...]], None]:
        on_grad = self._grad_fns[i]

        def prehook(grad_outputs: tuple[torch.Tensor | None, ...]) -> None:
            g = grad_outputs[self._out_nr[i]]
            if g is not None:
                on_grad(g)

        return prehook

    def _make_grad_fn(self, i: int) -> Callable[[torch.Tensor], None]:
        def on_grad(g: torch.Tensor) -> None:
            if self.accelerator_path:
                self._out[i] = torch.linalg.vector_norm(g, dtype=torch.float32)
            else:
                self._out[i] = math.sqrt(sumsq(g))

        return on_grad

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._act_out.clear()

    @torch.no_grad()
    def after_backward(self) -> None:
        """Gradient and weight norms (before clipping and the optimizer step), snapshot."""
        if not self.params:
            return
        if self._snapshot is None and "update" in self.stats:
            self._snapshot = [torch.empty_like(p) for p in self.params]
        snap = self._snapshot if "update" in self.stats else None
        if self.accelerator_path:
            self._head = self._device_head(snap)
        else:
            self._head = self._host_head(snap)
        self._out.clear()

    @torch.no_grad()
    def after_step(self, step: int, keep: bool = False) -> None:
        """Update norms, then the sample on its way to the host (see the module docstring).

        ``keep``: the next step is sampled too (probes every step). On the CPU the snapshot
        then takes the new weights (and their norms) now, while each tensor is in cache,
        instead of reading them again from memory at the next ``after_backward``; that
        sample checks each parameter's version counter and takes a fresh snapshot if any
        changed. A change made through ``.data`` bumps no version: it would count in the
        next step's update.
        """
        self.detach()
        head, numel = self._head, dict(self._numel)
        hist = self._histogram and head is not None
        snap = self._snapshot if head is not None and "update" in self.stats else None
        if self.accelerator_path:
            packed = self._device_tail(head, snap, hist)
            if packed.device.type == "cuda":
                host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)
                host.copy_(packed, non_blocking=True)
                event = torch.cuda.Event()
                event.record()
                self._pending.append(_Pending(step, host, event, hist, numel))
            else:  # another device, or the tests' CPU run of this path
                self._pending.append(_Pending(step, packed.to("cpu"), None, hist, numel))
        else:
            values = self._host_tail(head, snap, hist, keep)
            self._pending.append(_Pending(step, values, None, hist, numel))
        self._act.clear()
        self._act_hist.clear()
        self._numel.clear()
        self._head = None

    def drain(self, wait: bool = True) -> list[Sample]:
        """Finished samples on the host, oldest first; ``wait=False`` takes only those whose
        copy has completed, so the trainer never stalls on the device."""
        out: list[Sample] = []
        while self._pending:
            p = self._pending[0]
            if p.event is not None:
                if not wait and not p.event.query():
                    break
                p.event.synchronize()
            self._pending.pop(0)
            v = p.host if isinstance(p.host, list) else p.host.tolist()
            out.append(unpack(self.layout, p.step, v, p.histogram, p.numel))
        return out
