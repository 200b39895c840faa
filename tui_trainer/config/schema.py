"""Provides RunConfig and its parts: the frozen, validated schema of one experiment.

Validation is strict: an unknown key, a wrong type or an out-of-range value raises
ConfigError with one line naming the file, the key and what was expected. Reading preset
files, variants and ``--set`` overrides is ``config.files``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from tui_trainer.config.strict import ConfigError, build, plain
from tui_trainer.text import run_label

__all__ = [
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "ProbeConfig",
    "RunConfig",
    "TrainConfig",
]

# Refuse sizes before anything is allocated.
MAX_DEPTH = 1000
MAX_WIDTH = 65536
MAX_BATCH = 1 << 20
MAX_STEPS = 1 << 40
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")


Activation = Literal["sigmoid", "tanh", "relu", "leaky_relu", "gelu", "identity"]


@dataclass(frozen=True)
class DataConfig:
    name: Literal[
        "xor", "gates", "blobs", "spirals", "digits", "mnist1d", "shapes", "mnist", "cifar10"
    ] = "digits"
    batch_size: int = 64
    val_fraction: float = 0.2
    size: int = 0  # image side for digits/mnist/shapes (8 or 16 for digits); 0 = native
    n: int = 0  # examples for synthetic sets; 0 = the set's default
    noise: float = 0.0
    train_subset: int = 0  # keep only this many training examples; 0 = all
    gate: Literal["and", "or", "nand", "nor", "xor", "not"] = "and"
    dir: str = ""  # directory of MNIST/CIFAR-10 files
    augment: Literal["none", "shift", "shift-rotate"] = "none"
    seed: int = 0  # seed of the generated data and of the fixed split

    def validate(self) -> None:
        _positive("data.batch_size", self.batch_size, MAX_BATCH)
        if not 0.0 <= self.val_fraction < 1.0:
            raise _err("data.val_fraction", "a number in [0, 1)", self.val_fraction)
        if self.n < 0 or self.n > 10_000_000:
            raise _err("data.n", "an integer in [0, 10000000]", self.n)
        if self.size not in (0, 8, 16, 28, 32):
            raise _err("data.size", "one of 0, 8, 16, 28, 32", self.size)
        if self.train_subset < 0:
            raise _err("data.train_subset", "an integer >= 0", self.train_subset)
        if self.noise < 0:
            raise _err("data.noise", "a number >= 0", self.noise)
        if self.name in ("mnist", "cifar10") and not self.dir:
            raise ConfigError(
                f"data.dir: expected the directory holding the {self.name} files "
                f"(set it with --set data.dir=PATH)"
            )


@dataclass(frozen=True)
class ModelConfig:
    kind: Literal[
        "perceptron", "threshold", "mlp", "lenet1989", "convnet", "cifar_net", "autoencoder",
        "factory",
    ] = "mlp"
    depth: int = 2  # hidden layers (mlp); conv layers (convnet); 6n+2 (cifar_net)
    width: int = 64  # hidden units (mlp); base channels (convnet, cifar_net)
    activation: Activation = "relu"
    init: Literal["default", "xavier", "he"] = "default"
    norm: Literal["none", "batchnorm", "layernorm"] = "none"
    residual: bool = False
    # cifar_net: start each residual block's last batch norm at scale 0, so a deep ResNet
    # begins as a shallow one (Goyal et al. 2017); the paper (He et al. 2016) did not.
    zero_init_residual: bool = False
    dropout: float = 0.0
    inplace: bool = False  # in-place activations (ReLU(inplace=True))
    hidden: tuple[int, ...] = ()  # autoencoder encoder sizes, e.g. [256, 64]
    code_size: int = 2  # autoencoder code
    weights: tuple[float, ...] = ()  # threshold unit: hand-set weights
    threshold: float = 0.0  # threshold unit: fires when w.x >= threshold
    factory: str = ""  # "package.module:function" for a user's own model
    options: dict[str, Any] = field(default_factory=dict)  # passed to the factory

    def validate(self) -> None:
        _positive("model.depth", self.depth, MAX_DEPTH, allow_zero=True)
        _positive("model.width", self.width, MAX_WIDTH)
        _positive("model.code_size", self.code_size, MAX_WIDTH)
        for h in self.hidden:
            _positive("model.hidden", h, MAX_WIDTH)
        if not 0.0 <= self.dropout < 1.0:
            raise _err("model.dropout", "a number in [0, 1)", self.dropout)
        if self.kind == "factory" and ":" not in self.factory:
            raise _err("model.factory", '"package.module:function"', self.factory or "(empty)")
        if self.factory and self.kind != "factory":
            raise ConfigError('model.factory: set model.kind = "factory" to use a factory')
        if self.kind == "cifar_net" and (self.depth - 2) % 6 != 0:
            raise _err("model.depth", "6n+2 for cifar_net (20, 32, 44, 56, 110)", self.depth)
        if self.kind == "mlp" and self.depth * self.width * self.width > 2_000_000_000:
            raise ConfigError(
                f"model: depth {self.depth} x width {self.width} is too large "
                f"(over 2e9 parameters); expected depth*width^2 <= 2e9"
            )


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["sgd", "adam", "adamw", "perceptron"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: Literal["constant", "step", "cosine"] = "constant"
    warmup_steps: int = 0
    step_size: int = 1000  # steps between decays (schedule = "step")
    gamma: float = 0.1

    def validate(self) -> None:
        if not self.lr > 0 or self.lr != self.lr or self.lr == float("inf"):
            raise _err("optim.lr", "a number > 0", self.lr)
        if not 0.0 <= self.momentum < 1.0:
            raise _err("optim.momentum", "a number in [0, 1)", self.momentum)
        if self.weight_decay < 0:
            raise _err("optim.weight_decay", "a number >= 0", self.weight_decay)
        if self.nesterov and self.momentum == 0:
            raise ConfigError("optim.nesterov: expected optim.momentum > 0 with nesterov")
        if self.warmup_steps < 0:
            raise _err("optim.warmup_steps", "an integer >= 0", self.warmup_steps)
        _positive("optim.step_size", self.step_size, MAX_STEPS)
        if not 0 < self.gamma <= 1:
            raise _err("optim.gamma", "a number in (0, 1]", self.gamma)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    max_steps: int = 0  # 0 = epochs decide; otherwise stop after this many steps
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    eval_every: int = 0  # steps between evaluations; 0 = once per epoch
    log_every: int = 10  # steps between training-loss records
    grad_clip: float = 0.0  # max total gradient norm; 0 = off
    threads: int = 0  # torch threads for the training process; 0 = automatic
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast; fp16 uses a GradScaler
    compile: bool = False  # torch.compile the model (probed steps run it eagerly)
    # auto: channels-last for conv nets on CUDA; the data on the device when it fits in half
    # its free memory, else on the host (pinned, copied asynchronously): engine/placement.py
    memory_format: Literal["auto", "channels_last", "contiguous"] = "auto"
    data_placement: Literal["auto", "device", "host"] = "auto"
    # Greedy layer-wise autoencoder pre-training of an MLP's hidden layers before training
    # (Hinton & Salakhutdinov 2006); 0 = off. Epochs per layer, at pretrain_lr with Adam.
    pretrain_epochs: int = 0
    pretrain_lr: float = 0.01
    eval_train: bool = False  # also evaluate on the training set (eval mode): train_eval/*, gap/*

    def validate(self) -> None:
        _positive("train.epochs", self.epochs, 1_000_000, allow_zero=True)
        if not DEVICE.fullmatch(self.device):
            raise _err("train.device", "one of auto, cpu, cuda, cuda:N, mps", self.device)
        _positive("train.max_steps", self.max_steps, MAX_STEPS, allow_zero=True)
        _positive("train.eval_every", self.eval_every, MAX_STEPS, allow_zero=True)
        _positive("train.log_every", self.log_every, MAX_STEPS)
        _positive("train.threads", self.threads, 4096, allow_zero=True)
        if self.grad_clip < 0:
            raise _err("train.grad_clip", "a number >= 0", self.grad_clip)
        _positive("train.pretrain_epochs", self.pretrain_epochs, 100_000, allow_zero=True)
        if not self.pretrain_lr > 0:
            raise _err("train.pretrain_lr", "a number > 0", self.pretrain_lr)


@dataclass(frozen=True)
class ProbeConfig:
    every: int | Literal["auto"] = "auto"  # sample every N steps; "auto" keeps overhead < 3%
    stats: tuple[str, ...] = ("grad", "weight", "update", "out_grad", "act")
    histogram_every: int = 0  # 0 = no histograms
    on_nonfinite: Literal["stop", "pause", "continue"] = "stop"
    budget: float = 0.03  # overhead target for every = "auto"

    def validate(self) -> None:
        if self.every != "auto":
            _positive("probe.every", self.every, MAX_STEPS, allow_zero=True)
        known = {"grad", "weight", "update", "out_grad", "act"}
        for s in self.stats:
            if s not in known:
                raise _err("probe.stats", f"a list of {sorted(known)}", s)
        if not 0 < self.budget < 1:
            raise _err("probe.budget", "a number in (0, 1)", self.budget)


@dataclass(frozen=True)
class CheckpointConfig:
    every: int = 0  # steps between checkpoints; 0 = none by step count
    every_seconds: float = 300.0  # wall-clock seconds between checkpoints; 0 = none by time
    keep_best: bool = True

    def validate(self) -> None:
        _positive("checkpoint.every", self.every, MAX_STEPS, allow_zero=True)
        if not 0 <= self.every_seconds <= 1e7:  # also false for NaN
            raise _err("checkpoint.every_seconds", "seconds in [0, 1e7]", self.every_seconds)


@dataclass(frozen=True)
class RunConfig:
    """One experiment: what a preset (with a variant and overrides applied) resolves to."""

    preset: str = "custom"
    variant: str = ""
    title: str = ""
    section: str = ""
    claim: int = 0
    scale: Literal["cpu", "paper"] = "cpu"  # "paper": the original paper's sizes (GPU, real data)
    description: str = ""
    look_at: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    expect: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``preset/variant``: how every screen and summary names this run."""
        return run_label(self.preset, self.variant)

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<config>") -> RunConfig:
        cfg = build(cls, raw, "", source)
        for part in (cfg.data, cfg.model, cfg.optim, cfg.train, cfg.probe, cfg.checkpoint):
            try:
                part.validate()
            except ConfigError as exc:
                raise ConfigError(f"{source}: {exc}") from None
        if cfg.train.pretrain_epochs and cfg.model.kind != "mlp":
            raise ConfigError(
                f"{source}: train.pretrain_epochs: greedy pre-training needs model.kind = "
                f'"mlp", got {cfg.model.kind!r}'
            )
        if cfg.expect:
            from tui_trainer.config.expect import parse_expect  # the [expect] schema lives there

            parse_expect(cfg.expect, source)
        return cfg


# --- internals -------------------------------------------------------------------------


def _err(key: str, expected: str, got: Any) -> ConfigError:
    return ConfigError(f"{key}: expected {expected}, got {got!r}")


def _positive(key: str, value: int, upper: int, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if not low <= value <= upper:
        raise _err(key, f"an integer in [{low}, {upper}]", value)
