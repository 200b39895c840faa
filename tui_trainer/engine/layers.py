"""Provides the building blocks of the model zoo: LayerUnit (what the probes read), the
Layer module (op [+ norm] + activation [+ dropout] [+ residual]), activations,
initialisation, and the checks every model shares (ModelError, the size limit)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "MAX_PARAMETERS",
    "LayerUnit",
    "Layer",
    "ModelError",
    "Net",
    "check_size",
    "count_parameters",
    "init_layer",
    "make_act",
    "need_image",
]

MAX_PARAMETERS = 500_000_000


class ModelError(ValueError):
    """Bad model input; one-line message naming the key and what was expected."""


@dataclass(frozen=True)
class LayerUnit:
    """One probed layer: its module (parameters + output) and where its activations are read."""

    name: str
    module: nn.Module
    act_module: nn.Module | None
    activation: str
    kind: str


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameter elements (frozen ones included)."""
    return sum(p.numel() for p in model.parameters())


def check_size(n: int) -> None:
    if n > MAX_PARAMETERS:
        raise ModelError(f"model: ~{n:,} parameters is too many (limit 500M)")


_ACTS: dict[str, Callable[[bool], nn.Module]] = {
    "relu": lambda inplace: nn.ReLU(inplace=inplace),
    "leaky_relu": lambda inplace: nn.LeakyReLU(0.01, inplace=inplace),
    "sigmoid": lambda _: nn.Sigmoid(),
    "tanh": lambda _: nn.Tanh(),
    "gelu": lambda _: nn.GELU(),
    "identity": lambda _: nn.Identity(),
}


def need_image(shape: tuple[int, ...], kind: str) -> None:
    if len(shape) != 3:
        raise ModelError(f"model.kind: {kind} expects image input (C, H, W), got shape {shape}")


def make_act(name: str, inplace: bool = False) -> nn.Module:
    if name not in _ACTS:
        raise ModelError(f"model.activation: expected one of {', '.join(_ACTS)}, got {name!r}")
    return _ACTS[name](inplace)


def _gain(activation: str) -> float:
    if activation == "leaky_relu":
        return nn.init.calculate_gain("leaky_relu", 0.01)
    if activation in ("relu", "gelu", "tanh", "sigmoid"):
        return nn.init.calculate_gain("relu" if activation == "gelu" else activation)
    return 1.0


def init_layer(layer: nn.Module, scheme: str, activation: str) -> None:
    """Apply "xavier" or "he" to a Linear/Conv layer's weight (biases 0); "default" keeps it."""
    if scheme == "default" or layer.weight.is_meta:  # meta: only sizes matter
        return
    if scheme == "xavier":
        nn.init.xavier_uniform_(layer.weight, gain=_gain(activation))
    elif scheme == "he":
        nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
    else:
        raise ModelError(f"model.init: expected one of default, xavier, he, got {scheme!r}")
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)


class Layer(nn.Module):
    """op [+ norm] + act [+ dropout]; with ``residual`` it returns x + branch(x).

    The op is registered as ``linear`` or ``conv`` so parameter names read
    ``blocks.3.linear.weight``, ``blocks.3.norm.weight``, ``h1.conv.weight``.
    """

    def __init__(
        self,
        op: nn.Module,
        act: nn.Module,
        attr: str = "linear",
        norm: nn.Module | None = None,
        drop: nn.Module | None = None,
        residual: bool = False,
    ) -> None:
        super().__init__()
        self._attr = attr
        self.add_module(attr, op)
        self.norm = norm
        self.act = act
        self.drop = drop
        self.residual = residual

    @property
    def op(self) -> nn.Module:
        return getattr(self, self._attr)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        h = self.op(x)
        if self.norm is not None:
            h = self.norm(h)
        h = self.act(h)
        return h if self.drop is None else self.drop(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.branch(x)
        return x + h if self.residual else h


class Net(nn.Module):
    task = "classify"

    def layer_units(self) -> list[LayerUnit]:  # pragma: no cover - overridden
        raise NotImplementedError
