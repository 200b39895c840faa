"""Provides the model zoo: build_model turns a ModelConfig into an nn.Module with layer units.

Every model carries ``task`` ("classify", "perceptron" or "reconstruct") and ``layer_units()``,
a depth-ordered list of LayerUnit that covers each parameter exactly once; the probes read
per-layer statistics through these units. Sizes are checked on the meta device before any
real memory is allocated.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from tui_trainer.config import ModelConfig

__all__ = ["MAX_PARAMETERS", "LayerUnit", "ModelError", "build_model", "count_parameters"]

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


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build the model cfg describes for inputs of input_shape (no batch dim)."""
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ModelError(f"model: expected an input shape of positive sizes, got {shape}")
    if num_classes < 1:
        raise ModelError(f"model: expected num_classes >= 1, got {num_classes}")
    if cfg.kind == "factory":
        return _build_factory(cfg, shape, num_classes)
    with torch.device("meta"):
        estimate = count_parameters(_construct(cfg, shape, num_classes))
    _check_size(estimate)
    return _construct(cfg, shape, num_classes)


def _check_size(n: int) -> None:
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


def _need_image(shape: tuple[int, ...], kind: str) -> None:
    if len(shape) != 3:
        raise ModelError(f"model.kind: {kind} expects image input (C, H, W), got shape {shape}")


def _make_act(name: str, inplace: bool = False) -> nn.Module:
    if name not in _ACTS:
        raise ModelError(f"model.activation: expected one of {', '.join(_ACTS)}, got {name!r}")
    return _ACTS[name](inplace)


def _gain(activation: str) -> float:
    if activation == "leaky_relu":
        return nn.init.calculate_gain("leaky_relu", 0.01)
    if activation in ("relu", "gelu", "tanh", "sigmoid"):
        return nn.init.calculate_gain("relu" if activation == "gelu" else activation)
    return 1.0


def _init_layer(layer: nn.Module, scheme: str, activation: str) -> None:
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


class _Layer(nn.Module):
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


class _Net(nn.Module):
    task = "classify"

    def layer_units(self) -> list[LayerUnit]:  # pragma: no cover - overridden
        raise NotImplementedError


class Perceptron(_Net):
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


def _mlp_block(d_in: int, d_out: int, cfg: ModelConfig) -> _Layer:
    norms = {"batchnorm": nn.BatchNorm1d, "layernorm": nn.LayerNorm}
    return _Layer(
        nn.Linear(d_in, d_out),
        _make_act(cfg.activation, cfg.inplace),
        norm=norms[cfg.norm](d_out) if cfg.norm in norms else None,
        drop=nn.Dropout(cfg.dropout) if cfg.dropout > 0 else None,
        residual=bool(cfg.residual) and d_in == d_out,
    )


