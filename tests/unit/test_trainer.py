"""Trainer: learning, evaluation, stop and pause requests, exact resume, divergence."""

from __future__ import annotations

import threading
import time

import torch

from tui_trainer.config import config_to_toml, find_preset
from tui_trainer.engine.checkpoint import load
from tui_trainer.engine.trainer import Trainer
from tui_trainer.store import RunReader, RunStore, send_control


def new_store(runs_dir, cfg) -> RunStore:
    return RunStore.create(runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg))


def train(runs_dir, preset, sets=(), variant=None):
    cfg = find_preset(preset).resolve(variant, list(sets))
    store = new_store(runs_dir, cfg)
    trainer = Trainer(cfg)
    result = trainer.run(store)
    store.close()
    return trainer, result, RunReader(store.run_dir)


def test_xor_mlp_loss_falls_and_solves(runs_dir):
    _, result, reader = train(runs_dir, "xor-mlp", ['train.device="cpu"'])
    assert result.status == "finished" and result.steps == 500
    loss = [v for _, v in reader.series("train/loss")]
    assert loss[-1] < 0.1 * loss[0]
    assert reader.last_values()["val/acc"] == 1.0
    meta = reader.meta()
    assert meta["status"] == "finished" and meta["device"] == "cpu"
    assert [lay["name"] for lay in reader.layers()] == ["blocks.0", "head"]
    # the first probe: a gradient norm per layer on sampled steps
    steps, grad = reader.layer_stat_matrix("grad_norm")
    assert steps and all(v is not None and v > 0 for v in grad[0])
    assert result.run_dir and (reader.run_dir / "checkpoints" / "last.pt").is_file()


def test_checkpoint_loads_weights_only_and_matches_model(runs_dir):
    trainer, result, reader = train(runs_dir, "xor-mlp", ["train.max_steps=30"])
    state = load(reader.run_dir / "checkpoints" / "last.pt")
    assert state["step"] == 30
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(state["model"][k], v)


def test_stop_request_is_honoured(runs_dir):
    cfg = find_preset("xor-mlp").resolve(None, ["train.max_steps=10000000"])
    store = new_store(runs_dir, cfg)
    reader = RunReader(store.run_dir)
    trainer = Trainer(cfg)

    def ask():
        while reader.meta().get("status") != "running":
            time.sleep(0.02)
        time.sleep(0.3)
        send_control(reader.run_dir, "stop")

    threading.Thread(target=ask, daemon=True).start()
    t0 = time.monotonic()
    result = trainer.run(store)
    store.close()
    assert result.status == "stopped"
    assert 0 < result.steps < 10_000_000
    assert time.monotonic() - t0 < 30
    assert reader.meta()["status"] == "stopped"
    assert load(reader.run_dir / "checkpoints" / "last.pt")["step"] == result.steps


def test_pause_then_resume(runs_dir):
    cfg = find_preset("xor-mlp").resolve(None, ["train.max_steps=10000000"])
    store = new_store(runs_dir, cfg)
    reader = RunReader(store.run_dir)
    trainer = Trainer(cfg)
    seen = []

    def drive():
        while reader.meta().get("status") != "running":
            time.sleep(0.02)
        send_control(reader.run_dir, "pause")
        while reader.meta().get("status") != "paused":
            time.sleep(0.02)
        step = reader.meta()["step"]
        time.sleep(0.5)
        seen.append(reader.meta()["step"] == step)  # no progress while paused
        send_control(reader.run_dir, "resume")
        while reader.meta().get("status") != "running":
            time.sleep(0.02)
        send_control(reader.run_dir, "stop")

    threading.Thread(target=drive, daemon=True).start()
    result = trainer.run(store)
    store.close()
    assert result.status == "stopped" and seen == [True]
    statuses = [d["status"] for *_, d in reader.events("status")]
    assert statuses == ["running", "paused", "running", "stopped"]


def test_a_stop_sent_right_after_a_pause_is_honoured(runs_dir):
    """Space then s within one control read: the run pauses, then stops (it used to stay
    paused, the stop row already marked done while the pause blocked)."""
    cfg = find_preset("xor-mlp").resolve(None, ["train.max_steps=10000000"])
    store = new_store(runs_dir, cfg)
    reader = RunReader(store.run_dir)
    trainer = Trainer(cfg)

    def drive():
        while reader.meta().get("status") != "running":
            time.sleep(0.02)
        send_control(reader.run_dir, "pause")
        send_control(reader.run_dir, "checkpoint")
        send_control(reader.run_dir, "stop")

    threading.Thread(target=drive, daemon=True).start()
    t0 = time.monotonic()
    result = trainer.run(store)
    store.close()
    assert result.status == "stopped" and time.monotonic() - t0 < 30
    statuses = [d["status"] for *_, d in reader.events("status")]
    assert statuses[-2:] == ["paused", "stopped"]
    assert all(done for *_, done in reader.controls())


def test_resume_continues_exactly(runs_dir):
    # dropout + momentum + shuffling: every RNG and the optimizer state must carry over
    sets = [
        "data.train_subset=200",
        "model.dropout=0.2",
        'optim.name="sgd"',
        "optim.momentum=0.9",
        "optim.lr=0.05",
        "train.max_steps=40",
        "data.batch_size=32",
        "probe.every=3",
        "train.log_every=1",
    ]
    straight, _, _ = train(runs_dir, "digits-mlp", sets)

    cfg = find_preset("digits-mlp").resolve(None, sets)
    store = new_store(runs_dir, cfg)
    first = Trainer(cfg)
    orig = first._after_step

    def stop_midway(*a, **k):  # as a signal would: the loop stops after this step
        orig(*a, **k)
        if first.step >= 17:
            first.stop_requested = "test"

    first._after_step = stop_midway  # type: ignore[method-assign]
    r1 = first.run(store)
    assert r1.status == "stopped" and 17 <= r1.steps < 40
    assert r1.steps % 7 != 0  # mid-epoch (7 batches an epoch): the data order must resume
    second = Trainer(cfg)
    r2 = second.run(store, resume=True)
    store.close()
    assert r2.status == "finished" and r2.steps == 40
    for (k, a), b in zip(
        straight.model.state_dict().items(), second.model.state_dict().values(), strict=False
    ):
        assert torch.equal(a, b), k


def test_divergence_stops_the_run(runs_dir):
    _, result, reader = train(
        runs_dir,
        "xor-mlp",
        [
            'model.activation="relu"',
            "optim.lr=1e30",
            "train.max_steps=200",
            "train.log_every=1",
            "probe.every=1",
        ],
    )
    assert result.status == "diverged"
    assert reader.meta()["status"] == "diverged"
    events = reader.events("nonfinite")
    assert events and events[0][0] < 200


def test_perceptron_never_learns_xor(runs_dir):
    _, result, reader = train(runs_dir, "xor-perceptron")
    assert result.status == "finished"
    assert max(v for _, v in reader.series("val/acc")) <= 0.75
    assert max(v for _, v in reader.series("train/acc")) <= 0.75
