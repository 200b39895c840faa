"""tui_trainer.watch on a user's own loop: what it records is what the loop computed."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time

import pytest
import torch
from torch import nn

import tui_trainer
from tui_trainer.store import RunReader, send_control
from tui_trainer.store.schema import STAT_COLUMNS

COL = {c: i for i, c in enumerate(STAT_COLUMNS)}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def data(n=256, d=12, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long() * (classes > 2)


def stats(run_dir):
    """{step: {layer name: row}} of a run's layer statistics."""
    with RunReader(run_dir) as r:
        names = [layer["name"] for layer in r.layers()]
        rows = r._con.execute(  # noqa: SLF001 - a test reads the table it checks
            f"SELECT step, layer, {', '.join(STAT_COLUMNS)} FROM layer_stats"
        ).fetchall()
    out: dict[int, dict[str, tuple]] = {}
    for step, layer, *values in rows:
        out.setdefault(step, {})[names[layer]] = tuple(values)
    return out


def test_three_lines_record_what_the_loop_computed(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = data()
    mon = tui_trainer.watch(model, name="mine", every=1, log_every=5, runs_dir=tmp_path)
    seen_grads, seen_acts, seen_update, losses = {}, {}, {}, []
    relu_out = []
    model[1].register_forward_hook(lambda m, a, out: relu_out.append(out.detach().clone()))
    for step in range(1, 21):
        xb, yb = x[(step * 16) % 256 :][:16], y[(step * 16) % 256 :][:16]
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        w0 = model[0].weight.detach().clone(), model[0].bias.detach().clone()
        w, b = model[0].weight, model[0].bias
        seen_grads[step] = math.sqrt(w.grad.norm() ** 2 + b.grad.norm() ** 2)
        opt.step()
        with torch.no_grad():
            d = math.sqrt((w - w0[0]).norm() ** 2 + (b - w0[1]).norm() ** 2)
        seen_update[step] = d / math.sqrt(w0[0].norm() ** 2 + w0[1].norm() ** 2)
        seen_acts[step] = relu_out[-1]
        losses.append(loss.item())
        mon.step(loss=loss, lr=0.1)
    mon.finish()
    with RunReader(mon.run_dir) as r:
        assert r.status() == "finished"
        assert [layer["name"] for layer in r.layers()] == ["0:Linear", "2:Linear"]
        assert [layer["activation"] for layer in r.layers()] == ["relu", "identity"]
        loss_rows = r.series("train/loss")
        assert r.meta()["kind"] == "watch"
    assert [s for s, _ in loss_rows] == [5, 10, 15, 20]
    for (_, v), i in zip(loss_rows, range(0, 20, 5), strict=True):
        assert v == pytest.approx(sum(losses[i : i + 5]) / 5, rel=1e-6)
    rows = stats(mon.run_dir)
    assert set(rows) == set(range(2, 21))  # discovery at step 1, then every step
    for step, by_layer in rows.items():
        row = by_layer["0:Linear"]
        assert row[COL["grad_norm"]] == pytest.approx(seen_grads[step], rel=1e-5)
        assert row[COL["update_ratio"]] == pytest.approx(seen_update[step], rel=1e-4)
        act = seen_acts[step]
        assert row[COL["act_mean"]] == pytest.approx(act.mean().item(), rel=1e-5, abs=1e-7)
        dead_units = (act != 0).any(0).logical_not().float().mean().item()
        assert row[COL["dead_frac"]] == pytest.approx(dead_units)


class Twice(nn.Module):
    """Registration order differs from execution order; a module used twice, a frozen
    layer, an in-place ReLU, a tuple-returning block, a dict output, a bare parameter."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 3)
        self.shared = nn.Linear(8, 8)
        self.frozen = nn.Linear(12, 8).requires_grad_(False)
        self.act = nn.ReLU(inplace=True)
        self.pair = nn.LSTM(8, 8, batch_first=True)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        h = self.act(self.frozen(x))
        h = self.shared(self.shared(h))
        seq, _ = self.pair(h.unsqueeze(1))
        return {"logits": self.head(seq[:, 0]) * self.scale}


def test_any_module_is_watched(tmp_path):
    torch.manual_seed(0)
    model = Twice()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x, y = data()
    with tui_trainer.watch(model, every=1, runs_dir=tmp_path) as mon:
        for step in range(6):
            out = model(x[step * 8 :][:8])["logits"]
            loss = nn.functional.cross_entropy(out, y[step * 8 :][:8])
            opt.zero_grad()
            loss.backward()
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            total = math.sqrt(sum(g.norm() ** 2 for g in grads))
            opt.step()
            mon.step(loss=loss)
    with RunReader(mon.run_dir) as r:
        layers = r.layers()
        grad_total = dict(r.series("grad/total_norm"))
        bare = dict(r.series("grad_norm/scale"))
    assert [(layer["name"], layer["activation"]) for layer in layers] == [
        ("frozen", "relu"),
        ("shared", "identity"),
        ("pair", "identity"),
        ("head", "identity"),
    ]
    assert grad_total[6] == pytest.approx(total, rel=1e-5)  # the bare parameter counts
    assert bare[6] == pytest.approx(model.scale.grad.abs().item(), rel=1e-5)
    last = stats(mon.run_dir)[6]
    assert last["frozen"][COL["grad_norm"]] is None  # no trainable parameter
    assert last["frozen"][COL["dead_frac"]] is not None  # its activations are read
    assert last["pair"][COL["act_std"]] is not None  # first tensor of the LSTM's tuple
    assert last["shared"][COL["grad_norm"]] is not None


def test_layers_glob_and_bad_patterns(tmp_path):
    model = nn.Sequential()
    model.add_module("enc1", nn.Linear(12, 8))
    model.add_module("enc2", nn.Linear(8, 8))
    model.add_module("out", nn.Linear(8, 3))
    with pytest.raises(ValueError, match="'dec.*' matches no module"):
        tui_trainer.watch(model, layers="dec.*", runs_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # refused before a run exists
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = tui_trainer.watch(model, layers=["enc*"], every=1, runs_dir=tmp_path)
    x, y = data()
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(x[:16]), y[:16])
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.step(loss=loss)
    mon.finish()
    with RunReader(mon.run_dir) as r:
        assert [layer["name"] for layer in r.layers()] == ["enc1", "enc2"]


def test_a_hand_written_update_reads_gradients_at_step(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 3))
    x, y = data()
    mon = tui_trainer.watch(model, every=1, runs_dir=tmp_path)
    norms = {}
    for step in range(1, 5):
        loss = nn.functional.cross_entropy(model(x[:32]), y[:32])
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
        norms[step] = math.sqrt(sum(p.grad.norm() ** 2 for p in model.parameters()))
        mon.step(loss=loss)  # before the gradients are zeroed
    mon.finish()
    rows = stats(mon.run_dir)
    for step in (2, 3, 4):
        row = rows[step]["0:Linear"]
        assert row[COL["grad_norm"]] == pytest.approx(norms[step], rel=1e-5)
        assert row[COL["update_ratio"]] is None  # not measured without an optimizer


@pytest.mark.parametrize("make_opt", ["sgd", "lbfgs"])
def test_step_with_a_closure_reads_the_gradients_the_closure_made(tmp_path, make_opt):
    """optimizer.step(closure) (LBFGS, Lightning): forward and backward run inside step(),
    after the pre-step hook; the gradients read are the closure's first, the update is the
    whole step's."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 3))
    if make_opt == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
    else:
        opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=3)
    x, y = data()
    mon = tui_trainer.watch(model, optimizer=opt, every=1, runs_dir=tmp_path)
    first_norm, update = {}, {}
    for step in range(1, 6):
        seen = []

        def closure(seen=seen):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[:64]), y[:64])
            loss.backward()
            seen.append(math.sqrt(sum(p.grad.norm() ** 2 for p in model.parameters())))
            return loss

        w0 = [p.detach().clone() for p in model.parameters()]
        loss = opt.step(closure)
        with torch.no_grad():
            d = math.sqrt(
                sum((p - q).norm() ** 2 for p, q in zip(model.parameters(), w0, strict=True))
            )
        update[step] = d / math.sqrt(sum(q.norm() ** 2 for q in w0))
        first_norm[step] = seen[0]
        mon.step(loss=loss)
    mon.finish()
    rows = stats(mon.run_dir)
    assert set(rows) == {2, 3, 4, 5}
    for step in rows:
        row = rows[step]["0:Linear"]
        assert row[COL["grad_norm"]] == pytest.approx(first_norm[step], rel=1e-5)
        assert row[COL["update_ratio"]] == pytest.approx(update[step], rel=1e-4)


