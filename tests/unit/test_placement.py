"""Where a run's data lives and the memory format of conv nets (engine/placement.py).

The CPU runs the same code paths where it can: data kept "on the host" (gathered into a
staging tensor each batch, as a GPU run with a large data set does) and channels-last conv
nets. The GPU-marked tests check what only CUDA shows: pinned, asynchronous batches and no
host synchronisation on steps that are neither sampled nor logged.
"""

from __future__ import annotations

import math

import pytest
import torch

from tui_trainer.config import ConfigError, config_to_toml, find_preset
from tui_trainer.engine.placement import Placement, plan
from tui_trainer.engine.trainer import Trainer
from tui_trainer.store import RunReader, RunStore

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
CPU = torch.device("cpu")


def _train(runs_dir, preset, sets, placement=None, wrap=None):
    cfg = find_preset(preset).resolve(None, sets)
    store = RunStore.create(runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg))
    trainer = Trainer(cfg)
    if placement is not None:  # a decision plan() would make elsewhere (a GPU box)
        import tui_trainer.engine.trainer as module

        original = module.plan_placement
        module.plan_placement = lambda *a: placement
        try:
            trainer.prepare()
        finally:
            module.plan_placement = original
    if wrap is not None:
        wrap(trainer)
    result = trainer.run(store)
    store.close()
    return trainer, result, RunReader(store.run_dir)


def test_plan_keeps_a_cpu_run_resident_and_chooses_channels_last_for_conv_nets_on_cuda():
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
    mlp = torch.nn.Sequential(torch.nn.Linear(2, 2))
    assert plan(CPU, conv, 10**12) == Placement(CPU)  # the host is a CPU run's device
    assert plan(CPU, conv, 10, "host").resident  # nowhere else to keep it
    assert plan(CPU, conv, 10, memory_format="channels_last").channels_last
    assert not plan(CPU, conv, 10).channels_last  # auto: CUDA only
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        assert plan(gpu, conv, 10).channels_last and not plan(gpu, mlp, 10).channels_last
        free, _ = torch.cuda.mem_get_info()
        far = plan(gpu, mlp, 10 * free)
        assert not far.resident and far.pinned
        assert not plan(gpu, mlp, 10, "host").resident and plan(gpu, mlp, 10**15, "device").resident


def test_host_rows_are_gathered_into_a_staging_tensor_in_the_memory_format():
    x = torch.randn(50, 3, 4, 4)
    idx = torch.tensor([7, 3, 49, 0])
    host = Placement(CPU, resident=False)
    got = host.batch(x, idx)
    assert torch.equal(got, x[idx]) and got.data_ptr() != x[idx].data_ptr()
    nhwc = Placement(CPU, channels_last=True).batch(x, idx)
    assert torch.equal(nhwc, x[idx]) and nhwc.is_contiguous(memory_format=torch.channels_last)
    assert Placement(CPU, channels_last=True).batch(torch.ones(4, 2)).is_contiguous()


def test_a_run_with_its_data_on_the_host_trains_exactly_like_a_resident_one(runs_dir):
    sets = ['train.device="cpu"', "train.max_steps=120", "probe.every=10", "train.eval_every=40"]
    _, a, ra = _train(runs_dir, "digits-mlp", sets)
    host = Placement(CPU, resident=False)
    trainer, b, rb = _train(runs_dir, "digits-mlp", sets, placement=host)
    assert trainer.placement is host and a.status == b.status == "finished"
    assert ra.series("train/loss") == rb.series("train/loss")  # the same batches, bitwise
    assert ra.series("val/acc") == rb.series("val/acc")  # evaluation through the same path
    assert ra.layer_stat_matrix("grad_norm") == rb.layer_stat_matrix("grad_norm")


