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

from tui_trainer.engine.reductions import (
    ACT_FIELDS,
    FLAT_DTYPES,
    HIST_BINS,
    activation_summary,
    activation_summary_host,
    flat_sumsq,
    grad_histograms,
    linear_histogram,
    nonfinite_counts,
    sumsq,
)
from tui_trainer.engine.sample import Layout, Sample, unpack

__all__ = ["LayerProbe", "Sample"]

NAN = float("nan")


@dataclass
class _Pending:
    """A sample on its way to the host: a packed tensor (accelerator) or the floats (CPU)."""

    step: int
    host: torch.Tensor | list[float]
    event: torch.cuda.Event | None
    histogram: bool
    numel: dict[int, int]


class LayerProbe:
    """Statistics of each layer unit of a model on the steps the trainer samples."""

    def __init__(
        self,
        units: Sequence[Any],
        named_params: Sequence[tuple[str, nn.Parameter]],
        stats: Sequence[str] = ("grad", "weight", "update", "out_grad", "act"),
        device: torch.device | None = None,
        histogram_bins: int = HIST_BINS,
    ) -> None:
        self.units = list(units)
        self.stats = set(stats)
        self.device = device or torch.device("cpu")
        # The accelerator path (device reductions, one packed copy); tests switch it on CPU.
        self.accelerator_path = self.device.type != "cpu"
        self.bins = histogram_bins
        owner: dict[int, int] = {}
        for i, unit in enumerate(self.units):
            for p in unit.module.parameters():
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
        self._act_hooks = [self._make_act_hook(i, u.activation) for i, u in enumerate(self.units)]
        self._out_hooks = [self._make_out_hook(i) for i in range(len(self.units))]
        self._grad_fns = [self._make_grad_fn(i) for i in range(len(self.units))]
        self._out_nr = [0] * len(self.units)  # which output of its autograd node it is
        self._pre_fns = [self._make_prehook(i) for i in range(len(self.units))]
        # fp16: the GradScaler's scale (a tensor) divides the out-gradients; its drop after
        # update() tells that the optimizer skipped the step.
        self.grad_scale: Callable[[], torch.Tensor | None] = lambda: None

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
            if acts:
                act_module = unit.act_module or unit.module
                self._handles.append(act_module.register_forward_hook(self._act_hooks[i]))
            if outs and not (acts and self._same_output[i]):
                self._handles.append(unit.module.register_forward_hook(self._out_hooks[i]))

    def _make_act_hook(self, i: int, activation: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: object, out: object) -> None:
            if not isinstance(out, torch.Tensor):
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
        def hook(module: nn.Module, args: object, out: object) -> None:
            if not isinstance(out, torch.Tensor):
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

    def _device_head(self, snap: list[torch.Tensor] | None) -> torch.Tensor:
        dev = self.params[0].device
        zero = torch.zeros((), device=dev)
        grads = [zero if p.grad is None else p.grad for p in self.params]
        gn = torch.stack(torch._foreach_norm(grads, 2, dtype=torch.float32))
        total = torch.linalg.vector_norm(gn).reshape(1)  # exactly what clip_grad_norm_ does
        wn = torch.stack(torch._foreach_norm(self.params, 2, dtype=torch.float32))
        bad = nonfinite_counts(grads, gn.device)
        scale = self.grad_scale()
        scale = (
            torch.ones(1, device=dev)
            if scale is None
            else scale.detach().float().reshape(1).clone()
        )
        nan = zero.new_full((), NAN)
        ogv = torch.stack([nan if t is None else t for t in self._out_list()]) / scale
        parts = [gn, wn, bad, total, scale, ogv]
        if self._histogram:
            parts.append(grad_histograms(grads, self.bins).flatten())
        if snap is not None:
            torch._foreach_copy_(snap, self.params)
        return torch.cat(parts)

    def _host_head(self, snap: list[torch.Tensor] | None) -> list[float]:
        flat = self._flat_params()
        kept, self._kept = self._kept, None
        if kept is not None and (
            snap is None or any(p._version != v for p, v in zip(self.params, kept[0], strict=True))
        ):
            kept = None  # a parameter changed since the last sample kept its snapshot
        gsq: list[float] = []
        wsq: list[float] = [] if kept is None else kept[1]
        for j, p in enumerate(self.params):  # one tensor at a time: each stays in cache
            g, w = p.grad, flat[j]
            if g is None:
                gsq.append(0.0)
            elif w is not None and g.is_contiguous():
                gsq.append(flat_sumsq(g.view(-1)))
            else:
                gsq.append(sumsq(g))
            if kept is None:
                wsq.append(sumsq(p) if w is None else flat_sumsq(w))
                if snap is not None:
                    snap[j].copy_(p)
        gn = [math.sqrt(v) for v in gsq]
        total = math.sqrt(math.fsum(gsq))
        if math.isfinite(total):
            bad = [0.0] * len(gn)
        else:
            zero = torch.zeros(())
            grads = [zero if p.grad is None else p.grad for p in self.params]
            bad = nonfinite_counts(grads, zero.device).tolist()
        t = self.grad_scale()
        scale = 1.0 if t is None else float(t)
        og = [NAN if v is None else float(v) / scale for v in self._out_list()]
        head = [*gn, *(math.sqrt(v) for v in wsq), *bad, total, scale, *og]
        if self._histogram:
            grads = [p.grad if p.grad is not None else torch.zeros(()) for p in self.params]
            head += grad_histograms(grads, self.bins).flatten().tolist()
        return head

    def _flat_params(self) -> list[torch.Tensor | None]:
        """1-D views of the parameters a BLAS dot takes as they are (float32/float64,
        contiguous; None for others), made once and remade if a parameter's storage moved."""
        flat = self._flat
        if len(flat) != len(self.params) or any(
            v is not None and v.data_ptr() != p.data_ptr()
            for v, p in zip(flat, self.params, strict=True)
        ):
            self._kept = None  # a kept snapshot describes the old storage
            flat = self._flat = [
                p.detach().view(-1) if p.dtype in FLAT_DTYPES and p.is_contiguous() else None
                for p in self.params
            ]
        return flat

    def _out_list(self) -> list[Any]:
        return [self._out.get(i) for i in range(len(self.units))]

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

    def _head_size(self) -> int:
        return 3 * len(self.params) + 2 + len(self.units)

    def _device_tail(self, head: Any, snap: list[torch.Tensor] | None, hist: bool) -> torch.Tensor:
        nunits, nparams = len(self.units), len(self.params)
        dev = head.device if head is not None else self.device
        # head None: nothing was trained this step (a hand-set unit)
        parts = [torch.full((self._head_size(),), NAN, device=dev) if head is None else head]
        if snap is not None:
            torch._foreach_sub_(snap, self.params)  # before - after
            parts.append(torch.stack(torch._foreach_norm(snap, 2, dtype=torch.float32)))
        else:
            parts.append(torch.full((nparams,), NAN, device=dev))
        scale = self.grad_scale()
        parts.append(
            torch.full((1,), NAN, device=dev)
            if scale is None
            else scale.detach().float().reshape(1)
        )
        nan = torch.full((), NAN, device=dev)
        nan_row = (nan,) * ACT_FIELDS
        acts = [t for i in range(nunits) for t in self._act.get(i, nan_row)]
        parts.append(torch.stack(acts).float())
        if hist:
            nan_hist = torch.full((self.bins,), NAN, device=dev)
            parts.append(torch.cat([self._act_hist.get(i, nan_hist) for i in range(nunits)]))
        return torch.cat(parts)

    def _host_tail(
        self, head: Any, snap: list[torch.Tensor] | None, hist: bool, keep: bool
    ) -> list[float]:
        nunits, nparams = len(self.units), len(self.params)
        values: list[float] = [NAN] * self._head_size() if head is None else head
        if snap is not None:
            wsq: list[float] = []
            # the views after_backward checked this step (a snapshot implies that it ran)
            for s, p, w in zip(snap, self.params, self._flat, strict=True):
                s.sub_(p)  # before - after, one tensor at a time
                values.append(math.sqrt(sumsq(s) if w is None else flat_sumsq(s.view(-1))))
                if keep:  # the next sample's snapshot and weight norm, while p is in cache
                    s.copy_(p)
                    wsq.append(sumsq(p) if w is None else flat_sumsq(w))
            if keep:
                self._kept = ([p._version for p in self.params], wsq)
        else:
            values += [NAN] * nparams
        t = self.grad_scale()
        values.append(NAN if t is None else float(t))
        nan_row = [NAN] * ACT_FIELDS
        for i in range(nunits):
            values += self._act.get(i, nan_row)
        if hist:
            nan_hist = [NAN] * self.bins
            for i in range(nunits):
                h = self._act_hist.get(i)
                values += nan_hist if h is None else h.tolist()
        return values

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
