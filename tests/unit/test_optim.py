"""Optimizers and schedules: Rosenblatt's rule, warm-up, step and cosine decay, clipping."""

from __future__ import annotations

import math

import pytest
import torch

from tui_trainer.config import ModelConfig, OptimConfig
from tui_trainer.engine.models import build_model
from tui_trainer.engine.objective import Objective
from tui_trainer.engine.optim import build_optimizer, lr_factor


def test_perceptron_optimizer_is_rosenblatts_rule():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="perceptron"), (2,), 2)
    opt = build_optimizer(OptimConfig(name="perceptron", lr=0.5), model)
    obj = Objective(model, 2)
    lin = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][0]
    for x, t in [([1.0, 0.0], 1), ([0.0, 1.0], 0), ([1.0, 1.0], 1), ([0.0, 0.0], 0)]:
        x_t, y_t = torch.tensor([x]), torch.tensor([t])
        w, b = lin.weight.detach().clone(), lin.bias.detach().clone()
        s = float(model(x_t).detach().reshape(()))
        yhat = 1 if s > 0 else 0
        opt.zero_grad()
        obj.loss(model(x_t), x_t, y_t).backward()
        opt.step()
        # w <- w + lr (t - yhat) x ; b <- b + lr (t - yhat)
        assert torch.allclose(lin.weight, w + 0.5 * (t - yhat) * x_t)
        assert torch.allclose(lin.bias, b + 0.5 * (t - yhat))


def test_schedules():
    c = OptimConfig(lr=1.0, warmup_steps=10, schedule="step", step_size=5, gamma=0.5)
    assert [lr_factor(c, s, 100) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert [lr_factor(c, s, 100) for s in (10, 14, 15, 20)] == [1.0, 1.0, 0.5, 0.25]
    cos = OptimConfig(lr=1.0, schedule="cosine")
    assert lr_factor(cos, 0, 100) == 1.0
    assert lr_factor(cos, 50, 100) == pytest.approx(0.5)
    assert lr_factor(cos, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(cos, 25, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_optimizers_build_with_options(name):
    model = build_model(ModelConfig(kind="mlp", depth=1, width=4), (2,), 2)
    opt = build_optimizer(OptimConfig(name=name, lr=0.01, weight_decay=0.1), model)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["weight_decay"] == 0.1


def test_grad_clip_is_applied(runs_dir):
    from tests.unit.test_trainer import train

    trainer, result, reader = train(
        runs_dir, "xor-mlp", ["train.grad_clip=0.01", "train.max_steps=20", "probe.every=1",
                              "optim.momentum=0.0", "optim.lr=1.0"]
    )
    # the recorded norms are before clipping; the update can be at most lr * clip
    ratio_steps, upd = reader.layer_stat_matrix("update_ratio")
    _, wn = reader.layer_stat_matrix("weight_norm")
    assert result.status == "finished"
    for layer in range(len(upd)):
        for u, w in zip(upd[layer], wn[layer], strict=False):
            if u is not None and w:
                assert u * w <= 1.0 * 0.01 * 1.5  # ||dw|| <= lr * clip (bias counted too)
