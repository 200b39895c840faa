"""LayerProbe: every statistic against a direct computation in PyTorch, never typed numbers.

One probed step is run next to a reference: forward hooks registered *before* the probe's
clone each unit's activation (so a later in-place op cannot change it) and keep each unit's
output for ``torch.autograd.grad``; parameters are copied before the optimizer step.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tui_trainer.config import ModelConfig, RunConfig, config_to_toml
from tui_trainer.engine import probe_paths
from tui_trainer.engine.models import build_model
from tui_trainer.engine.probes import LayerProbe
from tui_trainer.engine.reductions import (
    DOT_CHUNK,
    GRAD_HIST_LOG10,
    activation_summary,
    activation_summary_host,
    moments,
    sumsq,
)
from tui_trainer.engine.trainer import Trainer
from tui_trainer.store import STAT_COLUMNS, RunReader, RunStore, send_control

torch.set_num_threads(1)
COL = {c: i for i, c in enumerate(STAT_COLUMNS)}


def reference_step(model, opt, x, y, autocast=None, histogram=False, exact=False, keep=False):
    """One probed step; returns (sample, reference values computed directly)."""
    units = model.layer_units()
    named = list(model.named_parameters())
    if not hasattr(model, "test_probe"):  # one probe a model: later samples run its fast path
        model.test_probe = LayerProbe(units, named)
    probe = model.test_probe
    probe.accelerator_path = exact  # True: the accelerator's code path on the CPU
    acts, outs = {}, {}
    handles = []
    for i, u in enumerate(units):
        act_module = u.act_module or u.module

        def keep_act(m, a, out, i=i):
            acts[i] = out.detach().float().clone()

        def keep_out(m, a, out, i=i):
            outs[i] = out

        handles.append(act_module.register_forward_hook(keep_act))
        handles.append(u.module.register_forward_hook(keep_out))
    probe.attach(histogram=histogram)
    ctx = (
        torch.autocast("cpu", dtype=autocast) if autocast else torch.autocast("cpu", enabled=False)
    )
    with ctx:
        loss = F.cross_entropy(model(x).float(), y)
    order = sorted(outs)
    out_grads = torch.autograd.grad(loss, [outs[i] for i in order], retain_graph=True)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    probe.after_backward()
    grads = {n: p.grad.norm().item() for n, p in named}
    total = nn.utils.clip_grad_norm_(model.parameters(), float("inf")).item()
    before = {n: p.detach().clone() for n, p in named}
    opt.step()
    probe.after_step(7, keep=keep)
    for h in handles:
        h.remove()
    (sample,) = probe.drain()
    ref = {
        "units": units,
        "named": named,
        "acts": acts,
        "out_grads": {i: g.float().norm().item() for i, g in zip(order, out_grads, strict=True)},
        "grads": grads,
        "grad_tensors": {n: p.grad.detach().clone() for n, p in named},
        "total": total,
        "before": before,
        "after": {n: p.detach().clone() for n, p in named},
    }
    return sample, ref


def unit_params(ref, i):
    unit = ref["units"][i]
    ids = {id(p) for p in unit.module.parameters()}
    return [(n, p) for n, p in ref["named"] if id(p) in ids]


def close(a, b, rtol=1e-5, atol=1e-7):
    assert a == pytest.approx(b, rel=rtol, abs=atol), (a, b)


def check_sample(sample, ref, rtol=1e-5):
    assert sample.step == 7
    for n, g in ref["grads"].items():
        close(sample.param_grad_norms[n], g, rtol)
    close(sample.total_grad_norm, ref["total"], rtol)
    for i, unit in enumerate(ref["units"]):
        row = sample.rows[i]
        params = unit_params(ref, i)
        g_all = math.sqrt(sum(ref["grads"][n] ** 2 for n, _ in params))
        close(row[COL["grad_norm"]], g_all, rtol)
        w = [(n, p) for n, p in params if p.ndim >= 2]
        b = [(n, p) for n, p in params if p.ndim < 2]
        close(
            row[COL["weight_grad_norm"]], math.sqrt(sum(ref["grads"][n] ** 2 for n, _ in w)), rtol
        )
        if b:
            close(
                row[COL["bias_grad_norm"]], math.sqrt(sum(ref["grads"][n] ** 2 for n, _ in b)), rtol
            )
        else:
            assert math.isnan(row[COL["bias_grad_norm"]])
        wn = math.sqrt(sum(ref["before"][n].double().norm().item() ** 2 for n, _ in w))
        close(row[COL["weight_norm"]], wn, rtol)
        # the update actually applied by the optimizer, measured on the parameters
        dw = math.sqrt(
            sum((ref["after"][n] - ref["before"][n]).double().norm().item() ** 2 for n, _ in params)
        )
        w_all = math.sqrt(sum(ref["before"][n].double().norm().item() ** 2 for n, _ in params))
        close(row[COL["update_ratio"]], dw / w_all, 1e-4, 1e-12)
        close(row[COL["out_grad_norm"]], ref["out_grads"][i], max(rtol, 1e-5))
        a = ref["acts"][i].double()
        close(row[COL["act_mean"]], a.mean().item(), 1e-4, 1e-6)
        close(row[COL["act_std"]], a.std(correction=0).item(), 1e-4, 1e-6)
        close(row[COL["act_min"]], a.min().item())
        close(row[COL["act_max"]], a.max().item())
        if unit.activation in ("relu", "leaky_relu", "gelu"):
            dead = (a != 0).transpose(0, 1).reshape(a.shape[1], -1).any(1).logical_not()
            close(row[COL["dead_frac"]], dead.double().mean().item(), 0, 1e-7)
        else:
            assert math.isnan(row[COL["dead_frac"]])
        if unit.activation == "sigmoid":
            sat = ((a < 0.01) | (a > 0.99)).float().mean().item()
            close(row[COL["sat_frac"]], sat, 0, 1e-7)
        elif unit.activation == "tanh":
            close(row[COL["sat_frac"]], (a.abs() > 0.99).float().mean().item(), 0, 1e-7)
        else:
            assert math.isnan(row[COL["sat_frac"]])
        assert row[COL["nonfinite"]] == 0
    return sample


def make(cfg: ModelConfig, shape, classes=5, seed=0):
    torch.manual_seed(seed)
    return build_model(cfg, shape, classes)


def batch(shape, n=16, classes=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g)


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(kind="mlp", depth=3, width=16, activation="relu", init="he"),
        ModelConfig(kind="mlp", depth=3, width=16, activation="relu", inplace=True),
        ModelConfig(kind="mlp", depth=3, width=16, activation="sigmoid", norm="batchnorm"),
        ModelConfig(kind="mlp", depth=3, width=16, activation="tanh", residual=True),
        ModelConfig(kind="mlp", depth=2, width=16, activation="leaky_relu", dropout=0.3),
    ],
    ids=["relu", "relu-inplace", "sigmoid-batchnorm", "tanh-residual", "leaky-dropout"],
)
@pytest.mark.parametrize("optim", ["sgd-momentum", "adam"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per-tensor"])
def test_mlp_statistics_equal_direct_computation(cfg, optim, fused, monkeypatch):
    if not fused:  # the CPU path of a large model: one parameter tensor at a time
        monkeypatch.setattr(probe_paths, "FUSED_MAX", 0)
    model = make(cfg, (12,))
    if optim == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = batch((12,))
    for _ in range(3):  # later steps: momentum and Adam's moments are non-trivial, and the
        sample, ref = reference_step(model, opt, x, y)  # probe hooks a unit once if it can
        check_sample(sample, ref)
    assert model.test_probe._fused() is fused
    same = model.test_probe._same_output
    assert same[-1] is True  # the head's activation is its output
    blocks = model.blocks
    assert all(same[i] is (not blocks[i].residual and cfg.dropout == 0) for i in range(cfg.depth))


@pytest.mark.parametrize(
    ("exact", "fused"),
    [(False, True), (False, False), (True, False)],
    ids=["cpu-fused", "cpu-per-tensor", "accelerator-path"],
)
def test_consecutive_samples_keep_the_snapshot_and_stay_exact(exact, fused, monkeypatch):
    if not fused:
        monkeypatch.setattr(probe_paths, "FUSED_MAX", 0)
    # Probes every step: after_step(keep=True) takes the next snapshot while the weights are
    # in cache. Each sample must still equal the direct computation, also when a weight is
    # changed in place between two samples (its version counter moves: a fresh snapshot).
    model = make(ModelConfig(kind="mlp", depth=3, width=16, activation="relu", init="he"), (12,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = batch((12,))
    for i in range(4):
        sample, ref = reference_step(model, opt, x, y, exact=exact, keep=True)
        check_sample(sample, ref)
        if i == 1:
            with torch.no_grad():
                model.blocks[1].linear.weight.mul_(0.5)
    if not exact:
        assert model.test_probe._kept is not None  # the CPU path did keep it


def test_saturation_follows_its_definition():
    # Large weights push sigmoid and tanh units to their bounds: a real mix to count.
    for act in ("sigmoid", "tanh"):
        model = make(ModelConfig(kind="mlp", depth=2, width=32, activation=act), (12,))
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(6.0)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        sample, ref = reference_step(model, opt, *batch((12,), n=64))
        check_sample(sample, ref)
        sat = sample.rows[1][COL["sat_frac"]]
        assert 0.05 < sat < 1.0, (act, sat)


def test_lenet_statistics_equal_direct_computation():
    model = make(ModelConfig(kind="lenet1989", activation="tanh", init="xavier"), (1, 16, 16), 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = batch((1, 16, 16), classes=10)
    sample, ref = reference_step(model, opt, x, y)
    check_sample(sample, ref)
    sample, ref = reference_step(model, opt, x, y)
    check_sample(sample, ref)


@pytest.mark.parametrize("inplace", [False, True])
def test_residual_cnn_statistics_equal_direct_computation(inplace):
    cfg = ModelConfig(kind="cifar_net", depth=8, width=4, residual=True, inplace=inplace)
    model = make(cfg, (3, 16, 16), 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = batch((3, 16, 16), n=8, classes=10)
    sample, ref = reference_step(model, opt, x, y)
    check_sample(sample, ref)
    assert [u.name for u in ref["units"]][:2] == ["stem", "stages.0.blocks.0"]


def test_bf16_autocast_on_cpu():
    model = make(ModelConfig(kind="mlp", depth=3, width=32, activation="relu", init="he"), (12,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = batch((12,), n=32)
    sample, ref = reference_step(model, opt, x, y, autocast=torch.bfloat16)
    # activations and out-gradients are bf16 tensors: the reference reads the same values
    check_sample(sample, ref, rtol=1e-4)


def test_accelerator_code_path_gives_the_same_statistics():
    model = make(ModelConfig(kind="mlp", depth=3, width=16, activation="tanh"), (12,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sample, ref = reference_step(model, opt, *batch((12,)), exact=True)
    check_sample(sample, ref)


def test_fp16_grad_scaler_out_gradients_are_unscaled():
    if not torch.amp.autocast_mode.is_autocast_available("cpu"):
        pytest.skip("no CPU autocast")
    model = make(ModelConfig(kind="mlp", depth=2, width=16, activation="relu"), (12,))
    units = model.layer_units()
    x, y = batch((12,))
    outs = {}
    for i, u in enumerate(units):
        u.module.register_forward_hook(lambda m, a, o, i=i: outs.__setitem__(i, o))
    probe = LayerProbe(units, list(model.named_parameters()))
    scale = torch.tensor(1024.0)
    probe.grad_scale = lambda: scale
    probe.attach()
    with torch.autocast("cpu", dtype=torch.float16):
        loss = F.cross_entropy(model(x).float(), y)
    want = torch.autograd.grad(loss, [outs[i] for i in range(len(units))], retain_graph=True)
    (loss * scale).backward()
    for p in model.parameters():
        p.grad.div_(scale)  # what GradScaler.unscale_ does
    probe.after_backward()
    probe.after_step(1)
    (sample,) = probe.drain()
    for i, g in enumerate(want):
        close(sample.rows[i][COL["out_grad_norm"]], g.float().norm().item(), 2e-3)
    assert not sample.skipped
    probe.attach()
    F.cross_entropy(model(x), y).backward()
    probe.after_backward()
    scale.mul_(0.5)  # GradScaler.update() backs off after an overflow: the step was skipped
    probe.after_step(2)
    assert probe.drain()[0].skipped


def test_std_of_a_nearly_constant_layer_keeps_its_digits():
    # A deep sigmoid layer: every unit near 0.6, spread 1e-4. E[y²] - E[y]² in float32
    # would lose it all; the probe centres first.
    g = torch.Generator().manual_seed(0)
    y = 0.6 + 1e-4 * torch.randn(256, 64, generator=g)
    for summary in (activation_summary, activation_summary_host):
        s = [float(t) for t in summary(y, "sigmoid")]
        mean, std = moments(s[0], s[1], s[7], y.numel())
        close(std, y.double().std(correction=0).item(), 1e-3)
        close(mean, y.double().mean().item(), 1e-6)
    # a spread layer takes the one-pass sums (no second pass), to the same digits
    y = torch.randn(256, 64, generator=g) * 0.3 + 0.5
    s = activation_summary_host(y, "sigmoid")
    assert math.isnan(s[7])
    mean, std = moments(s[0], s[1], s[7], y.numel())
    close(std, y.double().std(correction=0).item(), 1e-5)


def test_sumsq_matches_float64_on_every_layout():
    g = torch.Generator().manual_seed(0)
    big = torch.randn(DOT_CHUNK * 2 + 7, generator=g) * 1e-3  # several parts, a short last one
    for t in (
        big,
        big[: 7 * 5000].view(-1, 7)[:, :5],  # non-contiguous: the vector_norm path
        torch.randn(64, 33, generator=g).to(torch.bfloat16),  # not a BLAS type
        torch.randn(10, dtype=torch.float64, generator=g),
    ):
        want = t.double().pow(2).sum().item()
        close(sumsq(t), want, 1e-5, 0)
    assert math.isinf(sumsq(torch.tensor([1.0, math.inf])))
    assert math.isnan(sumsq(torch.tensor([1.0, math.nan])))


def test_nonfinite_values_are_counted_exactly():
    y = torch.randn(10, 10)
    y[0, :3] = math.inf
    y[5, 5] = math.nan
    assert float(activation_summary(y, "relu")[6]) == 4
    assert activation_summary_host(y, "relu")[6] == 4
    assert activation_summary_host(torch.randn(10), "relu")[6] == 0


@pytest.mark.parametrize("exact", [False, True], ids=["cpu-lazy", "accelerator-path"])
def test_nonfinite_gradient_values_are_counted_per_layer(exact):
    model = make(ModelConfig(kind="mlp", depth=3, width=8), (4,))
    probe = LayerProbe(model.layer_units(), list(model.named_parameters()))
    probe.accelerator_path = exact  # what an accelerator does: count always, never read
    probe.attach()
    F.cross_entropy(model(torch.randn(4, 4)), torch.tensor([0, 1, 2, 3])).backward()
    grad = model.blocks[1].linear.weight.grad
    grad[0, :3] = math.nan
    grad[1, 0] = -math.inf
    probe.after_backward()
    probe.after_step(1)
    (s,) = probe.drain()
    want = [
        sum(int((~torch.isfinite(p.grad)).sum()) for p in u.module.parameters())
        for u in model.layer_units()
    ]
    assert [row[COL["nonfinite"]] for row in s.rows] == want == [0, 4, 0, 0]
    assert s.first_nonfinite_layer() == 1 and s.nonfinite_where(1) == "gradients"


def test_plain_steps_carry_no_hooks():
    model = make(ModelConfig(kind="cifar_net", depth=8, width=4, residual=True), (3, 8, 8), 10)
    probe = LayerProbe(model.layer_units(), list(model.named_parameters()))

    def hooks():
        return sum(
            len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
            for m in model.modules()
        )

    assert hooks() == 0
    probe.attach()
    assert hooks() > 0 and probe.attached
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    probe.after_backward()
    probe.after_step(1)
    assert hooks() == 0 and not probe.attached


def test_missing_gradients_count_as_zero_and_total_matches_clip():
    model = make(ModelConfig(kind="mlp", depth=2, width=8), (4,))
    extra = nn.Linear(3, 3)  # owned by no unit, never used: no gradient
    model.add_module("unused", extra)
    probe = LayerProbe(model.layer_units(), list(model.named_parameters()))
    probe.attach()
    F.cross_entropy(model(torch.randn(4, 4)), torch.tensor([0, 1, 2, 3])).backward()
    probe.after_backward()
    probe.after_step(1)
    (s,) = probe.drain()
    assert s.param_grad_norms["unused.weight"] == 0.0
    close(s.total_grad_norm, nn.utils.clip_grad_norm_(model.parameters(), float("inf")).item())


def test_histograms_count_every_value():
    model = make(ModelConfig(kind="mlp", depth=2, width=16, activation="relu", init="he"), (12,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sample, ref = reference_step(model, opt, *batch((12,), n=32), histogram=True)
    h = sample.histograms
    assert h is not None and h["grad_log10_range"] == list(GRAD_HIST_LOG10)
    lo_e, hi_e = GRAD_HIST_LOG10
    for i, layer in enumerate(h["layers"]):
        a = ref["acts"][i]
        assert sum(layer["act"]) == a.numel()
        lo, hi = layer["act_range"]
        want, _ = np.histogram(a.numpy(), bins=h["bins"], range=(lo, hi))
        assert np.abs(np.array(layer["act"]) - want).sum() <= 2  # edge rounding at most
        g = torch.cat([ref["grad_tensors"][n].flatten() for n, _ in unit_params(ref, i)])
        assert sum(layer["grad"]) == g.numel()
        logs = np.log10(np.clip(g.abs().double().numpy(), 10**lo_e, 10**hi_e))
        want, _ = np.histogram(logs, bins=h["bins"], range=(lo_e, hi_e))
        assert np.abs(np.array(layer["grad"]) - want).sum() <= 2


# -- in the trainer: non-finite values, policies, compile -------------------------------------
def digits_cfg(**over) -> RunConfig:
    raw = {
        "preset": "test",
        "data": {"name": "digits", "batch_size": 32, "train_subset": 256},
        "model": {"kind": "mlp", "depth": 3, "width": 16, "activation": "relu", "init": "he"},
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "train": {"max_steps": 24, "device": "cpu", "log_every": 4, "eval_every": 12},
        "probe": {"every": 1},
    }
    for key, value in over.items():
        raw[key] = {**raw.get(key, {}), **value}
    return RunConfig.from_dict(raw)


def start(runs_dir, cfg):
    store = RunStore.create(runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg))
    trainer = Trainer(cfg)
    trainer.prepare()
    return trainer, store


def inject_inf(trainer, layer, from_step):
    """From training step ``from_step`` on, unit ``layer``'s activation emits +inf."""
    act = trainer.model.blocks[layer].act
    forward = act.forward

    def poisoned(h):
        out = forward(h)
        if trainer.model.training and trainer.step >= from_step:
            out = out.clone()
            out[0, 0] = math.inf
        return out

    act.forward = poisoned


