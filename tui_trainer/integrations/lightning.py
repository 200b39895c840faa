"""Provides TuiTrainerCallback for PyTorch Lightning: the LightningModule watched, what it
logs recorded, the run shown by ``tui-trainer attach latest``.

    trainer = L.Trainer(callbacks=[TuiTrainerCallback("my-run")])

Needs ``lightning`` or ``pytorch-lightning`` (``pip install tui-trainer[lightning]``); the
callback subclasses ``lightning.pytorch.Callback`` when ``lightning`` is installed, else
``pytorch_lightning.Callback``. Per optimizer step (``trainer.global_step`` moves; batches of
an accumulation are averaged): ``mon.step(loss=..., lr=...)``; every ``log_every`` steps the
module's ``self.log`` values as ``train/<name>``; after each validation its ``val_*``
metrics as ``val/<name>``. The optimizer steps with a closure, so the probes read the
gradients when the closure returns (after Lightning's gradient clipping). Only rank zero
records.
"""

from __future__ import annotations

import os
from typing import Any

try:
    from lightning.pytorch import Callback
except ImportError:  # the standalone package
    try:
        from pytorch_lightning import Callback
    except ImportError as exc:
        raise ImportError(
            "tui_trainer.integrations.lightning needs Lightning: "
            "pip install 'tui-trainer[lightning]'"
        ) from exc

from tui_trainer.integrations import TRAIN_PREFIXES, VAL_PREFIXES, metric_name, numbers
from tui_trainer.monitor import Monitor, watch
from tui_trainer.monitor.monitor import DEFAULT_LOG_EVERY

__all__ = ["TuiTrainerCallback"]


class TuiTrainerCallback(Callback):
    """Watch a Lightning fit: ``name`` (default: the module's class), ``every`` / ``layers``
    / ``runs_dir`` / ``log_every`` / ``config`` as for ``tui_trainer.watch`` (``config``
    defaults to the module's ``hparams``). ``self.monitor`` is the Monitor once fit starts."""

    def __init__(
        self,
        name: str | None = None,
        *,
        every: int | str = "auto",
        layers: str | list[str] | None = None,
        runs_dir: str | os.PathLike[str] | None = None,
        log_every: int = DEFAULT_LOG_EVERY,
        config: Any = None,
    ) -> None:
        super().__init__()
        self.name, self.every, self.layers = name, every, layers
        self.runs_dir, self.log_every, self.config = runs_dir, log_every, config
        self.monitor: Monitor | None = None
        self._losses: list[Any] = []
        self._step = 0

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        config = self.config if self.config is not None else dict(pl_module.hparams) or None
        self.monitor = watch(
            pl_module,
            self.name or type(pl_module).__name__,
            optimizer=optimizer,
            every=self.every,
            layers=self.layers,
            config=config,
            runs_dir=self.runs_dir,
            log_every=self.log_every,
            total_steps=_planned_steps(trainer),
        )
        self._step = trainer.global_step

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        mon = self.monitor
        if mon is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._losses.append(loss.detach() if hasattr(loss, "detach") else loss)
        if trainer.global_step == self._step:
            return  # accumulating gradients: no optimizer step yet
        self._step = trainer.global_step
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        losses, self._losses = self._losses, []
        mean = sum(losses) / len(losses) if losses else None
        mon.step(loss=mean, **({"lr": lr} if lr is not None else {}))
        if mon.global_step % mon.log_every == 0:
            mon.log(self._logged(trainer, train=True))
        if mon.checkpoint_requested:
            path = mon.run_dir / "checkpoints" / f"step-{mon.global_step}.ckpt"
            trainer.save_checkpoint(path)
            mon.event("checkpoint", {"path": path.name})
        if mon.should_stop:
            trainer.should_stop = True

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is not None and not trainer.sanity_checking:
            values = self._logged(trainer, train=False)
            if values:
                self.monitor.eval(values)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is not None:
            self.monitor.finish()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        mon = self.monitor
        if mon is None:
            return
        if isinstance(exception, KeyboardInterrupt):
            mon.finish("stopped", "interrupted")
        else:
            mon.crashed(exception)

    @staticmethod
    def _logged(trainer: Any, train: bool) -> dict[str, float]:
        """The module's ``self.log`` values: training ones as ``train/<name>`` (not the loss,
        recorded from the step's output), validation ones as bare names for ``mon.eval``."""
        out: dict[str, float] = {}
        for key, v in numbers(trainer.callback_metrics).items():
            is_val = key.startswith(VAL_PREFIXES)
            if is_val != (not train):
                continue
            if train:
                name = f"train/{metric_name(key, TRAIN_PREFIXES)}"
                if name != "train/loss":
                    out[name] = v
            else:
                out[metric_name(key, VAL_PREFIXES)] = v
        return out


def _planned_steps(trainer: Any) -> int:
    if trainer.max_steps and trainer.max_steps > 0:
        return int(trainer.max_steps)
    try:
        total = trainer.estimated_stepping_batches
    except Exception:  # no dataloader length: unknown
        return 0
    return int(total) if total != float("inf") else 0
