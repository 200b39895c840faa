"""Tests for the lecture exhibits (PCA baseline, truth table, features), greedy pre-training
and the train-set evaluation, against direct computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tui_trainer.config import ConfigError, DataConfig, ModelConfig, RunConfig, TrainConfig
from tui_trainer.engine.exhibits import PCABaseline, features_record, truth_table_record
from tui_trainer.engine.models import build_model
from tui_trainer.engine.trainer import Trainer
from tui_trainer.store import RunReader, RunStore


def test_pca_baseline_matches_sklearn() -> None:
    from sklearn.decomposition import PCA

    g = torch.Generator().manual_seed(0)
    x_train = torch.rand(200, 1, 4, 4, generator=g) @ torch.rand(4, 4, generator=g)
    x_val = torch.rand(50, 1, 4, 4, generator=g)
    pca = PCA(n_components=3).fit(x_train.flatten(1).numpy())
    flat = x_val.flatten(1).numpy()
    expected = float(np.mean((pca.inverse_transform(pca.transform(flat)) - flat) ** 2))
    assert PCABaseline(x_train, 3).mse(x_val) == pytest.approx(expected, rel=1e-4)
    assert PCABaseline(x_train, 16).mse(x_val) == pytest.approx(0.0, abs=1e-10)


def test_truth_table_of_a_threshold_unit() -> None:
    model = build_model(ModelConfig(kind="threshold", weights=(1.0, 1.0), threshold=1.0), (2,), 2)
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    record = truth_table_record(model, x, torch.tensor([0, 1, 1, 0]))
    assert record["output"] == [0, 1, 1, 1]  # OR, fired at w.x >= 1
    assert record["correct"] == 3 and record["total"] == 4
    assert record["unit"] == "threshold" and record["rule"] == ">="


def test_features_record_means_per_class() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="lenet1989"), (1, 16, 16), 3)
    x = torch.rand(12, 1, 16, 16)
    y = torch.tensor([0, 1] * 6)  # class 2 has no example
    w0 = model.first_layer_filters().clone()
    record = features_record(model, x, y, ("a", "b", "c"), w0)
    acts = model.hidden_activations(x)
    expected = acts["h1"][y == 1].mean(0)
    assert torch.allclose(torch.tensor(record["maps_by_class"][1]), expected, atol=1e-5)
    assert torch.allclose(
        torch.tensor(record["hidden_by_class"][0]), acts["h3"][y == 0].mean(0), atol=1e-5
    )
    assert record["hidden_by_class"][2] == [0.0] * 30
    assert record["filter_change"] == 0.0
    assert torch.allclose(torch.tensor(record["filters"]), w0, atol=1e-5)


def _cfg(**train: object) -> RunConfig:
    return RunConfig(
        data=DataConfig(name="digits", train_subset=100, batch_size=25),
        model=ModelConfig(kind="mlp", depth=2, width=16, activation="sigmoid"),
        train=TrainConfig(max_steps=8, eval_every=4, log_every=2, **train),
    )


def _train(cfg: RunConfig, tmp_path) -> RunReader:
    store = RunStore.create(tmp_path, "t", "", cfg.to_json(), "")
    result = Trainer(cfg).run(store)
    store.close()
    assert result.status == "finished", result.error
    return RunReader(store.run_dir)


def test_eval_train_records_train_set_metrics_and_gaps(tmp_path) -> None:
    with _train(_cfg(eval_train=True), tmp_path) as r:
        last = r.last_values()
    assert last["gap/acc"] == pytest.approx(last["train_eval/acc"] - last["val/acc"])
    assert last["gap/loss"] == pytest.approx(last["val/loss"] - last["train_eval/loss"])


def test_greedy_pretraining_records_each_layer_and_changes_the_weights(tmp_path) -> None:
    cfg = _cfg(pretrain_epochs=2, pretrain_lr=0.01)
    with _train(cfg, tmp_path / "a") as r:
        events = [e[3] for e in r.events("pretrain")]
        curve = r.series("pretrain/recon_mse/blocks.1")
    assert [e["phase"] for e in events] == ["layer", "layer", "done"]
    assert events[1]["first_step"] == events[0]["last_step"] == 8  # 4 batches x 2 epochs
    assert events[-1]["steps"] == 16 and curve
    with _train(_cfg(), tmp_path / "b") as r:
        assert r.events("pretrain") == []


def test_pretraining_needs_an_mlp() -> None:
    raw = {"model": {"kind": "lenet1989"}, "train": {"pretrain_epochs": 1}}
    with pytest.raises(ConfigError, match="train.pretrain_epochs: greedy pre-training needs"):
        RunConfig.from_dict(raw, "p.toml")
