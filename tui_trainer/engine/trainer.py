"""Provides Trainer: the training loop, from a RunConfig to records in a Recorder (RunStore).

It reads top to bottom: set up (seed, device, data, model, optimizer, probe), then per step
the epoch's next batch, forward, backward, (probe), step, log, evaluate, checkpoint, control.
Host syncs only at log, eval and probe steps. A stopped run resumes from ``last.pt`` exactly:
an epoch's data order is a function of (seed, epoch) and every RNG state is saved.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tui_trainer.config import RunConfig
from tui_trainer.engine import checkpoint as ckpt
from tui_trainer.engine.batches import EpochBatches
from tui_trainer.engine.controls import CONTROL_INTERVAL, Controls, StopTraining
from tui_trainer.engine.data import Dataset, build_dataset, num_batches
from tui_trainer.engine.evaluation import Evaluator
from tui_trainer.engine.models import build_model, count_parameters
from tui_trainer.engine.objective import Objective
from tui_trainer.engine.optim import build_optimizer, build_schedule
from tui_trainer.engine.placement import plan_placement
from tui_trainer.engine.precision import Precision
from tui_trainer.engine.pretrain import pretrainer_for
from tui_trainer.engine.probes import LayerProbe
from tui_trainer.engine.provenance import provenance
from tui_trainer.engine.recorder import Recorder, note_meta
from tui_trainer.engine.recording import SampleRecorder
from tui_trainer.engine.runtime import (
    Progress,
    TrainResult,
    device_name,
    failure_reason,
    pick_device,
    seed_everything,
)
from tui_trainer.engine.sampling import ProbeSchedule
from tui_trainer.engine.saving import Checkpointing
from tui_trainer.engine.system_scalars import SystemScalars
from tui_trainer.engine.train_log import FOLD_SECONDS, TrainLog, Window
from tui_trainer.store.liveness import process_identity

__all__ = [
    "CONTROL_INTERVAL",
    "Progress",
    "StopTraining",
    "TrainResult",
    "Trainer",
    "pick_device",
    "seed_everything",
]

PROGRESS_INTERVAL = 0.1  # seconds between progress callbacks


class Trainer(Controls, Checkpointing):
    """Trains one RunConfig, recording into a Recorder (a RunStore for every real run)."""

    fold_seconds = FOLD_SECONDS  # how long log windows may wait to be read (train_log.py)

    def __init__(
        self,
        cfg: RunConfig,
        on_progress: Callable[[Progress], None] | None = None,
        dataset: Dataset | None = None,
    ) -> None:
        self.cfg = cfg
        self.on_progress = on_progress
        self.stop_requested = ""  # set from a signal handler: checked every step
        self._dataset = dataset
        self.prepared = False
        # The run's state, all of it here: prepare() builds the data, model and optimizer;
        # run() attaches the store. A checkpoint holds step and best (and the RNG).
        self.step = 0
        self.best: dict[str, float] = {}  # best validation metric so far, and its step
        self.last_eval: dict[str, float] = {}  # the latest evaluation's values
        self.last_loss: float | None = None  # the latest logged training loss
        self.rate = 0.0  # steps/s over the latest log window
        self.resume = False
        self._log = TrainLog(None, 0)  # started again by _loop

    # -- set-up ------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Build data, model and optimizer. Bad input fails here, before a run exists."""
        cfg = self.cfg
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        seed_everything(cfg.train.seed)
        self.device = pick_device(cfg.train.device)
        self.data = self._dataset or build_dataset(cfg.data)
        self.model = build_model(cfg.model, self.data.input_shape, self.data.num_classes)
        self.model.to(self.device)
        self.placement = plan_placement(self.device, self.model, self.data, cfg)
        self.placement.model(self.model)
        self.objective = Objective(self.model, self.data.num_classes)
        self.units = self.model.layer_units()
        self.optimizer = build_optimizer(cfg.optim, self.model)
        self.n_train = len(self.data.y_train)
        self.batches_per_epoch = num_batches(self.n_train, cfg.data.batch_size)
        self.total_steps = cfg.train.max_steps or cfg.train.epochs * self.batches_per_epoch
        self.scheduler = build_schedule(cfg.optim, self.optimizer, self.total_steps)
        self.scheduled = cfg.optim.schedule != "constant" or cfg.optim.warmup_steps > 0
        self.eval_every = cfg.train.eval_every or self._auto_eval_every()
        place = self.placement.data  # on the device, or (too large) pinned on the host
        self.x_train, self.y_train = place(self.data.x_train), place(self.data.y_train)
        self.x_val, self.y_val = place(self.data.x_val), place(self.data.y_val)
        self.pretrainer = pretrainer_for(self.model, self.x_train, cfg)  # checks the model
        self.batches = EpochBatches(
            self.x_train,
            self.y_train,
            cfg.data.batch_size,
            self.batches_per_epoch,
            cfg.train.seed,
            cfg.data.augment,
            self.placement,
        )
        # Validation, the training set in eval mode, PCA beside an autoencoder, exhibits.
        tensors = (self.x_train, self.y_train, self.x_val, self.y_val)
        self.evaluator = Evaluator(
            cfg, self.model, self.objective, self.data, tensors, self._autocast, self.placement
        )
        self.probe = LayerProbe(
            self.units, list(self.model.named_parameters()), cfg.probe.stats, self.device
        )
        self.sampler = ProbeSchedule(cfg.probe.every, cfg.probe.budget, cfg.probe.histogram_every)
        self.clock = ckpt.CheckpointClock(cfg.checkpoint.every, cfg.checkpoint.every_seconds)
        self.precision = Precision(cfg.train.precision, cfg.train.compile, self.device)
        self.eager, self.scaler = self.model, self.precision.scaler  # eager: DDP under --nproc
        self.compiled = self.precision.compiled(self.model)  # sampled steps run eagerly
        if self.scaler is not None:
            scaler = self.scaler
            self.probe.grad_scale = lambda: scaler._scale  # noqa: SLF001 (tensor, no sync)
        self.prepared = True

    def _autocast(self) -> Any:
        return self.precision.autocast()

    def _auto_eval_every(self) -> int:
        """Once an epoch, but at most ~100 evaluations a run."""
        return max(self.batches_per_epoch, math.ceil(self.total_steps / 100))

    def _record_start(self) -> None:
        store = self.store
        self.samples = SampleRecorder(store, self.probe, self.sampler, self.units)
        self.samples.record_layers()
        self.system = SystemScalars(self.device)
        store.set_meta(
            **process_identity(),
            device=str(self.device),
            device_name=device_name(self.device),
            **provenance(),
            started=time.time(),
            total_steps=self.total_steps,
            batches_per_epoch=self.batches_per_epoch,
            params=count_parameters(self.model),
            task=self.objective.task,
            probe_every=self.sampler.every,
        )
        store.set_status("running", self.step, resumed=self.resume)

    # -- the loop ------------------------------------------------------------------------------
    def run(self, store: Recorder, resume: bool = False) -> TrainResult:
        """Train to the end (or a stop) and record into ``store``; never raises for a
        failure of training itself: the result (and the store) say ``crashed``."""
        if not self.prepared:
            self.prepare()
        self.store = store
        self.resume = resume
        self._start_checkpoints(store.run_dir)
        if resume:
            self._load(self.checkpoints / "last.pt")
        self._record_start()
        t0 = time.perf_counter()
        status, reason, torn = "finished", "", False
        start_step = self.step
        try:
            self._loop()
            self._evaluate()
            self._flush_samples()
        except StopTraining as stop:
            status, reason = stop.status, stop.reason
            self._flush_samples(raising=False)
        except KeyboardInterrupt:  # mid-step (no handler installed): the state may be torn
            status, reason, torn = "stopped", "interrupted mid-step: last.pt kept", True
            self._flush_samples(raising=False)
        except Exception as exc:  # training failed: record it, keep everything flushed
            status, reason = "crashed", failure_reason(exc)
            self.store.event(
                self.step, "error", {"error": reason, "traceback": traceback.format_exc()}
            )
        status, reason = self._settle(status, reason, torn)
        elapsed = time.perf_counter() - t0
        rate = (self.step - start_step) / max(elapsed, 1e-9)
        self.store.set_meta(step=self.step, best=self.best, steps_per_s=rate)
        self.store.set_status(status, self.step, reason=reason)
        self.store.flush()
        return TrainResult(
            run_id=Path(self.store.run_dir).name,
            run_dir=str(self.store.run_dir),
            status=status,
            steps=self.step,
            epochs=self.step / max(self.batches_per_epoch, 1),
            steps_per_s=rate,
            elapsed_s=elapsed,
            error=reason if status not in ("finished", "stopped") else "",
        )

    def _settle(self, status: str, reason: str, torn: bool) -> tuple[str, str]:
        """However the run ended: the log windows still waiting (a stopped run whose loss
        had turned non-finite ends ``diverged``, without last.pt), best.pt, last.pt. A full
        disk or a dead device must not hide how it ended: an error event instead."""
        try:
            bad = self._record_train(raising=False)
        except Exception as exc:  # noqa: BLE001
            bad = None
            self.store.event(self.step, "error", {"error": f"training log: {failure_reason(exc)}"})
        stop = self._loss_stop(bad)
        if stop is not None and status == "stopped":
            status, reason = stop.status, stop.reason
        try:
            self.best_file.flush()
            if status in ("finished", "stopped") and self.total_steps > 0 and not torn:
                self._save(self.checkpoints / "last.pt")
        except Exception as exc:  # noqa: BLE001
            failed = {"error": f"checkpoint at the end: {failure_reason(exc)}"}
            self.store.event(self.step, "error", failed)
        return status, reason

    def _loop(self) -> None:
        pretraining = self.pretrainer is not None and not self.pretrainer.done
        if self.step == 0 and (not self.resume or pretraining):
            self._before_training()
        self.model.train()
        self._log = TrainLog(self.objective, self.step, self.fold_seconds)
        self._last_control = self._last_progress = time.monotonic()
        while self.step < self.total_steps:
            self._iteration()
        self._progress("running")

    def _iteration(self) -> None:
        """One step of the loop and what follows it (benchmarks/train_loop.py interleaves a
        plain loop's epochs between the engine's by wrapping this)."""
        sampled = self.sampler.due(self.step)
        t_step = time.perf_counter()
        self._train_step(sampled)
        self._after_step(sampled, t_step)
        self._poll_controls()
        now = time.monotonic()
        if self.on_progress and now - self._last_progress >= PROGRESS_INTERVAL:
            self._last_progress = now
            self._progress("running")

    def _train_step(self, sampled: bool) -> None:
        """Forward, backward, (probe), optimizer step; the log keeps the loss and outputs."""
        model, opt = self.model, self.optimizer
        x, y = self.batches.batch(self.step)
        if sampled:
            self.probe.attach(histogram=self.sampler.histogram)
        with self._autocast():
            out = self.eager(x) if sampled or self.compiled is None else self.compiled(x)
            loss = self.objective.loss(out, x, y)
        opt.zero_grad(set_to_none=True)
        if self.objective.trainable:
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(opt)
            else:
                loss.backward()
            if sampled:
                self.probe.after_backward()
            if self.cfg.train.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), self.cfg.train.grad_clip)
            if self.scaler is not None:
                self.scaler.step(opt)
                self.scaler.update()
            else:
                opt.step()
            if self.scheduled:
                self.scheduler.step()
        if sampled:
            # recorded as steps completed, like scalars
            self.probe.after_step(self.step + 1, keep=self.sampler.will_sample(self.step + 1))
        self._log.add(loss, out, y)
        self.step += 1

    def _after_step(self, sampled: bool, t_step: float) -> None:
        """Stop on a signal; log, record samples, evaluate and checkpoint when due."""
        if self.stop_requested:
            raise StopTraining("stopped", self.stop_requested)
        last = self.step == self.total_steps
        log = self._log
        if self.step % self.cfg.train.log_every == 0 or last:
            self.rate = log.rate(self.step)
            log.close(self.step, self._log_figures())
            if last or log.due():
                self._record_train()
        if sampled or last:
            self._flush_samples(wait=last)
        self.sampler.observe(sampled, t_step, self.device)  # recording included
        self.samples.note_interval(self.step)
        if self.step % self.eval_every == 0 and not last:
            self._evaluate()
        if self.clock.due(self.step):
            self._save_last()
        elif self.best_file.pending is not None:
            self.best_file.write_due()  # best.pt at most WRITE_INTERVAL_S behind

    def _before_training(self) -> None:
        """Greedy pre-training (train.pretrain_epochs), from where a stop left it, reading
        signals and control rows between its batches; then the exhibits at step 0."""
        if self.pretrainer is not None and not self.pretrainer.done:
            self._last_control = time.monotonic()
            if not self.pretrainer.run(self.store, self._poll_controls):
                raise StopTraining("stopped", self.stop_requested)
        if self.total_steps > 0:  # else the closing evaluation records them at step 0
            self.evaluator.record_exhibits(self.store, self.step)

    def _log_figures(self) -> dict[str, float]:
        """What a log step records besides the loss and accuracy of its window."""
        values = {
            "train/lr": self.optimizer.param_groups[0]["lr"],
            "perf/steps_per_s": self.rate,
            "train/epoch": self.step / self.batches_per_epoch,
        }
        values.update(self.system.values())  # sys/*: allocator; CPU, RSS, GPU every 2 s
        return values

    def _record_train(self, raising: bool = True) -> Window | None:
        """Read the closed log windows (a host sync: at most every ``fold_seconds``, and
        before last.pt and at the end) and record them all; then a non-finite loss stops
        the run. ``raising=False``: the first non-finite window is returned instead."""
        bad, failure = None, None
        for window in self._log.fold():
            try:  # every window reaches the store's batch, even if one write fails
                w = self._log_window(window)
            except Exception as exc:  # noqa: BLE001 (raised below, after the others)
                failure = failure or exc
                continue
            if bad is None and not math.isfinite(w.loss):
                bad = w
        if failure is not None:
            raise failure
        stop = self._loss_stop(bad)
        if stop is not None and raising:
            raise stop
        return bad

    def _loss_stop(self, w: Window | None) -> StopTraining | None:
        """The stop a non-finite training loss calls for: none under ``continue``."""
        if w is None or self.cfg.probe.on_nonfinite == "continue":
            return None
        return StopTraining("diverged", f"train/loss is {w.loss} at step {w.step}")

    def _log_window(self, w: Window) -> Window:
        """Record one log window; returns what it recorded."""
        values = {"train/loss": w.loss, **w.extra}
        if w.acc is not None:
            values["train/acc"] = w.acc
        self.last_loss = w.loss
        self.store.scalars(w.step, values)
        if not math.isfinite(w.loss):
            self.store.event(w.step, "nonfinite", {"what": "train/loss", "value": w.loss})
        return w

    def _save_last(self) -> None:
        """last.pt now, its finite check seeing the latest training loss."""
        self._record_train()
        self._save(self.checkpoints / "last.pt")

    def _flush_samples(self, raising: bool = True, wait: bool = True) -> None:
        """Record the probe's finished samples; ``wait=False`` leaves those still being
        copied from an accelerator for the next call (no stall). Then the non-finite
        policy: stop, pause, or continue."""
        found = self.samples.flush(wait=wait)
        if found is None or not raising:
            return
        policy = self.cfg.probe.on_nonfinite
        if policy == "stop":
            raise StopTraining(
                "diverged", f"non-finite values at step {found.step} in layer {found.layer}"
            )
        if policy == "pause":
            self._handle_controls(pause_reason=f"non-finite values in layer {found.layer}")

    # -- evaluation ------------------------------------------------------------------------------
    def _evaluate(self) -> dict[str, float]:
        values = self.evaluator.metrics()
        if not values:
            return {}
        self.store.scalars(self.step, values)
        self.store.event(self.step, "eval", values)
        self.evaluator.record_exhibits(self.store, self.step)
        key, better = self.objective.best_key(values)
        if key in values and (key not in self.best or better(values[key], self.best[key])):
            self.best[key] = values[key]
            self.best["step"] = self.step
            if self.cfg.checkpoint.keep_best and self.step > 0:
                self._save(self.checkpoints / "best.pt", durable=False)
        note_meta(self.store, step=self.step, best=dict(self.best))
        self.last_eval = values
        return values

    def _progress(self, status: str) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress.of(self, status))
