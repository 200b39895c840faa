"""Provides greedy layer-wise autoencoder pre-training of an MLP (Hinton & Salakhutdinov 2006).

Before supervised training, each hidden layer in turn is trained as the encoder of a
one-layer autoencoder that reconstructs that layer's input (the data for the first layer,
the previous, already pre-trained layer's output for the others); its decoder is thrown
away. Hinton used stacked RBMs; autoencoders are the variant of Bengio et al. (2007). The
output layer is left at its initial values: fine-tuning trains everything.

Recorded in the store, before training step 0:
- scalars ``pretrain/recon_mse/<layer>`` (e.g. ``pretrain/recon_mse/blocks.0``), stepped by
  a pre-training step counter that runs on across layers, every ``train.log_every`` steps;
- events ``pretrain`` at training step 0 with ``{"phase": "layer", "layer": i, "name",
  "epochs", "first_step", "last_step", "recon_mse"}`` once a layer is done and ``{"phase":
  "done", "layers", "steps", "seconds"}`` at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from tui_trainer.config import RunConfig
from tui_trainer.engine.recorder import Recorder

__all__ = ["PretrainError", "greedy_pretrain"]


class PretrainError(ValueError):
    """The model cannot be pre-trained layer by layer; one-line message."""


def greedy_pretrain(
    model: nn.Module,
    x_train: torch.Tensor,
    cfg: RunConfig,
    store: Recorder,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Pre-train ``model.blocks`` one by one, in place; returns the pre-training steps taken.

    Stops early (returning) as soon as ``should_stop()`` is true, checked every step.
    """
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or not all(hasattr(b, "linear") for b in blocks):
        raise PretrainError("train.pretrain_epochs: the model has no MLP blocks to pre-train")
    t0 = time.perf_counter()
    epochs, bs, seed = cfg.train.pretrain_epochs, cfg.data.batch_size, cfg.train.seed
    h = x_train.detach().flatten(1)
    step = 0
    for i, block in enumerate(blocks):
        name = f"blocks.{i}"
        lin: nn.Linear = block.linear
        bounded = bool(h.min() >= 0 and h.max() <= 1)  # reconstruct through a sigmoid
        decoder = nn.Linear(lin.out_features, lin.in_features).to(h.device)
        params = [p for p in block.parameters() if p.requires_grad] + list(decoder.parameters())
        opt = torch.optim.Adam(params, lr=cfg.train.pretrain_lr)
        first, loss_sum, seen, last = step, 0.0, 0, float("nan")
        gen = torch.Generator().manual_seed(seed * 1_000_003 + 7919 * (i + 1))
        block.train()
        for _ in range(epochs):
            order = torch.randperm(len(h), generator=gen).to(h.device)
            for b in range(0, len(h), bs):
                if should_stop():
                    return step
                xb = h[order[b : b + bs]]
                recon = decoder(block.branch(xb))
                if bounded:
                    recon = torch.sigmoid(recon)
                loss = F.mse_loss(recon, xb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                loss_sum += loss.item() * len(xb)  # host sync; pre-training is small
                seen += len(xb)
                if step % cfg.train.log_every == 0:
                    last = loss_sum / seen
                    store.scalars(step, {f"pretrain/recon_mse/{name}": last})
                    loss_sum, seen = 0.0, 0
        if seen:
            last = loss_sum / seen
            store.scalars(step, {f"pretrain/recon_mse/{name}": last})
        store.event(
            0,
            "pretrain",
            {"phase": "layer", "layer": i, "name": name, "epochs": epochs,
             "first_step": first, "last_step": step, "recon_mse": last},
        )
        with torch.no_grad():  # the next layer learns to reconstruct this one's output
            block.eval()
            h = torch.cat([block(h[b : b + 4096]) for b in range(0, len(h), 4096)])
            block.train()
    store.event(
        0,
        "pretrain",
        {"phase": "done", "layers": len(blocks), "steps": step,
         "seconds": round(time.perf_counter() - t0, 3)},
    )
    return step
