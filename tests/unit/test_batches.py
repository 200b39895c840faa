"""EpochBatches: a step's batch is its epoch's order sliced, however it is produced."""

from __future__ import annotations

import pytest
import torch

from tui_trainer.engine import batches as batches_mod
from tui_trainer.engine.batches import EpochBatches
from tui_trainer.engine.data import epoch_order, num_batches
from tui_trainer.engine.placement import Placement

CPU = torch.device("cpu")


@pytest.mark.parametrize("whole", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_each_step_gets_its_slice_of_the_epoch_order(monkeypatch, whole, channels_last):
    if not whole:  # the set is too large for an epoch copy: gathered batch by batch
        monkeypatch.setattr(batches_mod, "EPOCH_COPY_MAX", 0)
    x, y = torch.randn(45, 2, 3, 3), torch.arange(45)
    bs, nb = 8, num_batches(45, 8)  # 6 batches an epoch, the last of 5
    place = Placement(CPU, channels_last=channels_last)
    b = EpochBatches(x, y, bs, nb, seed=3, placement=place)
    assert b.whole_epoch is whole
    for step in range(3 * nb):
        epoch, i = divmod(step, nb)
        order = epoch_order(45, 3, epoch)[i * bs : (i + 1) * bs]
        xb, yb = b.batch(step)
        assert torch.equal(xb, x[order]) and torch.equal(yb, y[order])
        assert xb.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert len(b.batch(nb - 1)[1]) == 5