def test_trainer_samples_only_the_scheduled_steps(runs_dir):
    trainer, store = start(runs_dir, digits_cfg(probe={"every": 3}, train={"max_steps": 12}))
    seen = []
    forward = trainer.model.forward

    def spy(x):
        hooks = sum(len(m._forward_hooks) for m in trainer.model.modules())
        seen.append((trainer.model.training, trainer.step, hooks))
        return forward(x)

    trainer.model.forward = spy
    trainer.run(store)
    store.close()
    train_steps = [(s, h > 0) for training, s, h in seen if training]
    assert train_steps == [(s, s % 3 == 0) for s in range(12)]
    assert all(h == 0 for training, _, h in seen if not training)
    steps, _ = RunReader(store.run_dir).layer_stat_matrix("grad_norm")
    assert steps == [1, 4, 7, 10]


def test_injected_inf_names_step_and_first_layer(runs_dir):
    trainer, store = start(runs_dir, digits_cfg())
    inject_inf(trainer, layer=1, from_step=5)
    result = trainer.run(store)
    store.close()
    reader = RunReader(store.run_dir)
    assert result.status == "diverged" and reader.meta()["status"] == "diverged"
    probe_events = [(s, d) for s, _, _, d in reader.events("nonfinite") if d.get("what") == "probe"]
    assert len(probe_events) == 1
    step, data = probe_events[0]
    assert step == 6  # training step 5, recorded as 6 steps completed
    assert (data["layer"], data["layer_index"], data["where"]) == ("blocks.1", 1, "activations")
    _, bad = reader.layer_stat_matrix("nonfinite")
    assert bad[1][-1] >= 1 and bad[0][-1] > 0  # the gradients of blocks.0 are NaN as well
    assert all(v == 0 for row in bad for v in row[:-1])  # nothing before step 6


