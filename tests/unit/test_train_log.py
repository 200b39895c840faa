"""TrainLog: the loss and accuracy of every log window, read from the device in folds."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tests.unit.test_trainer import train
from tui_trainer.engine import train_log
from tui_trainer.engine.objective import Objective
from tui_trainer.engine.train_log import TrainLog
from tui_trainer.engine.trainer import Trainer

OBJ = Objective(torch.nn.Linear(3, 4), 4)


def _steps(n_steps: int, seed: int = 0):
    """(loss, out, y) of steps with the odd short batch (an epoch's last)."""
    gen = torch.Generator().manual_seed(seed)
    for step in range(n_steps):
        n = 7 if step % 9 == 8 else 16
        out = torch.randn(n, 4, generator=gen)
        y = torch.randint(0, 4, (n,), generator=gen)
        yield F.cross_entropy(out, y), out, y


def _feed(log: TrainLog, n_steps: int, every: int, fold_when) -> list:
    windows = []
    for step, (loss, out, y) in enumerate(_steps(n_steps), start=1):
        log.add(loss, out, y)
        if step % every == 0 or step == n_steps:
            log.close(step, {"step": float(step)})
            if fold_when(step) or step == n_steps:
                windows += log.fold()
    return windows


def test_each_window_holds_its_own_steps_loss_and_correct_count():
    every, n_steps = 5, 43
    ref = {}  # log step -> (loss sum, correct, seen), per step on the host
    for step, (loss, out, y) in enumerate(_steps(n_steps), start=1):
        end = min(math.ceil(step / every) * every, n_steps)
        s, c, n = ref.get(end, ([], 0, 0))
        ref[end] = ([*s, loss.item() * len(y)], c + int((out.argmax(1) == y).sum()), n + len(y))
    windows = _feed(TrainLog(OBJ, 0), n_steps, every, lambda step: step % 15 == 0)
    assert [w.step for w in windows] == sorted(ref)
    for w in windows:
        sums, correct, seen = ref[w.step]
        assert (w.seen, w.correct) == (seen, correct)
        assert w.loss == math.fsum(sums) / seen and w.acc == correct / seen
        assert w.extra == {"step": float(w.step)}


def test_the_numbers_do_not_depend_on_when_the_folds_fell(monkeypatch):
    every, n_steps = 4, 60
    each = _feed(TrainLog(OBJ, 0), n_steps, every, lambda step: True)
    once = _feed(TrainLog(OBJ, 0), n_steps, every, lambda step: False)
    monkeypatch.setattr(train_log, "FOLD_BYTES", 3 * 16 * 4 * 4)  # counted every ~3 steps
    small = TrainLog(OBJ, 0)
    counted = _feed(small, n_steps, every, lambda step: step % 7 == 0)
    assert each == once == counted  # dataclass equality: every float bit for bit
    assert len(each) == 15 and small._outs == [] and small._bytes == 0


def test_a_fold_is_due_after_fold_seconds_or_fold_steps(monkeypatch):
    log = TrainLog(OBJ, 0, fold_seconds=3600.0)
    (loss, out, y), *_ = _steps(1)
    log.add(loss, out, y)
    assert not log.due()  # nothing closed
    log.close(1, {})
    assert not log.due() and log.pending == 1
    monkeypatch.setattr(train_log, "FOLD_STEPS", 2)
    log.add(loss, out, y)  # the open window's step: held, not folded
    assert log.due()
    (w,) = log.fold()
    assert w.step == 1 and w.seen == len(y) and log.pending == 0
    log.close(2, {})
    assert [w.step for w in log.fold()] == [2]  # the open step, carried over the fold
    assert TrainLog(OBJ, 0, fold_seconds=0.0).due() is False


def test_a_task_without_accuracy_logs_the_loss_only():
    obj = Objective(torch.nn.Linear(3, 4), 4)
    obj.has_accuracy = False
    log = TrainLog(obj, 0)
    log.add(torch.tensor(2.0), torch.zeros(5, 4), torch.zeros(5, dtype=torch.long))
    log.close(1, {})
    (w,) = log.fold()
    assert (w.loss, w.correct, w.acc) == (2.0, None, None)


def test_a_run_records_the_same_log_whether_it_folds_at_every_log_step_or_once(
    runs_dir, monkeypatch
):
    sets = ['train.device="cpu"', "train.max_steps=50", "train.log_every=5", "probe.every=10"]
    monkeypatch.setattr(Trainer, "fold_seconds", 0.0)
    _, a, ra = train(runs_dir, "digits-mlp", sets)
    monkeypatch.setattr(Trainer, "fold_seconds", 3600.0)  # only the end reads the log
    _, b, rb = train(runs_dir, "digits-mlp", sets)
    assert a.status == b.status == "finished"
    loss = ra.series("train/loss")
    assert [s for s, _ in loss] == list(range(5, 51, 5))
    assert loss == rb.series("train/loss") and ra.series("train/acc") == rb.series("train/acc")
    assert [s for s, _ in rb.series("train/lr")] == [s for s, _ in loss]


def test_a_loss_that_turns_non_finite_stops_the_run_at_its_window(runs_dir, monkeypatch):
    monkeypatch.setattr(Trainer, "fold_seconds", 3600.0)  # read only before last.pt, at the end
    sets = ['model.activation="relu"', "optim.lr=1e30", "train.max_steps=200", "probe.every=0"]
    trainer, result, reader = train(runs_dir, "xor-mlp", [*sets, "checkpoint.every=20"])
    first = reader.events("nonfinite")[0][0]
    assert result.status == "diverged" and f"at step {first}" in result.error
    assert result.steps == 20 and first <= 20  # found by the first checkpoint's read
    assert not any(e[3]["path"] == "last.pt" for e in reader.events("checkpoint"))
    assert not math.isfinite(trainer.last_loss)


def test_a_stopped_run_records_the_windows_still_waiting(runs_dir, monkeypatch):
    from tests.unit.test_trainer import new_store
    from tui_trainer.config import find_preset
    from tui_trainer.store import RunReader

    monkeypatch.setattr(Trainer, "fold_seconds", 3600.0)
    cfg = find_preset("digits-mlp").resolve(None, ["train.max_steps=60", "train.log_every=5"])
    store = new_store(runs_dir, cfg)
    trainer = Trainer(cfg)
    after = trainer._after_step

    def stop_at_23(*a):
        after(*a)
        if trainer.step == 23:
            trainer.stop_requested = "test"

    trainer._after_step = stop_at_23  # type: ignore[method-assign]
    assert trainer.run(store).status == "stopped"
    store.close()
    assert [s for s, _ in RunReader(store.run_dir).series("train/loss")] == [5, 10, 15, 20]


def test_a_long_log_interval_holds_its_losses_stacked(monkeypatch):
    monkeypatch.setattr(train_log, "STACK_STEPS", 4)
    log = TrainLog(OBJ, 0)
    ref = _feed(TrainLog(OBJ, 0), 30, 10, lambda step: True)
    for step, (loss, out, y) in enumerate(_steps(30), start=1):
        log.add(loss, out, y)
        assert len(log._losses) < 4
        if step % 10 == 0:
            log.close(step, {"step": float(step)})
    assert log.fold() == ref  # the same numbers, bit for bit


def test_a_stop_while_a_non_finite_loss_waits_ends_diverged_without_last_pt(
    runs_dir, monkeypatch
):
    """The loss of step 7 is inf in the log only (as an fp16 overflow the GradScaler skips:
    the weights stay finite); the stop at step 18 comes before any fold."""
    from tests.unit.test_trainer import new_store
    from tui_trainer.config import find_preset
    from tui_trainer.store import RunReader

    monkeypatch.setattr(Trainer, "fold_seconds", 3600.0)
    cfg = find_preset("xor-mlp").resolve(None, ["train.max_steps=60", "train.log_every=5"])
    store = new_store(runs_dir, cfg)
    trainer = Trainer(cfg)
    trainer.prepare()
    after, add = trainer._after_step, TrainLog.add

    def inf_at_7(log, loss, out, y):
        add(log, torch.tensor(float("inf")) if trainer.step == 6 else loss, out, y)

    def stop_at_18(*a):
        after(*a)
        if trainer.step == 18:
            trainer.stop_requested = "test"

    monkeypatch.setattr(TrainLog, "add", inf_at_7)
    trainer._after_step = stop_at_18  # type: ignore[method-assign]
    result = trainer.run(store)
    store.close()
    reader = RunReader(store.run_dir)
    assert result.status == "diverged" and "at step 10" in result.error
    assert [s for s, _ in reader.series("train/loss")] == [5, 10, 15]
    assert not (store.run_dir / "checkpoints" / "last.pt").exists()
