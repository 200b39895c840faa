"""Provides the optimizers (SGD, Adam, AdamW, Rosenblatt's perceptron rule) and schedules."""

from __future__ import annotations

import math

import torch
from torch import nn

from tui_trainer.config import OptimConfig

__all__ = ["build_optimizer", "build_schedule", "lr_factor"]


def build_optimizer(cfg: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:  # a hand-set unit: nothing to learn, but the loop stays uniform
        params = [nn.Parameter(torch.zeros(1))]
    if cfg.name == "perceptron":
        # Rosenblatt's rule w += lr * (t - yhat) * x is plain SGD on the perceptron criterion.
        return torch.optim.SGD(params, lr=cfg.lr)
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
    cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def lr_factor(cfg: OptimConfig, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at a step: linear warm-up, then the schedule."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    t = step - cfg.warmup_steps
    if cfg.schedule == "step":
        return cfg.gamma ** (t // cfg.step_size)
    if cfg.schedule == "cosine":
        span = max(total_steps - cfg.warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(t / span, 1.0)))
    return 1.0


def build_schedule(
    cfg: OptimConfig, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(cfg, step, total_steps)
    )
