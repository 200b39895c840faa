"""Resume is exact: a run stopped at step k (mid-epoch, on an epoch boundary, inside greedy
pre-training) and resumed reaches bitwise the parameters of a run never stopped; a damaged
checkpoint is one line, not a traceback; the periodic checkpoint runs on a wall clock."""

from __future__ import annotations

import pytest
import torch

from tui_trainer.config import config_to_toml, find_preset
from tui_trainer.engine import checkpoint as ckpt
from tui_trainer.engine.trainer import Trainer
from tui_trainer.store import RunReader, RunStore

SETS = [
    "data.train_subset=200",
    "model.dropout=0.2",
    'optim.name="sgd"',
    "optim.momentum=0.9",
    "optim.lr=0.05",
    'optim.schedule="cosine"',
    "train.max_steps=30",
    "data.batch_size=32",
    "probe.every=3",
    "train.log_every=1",
]
PRETRAIN = ["train.pretrain_epochs=2", "train.pretrain_lr=0.01"]  # 2 layers x 2 epochs x 7


def _cfg(sets):
    return find_preset("digits-mlp").resolve(None, list(sets))


def _store(runs_dir, cfg) -> RunStore:
    return RunStore.create(runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg))


class StopAt:
    """A Recorder in front of the store that asks the trainer to stop (as a signal
    handler does) once a scalar of ``prefix`` is recorded at ``step``: the trainer stops
    before the next step (training is logged after a step's stop check, so one step
    later there; pre-training checks before each batch, so at ``step``)."""

    def __init__(self, store: RunStore, trainer: Trainer, prefix: str, step: int) -> None:
        self._store, self._trainer, self._prefix, self._step = store, trainer, prefix, step

    def scalars(self, step: int, values: dict) -> None:
        self._store.scalars(step, values)
        if step >= self._step and any(k.startswith(self._prefix) for k in values):
            self._trainer.stop_requested = "test"

    def __getattr__(self, name: str):
        return getattr(self._store, name)


def _straight(runs_dir, sets) -> dict[str, torch.Tensor]:
    cfg = _cfg(sets)
    store = _store(runs_dir, cfg)
    trainer = Trainer(cfg)
    assert trainer.run(store).status == "finished"
    store.close()
    return trainer.model.state_dict()


@pytest.mark.parametrize(
    ("extra", "prefix", "k"),
    [
        ([], "train/", 4),  # mid-epoch (7 batches an epoch)
        ([], "train/", 7),  # on an epoch boundary
        (PRETRAIN, "pretrain/", 3),  # inside the first layer's pre-training
        (PRETRAIN, "pretrain/", 17),  # inside the second layer's, mid-epoch
    ],
)
def test_stopped_and_resumed_equals_uninterrupted(runs_dir, monkeypatch, extra, prefix, k):
    monkeypatch.setattr(Trainer, "fold_seconds", 0.0)  # train/* recorded at its log step
    sets = SETS + extra
    straight = _straight(runs_dir / "a", sets)
    cfg = _cfg(sets)
    store = _store(runs_dir / "b", cfg)
    first = Trainer(cfg)
    r1 = first.run(StopAt(store, first, prefix, k))  # type: ignore[arg-type]
    assert r1.status == "stopped"
    state = ckpt.load(store.run_dir / "checkpoints" / "last.pt")
    if prefix == "pretrain/":
        assert r1.steps == 0 and not state["pretrain"]["done"]
        assert state["pretrain"]["step"] == k
    else:
        assert r1.steps == k + 1 and state["step"] == k + 1
    second = Trainer(cfg)
    r2 = second.run(store, resume=True)
    store.close()
    assert r2.status == "finished" and r2.steps == 30
    resumed = second.model.state_dict()
    for name, value in straight.items():
        assert torch.equal(value, resumed[name]), name
    with RunReader(store.run_dir) as r:
        events = [e[3] for e in r.events("pretrain")]
    if extra:  # each layer reported once, pre-training finished once
        assert [e["phase"] for e in events] == ["layer", "layer", "done"]
        assert events[-1]["steps"] == 28


@pytest.mark.parametrize(
    "damage", [b"", b"not a checkpoint", b"PK\x03\x04 truncated zip", "tensor"]
)
def test_a_damaged_checkpoint_is_one_error_naming_the_file(tmp_path, damage):
    path = tmp_path / "last.pt"
    if damage == "tensor":
        torch.save({"weights": torch.zeros(2)}, path)  # loads, but is not ours
    else:
        path.write_bytes(damage)
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value).strip()


def test_the_wall_clock_checkpoint_is_due_after_its_interval(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(ckpt.time, "monotonic", lambda: now[0])
    clock = ckpt.CheckpointClock(every=0, every_seconds=60)
    assert not clock.due(1)
    now[0] += 59
    assert not clock.due(2)
    now[0] += 2
    assert clock.due(3)
    clock.saved(ckpt.Path("best.pt"))  # best.pt is not the resume point: still due
    assert clock.due(3)
    clock.saved(ckpt.Path("last.pt"))
    assert not clock.due(4)
    steps = ckpt.CheckpointClock(every=5, every_seconds=0)
    assert [s for s in range(1, 16) if steps.due(s)] == [5, 10, 15]


def test_a_run_checkpoints_by_wall_clock_by_default(runs_dir, monkeypatch):
    assert _cfg([]).checkpoint.every_seconds > 0  # on by default
    cfg = _cfg(SETS + ["checkpoint.every_seconds=1e-9"])  # due at every step
    store = _store(runs_dir, cfg)
    Trainer(cfg).run(store)
    store.close()
    with RunReader(store.run_dir) as r:
        saved = [e[0] for e in r.events("checkpoint") if e[3]["path"] == "last.pt"]
    assert saved[:3] == [1, 2, 3] and saved[-1] == 30
