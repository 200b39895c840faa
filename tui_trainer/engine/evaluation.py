"""Provides Evaluator: what an evaluation measures and records besides the training loss.

Validation loss and accuracy (in eval mode, in batches), the training set measured the same
way (``train.eval_train``: the generalisation gap), PCA's error beside an autoencoder's, and
the lecture's exhibits (a LeNet's filters and how far they moved; a logic gate's truth
table). The trainer decides when to evaluate and keeps the best values and checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from tui_trainer.config import RunConfig
from tui_trainer.engine import exhibits
from tui_trainer.engine.data import Dataset
from tui_trainer.engine.objective import Objective
from tui_trainer.engine.placement import Placement
from tui_trainer.engine.recorder import Recorder

__all__ = ["EVAL_BATCH", "TRAIN_EVAL_MAX", "Evaluator"]

EVAL_BATCH = 1024
TRAIN_EVAL_MAX = 10_000  # train.eval_train measures at most this many training examples


class Evaluator:
    """Measures a model on the validation (and training) tensors already on its device."""

    def __init__(
        self,
        cfg: RunConfig,
        model: nn.Module,
        objective: Objective,
        data: Dataset,
        tensors: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
        autocast: Callable[[], Any],
        placement: Placement | None = None,
    ) -> None:
        self.cfg, self.model, self.objective, self.data = cfg, model, objective, data
        self.x_train, self.y_train, self.x_val, self.y_val = tensors
        self.autocast = autocast
        place = placement or Placement(self.x_val.device)
        self.device = place.device
        self.move = place.batch  # a slice of the tensors, on the device
        self.pca = (
            exhibits.PCABaseline(self.x_train, cfg.model.code_size)
            if objective.task == "reconstruct"
            else None
        )
        self.initial_filters = (
            model.first_layer_filters().clone() if exhibits.has_features(model) else None
        )

    @torch.no_grad()
    def measure(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
        """Mean loss and accuracy (None without one) over x, y in eval mode, in batches;
        the sums stay on the device and are read in one transfer."""
        self.model.eval()
        sums = []
        for i in range(0, len(y), EVAL_BATCH):
            xb, yb = self.move(x[i : i + EVAL_BATCH]), self.move(y[i : i + EVAL_BATCH])
            with self.autocast():
                out = self.model(xb)
                loss = self.objective.loss(out, xb, yb).float() * len(yb)
            sums.append(torch.stack((loss, self.objective.correct(out, xb, yb).float())))
        self.model.train()
        total_loss, total_correct = (sums[0] if len(sums) == 1 else sum(sums)).tolist()
        n = len(y)
        return total_loss / n, (total_correct / n if self.objective.has_accuracy else None)

    @torch.no_grad()
    def metrics(self) -> dict[str, float]:
        """Everything an evaluation records as scalars; empty without a validation set."""
        if len(self.y_val) == 0:
            return {}
        loss, acc = self.measure(self.x_val, self.y_val)
        values = {"val/loss": loss}
        if acc is not None:
            values["val/acc"] = acc
        if self.objective.task == "reconstruct":
            values["val/recon_mse"] = values["val/loss"]
        if self.pca is not None:
            values["val/pca_mse"] = self.pca.mse(self.x_val)
        if self.cfg.train.eval_train and len(self.y_train):
            loss, acc = self.measure(self.x_train[:TRAIN_EVAL_MAX], self.y_train[:TRAIN_EVAL_MAX])
            values["train_eval/loss"] = loss
            values["gap/loss"] = values["val/loss"] - loss
            if acc is not None:
                values["train_eval/acc"] = acc
                values["gap/acc"] = acc - values["val/acc"]
        return values

    @torch.no_grad()
    def record_exhibits(self, store: Recorder, step: int) -> None:
        """The lecture's exhibits of this model, if it has any, as events at ``step``."""
        if self.initial_filters is not None:
            record = exhibits.features_record(
                self.model,
                self.move(self.x_val[:EVAL_BATCH]),
                self.move(self.y_val[:EVAL_BATCH]),
                self.data.class_names,
                self.initial_filters,
            )
            store.event(step, "features", record)
            store.scalars(step, {"features/filter_change": record["filter_change"]})
        if exhibits.has_truth_table(self.model, self.x_val):
            x, y = self.move(self.x_val), self.move(self.y_val)  # a handful of rows
            table = exhibits.truth_table_record(self.model, x, y)
            store.event(step, "truth_table", table)
