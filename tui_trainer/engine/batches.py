"""Provides EpochBatches: the training batches of a run, a function of (seed, step).

The order of an epoch is ``data.epoch_order(n, seed, epoch)`` and a step's augmentation is
seeded by (seed, step), so a resumed run sees exactly the batches it would have seen. A
``Placement`` brings each batch to the device (data kept on the host: through pinned
memory) in the run's memory format.

Data kept on the device (and not augmented) is put in the epoch's order once an epoch, one
gather of the whole set, when that copy is at most EPOCH_COPY_MAX bytes, and split into the
epoch's batches (views) at once: a step's batch is then an item of a list, with no per-step
gather of x and y (two small kernels and their index arithmetic) and no per-step slicing
(beside a training step, two slices and the placement's checks took 15 us of a digits-mlp
step's ~1.1 ms on the CPU; the gathers of a plain loop about twice that).
"""

from __future__ import annotations

import torch

from tui_trainer.engine.data import augment_batch, epoch_order
from tui_trainer.engine.placement import Placement, to_device

__all__ = ["EPOCH_COPY_MAX", "EpochBatches"]

EPOCH_COPY_MAX = 256 << 20  # bytes: larger resident sets are gathered batch by batch


class EpochBatches:
    """``batch(step)`` -> (x, y) of that step; the epoch's order is made once per epoch."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        batches_per_epoch: int,
        seed: int,
        augment: str = "none",
        placement: Placement | None = None,
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.seed = seed
        self.augment = augment
        self.place = placement or Placement(x.device)
        self._order = torch.empty(0, dtype=torch.long)
        self._epoch = -1  # the epoch whose order is in _order
        resident = self.place.resident and x.device == y.device
        size = x.numel() * x.element_size() + y.numel() * y.element_size()
        self.whole_epoch = resident and augment == "none" and size <= EPOCH_COPY_MAX
        self._xs: tuple[torch.Tensor, ...] = ()  # the epoch's batches (whole_epoch)
        self._ys: tuple[torch.Tensor, ...] = ()

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        bs = self.batch_size
        epoch, b = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            self._order = to_device(epoch_order(len(self.y), self.seed, epoch), self.x.device)
            self._epoch = epoch
            if self.whole_epoch:  # the last epoch's copy goes first: one copy at a time
                # (channels-last: the gathered copy and its channels-last one, briefly)
                self._xs = self._ys = ()
                xe = self.place.batch(self.x[self._order])  # in the run's memory format
                self._xs, self._ys = xe.split(bs), self.y[self._order].split(bs)
        if self.whole_epoch:  # views of the set in this epoch's order
            return self._xs[b], self._ys[b]
        idx = self._order[b * bs : (b + 1) * bs]
        y = self.place.batch(self.y, idx)
        if self.augment == "none":
            return self.place.batch(self.x, idx), y
        # augmented where the data is (on a GPU: on it, no copy to the host and back),
        # with random numbers from a CPU generator: the same shifts on any device
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        x = augment_batch(self.x[idx.to(self.x.device)], self.augment, gen)
        return self.place.batch(x), y