def test_an_exception_crashes_the_run_with_its_traceback(tmp_path):
    model = nn.Linear(12, 3)
    with pytest.raises(ZeroDivisionError), tui_trainer.watch(model, runs_dir=tmp_path) as mon:
        mon.step(loss=1.0)
        1 / 0  # noqa: B018
    with RunReader(mon.run_dir) as r:
        assert r.status() == "crashed"
        (error,) = r.events("error")
    assert "ZeroDivisionError" in error[3]["error"] and "1 / 0" in error[3]["traceback"]
    with pytest.raises(KeyboardInterrupt), tui_trainer.watch(model, runs_dir=tmp_path) as mon2:
        raise KeyboardInterrupt
    with RunReader(mon2.run_dir) as r:
        assert r.status() == "stopped"


def _loop(model, opt, mon, steps, x, y, on_step=None):
    for i in range(steps):
        loss = nn.functional.cross_entropy(model(x[:16]), y[:16])
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.step(loss=loss)
        if on_step is not None and on_step(i):
            return i
    return steps


def test_stop_pause_and_checkpoint_reach_the_loop(tmp_path):
    model = nn.Linear(12, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = data()
    mon = tui_trainer.watch(model, runs_dir=tmp_path, log_every=1)
    send_control(mon.run_dir, "checkpoint")
    deadline = time.monotonic() + 10
    while not mon.checkpoint_requested and time.monotonic() < deadline:
        _loop(model, opt, mon, 1, x, y)
        time.sleep(0.01)
    assert mon.checkpoint_requested
    _loop(model, opt, mon, 1, x, y)
    assert not mon.checkpoint_requested  # until the next step only
    # a pause blocks inside mon.step until a resume
    send_control(mon.run_dir, "pause")
    seen_paused = []

    def resume_later():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with RunReader(mon.run_dir) as r:
                if r.status() == "paused":
                    seen_paused.append(r.meta()["step"])
                    break
            time.sleep(0.05)
        send_control(mon.run_dir, "resume")

    t = threading.Thread(target=resume_later)
    t.start()
    t0 = time.monotonic()
    while not seen_paused and time.monotonic() - t0 < 10:
        _loop(model, opt, mon, 1, x, y)
    t.join()
    assert seen_paused and seen_paused[0] == mon.global_step
    send_control(mon.run_dir, "stop")
    stopped_at = _loop(model, opt, mon, 10_000, x, y, on_step=lambda i: mon.should_stop)
    assert stopped_at < 10_000
    mon.finish()
    with RunReader(mon.run_dir) as r:
        assert r.status() == "stopped"
        kinds = [e[2] for e in r.events()]
    assert "checkpoint_requested" in kinds and "stop_requested" in kinds
    assert [e[3]["status"] for e in RunReader(mon.run_dir).events("status")] == [
        "running",
        "paused",
        "running",
        "stopped",
    ]


def test_a_checkpoint_request_lasts_until_the_step_after_it_was_seen(tmp_path):
    """A request noticed between steps (a read of should_stop) is not lost to the next
    mon.step: the loop that checks after mon.step still sees it, once."""
    model = nn.Linear(12, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = data()
    mon = tui_trainer.watch(model, runs_dir=tmp_path, log_every=1)
    send_control(mon.run_dir, "checkpoint")
    deadline = time.monotonic() + 10
    while not RunReader(mon.run_dir).events("checkpoint_requested"):
        assert time.monotonic() < deadline
        mon.should_stop  # noqa: B018 - the read that notices the request
        time.sleep(0.02)
    _loop(model, opt, mon, 1, x, y)
    assert mon.checkpoint_requested
    assert mon.checkpoint_requested  # still this step
    _loop(model, opt, mon, 1, x, y)
    assert not mon.checkpoint_requested
    mon.finish()


def test_auto_interval_is_calibrated_and_recorded(tmp_path):
    model = nn.Sequential(nn.Linear(12, 64), nn.Tanh(), nn.Linear(64, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = data()
    mon = tui_trainer.watch(model, runs_dir=tmp_path)
    _loop(model, opt, mon, 150, x, y)
    mon.finish()
    with RunReader(mon.run_dir) as r:
        (interval,) = r.events("probe_interval")[:1]
        assert r.meta()["probe_every"] == r.events("probe_interval")[-1][3]["every"]
    assert interval[3]["every"] >= 1


def test_config_is_stored(tmp_path):
    import dataclasses

    @dataclasses.dataclass
    class Cfg:
        lr: float = 0.1
        layers: tuple = (64, 32)
        name: str = 'say "hi"'

    mon = tui_trainer.watch(nn.Linear(2, 2), name="cfg", config=Cfg(), runs_dir=tmp_path)
    mon.finish()
    import tomllib

    assert tomllib.loads((mon.run_dir / "config.toml").read_text()) == {
        "lr": 0.1,
        "layers": [64, 32],
        "name": 'say "hi"',
    }
    with RunReader(mon.run_dir) as r:
        config = r.meta()["config"]
    assert config == {"title": "cfg", "lr": 0.1, "layers": [64, 32], "name": 'say "hi"'}
    with pytest.raises(TypeError, match="watch\\(config=...\\)"):
        tui_trainer.watch(nn.Linear(2, 2), config=3, runs_dir=tmp_path)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(TypeError, match="expected a torch.nn.Module"):
        tui_trainer.watch("model", runs_dir=tmp_path)
    with pytest.raises(ValueError, match="every"):
        tui_trainer.watch(nn.Linear(2, 2), every="often", runs_dir=tmp_path)


def test_importing_tui_trainer_does_not_load_torch():
    code = (
        "import sys, tui_trainer; assert 'torch' not in sys.modules; "
        "tui_trainer.watch; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_script_that_forgets_finish_is_finished_or_crashed(tmp_path):
    script = (
        "import torch, tui_trainer, sys\n"
        "m = torch.nn.Linear(2, 2)\n"
        f"mon = tui_trainer.watch(m, runs_dir={str(tmp_path)!r})\n"
        "mon.step(loss=1.0)\n"
        "if sys.argv[1] == 'raise': raise RuntimeError('boom')\n"
    )
    for how in ("end", "raise"):
        subprocess.run([sys.executable, "-c", script, how], capture_output=True)
    with_status = {}
    for d in tmp_path.iterdir():
        with RunReader(d) as r:
            with_status[r.status()] = r.events("error")
    assert set(with_status) == {"finished", "crashed"}
    assert "boom" in with_status["crashed"][0][3]["error"]
