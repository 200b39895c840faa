"""The monitor never breaks the user's training: a full disk, a locked or deleted run
directory, a probe that fails on an exotic layer, wrapped and mixed-precision models."""

from __future__ import annotations

import shutil
import sqlite3
import time
import warnings

import pytest
import torch
from torch import nn

import tui_trainer
from tui_trainer.store import RunReader, RunStore
from tui_trainer.store.schema import STAT_COLUMNS

COL = {c: i for i, c in enumerate(STAT_COLUMNS)}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def train(model, mon, steps, opt=None, every_step=None):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 12, generator=g)
    y = (x[:, 0] > 0).long()
    opt = opt or torch.optim.SGD(model.parameters(), lr=0.05)
    for i in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.step(loss=loss)
        if every_step is not None:
            every_step(i)
    return loss


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 2))


def watch_warnings(record):
    return [str(w.message) for w in record if "tui_trainer.watch" in str(w.message)]


def wait_written(run_dir, name, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with RunReader(run_dir) as r:
            if len(r.series(name)) >= count:
                return True
        time.sleep(0.05)
    return False


def test_a_full_disk_is_one_warning_and_nothing_is_lost(tmp_path, monkeypatch):
    model = mlp()
    mon = tui_trainer.watch(model, runs_dir=tmp_path, every=1, log_every=1)
    real = RunStore._insert_pending
    full = {"on": True}

    def insert(self, con):
        if full["on"]:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, con)

    monkeypatch.setattr(RunStore, "_insert_pending", insert)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        train(model, mon, 20)
        deadline = time.monotonic() + 5
        while not watch_warnings(record) and time.monotonic() < deadline:
            train(model, mon, 1)
            time.sleep(0.05)
        full["on"] = False  # space again
        train(model, mon, 5)
        mon.finish()
    (message,) = watch_warnings(record)
    assert "disk is full" in message and "training goes on" in message
    with RunReader(mon.run_dir) as r:
        assert r.status() == "finished"
        assert [s for s, _ in r.series("train/loss")] == list(range(1, mon.global_step + 1))
        assert any("disk is full" in e[3]["message"] for e in r.events("warning"))


def test_a_lock_held_by_another_process_is_waited_out(tmp_path):
    model = mlp()
    mon = tui_trainer.watch(model, runs_dir=tmp_path, every=1, log_every=1)
    mon._writer.store._con.execute("PRAGMA busy_timeout = 100")  # noqa: SLF001 - be quick
    other = sqlite3.connect(mon.run_dir / "run.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        deadline = time.monotonic() + 10
        while not watch_warnings(record) and time.monotonic() < deadline:
            train(model, mon, 1)
            time.sleep(0.02)
        steps_while_locked = mon.global_step
        other.execute("ROLLBACK")
        other.close()
        train(model, mon, 3)
        mon.finish()
    assert steps_while_locked > 0
    (message,) = watch_warnings(record)
    assert "locked" in message
    with RunReader(mon.run_dir) as r:
        assert r.status() == "finished"
        assert len(r.series("train/loss")) == mon.global_step


def test_a_deleted_run_directory_stops_recording_not_training(tmp_path):
    model = mlp()
    mon = tui_trainer.watch(model, runs_dir=tmp_path, every=1)
    train(model, mon, 5)
    shutil.rmtree(mon.run_dir)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        deadline = time.monotonic() + 10
        while not watch_warnings(record) and time.monotonic() < deadline:
            train(model, mon, 1)
            time.sleep(0.02)
        before = model[0].weight.detach().clone()
        train(model, mon, 10)
        mon.finish()
    (message,) = watch_warnings(record)
    assert "was deleted" in message
    assert not torch.equal(before, model[0].weight)  # it kept training
    assert mon.status == "finished" and not mon.run_dir.exists()


class ComplexLayer(nn.Module):
    """A layer whose output is complex: the activation statistics cannot order it."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(12) * 0.1)

    def forward(self, x):
        return torch.fft.fft(x * self.w)


class Exotic(nn.Module):
    def __init__(self):
        super().__init__()
        self.spectral = ComplexLayer()
        self.fc = nn.Linear(12, 2)

    def forward(self, x):
        return self.fc(self.spectral(x).abs())


def test_a_probe_failing_on_an_exotic_layer_is_one_warning(tmp_path):
    torch.manual_seed(0)
    model = Exotic()
    mon = tui_trainer.watch(model, runs_dir=tmp_path, every=1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        train(model, mon, 8)
        mon.finish()
    (message,) = watch_warnings(record)
    assert "layer spectral" in message
    with RunReader(mon.run_dir) as r:
        assert r.status() == "finished"
        steps, means = r.layer_stat_matrix("act_mean")
        _, grads = r.layer_stat_matrix("grad_norm")
    names = [layer["name"] for layer in RunReader(mon.run_dir).layers()]
    assert names == ["spectral", "fc"]
    assert all(v is not None for v in means[1])  # the other layer is still read
    assert all(v is None for v in means[0][1:])  # off after the failure
    assert all(v is not None for v in grads[0])  # its gradients still are


def test_a_ddp_wrapped_model_is_watched_through_the_wrapper(tmp_path):
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        model = nn.parallel.DistributedDataParallel(mlp())
        mon = tui_trainer.watch(model, runs_dir=tmp_path / "runs", every=1)
        train(model, mon, 4)
        mon.finish()
    finally:
        dist.destroy_process_group()
    with RunReader(mon.run_dir) as r:
        assert [layer["name"] for layer in r.layers()] == ["0:Linear", "2:Linear"]
        _, grads = r.layer_stat_matrix("grad_norm")
    assert grads and all(v is not None for v in grads[0])


def test_bf16_autocast_and_an_fp16_grad_scaler_found_on_the_stack(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    mon = tui_trainer.watch(model, runs_dir=tmp_path, every=1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 12, generator=g)
    y = (x[:, 0] > 0).long()
    grads = {}
    for step in range(1, 7):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
        if step == 4:
            loss = loss * float("inf")  # an overflow: the scaler skips this step
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        grads[step] = model[2].weight.grad.norm().item()  # unscaled by scaler.step
        mon.step(loss=loss)
    mon.finish()
    assert mon._opt.scaler is scaler  # noqa: SLF001 - found, not passed
    with RunReader(mon.run_dir) as r:
        skipped = [e[0] for e in r.events("probe_skipped")]
        steps, wg = r.layer_stat_matrix("weight_grad_norm")
    assert skipped == [4]
    by_step = dict(zip(steps, wg[1], strict=True))
    for step in (3, 5, 6):
        assert by_step[step] == pytest.approx(grads[step], rel=1e-4)


def test_a_compiled_model_records_gradients_without_activations(tmp_path):
    model = mlp()
    compiled = torch.compile(model)
    mon = tui_trainer.watch(compiled, runs_dir=tmp_path, every=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    train(compiled, mon, 4, opt=opt)
    mon.finish()
    with RunReader(mon.run_dir) as r:
        assert [layer["name"] for layer in r.layers()] == ["0:Linear", "2:Linear"]
        _, grads = r.layer_stat_matrix("grad_norm")
        _, acts = r.layer_stat_matrix("act_mean")
    assert all(v is not None for v in grads[0])
    assert all(v is None for v in acts[0])
