"""Provides ProbePaths: the two ways LayerProbe reduces a sampled step to numbers.

- The accelerator path (``_device_head``, ``_device_tail``): statistics reduced on the
  device to 0-d tensors and packed into one tensor, copied to the host once.
- The CPU path (``_host_head``, ``_host_tail``): numbers read as they are computed. For
  a model of at most FUSED_MAX float32 values, each pass over the parameters (gradient
  norms, weight norms, the snapshot, the update) is one fused op for every tensor and one
  read: beside a training step each small op costs 10-20 us (its code and data out of
  cache), and a digits-mlp sample's 30 parameter ops cost ~470 us, against ~130 us fused.
  Larger models go one parameter tensor at a time while it is in cache (sums of squares by
  a BLAS dot, three times faster than a norm on the CPU).

Both lay the numbers out as ``sample.Layout`` describes: [grad norms, weight norms,
non-finite counts, total grad norm, grad scale, out-grad norms] after backward, then
[update norms, grad scale after the step, activation fields (, histograms)].
"""

from __future__ import annotations

import math
from typing import Any

import torch

from tui_trainer.engine.reductions import (
    ACT_FIELDS,
    FLAT_DTYPES,
    flat_sumsq,
    grad_histograms,
    nonfinite_counts,
    sumsq,
)

__all__ = ["FUSED_MAX", "NAN", "ProbePaths"]

NAN = float("nan")
FUSED_MAX = 1 << 18  # float32 parameter values up to which the CPU path fuses its passes


def _norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch._foreach_norm(tensors, 2))  # noqa: SLF001


class ProbePaths:
    """LayerProbe's reductions (a mixin: the state is LayerProbe's, set in its __init__)."""

    units: list[Any]
    params: list[torch.nn.Parameter]
    device: torch.device
    bins: int
    grad_scale: Any
    _out: dict[int, Any]
    _act: dict[int, Any]
    _act_hist: dict[int, torch.Tensor]
    _histogram: bool
    _flat: list[torch.Tensor | None]
    _kept: tuple[list[int], list[float]] | None

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

    def _fused(self) -> bool:
        """Whether the CPU path fuses its passes (a small float32 model, every gradient)."""
        params = self.params
        return (
            all(p.dtype == torch.float32 and p.grad is not None for p in params)
            and sum(p.numel() for p in params) <= FUSED_MAX
        )

    def _host_head(self, snap: list[torch.Tensor] | None) -> list[float]:
        flat = self._flat_params()
        kept, self._kept = self._kept, None
        if kept is not None and (
            snap is None or any(p._version != v for p, v in zip(self.params, kept[0], strict=True))
        ):
            kept = None  # a parameter changed since the last sample kept its snapshot
        if self._fused():
            norms = _norms([p.grad for p in self.params])  # type: ignore[misc]
            if kept is None:
                norms += _norms(self.params)
                if snap is not None:
                    torch._foreach_copy_(snap, self.params)  # noqa: SLF001
            read = torch.stack(norms).tolist()
            n = len(self.params)
            gsq = [v * v for v in read[:n]]
            wsq = [v * v for v in read[n:]] if kept is None else kept[1]
            return self._head_values(gsq, wsq)
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
        return self._head_values(gsq, wsq)

    def _head_values(self, gsq: list[float], wsq: list[float]) -> list[float]:
        """The head's numbers from the squared gradient and weight norms."""
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
        if snap is not None and self._fused():
            torch._foreach_sub_(snap, self.params)  # noqa: SLF001 (before - after)
            norms = _norms(snap)
            if keep:  # the next sample's snapshot and weight norms
                torch._foreach_copy_(snap, self.params)  # noqa: SLF001
                norms += _norms(self.params)
            read = torch.stack(norms).tolist()
            values += read[:nparams]
            if keep:
                self._kept = ([p._version for p in self.params], [v * v for v in read[nparams:]])
        elif snap is not None:
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
