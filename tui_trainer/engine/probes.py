"""Provides LayerProbe: per-layer statistics of sampled training steps, reduced on the device.

Only a sampled step carries hooks. Its statistics are reduced on the device to 0-d tensors,
stacked into one tensor and copied to the host once (non-blocking on CUDA, read at the next
sample or at a flush), so a sampled step adds no host synchronisation and a plain step adds
nothing at all. The trainer calls, on a sampled step::

    probe.attach()            # before forward: hooks on every layer unit
    ... forward, backward (and GradScaler.unscale_) ...
    probe.after_backward()    # gradient norms, weight norms, weight snapshot
    optimizer.step()
    probe.after_step(step)    # update ratios, detach hooks, one copy to the host
    probe.drain()             # -> finished samples (host lists), oldest first
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from tui_trainer.store import STAT_COLUMNS

__all__ = ["ACT_STATS", "LayerProbe", "Sample", "activation_stats", "saturation_fraction"]

NCOL = len(STAT_COLUMNS)
COL = {name: i for i, name in enumerate(STAT_COLUMNS)}
# mean, std, min, max, dead fraction, saturated fraction, non-finite count
ACT_STATS = ("act_mean", "act_std", "act_min", "act_max", "dead_frac", "sat_frac")
SIGMOID_LOW, SIGMOID_HIGH = 0.01, 0.99  # the definition of a saturated sigmoid
TANH_BOUND = 0.99  # |tanh| above this counts as saturated
NAN = float("nan")


def saturation_fraction(y: torch.Tensor, activation: str) -> torch.Tensor | None:
    """Fraction of a sigmoid/tanh output near its bounds; None for other activations."""
    if activation == "sigmoid":
        return ((y < SIGMOID_LOW) | (y > SIGMOID_HIGH)).float().mean()
    if activation == "tanh":
        return (y.abs() > TANH_BOUND).float().mean()
    return None


def activation_stats(y: torch.Tensor, activation: str) -> torch.Tensor:
    """[mean, std, min, max, dead, saturated, non-finite count] of an output, on its device.

    std is the population standard deviation. Non-finite values are counted, and the other
    statistics are then non-finite too: they are never silently dropped.
    """
    y = y.detach()
    if y.dtype != torch.float32 and y.dtype != torch.float64:
        y = y.float()  # bf16/fp16 under autocast: reduce in float32
    n = max(y.numel(), 1)
    mean = y.mean()
    mean_sq = torch.linalg.vector_norm(y).square() / n
    std = (mean_sq - mean.square()).clamp_min(0).sqrt()
    lo, hi = torch.aminmax(y) if y.numel() else (mean, mean)
    nan = torch.full((), NAN, device=y.device)
    dead = (y == 0).float().mean() if activation not in ("identity", "sigmoid", "tanh") else nan
    sat = saturation_fraction(y, activation)
    nonfinite = n - torch.isfinite(y).sum()
    return torch.stack([mean, std, lo, hi, dead, nan if sat is None else sat, nonfinite.float()])


@dataclass(frozen=True)
class Sample:
    """The statistics of one sampled step, on the host."""

    step: int
    rows: list[list[float]]  # per layer, STAT_COLUMNS order; NaN = not applicable
    param_grad_norms: dict[str, float]  # per parameter tensor, by name
    total_grad_norm: float

    def first_nonfinite_layer(self) -> int | None:
        """Depth index of the first layer with a non-finite value, else None."""
        for i, row in enumerate(self.rows):
            if row[COL["nonfinite"]] > 0:
                return i
        return None


class LayerProbe:
    """Statistics of each layer unit of a model on the steps the trainer samples."""

    def __init__(
        self,
        units: Sequence[object],
        named_params: Sequence[tuple[str, nn.Parameter]],
        stats: Sequence[str] = ("grad", "weight", "update", "out_grad", "act"),
        device: torch.device | None = None,
    ) -> None:
        self.units = list(units)
        self.stats = set(stats)
        self.device = device or torch.device("cpu")
        owner: dict[int, int] = {}
        for i, unit in enumerate(self.units):
            for p in unit.module.parameters():  # type: ignore[attr-defined]
                owner.setdefault(id(p), i)
        params = [(n, p) for n, p in named_params if p.requires_grad and id(p) in owner]
        self.param_names = [n for n, _ in params]
        self.params = [p for _, p in params]
        self.unit_of_param = torch.tensor(
            [owner[id(p)] for p in self.params], dtype=torch.long, device=self.device
        )
        self.is_weight = torch.tensor(
            [p.ndim >= 2 for p in self.params], dtype=torch.bool, device=self.device
        )
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._act: dict[int, torch.Tensor] = {}
        self._out: dict[int, torch.Tensor] = {}
        self._grad_cols: torch.Tensor | None = None
        self._snapshot: list[torch.Tensor] | None = None
        self._snap_norm: torch.Tensor | None = None
        self._pending: list[tuple[int, torch.Tensor, torch.cuda.Event | None]] = []
        self.grad_scale: Callable[[], torch.Tensor | None] = lambda: None

    # -- one sampled step -----------------------------------------------------------------
    def attach(self) -> None:
        """Hook every unit for the coming forward and backward pass."""
        self._act.clear()
        self._out.clear()
        for i, unit in enumerate(self.units):
            act_module = unit.act_module or unit.module  # type: ignore[attr-defined]
            if "act" in self.stats:
                self._handles.append(act_module.register_forward_hook(self._act_hook(i, unit)))
            if "out_grad" in self.stats:
                self._handles.append(unit.module.register_forward_hook(self._out_hook(i)))  # type: ignore[attr-defined]

    def _act_hook(self, i: int, unit: object) -> Callable[..., None]:
        activation = unit.activation  # type: ignore[attr-defined]

        def hook(module: nn.Module, args: object, out: object) -> None:
            if isinstance(out, torch.Tensor):
                # Inside the hook: a later in-place op would change the tensor.
                self._act[i] = activation_stats(out, activation)

        return hook

    def _out_hook(self, i: int) -> Callable[..., None]:
        def on_grad(g: torch.Tensor) -> None:
            g = g.detach().float()
            norm = torch.linalg.vector_norm(g)
            bad = (g.numel() - torch.isfinite(g).sum()).float()
            self._out[i] = torch.stack([norm, bad])

        def hook(module: nn.Module, args: object, out: object) -> None:
            if isinstance(out, torch.Tensor) and out.requires_grad:
                out.register_hook(on_grad)

        return hook

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def after_backward(self) -> None:
        """Gradient and weight norms (before clipping and the optimizer step)."""
        nunits = len(self.units)
        cols = torch.full((nunits, 5), NAN, device=self.device)
        grads = [p.grad for p in self.params]
        have = [g is not None for g in grads]
        self._param_norms = torch.full((len(self.params),), NAN, device=self.device)
        if self.params and all(have):
            gn = torch.stack(torch._foreach_norm([g.float() for g in grads]))  # type: ignore[misc]
            self._param_norms = gn
            sq = gn.square()
            cols[:, 0] = _group_sqrt(sq, self.unit_of_param, nunits)
            cols[:, 1] = _group_sqrt(sq, self.unit_of_param, nunits, self.is_weight)
            cols[:, 2] = _group_sqrt(sq, self.unit_of_param, nunits, ~self.is_weight)
            # Non-finite gradient values: counted exactly, only when some norm is not finite.
            cols[:, 4] = _nonfinite_grads(grads, gn, self.unit_of_param, nunits)
        if self.params and "weight" in self.stats:
            wn = torch.stack(torch._foreach_norm([p.detach() for p in self.params]))
            cols[:, 3] = _group_sqrt(wn.square(), self.unit_of_param, nunits, self.is_weight)
        if self.params and "update" in self.stats:
            if self._snapshot is None:
                self._snapshot = [torch.empty_like(p) for p in self.params]
            torch._foreach_copy_(self._snapshot, [p.detach() for p in self.params])
        self._grad_cols = cols

    def after_step(self, step: int) -> None:
        """Update ratios, then pack the sample into one tensor and start its copy to the host."""
        self.detach()
        nunits = len(self.units)
        table = torch.full((nunits, NCOL), NAN, device=self.device)
        nonfinite = torch.zeros(nunits, device=self.device)
        if self._grad_cols is not None:
            g = self._grad_cols
            table[:, COL["grad_norm"]] = g[:, 0]
            table[:, COL["weight_grad_norm"]] = g[:, 1]
            table[:, COL["bias_grad_norm"]] = g[:, 2]
            table[:, COL["weight_norm"]] = g[:, 3]
            nonfinite += g[:, 4].nan_to_num(0.0)
        if self._snapshot is not None and "update" in self.stats:
            diffs = torch._foreach_sub([p.detach() for p in self.params], self._snapshot)
            dn = torch.stack(torch._foreach_norm(diffs)).square()
            wn = torch.stack(torch._foreach_norm(self._snapshot)).square()
            du = _group_sqrt(dn, self.unit_of_param, nunits)
            wu = _group_sqrt(wn, self.unit_of_param, nunits)
            table[:, COL["update_ratio"]] = du / wu
        for i, stats in self._act.items():
            table[i, COL["act_mean"] : COL["sat_frac"] + 1] = stats[:6]
            nonfinite[i] += stats[6]
        scale = self.grad_scale()
        for i, og in self._out.items():
            table[i, COL["out_grad_norm"]] = og[0] if scale is None else og[0] / scale
            nonfinite[i] += og[1]
        table[:, COL["nonfinite"]] = nonfinite
        total = self._param_norms.square().sum().sqrt().reshape(1)
        packed = torch.cat([table.flatten(), self._param_norms, total])
        self._act.clear()
        self._out.clear()
        self._grad_cols = None
        if packed.device.type == "cuda":
            host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)
            host.copy_(packed, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self._pending.append((step, host, event))
        else:
            self._pending.append((step, packed.detach().cpu(), None))

    def drain(self) -> list[Sample]:
        """Finished samples on the host, oldest first."""
        out = []
        pending, self._pending = self._pending, []
        for step, host, event in pending:
            if event is not None:
                event.synchronize()  # long finished by the next sample: no stall in practice
            values = host.tolist()
            nunits = len(self.units)
            flat = values[: nunits * NCOL]
            rows = [flat[i * NCOL : (i + 1) * NCOL] for i in range(nunits)]
            norms = values[nunits * NCOL : nunits * NCOL + len(self.params)]
            out.append(
                Sample(
                    step=step,
                    rows=rows,
                    param_grad_norms=dict(zip(self.param_names, norms)),
                    total_grad_norm=values[-1],
                )
            )
        return out


def _group_sqrt(
    sq: torch.Tensor, group: torch.Tensor, n: int, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """sqrt of the per-group sum of squares; NaN for a group with no member in mask."""
    if mask is not None:
        sq = torch.where(mask, sq, torch.zeros_like(sq))
        counts = torch.zeros(n, device=sq.device).index_add_(0, group, mask.float())
    else:
        counts = torch.zeros(n, device=sq.device).index_add_(0, group, torch.ones_like(sq))
    total = torch.zeros(n, device=sq.device, dtype=sq.dtype).index_add_(0, group, sq)
    return torch.where(counts > 0, total.sqrt(), torch.full_like(total, math.nan))


def _nonfinite_grads(
    grads: Sequence[torch.Tensor | None], norms: torch.Tensor, group: torch.Tensor, n: int
) -> torch.Tensor:
    """Per-unit count of non-finite gradient values, without a host sync.

    Counted only for tensors whose norm is not finite, so a finite gradient whose squared
    norm overflows float32 is not reported as non-finite.
    """
    bad_norm = ~torch.isfinite(norms)
    counts = torch.stack(
        [(g.numel() - torch.isfinite(g).sum()).float() for g in grads if g is not None]
    )
    counts = torch.where(bad_norm, counts, torch.zeros_like(counts))
    return torch.zeros(n, device=norms.device).index_add_(0, group, counts)
