"""Provides the model zoo: build_model turns a ModelConfig into an nn.Module with layer units.

Every model carries ``task`` ("classify", "perceptron" or "reconstruct") and ``layer_units()``,
a depth-ordered list of LayerUnit that covers each parameter exactly once; the probes read
per-layer statistics through these units. Sizes are checked on the meta device before any
real memory is allocated.

Here: the dispatch, the perceptrons, the MLP and the autoencoder. The building blocks are in
layers.py, the convolutional nets in convnets.py, a user's own model in factory.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise

import torch
from torch import nn

from tui_trainer.config import ModelConfig
from tui_trainer.engine.convnets import CifarNet, ConvNet, LeNet1989
from tui_trainer.engine.factory import build_factory
from tui_trainer.engine.layers import (
    MAX_PARAMETERS,
    Layer,
    LayerUnit,
    ModelError,
    Net,
    check_size,
    count_parameters,
    init_layer,
    make_act,
)

__all__ = ["MAX_PARAMETERS", "LayerUnit", "ModelError", "build_model", "count_parameters"]


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build the model cfg describes for inputs of input_shape (no batch dim)."""
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ModelError(f"model: expected an input shape of positive sizes, got {shape}")
    if num_classes < 1:
        raise ModelError(f"model: expected num_classes >= 1, got {num_classes}")
    if cfg.kind == "factory":
        return build_factory(cfg, shape, num_classes)
    with torch.device("meta"):
        estimate = count_parameters(_construct(cfg, shape, num_classes))
    check_size(estimate)
    return _construct(cfg, shape, num_classes)


class Perceptron(Net):
    """Rosenblatt's perceptron: one linear threshold unit, fires when w.x + b > 0."""

    task = "perceptron"

    def __init__(self, d: int) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.unit = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unit(self.flatten(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """0/1 predictions of shape (N,) as int64."""
        score = self.forward(x).squeeze(1)
        return (score > 0).long()

    def layer_units(self) -> list[LayerUnit]:
        return [LayerUnit("unit", self.unit, None, "threshold", "linear")]


class ThresholdUnit(Perceptron):
    """McCulloch-Pitts unit with hand-set, frozen weights: fires when w.x >= threshold."""

    def __init__(self, weights: tuple[float, ...], threshold: float) -> None:
        super().__init__(len(weights))
        self.threshold = float(threshold)
        with torch.no_grad():
            self.unit.weight.copy_(torch.tensor(weights, dtype=torch.float32).view(1, -1))
            self.unit.bias.fill_(-self.threshold)
        self.unit.requires_grad_(False)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        dot = self.flatten(x).to(self.unit.weight.dtype) @ self.unit.weight.t()
        return (dot.squeeze(1) >= self.threshold).long()


def _mlp_block(d_in: int, d_out: int, cfg: ModelConfig) -> Layer:
    norms = {"batchnorm": nn.BatchNorm1d, "layernorm": nn.LayerNorm}
    return Layer(
        nn.Linear(d_in, d_out),
        make_act(cfg.activation, cfg.inplace),
        norm=norms[cfg.norm](d_out) if cfg.norm in norms else None,
        drop=nn.Dropout(cfg.dropout) if cfg.dropout > 0 else None,
        residual=bool(cfg.residual) and d_in == d_out,
    )


class MLP(Net):
    def __init__(self, d: int, num_classes: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.activation = cfg.activation
        self.flatten = nn.Flatten()
        sizes = [d] + [cfg.width] * cfg.depth
        self.blocks = nn.ModuleList(_mlp_block(a, b, cfg) for a, b in pairwise(sizes))
        self.head = nn.Linear(sizes[-1], num_classes)
        for block in self.blocks:
            init_layer(block.linear, cfg.init, cfg.activation)
        init_layer(self.head, cfg.init, "identity")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.flatten(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)

    def layer_units(self) -> list[LayerUnit]:
        units = [
            LayerUnit(f"blocks.{i}", b, b.act, self.activation, "block" if b.residual else "linear")
            for i, b in enumerate(self.blocks)
        ]
        return units + [LayerUnit("head", self.head, None, "identity", "output")]


class Autoencoder(Net):
    """Mirrored MLP autoencoder with a linear code; output is the flat reconstruction."""

    task = "reconstruct"

    def __init__(self, d: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.activation = cfg.activation
        self.flatten = nn.Flatten()
        hidden = list(cfg.hidden)
        enc_sizes = [d] + hidden
        dec_sizes = [cfg.code_size] + hidden[::-1]

        def layer(a: int, b: int) -> Layer:
            return Layer(nn.Linear(a, b), make_act(cfg.activation, cfg.inplace))

        self.enc = nn.ModuleList(layer(a, b) for a, b in pairwise(enc_sizes))
        self.code = nn.Linear(enc_sizes[-1], cfg.code_size)
        self.dec = nn.ModuleList(layer(a, b) for a, b in pairwise(dec_sizes))
        self.out = nn.Linear(dec_sizes[-1], d)
        for lin in self.encoder_layers()[:-1] + self.decoder_layers()[:-1]:
            init_layer(lin, cfg.init, cfg.activation)
        init_layer(self.code, cfg.init, "identity")
        init_layer(self.out, cfg.init, "identity")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = self.flatten(x)
        for layer in self.enc:
            h = layer(h)
        return self.code(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.dec:
            z = layer(z)
        return self.out(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def encoder_layers(self) -> list[nn.Linear]:
        """The Linear layers from input to code."""
        return [layer.linear for layer in self.enc] + [self.code]

    def decoder_layers(self) -> list[nn.Linear]:
        """The Linear layers from code to output, mirroring encoder_layers() in reverse."""
        return [layer.linear for layer in self.dec] + [self.out]

    def layer_units(self) -> list[LayerUnit]:
        a = self.activation
        units = [LayerUnit(f"enc.{i}", m, m.act, a, "linear") for i, m in enumerate(self.enc)]
        units.append(LayerUnit("code", self.code, None, "identity", "linear"))
        units += [LayerUnit(f"dec.{i}", m, m.act, a, "linear") for i, m in enumerate(self.dec)]
        return units + [LayerUnit("out", self.out, None, "identity", "output")]


def _construct(cfg: ModelConfig, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    d = math.prod(shape)
    if cfg.kind == "threshold" and len(cfg.weights) != d:
        raise ModelError(
            f"model.weights: expected {d} numbers (the flattened input size), "
            f"got {len(cfg.weights)}"
        )
    makers: dict[str, Callable[[], nn.Module]] = {
        "perceptron": lambda: Perceptron(d),
        "threshold": lambda: ThresholdUnit(cfg.weights, cfg.threshold),
        "mlp": lambda: MLP(d, num_classes, cfg),
        "lenet1989": lambda: LeNet1989(shape, num_classes, cfg),
        "convnet": lambda: ConvNet(shape, num_classes, cfg),
        "cifar_net": lambda: CifarNet(shape, num_classes, cfg),
        "autoencoder": lambda: Autoencoder(d, cfg),
    }
    if cfg.kind not in makers:
        raise ModelError(f"model.kind: expected one of {', '.join(makers)}, got {cfg.kind!r}")
    return makers[cfg.kind]()