def test_a_channels_last_conv_net_trains_like_a_contiguous_one_and_its_probes_agree(runs_dir):
    sets = ['train.device="cpu"', "train.max_steps=30", "probe.every=5", "data.augment=\"none\""]
    _, a, ra = _train(runs_dir, "relu-vs-tanh", [*sets, 'train.memory_format="contiguous"'])
    nhwc = [*sets, 'train.memory_format="channels_last"']
    trainer, b, rb = _train(runs_dir, "relu-vs-tanh", nhwc)
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert trainer.batches.batch(0)[0].is_contiguous(memory_format=torch.channels_last)
    la, lb = [v for _, v in ra.series("train/loss")], [v for _, v in rb.series("train/loss")]
    assert len(la) == len(lb) > 0
    assert all(math.isclose(p, q, rel_tol=1e-4) for p, q in zip(la, lb, strict=True))
    for column in ("grad_norm", "act_mean", "act_std", "dead_frac"):
        (sa, xa), (sb, xb) = ra.layer_stat_matrix(column), rb.layer_stat_matrix(column)
        assert sa == sb
        for row_a, row_b in zip(xa, xb, strict=True):
            for p, q in zip(row_a, row_b, strict=True):
                assert (p is None) == (q is None)
                assert p is None or math.isclose(p, q, rel_tol=1e-3, abs_tol=1e-6), column


def test_host_data_with_greedy_pretraining_is_one_line(runs_dir):
    cfg = find_preset("pretraining-2006").resolve(None, ['train.device="cpu"'])
    trainer = Trainer(cfg)
    import tui_trainer.engine.placement as placement

    original = placement.plan
    placement.plan = lambda *a, **k: Placement(CPU, resident=False)
    try:
        with pytest.raises(ConfigError, match="pre-training"):
            trainer.prepare()
    finally:
        placement.plan = original


@pytest.mark.gpu
@CUDA
@pytest.mark.parametrize(
    ("preset", "where"),
    [("digits-mlp", "device"), ("digits-mlp", "host"), ("relu-vs-tanh", "device")],
)
def test_unsampled_unlogged_steps_never_synchronise_the_host(runs_dir, preset, where):
    """Every step that is neither sampled, logged nor evaluated runs (train step and the
    bookkeeping after it) under torch.cuda.set_sync_debug_mode("error"): epoch boundaries
    (a new order) and augmented batches (relu-vs-tanh shifts its images) included."""
    log_every, every, steps = 5, 7, 80
    sets = ['train.device="cuda"', f"train.log_every={log_every}", f"probe.every={every}",
            f"train.max_steps={steps}", "train.eval_every=1000", "checkpoint.every=0",
            "checkpoint.every_seconds=0", f'train.data_placement="{where}"']  # fmt: skip
    checked = []

    def wrap(trainer):
        train_step, after_step = trainer._train_step, trainer._after_step

        def quiet_train_step(sampled):
            nxt = trainer.step + 1
            quiet = not sampled and nxt % log_every and nxt < steps and trainer.step > 3
            torch.cuda.set_sync_debug_mode("error" if quiet else "default")
            if quiet:
                checked.append(trainer.step)
            train_step(sampled)

        def after(sampled, t_step):
            try:
                after_step(sampled, t_step)
            finally:
                torch.cuda.set_sync_debug_mode("default")

        trainer._train_step, trainer._after_step = quiet_train_step, after

    trainer = Trainer(find_preset(preset).resolve(None, sets))
    trainer.prepare()
    wrap(trainer)
    store = RunStore.create(runs_dir, preset, "", "{}", "")
    result = trainer.run(store)
    store.close()
    assert result.status == "finished", result
    assert trainer.placement.resident == (where == "device")
    assert len(checked) > 40


@pytest.mark.gpu
@CUDA
def test_a_conv_net_on_cuda_runs_channels_last_from_pinned_host_batches(runs_dir):
    sets = ['train.device="cuda"', "train.max_steps=40", "probe.every=5",
            'train.data_placement="host"']  # fmt: skip
    trainer, result, reader = _train(runs_dir, "relu-vs-tanh", sets)
    assert result.status == "finished" and trainer.placement.channels_last
    assert trainer.x_train.is_pinned() and trainer.x_train.device.type == "cpu"
    x, y = trainer.batches.batch(3)
    assert x.is_cuda and y.is_cuda and x.is_contiguous(memory_format=torch.channels_last)
    steps, rows = reader.layer_stat_matrix("grad_norm")
    assert steps and all(v is not None and math.isfinite(v) for row in rows for v in row)