def test_huge_learning_rate_diverges_with_a_layer_named(runs_dir):
    cfg = digits_cfg(optim={"lr": 1e12}, train={"max_steps": 60, "log_every": 50})
    trainer, store = start(runs_dir, cfg)
    result = trainer.run(store)
    store.close()
    reader = RunReader(store.run_dir)
    assert result.status == "diverged"
    events = [d for *_, d in reader.events("nonfinite") if d.get("what") == "probe"]
    names = [layer["name"] for layer in reader.layers()]
    assert len(events) == 1 and events[0]["layer"] == names[events[0]["layer_index"]]


def test_continue_policy_records_once_and_finishes(runs_dir):
    trainer, store = start(runs_dir, digits_cfg(probe={"on_nonfinite": "continue"}))
    inject_inf(trainer, layer=2, from_step=3)
    result = trainer.run(store)
    store.close()
    reader = RunReader(store.run_dir)
    assert result.status == "finished" and result.steps == 24
    probe_events = [d for *_, d in reader.events("nonfinite") if d.get("what") == "probe"]
    assert [d["layer"] for d in probe_events] == ["blocks.2"]


def test_pause_policy_pauses_the_run(runs_dir):
    cfg = digits_cfg(probe={"on_nonfinite": "pause"}, train={"max_steps": 10_000})
    trainer, store = start(runs_dir, cfg)
    inject_inf(trainer, layer=0, from_step=4)
    reader = RunReader(store.run_dir)
    paused = []

    def drive():
        deadline = time.monotonic() + 60
        while reader.meta().get("status") != "paused" and time.monotonic() < deadline:
            time.sleep(0.02)
        paused.append(reader.meta().get("status"))
        send_control(reader.run_dir, "stop")

    threading.Thread(target=drive, daemon=True).start()
    result = trainer.run(store)
    store.close()
    assert paused == ["paused"] and result.status == "stopped"
    (event,) = [d for *_, d in reader.events("nonfinite") if d.get("what") == "probe"]
    assert event["layer"] == "blocks.0"
    status = [d for *_, d in reader.events("status")]
    assert status[1]["status"] == "paused" and "blocks.0" in status[1]["reason"]


