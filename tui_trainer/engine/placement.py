"""Provides Placement: where a run's data lives and the memory format of its conv nets.

- The data set is kept on the device (``train.data_placement = "auto"`` when it fits in
  RESIDENT_SHARE of the device's free memory, or ``"device"``): moved once, a batch is an
  index into it, no copy per step. Every built-in data set fits a GPU.
- Larger ones stay on the host (``"host"``, or ``"auto"`` when they do not fit): pinned
  once when CUDA is there, each batch gathered straight into pinned memory and copied with
  ``non_blocking=True``, so the copy overlaps the GPU's work and the host never waits on
  it. PyTorch's caching host allocator hands a pinned block out again only after the
  copies that read it have run, so the staging memory is reused without a host sync.
- Conv nets on CUDA run channels-last (``train.memory_format = "auto"``; ``"channels_last"``
  or ``"contiguous"`` choose): the model's weights and every batch in NHWC, the layout
  cuDNN's tensor-core kernels want. The CPU can be asked for it too (tests run the path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tui_trainer.config import ConfigError, RunConfig

__all__ = ["RESIDENT_SHARE", "Placement", "plan", "plan_placement", "to_device"]

RESIDENT_SHARE = 0.5  # the data may take this share of the device's free memory


@dataclass(frozen=True)
class Placement:
    """The decisions for one run: ``resident`` (the data on the device) and
    ``channels_last``; ``pinned``: host data pinned for asynchronous copies."""

    device: torch.device
    resident: bool = True
    channels_last: bool = False
    pinned: bool = False

    def data(self, x: torch.Tensor) -> torch.Tensor:
        """Where a data set's tensor is kept for the run."""
        if self.resident:
            return x.to(self.device)
        return x.pin_memory() if self.pinned and not x.is_pinned() else x

    def batch(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """``x[idx]`` (or ``x``) on the device, in the run's memory format. Rows of host
        data are gathered straight into pinned memory, then copied without waiting."""
        if idx is not None and (self.resident or x.device.type != "cpu"):
            x, idx = x[idx.to(x.device)], None
        if idx is not None:  # rows of host data
            staged = torch.empty((len(idx), *x.shape[1:]), dtype=x.dtype, pin_memory=self.pinned)
            x = torch.index_select(x, 0, idx.cpu(), out=staged)
        if not _on(x, self.device):  # host data (staged, or an augmented batch)
            x = to_device(x, self.device)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def model(self, model: nn.Module) -> nn.Module:
        """The model in the run's memory format (its parameters already on the device)."""
        return model.to(memory_format=torch.channels_last) if self.channels_last else model


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor (an epoch's order, a batch's random shifts) on ``device``
    without the host waiting: pinned, then copied ``non_blocking`` on CUDA (a plain copy
    from pageable memory synchronises)."""
    if device.type != "cuda" or t.device.type != "cpu":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def _on(x: torch.Tensor, device: torch.device) -> bool:
    if device.index is None:  # "cuda": any of its devices
        return x.device.type == device.type
    return x.device == device


def plan(
    device: torch.device,
    model: nn.Module,
    nbytes: int,
    data_placement: str = "auto",
    memory_format: str = "auto",
) -> Placement:
    """Decide where ``nbytes`` of data live and whether ``model`` runs channels-last."""
    cuda = device.type == "cuda"
    if data_placement == "host" and device.type != "cpu":
        resident = False
    elif data_placement == "auto" and cuda:
        free, _ = torch.cuda.mem_get_info(device)
        resident = nbytes <= RESIDENT_SHARE * free
    else:
        resident = True  # "device", or a CPU run (the host is its device)
    convs = any(isinstance(m, nn.Conv2d) for m in model.modules())
    channels_last = memory_format == "channels_last" or (
        memory_format == "auto" and cuda and convs
    )
    return Placement(device, resident, channels_last, pinned=not resident and cuda)


def plan_placement(device: torch.device, model: nn.Module, data: Any, cfg: RunConfig) -> Placement:
    """The placement of a run's data set (``data``: x/y of train and val) and model."""
    tensors = (data.x_train, data.y_train, data.x_val, data.y_val)
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    place = plan(device, model, nbytes, cfg.train.data_placement, cfg.train.memory_format)
    if not place.resident and cfg.train.pretrain_epochs:
        raise ConfigError(
            f"train.data_placement: the data set ({nbytes / 2**30:.1f} GiB) stays on the "
            'host, and greedy pre-training (train.pretrain_epochs) needs it on the device: '
            'set train.data_placement = "device" or train.pretrain_epochs = 0'
        )
    return place
