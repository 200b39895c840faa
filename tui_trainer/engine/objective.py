"""Provides Objective: the loss, the correct-count and the best metric of a model's task."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Objective"]


class Objective:
    """``classify`` (cross-entropy on logits), ``perceptron`` (Rosenblatt's criterion on a
    score) or ``reconstruct`` (mean squared error against the flattened input)."""

    def __init__(self, model: nn.Module, num_classes: int) -> None:
        self.task = str(getattr(model, "task", "classify"))
        if self.task not in ("classify", "perceptron", "reconstruct"):
            raise ValueError(
                f"model.task: expected classify, perceptron or reconstruct, got {self.task!r}"
            )
        self.trainable = any(p.requires_grad for p in model.parameters())
        # A trained perceptron fires when its score is > 0 (Rosenblatt); a hand-set
        # McCulloch-Pitts unit when it reaches its threshold (>= 0).
        self.strict = self.trainable
        self.has_accuracy = self.task in ("classify", "perceptron")
        self.num_classes = num_classes

    def _fires(self, score: torch.Tensor) -> torch.Tensor:
        return (score > 0) if self.strict else (score >= 0)

    def loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == "classify":
            return F.cross_entropy(out.float(), y)
        if self.task == "perceptron":
            # The perceptron criterion: its gradient (yhat - t) * x is Rosenblatt's update.
            s = out.reshape(-1).float()
            yhat = self._fires(s).float()
            return ((yhat - y.float()) * s).mean()
        return F.mse_loss(out.float(), x.flatten(1).float())

    def correct(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == "classify":
            return (out.argmax(dim=1) == y).sum()
        if self.task == "perceptron":
            return (self._fires(out.reshape(-1)).long() == y).sum().float()
        return torch.zeros((), device=out.device)

    def hits(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per example, whether it is predicted right (a task with an accuracy)."""
        if self.task == "perceptron":
            return self._fires(out.reshape(-1)).long() == y
        return out.argmax(dim=1) == y

    def best_key(self, values: dict[str, float]) -> tuple[str, Callable[[float, float], bool]]:
        if self.has_accuracy:
            return "val/acc", lambda new, old: new > old
        return "val/loss", lambda new, old: new < old