def test_the_last_good_checkpoint_is_never_replaced_by_a_non_finite_state(runs_dir):
    trainer, store = start(runs_dir, digits_cfg())
    result = trainer.run(store)
    assert result.status == "finished"
    last = store.run_dir / "checkpoints" / "last.pt"
    good = last.read_bytes()
    with torch.no_grad():
        next(trainer.model.parameters())[0, 0] = float("nan")
    trainer._save(last)  # noqa: SLF001 - what a pause on non-finite values would do
    store.flush()
    assert last.read_bytes() == good
    reader = RunReader(store.run_dir)
    assert [d["path"] for *_, d in reader.events("checkpoint_skipped")] == ["last.pt"]
    with torch.no_grad():
        next(trainer.model.parameters())[0, 0] = 0.0
    trainer.last_loss = float("inf")  # a diverged loss, weights still finite
    trainer._save(last)  # noqa: SLF001
    assert last.read_bytes() == good
    store.close()


def test_fp16_overflow_skips_the_sample_not_the_run(runs_dir):
    cfg = digits_cfg(train={"precision": "fp16", "max_steps": 6})
    trainer, store = start(runs_dir, cfg)
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**100)  # overflows at once
    scaler = trainer.scaler
    trainer.probe.grad_scale = lambda: scaler._scale
    result = trainer.run(store)
    store.close()
    reader = RunReader(store.run_dir)
    assert result.status == "finished"
    assert reader.events("probe_skipped") and not reader.events("nonfinite")


