"""Checkpoints: which states may be written (finite_state), and when best.pt is written."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tui_trainer.config import RunConfig, config_to_toml
from tui_trainer.engine import saving
from tui_trainer.engine.checkpoint import capture, finite_state, load
from tui_trainer.engine.evaluation import Evaluator
from tui_trainer.engine.saving import BestFile
from tui_trainer.engine.trainer import Trainer
from tui_trainer.store import RunReader, RunStore

torch.set_num_threads(1)


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", ["weight", "bias", "buffer"])
def test_any_non_finite_parameter_or_buffer_is_caught(bad: float, where: str) -> None:
    m = model()
    target = {"weight": m[0].weight, "bias": m[2].bias, "buffer": m[1].running_var}[where]
    with torch.no_grad():
        target.view(-1)[-1] = bad
    assert finite_state(m, 0.5) is False


def test_finite_states_pass_even_at_the_edge_of_float32() -> None:
    m = model()
    assert finite_state(m, None) is True
    with torch.no_grad():  # its square overflows float32: a 2-norm would call it inf
        m[0].weight.view(-1)[0] = torch.finfo(torch.float32).max
    assert finite_state(m, 1.0) is True
    assert finite_state(m, float("nan")) is False  # the latest loss counts too


def test_mixed_precisions_are_checked_together() -> None:
    m = model()
    m[2].half()
    assert finite_state(m, 1.0) is True
    with torch.no_grad():
        m[2].weight.view(-1)[0] = float("inf")
    assert finite_state(m, 1.0) is False
    assert finite_state(nn.Sequential(nn.ReLU()), 1.0) is True  # nothing to check


def state_of(m: nn.Module, opt: torch.optim.Optimizer, step: int) -> dict:
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return capture(m, opt, sched, None, step=step, best={"val/acc": 0.5}, every=4)


def test_best_states_are_copied_held_and_written_at_most_once_an_interval(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(saving.time, "monotonic", lambda: clock[0])
    written: list[dict] = []
    best = BestFile(written.append, interval_s=5.0)
    m = model()
    opt = torch.optim.Adam(m.parameters())
    best.offer(state_of(m, opt, 10))  # the first best goes to disk at once
    assert [s["step"] for s in written] == [10] and best.pending is None
    clock[0] += 1.0
    best.offer(state_of(m, opt, 20))
    with torch.no_grad():
        m[0].weight.add_(1.0)  # training goes on: the held copy must not move
    held = best.pending
    assert written[1:] == [] and held is not None and held["step"] == 20
    assert not torch.equal(held["model"]["0.weight"], m[0].weight)
    best.write_due()  # 1 s after the last write: still held
    assert len(written) == 1
    clock[0] += 4.0
    best.write_due()
    assert [s["step"] for s in written] == [10, 20] and best.pending is None
    best.flush()  # nothing pending: nothing written
    assert len(written) == 2


def test_a_state_too_large_to_hold_is_written_at_once() -> None:
    written: list[dict] = []
    best = BestFile(written.append, interval_s=1e9, max_bytes=64)
    m = model()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    best.offer(state_of(m, opt, 1))
    best.offer(state_of(m, opt, 2))
    assert [s["step"] for s in written] == [1, 2] and best.pending is None


def digits_cfg(**train) -> RunConfig:
    return RunConfig.from_dict({
        "preset": "test",
        "data": {"name": "digits", "batch_size": 32, "train_subset": 256},
        "model": {"kind": "mlp", "depth": 2, "width": 16, "activation": "relu"},
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "train": {"max_steps": 80, "device": "cpu", "eval_every": 8, **train},
    })


def first_best(evals: list[tuple[int, float]]) -> tuple[int, float]:
    acc = max(a for _, a in evals)
    return next(s for s, a in evals if a == acc), acc


def test_best_pt_holds_the_best_evaluation_when_the_run_ends(runs_dir) -> None:
    """The improvements fall inside one write interval: best.pt is written at the first
    and at the end, and holds the weights whose validation accuracy is the best."""
    cfg = digits_cfg()
    store = RunStore.create(runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg))
    trainer = Trainer(cfg)
    result = trainer.run(store)
    store.close()
    assert result.status == "finished"
    reader = RunReader(store.run_dir)
    evals = [(s, d["val/acc"]) for s, _, _, d in reader.events("eval") if s > 0]
    best_step, best_acc = first_best(evals)
    assert trainer.best == {"val/acc": best_acc, "step": best_step}
    saved = [d for *_, d in reader.events("checkpoint") if d["path"] == "best.pt"]
    improvements = [s for i, (s, a) in enumerate(evals) if all(a > b for _, b in evals[:i])]
    assert len(improvements) >= 3 and len(saved) == 2  # the first, and the last at the end
    assert [d["of_step"] for d in saved] == [improvements[0], best_step]
    state = load(store.run_dir / "checkpoints" / "best.pt")
    assert state["step"] == best_step
    trainer.model.load_state_dict(state["model"])
    tensors = (trainer.x_train, trainer.y_train, trainer.x_val, trainer.y_val)
    evaluator = Evaluator(cfg, trainer.model, trainer.objective, trainer.data, tensors,
                          trainer._autocast)  # noqa: SLF001
    assert evaluator.metrics()["val/acc"] == best_acc


def crashing_at(runs_dir, step: int, error: str) -> tuple[Trainer, RunStore]:
    """A prepared trainer whose training step ``step`` raises RuntimeError(error)."""
    cfg = digits_cfg()
    store = RunStore.create(runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg))
    trainer = Trainer(cfg)
    trainer.prepare()
    steps = trainer._train_step  # noqa: SLF001

    def failing(sampled: bool) -> None:
        if trainer.step == step:
            raise RuntimeError(error)
        steps(sampled)

    trainer._train_step = failing  # noqa: SLF001
    return trainer, store


def test_a_crashed_run_still_writes_its_pending_best(runs_dir) -> None:
    trainer, store = crashing_at(runs_dir, 60, "a kernel failed")
    result = trainer.run(store)
    store.close()
    assert result.status == "crashed" and trainer.best["step"] > 8
    assert load(store.run_dir / "checkpoints" / "best.pt")["step"] == trainer.best["step"]


def test_a_failing_write_at_the_end_still_ends_the_run_recorded(runs_dir, monkeypatch) -> None:
    """A crash with a best held, and best.pt cannot be written (a dead device, a full
    disk): run() still returns, the store says crashed, and an error event says why."""
    trainer, store = crashing_at(runs_dir, 60, "CUDA error: device-side assert triggered")
    real = saving.ckpt.save_atomic

    def no_space(state, path, fsync=True) -> None:  # the disk fills up after step 60
        if trainer.step < 60:
            return real(state, path, fsync)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(saving.ckpt, "save_atomic", no_space)
    result = trainer.run(store)
    store.close()
    assert result.status == "crashed" and "device-side assert" in result.error
    assert trainer.best["step"] > 8  # a best was held when it crashed
    reader = RunReader(store.run_dir)
    assert reader.status() == "crashed"
    errors = [d["error"] for *_, d in reader.events("error")]
    assert any("checkpoint at the end" in e and "No space left" in e for e in errors)


def test_a_held_best_reaches_the_disk_even_when_last_pt_is_refused(runs_dir) -> None:
    """Paused on non-finite weights, last.pt is not written; the held best (a finite copy
    from before) is, so a kill -9 during the pause loses nothing of it."""
    cfg = digits_cfg()
    store = RunStore.create(runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg))
    trainer = Trainer(cfg)
    trainer.prepare()
    trainer.store = store
    trainer._start_checkpoints(store.run_dir)  # noqa: SLF001
    best = store.run_dir / "checkpoints" / "best.pt"
    for step in (8, 16):  # the first best is written at once, the second is held
        trainer.step = step
        trainer._save(best)  # noqa: SLF001
    assert load(best)["step"] == 8 and trainer.best_file.pending is not None
    with torch.no_grad():
        next(trainer.model.parameters()).view(-1)[0] = float("nan")
    trainer._save(store.run_dir / "checkpoints" / "last.pt")  # noqa: SLF001
    store.close()
    assert load(best)["step"] == 16
    assert not (store.run_dir / "checkpoints" / "last.pt").exists()
    assert torch.isfinite(load(best)["model"]["blocks.0.linear.weight"]).all()