class MLP(_Net):
    def __init__(self, d: int, num_classes: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.activation = cfg.activation
        self.flatten = nn.Flatten()
        sizes = [d] + [cfg.width] * cfg.depth
        self.blocks = nn.ModuleList(_mlp_block(a, b, cfg) for a, b in pairwise(sizes))
        self.head = nn.Linear(sizes[-1], num_classes)
        for block in self.blocks:
            _init_layer(block.linear, cfg.init, cfg.activation)
        _init_layer(self.head, cfg.init, "identity")

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


class LeNet1989(_Net):
    """Two strided 5x5 conv layers of 12 maps, a 30-unit hidden layer and the output layer."""

    def __init__(self, shape: tuple[int, ...], num_classes: int, cfg: ModelConfig) -> None:
        super().__init__()
        _need_image(shape, "lenet1989")
        c, h, w = shape
        for _ in range(2):
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1  # k=5, stride 2, padding 2
        self.activation = cfg.activation

        def conv(c_in: int) -> _Layer:
            op = nn.Conv2d(c_in, 12, 5, stride=2, padding=2)
            return _Layer(op, _make_act(cfg.activation, cfg.inplace), "conv")

        self.h1 = conv(c)
        self.h2 = conv(12)
        self.h3 = _Layer(nn.Linear(12 * h * w, 30), _make_act(cfg.activation, cfg.inplace))
        self.out = nn.Linear(30, num_classes)
        for layer in (self.h1.conv, self.h2.conv, self.h3.linear):
            _init_layer(layer, cfg.init, cfg.activation)
        _init_layer(self.out, cfg.init, "identity")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.h2(self.h1(x))
        return self.out(self.h3(h.flatten(1)))

    def first_layer_filters(self) -> torch.Tensor:
        """The h1 kernels, shape (12, C, 5, 5), detached."""
        return self.h1.conv.weight.detach()

    def hidden_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each hidden layer's output for x, in depth order: h1, h2 (maps), h3 (units)."""
        h1 = self.h1(x)
        h2 = self.h2(h1)
        return {"h1": h1, "h2": h2, "h3": self.h3(h2.flatten(1))}

    def layer_units(self) -> list[LayerUnit]:
        a = self.activation
        return [
            LayerUnit("h1", self.h1, self.h1.act, a, "conv"),
            LayerUnit("h2", self.h2, self.h2.act, a, "conv"),
            LayerUnit("h3", self.h3, self.h3.act, a, "linear"),
            LayerUnit("out", self.out, None, "identity", "output"),
        ]


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN, plus the option-A shortcut when residual, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int, cfg: ModelConfig) -> None:
        super().__init__()
        inplace = cfg.inplace
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU(inplace=inplace)
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU(inplace=inplace)
        self.residual = cfg.residual
        self.stride = stride
        self.pad = c_out - c_in

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Option A: identity, or subsample and zero-pad channels (no parameters)."""
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            front = self.pad // 2
            x = F.pad(x, (0, 0, 0, 0, front, self.pad - front))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        if self.residual:
            out = out + self.shortcut(x)
        return self.relu2(out)


class CifarNet(_Net):
    """ResNet-(6n+2) for CIFAR (or a plain net with residual=False), option-A shortcuts."""

    def __init__(self, shape: tuple[int, ...], num_classes: int, cfg: ModelConfig) -> None:
        super().__init__()
        _need_image(shape, "cifar_net")
        if cfg.depth < 8 or (cfg.depth - 2) % 6:
            raise ModelError(f"model.depth: expected 6n+2 >= 8 for cifar_net, got {cfg.depth}")
        n, w = (cfg.depth - 2) // 6, cfg.width
        self.stem = _Layer(
            _conv3x3(shape[0], w), nn.ReLU(inplace=cfg.inplace), "conv", nn.BatchNorm2d(w)
        )
        self.stages = nn.ModuleList()
        for s in range(3):
            c, c_prev = w * 2**s, w * 2 ** max(s - 1, 0)
            blocks = nn.Sequential(
                *(BasicBlock(c if i else c_prev, c, 2 if s and not i else 1, cfg) for i in range(n))
            )
            self.stages.append(nn.ModuleDict({"blocks": blocks}))
        self.head = nn.Linear(4 * w, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and not m.weight.is_meta:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if cfg.zero_init_residual and cfg.residual and isinstance(m, BasicBlock):
                if not m.bn2.weight.is_meta:
                    nn.init.zeros_(m.bn2.weight)
        _init_layer(self.head, cfg.init, "identity")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for stage in self.stages:
            h = stage["blocks"](h)
        return self.head(F.adaptive_avg_pool2d(h, 1).flatten(1))

    def layer_units(self) -> list[LayerUnit]:
        units = [LayerUnit("stem", self.stem, self.stem.act, "relu", "conv")]
        for s, stage in enumerate(self.stages):
            for i, b in enumerate(stage["blocks"]):
                units.append(LayerUnit(f"stages.{s}.blocks.{i}", b, b.relu2, "relu", "block"))
        return units + [LayerUnit("head", self.head, None, "identity", "output")]


class Autoencoder(_Net):
    """Mirrored MLP autoencoder with a linear code; output is the flat reconstruction."""

    task = "reconstruct"

    def __init__(self, d: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.activation = cfg.activation
        self.flatten = nn.Flatten()
        hidden = list(cfg.hidden)
        enc_sizes = [d] + hidden
        dec_sizes = [cfg.code_size] + hidden[::-1]

        def layer(a: int, b: int) -> _Layer:
            return _Layer(nn.Linear(a, b), _make_act(cfg.activation, cfg.inplace))

        self.enc = nn.ModuleList(layer(a, b) for a, b in pairwise(enc_sizes))
        self.code = nn.Linear(enc_sizes[-1], cfg.code_size)
        self.dec = nn.ModuleList(layer(a, b) for a, b in pairwise(dec_sizes))
        self.out = nn.Linear(dec_sizes[-1], d)
        for lin in self.encoder_layers()[:-1] + self.decoder_layers()[:-1]:
            _init_layer(lin, cfg.init, cfg.activation)
        _init_layer(self.code, cfg.init, "identity")
        _init_layer(self.out, cfg.init, "identity")

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
        "cifar_net": lambda: CifarNet(shape, num_classes, cfg),
        "autoencoder": lambda: Autoencoder(d, cfg),
    }
    if cfg.kind not in makers:
        raise ModelError(f"model.kind: expected one of {', '.join(makers)}, got {cfg.kind!r}")
    return makers[cfg.kind]()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _resolve_factory(spec: str) -> Callable[..., object]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ModelError(f'model.factory: expected "package.module:function", got {spec!r}')
    try:
        obj: object = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelError(f"model.factory: cannot import {spec!r} ({_first_line(exc)})") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"model.factory: cannot import {spec!r} (no attribute {part!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelError(f"model.factory: {spec!r} is not callable")
    return obj


def _fallback_units(model: nn.Module) -> list[LayerUnit]:
    """One unit per module that owns parameters directly, in registration order."""
    units, seen = [], set()
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if id(p) not in seen]
        if not own:
            continue
        seen.update(id(p) for p in own)
        conv = isinstance(module, nn.modules.conv._ConvNd)
        kind = "conv" if conv else "linear" if isinstance(module, nn.Linear) else "other"
        units.append(LayerUnit(name or "model", module, None, "identity", kind))
    return units


def _build_factory(cfg: ModelConfig, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    spec = cfg.factory
    fn = _resolve_factory(spec)
    kwargs = dict(input_shape=shape, num_classes=num_classes, **cfg.options)
    try:  # size check on the meta device; a factory that cannot run there is built directly
        with torch.device("meta"):
            probe = fn(**kwargs)
        estimate = count_parameters(probe) if isinstance(probe, nn.Module) else 0
    except Exception:
        estimate = 0
    _check_size(estimate)
    try:
        model = fn(**kwargs)
    except Exception as exc:
        raise ModelError(f"model.factory: {spec!r} failed ({_first_line(exc)})") from exc
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model.factory: expected {spec!r} to return an nn.Module, got {type(model).__name__}"
        )
    if not callable(getattr(model, "layer_units", None)):
        model.layer_units = functools.partial(_fallback_units, model)
    if not hasattr(model, "task"):
        model.task = "classify"
    return model
