"""Provides TuiTrainerCallback for Hugging Face Transformers: a ``Trainer`` watched, what it
logs recorded, the run shown by ``tui-trainer attach latest``.

    Trainer(model, args, train_dataset=ds, callbacks=[TuiTrainerCallback("my-run")])

Needs ``transformers`` and ``accelerate`` (``pip install tui-trainer[hf]``). Per optimizer
step (``on_step_end``) ``mon.step()``: the probes, the pause and stop. The Trainer reports
its loss only at ``logging_steps`` (``on_log``): ``loss``, ``learning_rate`` and
``grad_norm`` become ``train/loss``, ``train/lr`` and ``train/grad_norm``; the evaluation's
``eval_*`` metrics become ``val/*``. The gradients the probes read are the clipped ones
(the Trainer clips before ``optimizer.step()``). A stop from the app ends training
(``control.should_training_stop``); ``c`` asks the Trainer to save a checkpoint. Only the
main process records.
"""

from __future__ import annotations

import os
from typing import Any

try:
    from transformers import TrainerCallback
except ImportError as exc:
    raise ImportError(
        "tui_trainer.integrations.transformers needs transformers: pip install 'tui-trainer[hf]'"
    ) from exc

from tui_trainer.integrations import VAL_PREFIXES, metric_name, numbers, raw_optimizer
from tui_trainer.monitor import Monitor, watch
from tui_trainer.monitor.monitor import DEFAULT_LOG_EVERY

__all__ = ["TuiTrainerCallback"]

TRAIN_NAMES = {"loss": "train/loss", "learning_rate": "train/lr", "grad_norm": "train/grad_norm"}
CONFIG_KEYS = (
    "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps",
    "num_train_epochs", "max_steps", "weight_decay", "warmup_steps", "lr_scheduler_type",
    "optim", "max_grad_norm", "seed", "fp16", "bf16",
)  # fmt: skip


class TuiTrainerCallback(TrainerCallback):
    """Watch a ``transformers.Trainer``: ``name`` (default: ``args.run_name`` or the model's
    class), ``every`` / ``layers`` / ``runs_dir`` / ``config`` as for ``tui_trainer.watch``
    (``config`` defaults to the TrainingArguments that shape training). ``self.monitor`` is
    the Monitor once training begins."""

    def __init__(
        self,
        name: str | None = None,
        *,
        every: int | str = "auto",
        layers: str | list[str] | None = None,
        runs_dir: str | os.PathLike[str] | None = None,
        config: Any = None,
    ) -> None:
        self.name, self.every, self.layers = name, every, layers
        self.runs_dir, self.config = runs_dir, config
        self.monitor: Monitor | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if not state.is_world_process_zero or self.monitor is not None:
            return
        model, optimizer = kw.get("model"), kw.get("optimizer")
        name = self.name or _run_name(args) or type(model).__name__
        self.monitor = watch(
            model,
            name,
            optimizer=raw_optimizer(optimizer) if optimizer is not None else None,
            every=self.every,
            layers=self.layers,
            config=self.config if self.config is not None else _config(args),
            runs_dir=self.runs_dir,
            log_every=_log_every(args),
            total_steps=int(state.max_steps or 0),
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        mon = self.monitor
        if mon is None:
            return
        mon.step()
        if mon.checkpoint_requested:
            control.should_save = True
        if mon.should_stop:
            control.should_training_stop = True

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if self.monitor is None or not logs or "train_runtime" in logs:
            return  # the run's closing summary repeats what was logged
        train = {}
        for key, v in numbers(logs).items():
            if not key.startswith(VAL_PREFIXES):
                train[TRAIN_NAMES.get(key, f"train/{key}")] = v
        if train:
            self.monitor.log(train, step=state.global_step)

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any
    ) -> None:
        if self.monitor is None or not metrics:
            return
        values = {}
        for key, v in numbers(metrics).items():
            if key.startswith(VAL_PREFIXES) and not key.endswith(("_runtime", "_per_second")):
                values[metric_name(key, VAL_PREFIXES)] = v
        if values:
            self.monitor.eval(values, step=state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.monitor is not None:
            path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            self.monitor.event("checkpoint", {"path": path})

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.monitor is not None:
            self.monitor.finish()


def _run_name(args: Any) -> str | None:
    name = getattr(args, "run_name", None)
    return None if not name or name == args.output_dir else str(name)


def _config(args: Any) -> dict[str, Any]:
    d = args.to_dict()
    return {k: d[k] for k in CONFIG_KEYS if isinstance(d.get(k), int | float | str | bool)}


def _log_every(args: Any) -> int:
    steps = args.logging_steps  # a count, or a fraction of the run when below 1
    return int(steps) if steps >= 1 else DEFAULT_LOG_EVERY
