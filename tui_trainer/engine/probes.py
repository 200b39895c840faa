"""Provides LayerProbe: per-layer statistics of sampled training steps, reduced on the device.

Only a sampled step carries hooks. Its statistics are reduced on the device to a few 0-d
tensors, packed into one tensor and copied to the host once (non-blocking into pinned memory
on CUDA, read at the next sample or at a flush), so a sampled step adds no host
synchronisation on an accelerator and a plain step adds nothing at all. What is left (sums
of squares into per-layer norms, counts into fractions) is done on the host, in ``drain``.
The trainer calls, on a sampled step::

    probe.attach()            # before forward: hooks on every layer unit
    ... forward, backward (and GradScaler.unscale_) ...
    probe.after_backward()    # gradient norms, weight norms, weight snapshot
    ... clip_grad_norm_, optimizer.step(), GradScaler.update() ...
    probe.after_step(step)    # update norms, detach hooks, one copy to the host
    probe.drain()             # -> finished samples (host lists), oldest first

Costs (why it is built this way, DESIGN §4): activation statistics are computed inside the
forward hook, because a later in-place op (``ReLU(inplace=True)``) changes the tensor; the
gradient flowing out of a layer comes from a tensor hook on its output (module backward
hooks cost ~9% even when idle, and raise with in-place ops); parameter norms use one
``torch._foreach_norm`` each. On the CPU, where reading a number costs no device sync, exact
non-finite counts are computed only when a norm says there is something to count.

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
    GRAD_HIST_LOG10,
    HIST_BINS,
    activation_summary,
    grad_histograms,
    linear_histogram,
    moments,
    nonfinite_counts,
)
from tui_trainer.store import STAT_COLUMNS

__all__ = ["LayerProbe", "Sample"]

NCOL = len(STAT_COLUMNS)
COL = {name: i for i, name in enumerate(STAT_COLUMNS)}
NAN = float("nan")


@dataclass(frozen=True)
class Sample:
    """The statistics of one sampled step, on the host."""

    step: int
    rows: list[list[float]]  # per layer, STAT_COLUMNS order; NaN = not applicable
    param_grad_norms: dict[str, float]  # per parameter tensor, by name
    total_grad_norm: float
    act_nonfinite: list[float]  # per layer: non-finite activation values
    skipped: bool = False  # the optimizer skipped the step (fp16 GradScaler overflow)
    histograms: dict[str, Any] | None = None

    def first_nonfinite_layer(self) -> int | None:
        """Depth index of the first layer where non-finite values appeared, else None.

        Where they appeared: the first layer whose activations are non-finite (the forward
        pass carries them on to every later layer, and the backward pass to every
        gradient); when the activations are all finite, the first layer with a non-finite
        gradient value or an infinite statistic (a norm that overflowed float32).
        """
        for i, bad in enumerate(self.act_nonfinite):
            if bad > 0:
                return i
        for i, row in enumerate(self.rows):
            if row[COL["nonfinite"]] > 0 or any(math.isinf(v) for v in row):
                return i
        return None

    def nonfinite_where(self, layer: int) -> str:
        """ "activations", "gradients" or "statistics" (finite values, overflowing norm)."""
        if self.act_nonfinite[layer] > 0:
            return "activations"
        row = self.rows[layer]
        if row[COL["nonfinite"]] > 0 or math.isinf(row[COL["grad_norm"]]):
            return "gradients"
        return "statistics"


@dataclass
class _Pending:
    """A sample on its way to the host."""

    step: int
    host: torch.Tensor
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
        self.exact_counts = self.device.type != "cpu"
        self.bins = histogram_bins
        owner: dict[int, int] = {}
        for i, unit in enumerate(self.units):
            for p in unit.module.parameters():
                owner.setdefault(id(p), i)
        # Every trainable parameter counts in the total (as in clip_grad_norm_); one no unit
        # owns is in no layer's row.
        params = [(n, p) for n, p in named_params if p.requires_grad]
        self.param_names = [n for n, _ in params]
        self.params = [p for _, p in params]
        self.unit_of_param = [owner.get(id(p), -1) for p in self.params]
        self.is_weight = [p.ndim >= 2 for p in self.params]
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._act: dict[int, tuple[torch.Tensor, ...]] = {}
        self._act_hist: dict[int, torch.Tensor] = {}
        self._out: dict[int, torch.Tensor] = {}
        self._histogram = False
        self._head: torch.Tensor | None = None  # after_backward's part of the sample
        self._snapshot: list[torch.Tensor] | None = None
        self._numel: dict[int, int] = {}  # activation sizes, for the fractions
        self._pending: list[_Pending] = []
        # Where a unit's output is its activation's output (most layers), one forward hook
        # serves both: learned at the first sample, when both hooks run and compare.
        self._same_output: list[bool | None] = [None] * len(self.units)
        self._act_out: dict[int, torch.Tensor] = {}
        self._act_hooks = [self._make_act_hook(i, u.activation) for i, u in enumerate(self.units)]
        self._out_hooks = [self._make_out_hook(i) for i in range(len(self.units))]
        self._grad_fns = [self._make_grad_fn(i) for i in range(len(self.units))]
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
            s = activation_summary(out, activation, self.exact_counts)
            self._act[i] = s
            self._numel[i] = out.numel()
            if self._histogram:
                self._act_hist[i] = linear_histogram(out.detach(), s[2], s[3], self.bins)
            if self._same_output[i] is None:
                self._act_out[i] = out  # the unit's hook compares, at the first sample
            elif self._same_output[i] and out.requires_grad and "out_grad" in self.stats:
                out.register_hook(self._grad_fns[i])  # the unit's output: one hook, not two

        return hook

    def _make_out_hook(self, i: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: object, out: object) -> None:
            if not isinstance(out, torch.Tensor):
                return
            if self._same_output[i] is None and i in self._act_out:
                self._same_output[i] = out is self._act_out.pop(i)
            if out.requires_grad:
                out.register_hook(self._grad_fns[i])

        return hook

    def _make_grad_fn(self, i: int) -> Callable[[torch.Tensor], None]:
        def on_grad(g: torch.Tensor) -> None:
            self._out[i] = torch.linalg.vector_norm(g, dtype=torch.float32)

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
        dev = self.params[0].device
        zero = torch.zeros((), device=dev)
        grads = [zero if p.grad is None else p.grad for p in self.params]
        gn = torch.stack(torch._foreach_norm(grads, 2, dtype=torch.float32))
        total = torch.linalg.vector_norm(gn).reshape(1)  # exactly what clip_grad_norm_ does
        wn = torch.stack(torch._foreach_norm(self.params, 2, dtype=torch.float32))
        if not self.exact_counts and math.isfinite(total.item()):  # CPU: reading is free
            bad = torch.zeros_like(gn)
        else:
            bad = nonfinite_counts(grads, gn.device)
        scale = self.grad_scale()
        scale = (
            torch.ones(1, device=dev)
            if scale is None
            else scale.detach().float().reshape(1).clone()
        )
        og = [self._out.get(i) for i in range(len(self.units))]
        nan = zero.new_full((), NAN)
        ogv = torch.stack([nan if t is None else t for t in og]) / scale
        parts = [gn, wn, bad, total, scale, ogv]
        if self._histogram:
            parts.append(grad_histograms(grads, self.bins).flatten())
        self._head = torch.cat(parts)
        self._out.clear()
        if "update" in self.stats:
            if self._snapshot is None:
                self._snapshot = [torch.empty_like(p) for p in self.params]
            torch._foreach_copy_(self._snapshot, self.params)

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Update norms, then pack the sample into one tensor and start its copy to the host."""
        self.detach()
        nunits, nparams = len(self.units), len(self.params)
        head = self._head
        dev = head.device if head is not None else self.device
        parts = []
        if head is None:  # nothing was trained this step (a hand-set unit)
            parts.append(torch.full((3 * nparams + 2 + nunits,), NAN, device=dev))
        else:
            parts.append(head)
        snap = self._snapshot if head is not None and "update" in self.stats else None
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
        hist = self._histogram and head is not None
        if hist:
            nan_hist = torch.full((self.bins,), NAN, device=dev)
            parts.append(torch.cat([self._act_hist.get(i, nan_hist) for i in range(nunits)]))
        packed = torch.cat(parts)
        numel = dict(self._numel)
        self._act.clear()
        self._act_hist.clear()
        self._numel.clear()
        self._head = None
        if packed.device.type == "cuda":
            host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)
            host.copy_(packed, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self._pending.append(_Pending(step, host, event, hist, numel))
        else:
            self._pending.append(_Pending(step, packed.detach().to("cpu"), None, hist, numel))

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
            out.append(self._unpack(p.step, p.host.tolist(), p.histogram, p.numel))
        return out

    # -- on the host ------------------------------------------------------------------------
    def _unpack(self, step: int, v: list[float], hist: bool, numel: dict[int, int]) -> Sample:
        nu, npar, b = len(self.units), len(self.params), self.bins
        gn, v = v[:npar], v[npar:]
        wn, v = v[:npar], v[npar:]
        bad, v = v[:npar], v[npar:]
        total, scale0, v = v[0], v[1], v[2:]
        og, v = v[:nu], v[nu:]
        ghist: list[float] = []
        if hist:
            ghist, v = v[: npar * b], v[npar * b :]
        dn, v = v[:npar], v[npar:]
        scale1, v = v[0], v[1:]
        act, v = v[: nu * ACT_FIELDS], v[nu * ACT_FIELDS :]
        rows = [[NAN] * NCOL for _ in range(nu)]
        sums = [[0.0] * 7 for _ in range(nu)]  # g², gw², gb², w² (weights), w² (all), d², bad
        have = [[False] * 3 for _ in range(nu)]  # any param, any weight, any bias
        for j, u in enumerate(self.unit_of_param):
            if u < 0:
                continue
            s, w = sums[u], self.is_weight[j]
            g2, w2 = gn[j] * gn[j], wn[j] * wn[j]
            s[0] += g2
            s[1 if w else 2] += g2
            if w:
                s[3] += w2
            s[4] += w2
            s[5] += dn[j] * dn[j]
            s[6] += bad[j]
            have[u][0] = True
            have[u][1 if w else 2] = True
        acts = [act[i * ACT_FIELDS : (i + 1) * ACT_FIELDS] for i in range(nu)]
        for i, (row, s, h, a) in enumerate(zip(rows, sums, have, acts, strict=True)):
            if h[0]:
                row[COL["grad_norm"]] = math.sqrt(s[0])
                row[COL["update_ratio"]] = math.sqrt(s[5]) / math.sqrt(s[4]) if s[4] > 0 else NAN
            if h[1]:
                row[COL["weight_grad_norm"]] = math.sqrt(s[1])
                row[COL["weight_norm"]] = math.sqrt(s[3])
            if h[2]:
                row[COL["bias_grad_norm"]] = math.sqrt(s[2])
            row[COL["out_grad_norm"]] = og[i]
            n = numel.get(i, 0)
            row[COL["act_mean"]], row[COL["act_std"]] = moments(a[0], a[1], a[7], n)
            row[COL["act_min"]], row[COL["act_max"]] = a[2], a[3]
            row[COL["dead_frac"]] = 1.0 - a[4] / n if a[4] >= 0 and n > 0 else NAN
            row[COL["sat_frac"]] = a[5] / n if a[5] >= 0 and n > 0 else NAN
            act_bad = a[6] if a[6] == a[6] else 0.0
            row[COL["nonfinite"]] = s[6] + act_bad
        skipped = scale1 < scale0  # the GradScaler backed off: this step was skipped
        histograms = None
        if hist:
            histograms = self._histograms(ghist, v[: nu * b], acts)
        return Sample(
            step=step,
            rows=rows,
            param_grad_norms=dict(zip(self.param_names, gn, strict=True)),
            total_grad_norm=total,
            act_nonfinite=[a[6] if a[6] == a[6] else 0.0 for a in acts],
            skipped=skipped,
            histograms=histograms,
        )

    def _histograms(
        self, ghist: list[float], ahist: list[float], acts: list[list[float]]
    ) -> dict[str, Any]:
        nu, b = len(self.units), self.bins
        grad = [[0] * b for _ in range(nu)]
        for j, u in enumerate(self.unit_of_param):
            if u >= 0:
                for k in range(b):
                    grad[u][k] += int(ghist[j * b + k])
        layers = []
        for i in range(nu):
            counts = ahist[i * b : (i + 1) * b]
            layers.append(
                {
                    "grad": grad[i],
                    "act_range": [v if math.isfinite(v) else None for v in acts[i][2:4]],
                    "act": [int(c) if c == c else 0 for c in counts],
                }
            )
        return {"bins": b, "grad_log10_range": list(GRAD_HIST_LOG10), "layers": layers}
