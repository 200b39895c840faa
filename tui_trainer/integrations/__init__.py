"""Provides tui-trainer callbacks for training frameworks, each behind an optional extra:

- ``tui_trainer.integrations.lightning.TuiTrainerCallback`` (``pip install tui-trainer[lightning]``)
- ``tui_trainer.integrations.transformers.TuiTrainerCallback`` (``pip install tui-trainer[hf]``)

Both hand the framework's model and optimizer to ``tui_trainer.watch`` and translate its
hooks into ``mon.step``, ``mon.log``, ``mon.eval`` and ``mon.finish``; a stop from the app
ends training, a checkpoint request (``c``) saves one the framework's way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["TRAIN_PREFIXES", "VAL_PREFIXES", "metric_name", "numbers", "raw_optimizer"]

VAL_PREFIXES = ("val_", "val/", "valid_", "validation_", "eval_", "eval/")
TRAIN_PREFIXES = ("train_", "train/")
SHORT = {"accuracy": "acc"}  # the dashboard's accuracy panel reads train/acc and val/acc


def metric_name(key: str, prefixes: tuple[str, ...]) -> str:
    """``val_accuracy_epoch`` -> ``accuracy``->``acc``: the bare name under a framework's
    prefix and Lightning's ``_step``/``_epoch`` suffix."""
    for p in prefixes:
        if key.startswith(p):
            key = key[len(p) :]
            break
    for suffix in ("_step", "_epoch"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    return SHORT.get(key, key)


def numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """The scalar entries of a metrics dict (one-element tensors, numbers), as floats."""
    out: dict[str, float] = {}
    for k, v in values.items():
        if hasattr(v, "numel"):
            if v.numel() != 1:
                continue
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        out[k] = float(v)
    return out


def raw_optimizer(opt: Any) -> Any:
    """The torch optimizer under a framework's wrapper (accelerate's AcceleratedOptimizer
    holds it as ``optimizer``, Lightning's LightningOptimizer as ``_optimizer``): the one
    whose step hooks fire."""
    import torch

    for _ in range(4):
        inner = getattr(opt, "optimizer", None)
        if inner is None:
            inner = getattr(opt, "_optimizer", None)
        if not isinstance(inner, torch.optim.Optimizer) or inner is opt:
            return opt
        opt = inner
    return opt
