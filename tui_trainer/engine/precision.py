"""Provides the trainer's precision and compilation set-up: ``train.precision`` (fp32, bf16
autocast, fp16 autocast with a GradScaler) and ``train.compile`` (torch.compile).

Plain steps run the compiled model; sampled steps run the original eagerly, because hooks
added after compiling never fire (pytorch#117758).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

__all__ = ["AMP_DTYPES", "Precision", "autocast"]

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    """Autocast to ``dtype`` on ``device``'s kind; a null context for fp32 (entering a
    disabled autocast still costs)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype)


class Precision:
    """The precision parts of one run: the autocast dtype, the GradScaler (fp16), the
    compiled model (train.compile)."""

    def __init__(self, precision: str, compile_model: bool, device: torch.device) -> None:
        self.name = precision
        self.device = device
        self.amp_dtype = AMP_DTYPES.get(precision)
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        self.compile_model = compile_model

    def compiled(self, model: nn.Module) -> nn.Module | None:
        """``torch.compile(model)`` when train.compile asks for it (lazy: nothing compiles
        before the first call)."""
        return torch.compile(model) if self.compile_model else None

    def autocast(self) -> Any:
        return autocast(self.device, self.amp_dtype)