def test_model_level_scalars_are_recorded(runs_dir):
    trainer, store = start(runs_dir, digits_cfg(probe={"every": 4}))
    trainer.run(store)
    store.close()
    names = set(RunReader(store.run_dir).scalar_names())
    want = {"train/loss", "train/acc", "train/lr", "perf/steps_per_s", "grad/total_norm"}
    assert want <= names
    assert {f"grad_norm/{n}" for n, _ in trainer.model.named_parameters()} <= names


def test_histograms_are_recorded_as_events(runs_dir):
    cfg = digits_cfg(probe={"every": 4, "histogram_every": 10}, train={"max_steps": 20})
    trainer, store = start(runs_dir, cfg)
    trainer.run(store)
    store.close()
    events = RunReader(store.run_dir).events("histogram")
    assert [s for s, *_ in events] == [1, 11]
    data = events[0][3]
    assert [layer["layer"] for layer in data["layers"]] == [
        "blocks.0",
        "blocks.1",
        "blocks.2",
        "head",
    ]
    assert sum(data["layers"][0]["act"]) == 32 * 16


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's own imports
def test_compiled_model_trains_and_sampled_steps_run_eagerly(runs_dir):
    try:
        f = torch.compile(lambda t: t * 2 + 1)
        assert torch.equal(f(torch.ones(2)), torch.full((2,), 3.0))
    except Exception as exc:  # no C++ compiler, unsupported platform, ...
        pytest.skip(f"torch.compile does not work here: {type(exc).__name__}")
    cfg = digits_cfg(train={"compile": True, "max_steps": 8}, probe={"every": 4})
    trainer, store = start(runs_dir, cfg)
    calls = []
    forward = trainer.model.forward

    def spy(x):  # the original module's forward: called eagerly, or traced by dynamo
        if torch.compiler.is_compiling():
            return forward(x)
        calls.append((trainer.step, trainer.model.training))
        return forward(x)

    trainer.model.forward = spy
    result = trainer.run(store)
    store.close()
    assert result.status == "finished"
    eager = [s for s, training in calls if training]
    assert eager == [0, 4]  # the sampled steps; the others ran the compiled graph
    steps, grad = RunReader(store.run_dir).layer_stat_matrix("out_grad_norm")
    assert steps == [1, 5] and all(v is not None and v > 0 for row in grad for v in row)


