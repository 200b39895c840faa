"""The Lightning and Hugging Face callbacks: a tiny model trained a few steps on the CPU,
the run read back from the store and compared with what the framework computed."""

from __future__ import annotations

import math
import time

import pytest
import torch
from torch import nn

from tui_trainer.store import RunReader, send_control
from tui_trainer.store.schema import STAT_COLUMNS

COL = {c: i for i, c in enumerate(STAT_COLUMNS)}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def data(n=256, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()


def grad_norm(layer: nn.Module) -> float:
    return math.sqrt(sum(p.grad.norm().item() ** 2 for p in layer.parameters()))


def layer_rows(run_dir, layer_name):
    """{step: row} of one layer's statistics."""
    with RunReader(run_dir) as r:
        index = [layer["name"] for layer in r.layers()].index(layer_name)
        rows = r._con.execute(  # noqa: SLF001 - a test reads the table it checks
            f"SELECT step, {', '.join(STAT_COLUMNS)} FROM layer_stats WHERE layer = ?", (index,)
        ).fetchall()
    return {step: values for step, *values in rows}


# -- PyTorch Lightning ------------------------------------------------------------------------


def lightning_parts():
    pl = pytest.importorskip("pytorch_lightning", reason="the lightning extra is not installed")
    from tui_trainer.integrations.lightning import TuiTrainerCallback

    class Tiny(pl.LightningModule):
        def __init__(self, hidden=16, lr=0.2, pause=0.0):
            super().__init__()
            self.save_hyperparameters()
            self.body = nn.Sequential(nn.Linear(12, hidden), nn.ReLU(), nn.Linear(hidden, 3))
            self.losses, self.grads, self.val_acc, self.on_step = [], {}, [], None

        def forward(self, x):
            return self.body(x)

        def training_step(self, batch, i):
            x, y = batch
            out = self(x)
            loss = nn.functional.cross_entropy(out, y)
            self.log("train_acc", (out.argmax(1) == y).float().mean())
            self.losses.append(loss.item())
            if self.on_step is not None:
                self.on_step(self.trainer.global_step)
            if self.hparams.pause:
                time.sleep(self.hparams.pause)
            return loss

        def on_before_optimizer_step(self, optimizer):
            self.grads[self.trainer.global_step + 1] = grad_norm(self.body[0])

        def validation_step(self, batch, i):
            x, y = batch
            acc = (self(x).argmax(1) == y).float().mean()
            self.val_acc.append(acc.item())
            self.log("val_acc", acc)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    x, y = data()
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:64], y[:64]), batch_size=64)
    return pl, TuiTrainerCallback, Tiny, train, val


def lightning_trainer(pl, callback, tmp_path, **kw):
    return pl.Trainer(
        callbacks=[callback],
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kw,
    )


def test_lightning_callback_records_what_the_module_computed(tmp_path):
    pl, TuiTrainerCallback, Tiny, train, val = lightning_parts()
    torch.manual_seed(0)
    model = Tiny()
    cb = TuiTrainerCallback("lit", every=1, log_every=4, runs_dir=tmp_path)
    trainer = lightning_trainer(pl, cb, tmp_path, max_steps=12, val_check_interval=6)
    trainer.fit(model, train, val)
    run = cb.monitor.run_dir
    with RunReader(run) as r:
        assert r.status() == "finished"
        assert r.meta()["kind"] == "watch" and r.meta()["total_steps"] == 12
        assert [layer["name"] for layer in r.layers()] == ["body.0", "body.2"]
        loss = r.series("train/loss")
        acc_rows = r.series("train/acc")
        val_rows = r.series("val/acc")
        lr_rows = r.series("train/lr")
        assert r.meta()["config"]["hidden"] == 16
    assert [s for s, _ in loss] == [4, 8, 12]
    for (_, v), i in zip(loss, (0, 4, 8), strict=True):
        assert v == pytest.approx(sum(model.losses[i : i + 4]) / 4, rel=1e-6)
    assert [s for s, _ in acc_rows] == [4, 8, 12]
    assert lr_rows[-1][1] == pytest.approx(0.2)
    assert [s for s, _ in val_rows] == [6, 12]  # not the sanity check
    assert [v for _, v in val_rows] == pytest.approx(model.val_acc[-2:])
    rows = layer_rows(run, "body.0")
    assert set(rows) == set(range(2, 13))  # discovery at step 1, then every step
    for step, row in rows.items():  # the closure's gradients, read when it returned
        assert row[COL["grad_norm"]] == pytest.approx(model.grads[step], rel=1e-5)
        assert row[COL["update_ratio"]] is not None


