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

A stop (a signal, a stop or pause control) is honoured between batches: the trainer saves
``state_dict()`` in ``last.pt`` beside the weights (layer, epoch, batch, the decoder and its
optimizer, the shuffling generator), and a resumed run continues pre-training from that
batch, reaching the same weights as a run never stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tui_trainer.config import RunConfig
from tui_trainer.engine.recorder import Recorder

__all__ = ["GreedyPretrainer", "PretrainError", "pretrainer_for"]


class PretrainError(ValueError):
    """The model cannot be pre-trained layer by layer; one-line message."""


def pretrainer_for(
    model: nn.Module, x_train: torch.Tensor, cfg: RunConfig
) -> GreedyPretrainer | None:
    """The run's pre-training (None without ``train.pretrain_epochs``); checks the model."""
    return GreedyPretrainer(model, x_train, cfg) if cfg.train.pretrain_epochs else None


class GreedyPretrainer:
    """Pre-trains ``model.blocks`` one by one, in place, and can stop and go on exactly."""

    def __init__(self, model: nn.Module, x_train: torch.Tensor, cfg: RunConfig) -> None:
        blocks = getattr(model, "blocks", None)
        if not isinstance(blocks, nn.ModuleList) or not all(hasattr(b, "linear") for b in blocks):
            raise PretrainError("train.pretrain_epochs: the model has no MLP blocks to pre-train")
        self.blocks, self.x = blocks, x_train.detach().flatten(1)
        self.epochs, self.bs, self.seed = (
            cfg.train.pretrain_epochs,
            cfg.data.batch_size,
            cfg.train.seed,
        )
        self.lr, self.log_every = cfg.train.pretrain_lr, cfg.train.log_every
        # where it is: layer, epoch, first example of the next batch, steps over all layers
        self.layer = self.epoch = self.batch = self.step = 0
        self.first, self.loss_sum, self.seen, self.last = 0, 0.0, 0, float("nan")
        self.seconds, self.done = 0.0, False
        self.decoder: nn.Linear | None = None
        self.opt: torch.optim.Optimizer | None = None
        self.gen = torch.Generator()
        self.order: torch.Tensor | None = None  # this epoch's shuffle
        self.h = self.x  # the current layer's input

    # -- the loop ---------------------------------------------------------------------------
    def run(self, store: Recorder, should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Pre-train to the end (True), or until ``should_stop()`` (checked before every
        batch) is true (False: ``state_dict()`` then says where to go on from)."""
        t0 = time.perf_counter()
        try:
            while self.layer < len(self.blocks):
                if self.decoder is None:
                    self._start_layer()
                while self.epoch < self.epochs:
                    if self.order is None:
                        self.order = torch.randperm(len(self.h), generator=self.gen)
                    while self.batch < len(self.h):
                        if should_stop():
                            return False
                        self._train_batch(store)
                    self.epoch, self.batch, self.order = self.epoch + 1, 0, None
                self._finish_layer(store)
        finally:
            self.seconds += time.perf_counter() - t0
        self.done = True
        store.event(
            0,
            "pretrain",
            {"phase": "done", "layers": len(self.blocks), "steps": self.step,
             "seconds": round(self.seconds, 3)},
        )  # fmt: skip
        return True

    def _start_layer(self) -> None:
        """The layer's input (the data through the layers already pre-trained), decoder,
        optimizer and shuffling generator."""
        h = self.x
        with torch.no_grad():  # each layer learns to reconstruct the previous one's output
            for block in self.blocks[: self.layer]:
                block.eval()
                h = torch.cat([block(h[b : b + 4096]) for b in range(0, len(h), 4096)])
                block.train()
        self.h = h
        lin: nn.Linear = self.blocks[self.layer].linear
        self.bounded = bool(h.min() >= 0 and h.max() <= 1)  # reconstruct through a sigmoid
        self.decoder = nn.Linear(lin.out_features, lin.in_features).to(h.device)
        block = self.blocks[self.layer]
        params = [p for p in block.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(params + list(self.decoder.parameters()), lr=self.lr)
        self.gen.manual_seed(self.seed * 1_000_003 + 7919 * (self.layer + 1))
        self.first, self.loss_sum, self.seen, self.last = self.step, 0.0, 0, float("nan")
        block.train()

    def _train_batch(self, store: Recorder) -> None:
        assert self.decoder is not None and self.opt is not None and self.order is not None
        xb = self.h[self.order[self.batch : self.batch + self.bs].to(self.h.device)]
        recon = self.decoder(self.blocks[self.layer].branch(xb))
        if self.bounded:
            recon = torch.sigmoid(recon)
        loss = F.mse_loss(recon, xb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.batch += self.bs
        self.step += 1
        self.loss_sum += loss.item() * len(xb)  # host sync; pre-training is small
        self.seen += len(xb)
        if self.step % self.log_every == 0:
            self._log(store)

    def _log(self, store: Recorder) -> None:
        self.last = self.loss_sum / self.seen
        store.scalars(self.step, {f"pretrain/recon_mse/blocks.{self.layer}": self.last})
        self.loss_sum, self.seen = 0.0, 0

    def _finish_layer(self, store: Recorder) -> None:
        if self.seen:
            self._log(store)
        store.event(
            0,
            "pretrain",
            {"phase": "layer", "layer": self.layer, "name": f"blocks.{self.layer}",
             "epochs": self.epochs, "first_step": self.first, "last_step": self.step,
             "recon_mse": self.last},
        )  # fmt: skip
        self.layer, self.epoch, self.batch = self.layer + 1, 0, 0
        self.decoder = self.opt = self.order = None

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Where pre-training is, in the types ``torch.load(weights_only=True)`` accepts; the
        blocks' weights are the model's, saved beside it."""
        return {
            "done": self.done, "layer": self.layer, "epoch": self.epoch, "batch": self.batch,
            "step": self.step, "first": self.first, "loss_sum": self.loss_sum,
            "seen": self.seen, "last": self.last, "seconds": self.seconds,
            "decoder": self.decoder.state_dict() if self.decoder is not None else None,
            "opt": self.opt.state_dict() if self.opt is not None else None,
            "gen": self.gen.get_state(), "order": self.order,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from ``state`` (the model's weights already loaded)."""
        self.done = bool(state.get("done", True))  # a checkpoint from before: pre-trained
        if self.done:
            return
        self.layer = int(state["layer"])
        if state["decoder"] is not None:
            with torch.random.fork_rng(devices=[]):  # the RNG is the checkpoint's, untouched
                self._start_layer()
            assert self.decoder is not None and self.opt is not None
            self.decoder.load_state_dict(state["decoder"])
            self.opt.load_state_dict(state["opt"])
        self.epoch, self.batch, self.step = (
            int(state["epoch"]),
            int(state["batch"]),
            int(state["step"]),
        )
        self.first, self.loss_sum, self.seen = (
            int(state["first"]),
            float(state["loss_sum"]),
            int(state["seen"]),
        )
        self.last, self.seconds = float(state["last"]), float(state["seconds"])
        self.gen.set_state(state["gen"])
        self.order = state["order"]