def test_dead_means_units_zero_for_the_whole_batch_not_zero_entries():
    from tui_trainer.engine.reductions import activation_summary, activation_summary_host

    torch.manual_seed(0)
    y = torch.relu(torch.randn(64, 10))  # about half the entries zero, no unit dead
    y[:, [2, 7]] = 0.0  # two units dead for the batch
    maps = torch.relu(torch.randn(8, 4, 5, 5))
    maps[:, 1] = 0.0  # one channel of four dead everywhere
    maps[3, 2, 0, 0] = 0.0  # a zero entry in a live channel counts for nothing
    for x, dead in ((y, 0.2), (maps, 0.25), (torch.relu(torch.randn(64, 10)), 0.0)):
        assert float(activation_summary(x, "relu")[4]) == pytest.approx(dead)
        assert activation_summary_host(x, "relu")[4] == pytest.approx(dead)
        assert (x == 0).float().mean().item() > 0.2  # the old "dead" would have said so
    nhwc = maps.contiguous(memory_format=torch.channels_last)
    assert activation_summary_host(nhwc, "relu")[4] == pytest.approx(0.25)
    for x, dead in ((torch.zeros(6), 1.0), (torch.tensor([0.0, 2.0]), 0.0)):  # one unit
        assert float(activation_summary(x, "relu")[4]) == activation_summary_host(x, "relu")[4]
        assert activation_summary_host(x, "relu")[4] == dead