def test_lightning_stop_and_checkpoint_from_outside(tmp_path):
    pl, TuiTrainerCallback, Tiny, train, val = lightning_parts()
    model = Tiny(pause=0.01)
    cb = TuiTrainerCallback(every=0, log_every=1, runs_dir=tmp_path)
    asked: list[str] = []

    def on_step(step):  # in training_step: the checkpoint request, then (once saved) a stop
        run = cb.monitor.run_dir
        if step == 3:
            send_control(run, "checkpoint")
            asked.append("checkpoint")
        elif asked == ["checkpoint"] and RunReader(run).events("checkpoint"):
            send_control(run, "stop")
            asked.append("stop")

    model.on_step = on_step
    trainer = lightning_trainer(pl, cb, tmp_path, max_steps=2000)
    trainer.fit(model, train)
    run = cb.monitor.run_dir
    assert trainer.global_step < 2000
    with RunReader(run) as r:
        assert r.status() == "stopped"
        assert r.meta()["config"]["title"] == "Tiny"
        ckpt = [e[3]["path"] for e in r.events("checkpoint")]
    assert ckpt and (run / "checkpoints" / ckpt[0]).is_file()


def test_lightning_exception_crashes_the_run(tmp_path):
    pl, TuiTrainerCallback, Tiny, train, val = lightning_parts()
    model = Tiny()

    def boom(step):
        if step == 5:
            raise ValueError("bad batch at step 5")

    model.on_step = boom
    cb = TuiTrainerCallback(runs_dir=tmp_path)
    with pytest.raises(ValueError):
        lightning_trainer(pl, cb, tmp_path, max_steps=50).fit(model, train)
    with RunReader(cb.monitor.run_dir) as r:
        assert r.status() == "crashed"
        errors = r.events("error")
    assert "bad batch at step 5" in errors[0][3]["traceback"]


# -- Hugging Face Transformers ----------------------------------------------------------------


class HFTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, x, labels=None):
        logits = self.body(x)
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


def hf_parts(tmp_path, **kw):
    transformers = pytest.importorskip("transformers", reason="the hf extra is not installed")
    pytest.importorskip("accelerate", reason="the hf extra is not installed")
    from tui_trainer.integrations.transformers import TuiTrainerCallback

    x, y = data()
    ds = [{"x": x[i], "labels": y[i]} for i in range(len(x))]
    args = dict(
        output_dir=str(tmp_path / "hf"),
        per_device_train_batch_size=16,
        learning_rate=0.1,
        logging_steps=4,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    args.update(kw)
    return transformers, TuiTrainerCallback, ds, transformers.TrainingArguments(**args)


def test_hf_callback_records_what_the_trainer_logged(tmp_path):
    transformers, TuiTrainerCallback, ds, args = hf_parts(
        tmp_path, max_steps=12, eval_strategy="steps", eval_steps=6
    )
    torch.manual_seed(0)
    model = HFTiny()
    grads: dict[int, float] = {}

    class Grads(transformers.TrainerCallback):  # sees the gradients just before step()
        def on_pre_optimizer_step(self, args, state, control, **kw):
            grads[state.global_step + 1] = grad_norm(model.body[0])

    cb = TuiTrainerCallback("hf", every=1, runs_dir=tmp_path)
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=ds, eval_dataset=ds[:64], callbacks=[Grads(), cb]
    )
    trainer.train()
    logged = [e for e in trainer.state.log_history if "loss" in e and "train_runtime" not in e]
    evals = [e for e in trainer.state.log_history if "eval_loss" in e]
    run = cb.monitor.run_dir
    with RunReader(run) as r:
        assert r.status() == "finished"
        assert r.meta()["total_steps"] == 12
        assert r.meta()["config"]["learning_rate"] == 0.1
        loss = r.series("train/loss")
        val = r.series("val/loss")
        lr = r.series("train/lr")
    assert [(s, pytest.approx(v)) for s, v in loss] == [(e["step"], e["loss"]) for e in logged]
    assert [s for s, _ in loss] == [4, 8, 12]
    assert [(s, pytest.approx(v)) for s, v in val] == [(e["step"], e["eval_loss"]) for e in evals]
    assert [s for s, _ in lr] == [4, 8, 12]
    rows = layer_rows(run, "body.0")
    assert set(rows) == set(range(2, 13))
    for step, row in rows.items():
        assert row[COL["grad_norm"]] == pytest.approx(grads[step], rel=1e-5)
        assert row[COL["update_ratio"]] is not None


def test_hf_stop_from_outside_ends_training(tmp_path):
    transformers, TuiTrainerCallback, ds, args = hf_parts(tmp_path, max_steps=3000)
    cb = TuiTrainerCallback(runs_dir=tmp_path, every=0)

    class Slow(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:
                send_control(cb.monitor.run_dir, "stop")
            time.sleep(0.01)

    trainer = transformers.Trainer(
        model=HFTiny(), args=args, train_dataset=ds, callbacks=[Slow(), cb]
    )
    trainer.train()
    assert trainer.state.global_step < 3000
    with RunReader(cb.monitor.run_dir) as r:
        assert r.status() == "stopped"
