"""Provides the convolutional models: LeCun et al.'s 1989 network, a plain conv net in the
style of Krizhevsky et al.'s (conv-activation-max-pool stages, then one linear layer) and
the CIFAR ResNets (6n+2 layers, option-A shortcuts; plain with ``residual = false``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tui_trainer.config import ModelConfig
from tui_trainer.engine.layers import (
    Layer,
    LayerUnit,
    ModelError,
    Net,
    init_layer,
    make_act,
    need_image,
)

__all__ = ["BasicBlock", "CifarNet", "ConvNet", "LeNet1989"]


class LeNet1989(Net):
    """Two strided 5x5 conv layers of 12 maps, a 30-unit hidden layer and the output layer."""

    def __init__(self, shape: tuple[int, ...], num_classes: int, cfg: ModelConfig) -> None:
        super().__init__()
        need_image(shape, "lenet1989")
        c, h, w = shape
        for _ in range(2):
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1  # k=5, stride 2, padding 2
        self.activation = cfg.activation

        def conv(c_in: int) -> Layer:
            op = nn.Conv2d(c_in, 12, 5, stride=2, padding=2)
            return Layer(op, make_act(cfg.activation, cfg.inplace), "conv")

        self.h1 = conv(c)
        self.h2 = conv(12)
        self.h3 = Layer(nn.Linear(12 * h * w, 30), make_act(cfg.activation, cfg.inplace))
        self.out = nn.Linear(30, num_classes)
        for layer in (self.h1.conv, self.h2.conv, self.h3.linear):
            init_layer(layer, cfg.init, cfg.activation)
        init_layer(self.out, cfg.init, "identity")

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


class ConvNet(Net):
    """``depth`` stages of 5x5 conv (stride 1, padding 2) + activation + 2x2 max-pool, with
    ``width``, ``width``, then ``2 * width`` maps, and a linear output layer: with depth 3
    the four-layer net of Krizhevsky et al. (2012, Figure 1; cuda-convnet's CIFAR-10 net,
    without response normalisation). Pooling stops once the maps are 1x1."""

    def __init__(self, shape: tuple[int, ...], num_classes: int, cfg: ModelConfig) -> None:
        super().__init__()
        need_image(shape, "convnet")
        if cfg.depth < 1:
            raise ModelError(f"model.depth: expected >= 1 conv layers for convnet, got {cfg.depth}")
        c, h, w = shape
        self.activation = cfg.activation
        self.convs = nn.ModuleList()
        self.pools: list[bool] = []
        for i in range(cfg.depth):
            c_out = cfg.width * (2 if i >= 2 else 1)
            op = nn.Conv2d(c, c_out, 5, padding=2)
            self.convs.append(Layer(op, make_act(cfg.activation, cfg.inplace), "conv"))
            pool = min(h, w) >= 2
            self.pools.append(pool)
            if pool:
                h, w = h // 2, w // 2
            c = c_out
        self.out = nn.Linear(c * h * w, num_classes)
        for layer in self.convs:
            init_layer(layer.conv, cfg.init, cfg.activation)
        init_layer(self.out, cfg.init, "identity")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, pool in zip(self.convs, self.pools, strict=True):
            x = layer(x)
            if pool:
                x = F.max_pool2d(x, 2)
        return self.out(x.flatten(1))

    def first_layer_filters(self) -> torch.Tensor:
        """The first conv layer's kernels, shape (width, C, 5, 5), detached."""
        return self.convs[0].conv.weight.detach()

    def layer_units(self) -> list[LayerUnit]:
        a = self.activation
        units = [LayerUnit(f"convs.{i}", m, m.act, a, "conv") for i, m in enumerate(self.convs)]
        return units + [LayerUnit("out", self.out, None, "identity", "output")]


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


class CifarNet(Net):
    """ResNet-(6n+2) for CIFAR (or a plain net with residual=False), option-A shortcuts."""

    def __init__(self, shape: tuple[int, ...], num_classes: int, cfg: ModelConfig) -> None:
        super().__init__()
        need_image(shape, "cifar_net")
        if cfg.depth < 8 or (cfg.depth - 2) % 6:
            raise ModelError(f"model.depth: expected 6n+2 >= 8 for cifar_net, got {cfg.depth}")
        n, w = (cfg.depth - 2) // 6, cfg.width
        self.stem = Layer(
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
        init_layer(self.head, cfg.init, "identity")

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
