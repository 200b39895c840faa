"""Provides build_factory: a user's own model, from ``model.factory = "package.module:function"``
(the only way a preset runs code). The function is called with ``input_shape``,
``num_classes`` and ``model.options``; a model without ``layer_units()`` gets one unit per
module that owns parameters."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

import torch
from torch import nn

from tui_trainer.config import ModelConfig
from tui_trainer.engine.layers import LayerUnit, ModelError, check_size, count_parameters
from tui_trainer.text import first_line

__all__ = ["build_factory"]


def _resolve_factory(spec: str) -> Callable[..., object]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ModelError(f'model.factory: expected "package.module:function", got {spec!r}')
    try:
        obj: object = importlib.import_module(module_name)
    except Exception as exc:
        why = first_line(exc, with_type=True)
        raise ModelError(f"model.factory: cannot import {spec!r} ({why})") from exc
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


def build_factory(cfg: ModelConfig, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    spec = cfg.factory
    fn = _resolve_factory(spec)
    kwargs = dict(input_shape=shape, num_classes=num_classes, **cfg.options)
    try:  # size check on the meta device; a factory that cannot run there is built directly
        with torch.device("meta"):
            probe = fn(**kwargs)
        estimate = count_parameters(probe) if isinstance(probe, nn.Module) else 0
    except Exception:
        estimate = 0
    check_size(estimate)
    try:
        model = fn(**kwargs)
    except Exception as exc:
        why = first_line(exc, with_type=True)
        raise ModelError(f"model.factory: {spec!r} failed ({why})") from exc
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model.factory: expected {spec!r} to return an nn.Module, got {type(model).__name__}"
        )
    if not callable(getattr(model, "layer_units", None)):
        model.layer_units = functools.partial(_fallback_units, model)
    if not hasattr(model, "task"):
        model.task = "classify"
    return model
