"""train.precision on the CPU: bf16 autocast trains and the probes record finite statistics;
fp16 on CUDA (GradScaler) and torch.compile on CUDA are in the GPU-marked tests."""

from __future__ import annotations

import math

import pytest
import torch

from tui_trainer.config import config_to_toml, find_preset
from tui_trainer.engine.precision import Precision
from tui_trainer.engine.trainer import Trainer
from tui_trainer.store import RunReader, RunStore

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _train(runs_dir, sets):
    cfg = find_preset("digits-mlp").resolve(None, sets)
    store = RunStore.create(runs_dir, cfg.preset, "", cfg.to_json(), config_to_toml(cfg))
    trainer = Trainer(cfg)
    result = trainer.run(store)
    store.close()
    return trainer, result, RunReader(store.run_dir)


def _finite_rows(reader, column):
    steps, rows = reader.layer_stat_matrix(column)
    assert steps, column
    return all(v is not None and math.isfinite(v) for row in rows for v in row)


def test_bf16_autocast_on_the_cpu_trains_and_probes_stay_finite(runs_dir):
    sets = ['train.device="cpu"', 'train.precision="bf16"', "train.max_steps=150",
            "probe.every=10"]  # fmt: skip
    trainer, result, reader = _train(runs_dir, sets)
    assert trainer.precision.amp_dtype is torch.bfloat16 and trainer.scaler is None
    assert result.status == "finished"
    loss = [v for _, v in reader.series("train/loss")]
    assert all(math.isfinite(v) for v in loss) and loss[-1] < 0.5 * loss[0]
    for column in ("grad_norm", "weight_norm", "act_mean", "act_std"):
        assert _finite_rows(reader, column)
    assert reader.last_values()["val/acc"] > 0.8


def test_precision_parts():
    cpu = torch.device("cpu")
    assert Precision("fp32", False, cpu).amp_dtype is None
    p = Precision("bf16", True, cpu)
    assert p.amp_dtype is torch.bfloat16 and p.scaler is None
    model = torch.nn.Linear(2, 2)
    assert p.compiled(model) is not None and Precision("fp32", False, cpu).compiled(model) is None
    with p.autocast():
        assert model(torch.ones(1, 2)).dtype is torch.bfloat16


@pytest.mark.gpu
@CUDA
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_precisions_and_compile_train(runs_dir, precision):
    sets = ['train.device="cuda"', f'train.precision="{precision}"', "train.max_steps=100",
            "probe.every=10", "train.compile=true"]  # fmt: skip
    trainer, result, reader = _train(runs_dir, sets)
    assert result.status == "finished" and (trainer.scaler is not None) == (precision == "fp16")
    assert _finite_rows(reader, "grad_norm")
