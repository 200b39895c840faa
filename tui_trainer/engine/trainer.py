"""Provides Trainer: the training loop, from a RunConfig to records in a Recorder (RunStore).

It reads top to bottom: set up (seed, device, data, model, optimizer, probe), then for each
step take the epoch's next batch, forward, backward, (probe), step, log, evaluate,
checkpoint and honour control requests. Host syncs happen only at log, eval and probe
steps. A stopped run resumes from ``checkpoints/last.pt`` exactly where it left off: the
data order of an epoch is a function of (seed, epoch) and every RNG state is saved.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tui_trainer.config import RunConfig
from tui_trainer.engine import checkpoint as ckpt
from tui_trainer.engine.data import Dataset, augment_batch, build_dataset, epoch_order, num_batches
from tui_trainer.engine.evaluation import Evaluator
from tui_trainer.engine.models import build_model, count_parameters
from tui_trainer.engine.objective import Objective
from tui_trainer.engine.optim import build_optimizer, build_schedule
from tui_trainer.engine.probes import LayerProbe, Sample
from tui_trainer.engine.recorder import Recorder
from tui_trainer.engine.runtime import (
    Progress,
    TrainResult,
    device_name,
    pick_device,
    seed_everything,
)
from tui_trainer.engine.sampling import ProbeSchedule
from tui_trainer.text import first_line

__all__ = ["Progress", "TrainResult", "Trainer", "pick_device", "seed_everything"]

CONTROL_INTERVAL = 0.2  # seconds between reads of the control table
PROGRESS_INTERVAL = 0.1  # seconds between progress callbacks


class StopTraining(Exception):
    """Raised inside the loop to end it with a status."""

    def __init__(self, status: str, reason: str = "") -> None:
        super().__init__(reason or status)
        self.status = status
        self.reason = reason


class Trainer:
    """Trains one RunConfig, recording into a Recorder (a RunStore for every real run)."""

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
        self.objective = Objective(self.model, self.data.num_classes)
        self.units = self.model.layer_units()
        self.optimizer = build_optimizer(cfg.optim, self.model)
        self.n_train = len(self.data.y_train)
        self.batches_per_epoch = num_batches(self.n_train, cfg.data.batch_size)
        self.total_steps = cfg.train.max_steps or cfg.train.epochs * self.batches_per_epoch
        self.scheduler = build_schedule(cfg.optim, self.optimizer, self.total_steps)
        self.scheduled = cfg.optim.schedule != "constant" or cfg.optim.warmup_steps > 0
        self.eval_every = cfg.train.eval_every or self._auto_eval_every()
        self.x_train = self.data.x_train.to(self.device)
        self.y_train = self.data.y_train.to(self.device)
        self.x_val = self.data.x_val.to(self.device)
        self.y_val = self.data.y_val.to(self.device)
        # Validation, the training set in eval mode, PCA beside an autoencoder, exhibits.
        tensors = (self.x_train, self.y_train, self.x_val, self.y_val)
        self.evaluator = Evaluator(
            cfg, self.model, self.objective, self.data, tensors, self._autocast
        )
        self.probe = LayerProbe(
            self.units, list(self.model.named_parameters()), cfg.probe.stats, self.device
        )
        self.sampler = ProbeSchedule(cfg.probe.every, cfg.probe.budget, cfg.probe.histogram_every)
        # torch.compile: plain steps run the compiled model; sampled steps run the original
        # eagerly, because hooks added after compiling never fire (pytorch#117758).
        self.compiled = torch.compile(self.model) if cfg.train.compile else None
        self._nonfinite_seen = False
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.train.precision)
        self.scaler = (
            torch.amp.GradScaler(self.device.type) if cfg.train.precision == "fp16" else None
        )
        if self.scaler is not None:
            scaler = self.scaler
            self.probe.grad_scale = lambda: scaler._scale  # noqa: SLF001 (tensor, no sync)
        self.step = 0
        self.best: dict[str, float] = {}
        self._order_epoch = -1
        self._order = torch.empty(0, dtype=torch.long)
        self.prepared = True

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return contextlib.nullcontext()  # entering a disabled autocast still costs
        return torch.autocast(self.device.type, self.amp_dtype)

    def _auto_eval_every(self) -> int:
        """Once an epoch, but at most ~100 evaluations a run."""
        return max(self.batches_per_epoch, math.ceil(self.total_steps / 100))

    def _record_start(self) -> None:
        store = self.store
        store.set_layers(
            (u.name, u.kind, u.activation, count_parameters(u.module)) for u in self.units
        )
        store.set_meta(
            pid=os.getpid(),
            host=socket.gethostname(),
            device=str(self.device),
            device_name=device_name(self.device),
            torch_version=torch.__version__,
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
        self.checkpoints = Path(store.run_dir) / "checkpoints"
        if resume:
            self._load(self.checkpoints / "last.pt")
        self._record_start()
        t0 = time.perf_counter()
        status, reason = "finished", ""
        start_step = self.step
        try:
            self._loop()
            self._evaluate()
            self._flush_samples()
        except StopTraining as stop:
            status, reason = stop.status, stop.reason
            self._flush_samples(raising=False)
        except KeyboardInterrupt:
            status, reason = "stopped", "interrupted"
            self._flush_samples(raising=False)
        except Exception as exc:  # training failed: record it, keep everything flushed
            status, reason = "crashed", first_line(exc, with_type=True)
            self.store.event(
                self.step, "error", {"error": reason, "traceback": traceback.format_exc()}
            )
        if status in ("finished", "stopped") and self.total_steps > 0:
            self._save(self.checkpoints / "last.pt")
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

    def _loop(self) -> None:
        cfg = self.cfg
        model, opt = self.model, self.optimizer
        bs = cfg.data.batch_size
        loss_sum = torch.zeros((), device=self.device)
        correct_sum = torch.zeros((), device=self.device)
        seen = 0
        last_control = last_progress = time.monotonic()
        window_t, window_step = time.perf_counter(), self.step
        self.rate = 0.0
        self.last_loss: float | None = None
        if self.step == 0 and not self.resume:
            self._before_training()
        model.train()
        while self.step < self.total_steps:
            epoch, b = divmod(self.step, self.batches_per_epoch)
            if epoch != self._order_epoch:
                self._order = epoch_order(self.n_train, cfg.train.seed, epoch).to(self.device)
                self._order_epoch = epoch
            idx = self._order[b * bs : (b + 1) * bs]
            x, y = self.x_train[idx], self.y_train[idx]
            if cfg.data.augment != "none":
                gen = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + self.step)
                x = augment_batch(x.cpu(), cfg.data.augment, gen).to(self.device)

            sampled = self.sampler.due(self.step)
            t_step = time.perf_counter()
            if sampled:
                self.probe.attach(histogram=self.sampler.histogram)
            with self._autocast():
                out = model(x) if sampled or self.compiled is None else self.compiled(x)
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
                if cfg.train.grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
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
            with torch.no_grad():  # summed on the device; read at log steps only
                loss_sum.add_(loss.detach(), alpha=len(y))
                if self.objective.has_accuracy:
                    correct_sum.add_(self.objective.correct(out.detach(), x, y))
            seen += len(y)
            self.step += 1

            if self.stop_requested:
                raise StopTraining("stopped", self.stop_requested)
            if self.step % cfg.train.log_every == 0 or self.step == self.total_steps:
                now = time.perf_counter()
                self.rate = (self.step - window_step) / max(now - window_t, 1e-9)
                window_t, window_step = now, self.step
                self._log_train(loss_sum, correct_sum, seen)
                loss_sum.zero_()
                correct_sum.zero_()
                seen = 0
            if sampled or self.step == self.total_steps:
                self._flush_samples(wait=self.step == self.total_steps)
            self.sampler.observe(sampled, t_step, self.device)  # recording included
            if self.sampler.changed:
                self.sampler.changed = False
                self.store.set_meta(probe_every=self.sampler.every)
                self.store.event(self.step, "probe_interval", {"every": self.sampler.every})
            if self.step % self.eval_every == 0 and self.step < self.total_steps:
                self._evaluate()
            if cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0:
                self._save(self.checkpoints / "last.pt")
            now_m = time.monotonic()
            if now_m - last_control >= CONTROL_INTERVAL:
                last_control = now_m
                self._handle_controls()
            if self.on_progress and now_m - last_progress >= PROGRESS_INTERVAL:
                last_progress = now_m
                self._progress("running")
        self._progress("running")

    def _before_training(self) -> None:
        """Greedy pre-training (train.pretrain_epochs), then the exhibits at step 0."""
        if self.cfg.train.pretrain_epochs:
            from tui_trainer.engine.pretrain import greedy_pretrain

            greedy_pretrain(
                self.model, self.x_train, self.cfg, self.store, lambda: bool(self.stop_requested)
            )
            if self.stop_requested:
                raise StopTraining("stopped", self.stop_requested)
        if self.total_steps > 0:  # else the closing evaluation records them at step 0
            self.evaluator.record_exhibits(self.store, self.step)

    def _log_train(self, loss_sum: torch.Tensor, correct_sum: torch.Tensor, seen: int) -> None:
        if seen == 0:
            return
        loss = loss_sum.item() / seen  # host sync: only at log steps
        values = {
            "train/loss": loss,
            "train/lr": self.optimizer.param_groups[0]["lr"],
            "perf/steps_per_s": self.rate,
            "train/epoch": self.step / self.batches_per_epoch,
        }
        if self.objective.has_accuracy:
            values["train/acc"] = correct_sum.item() / seen
        if self.device.type == "cuda":
            values["sys/cuda_mem_alloc_mb"] = torch.cuda.memory_allocated() / 2**20
            values["sys/cuda_mem_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        self.last_loss = loss
        self.store.scalars(self.step, values)
        if not math.isfinite(loss):
            self.store.event(self.step, "nonfinite", {"what": "train/loss", "value": loss})
            if self.cfg.probe.on_nonfinite != "continue":
                raise StopTraining("diverged", f"train/loss is {loss} at step {self.step}")

    def _flush_samples(self, raising: bool = True, wait: bool = True) -> None:
        """Record the probe's finished samples; ``wait=False`` leaves those still being
        copied from an accelerator for the next call (no stall)."""
        for sample in self.probe.drain(wait=wait):
            try:
                self._record_sample(sample)
            except StopTraining:
                if raising:
                    raise

    def _record_sample(self, s: Sample) -> None:
        if s.skipped:  # fp16: the GradScaler found inf/NaN and skipped this step, as designed
            self.store.event(s.step, "probe_skipped", {"reason": "fp16 overflow, step skipped"})
            return
        self.store.layer_stats(s.step, s.rows)
        values = {f"grad_norm/{n}": v for n, v in s.param_grad_norms.items()}
        values["grad/total_norm"] = s.total_grad_norm
        self.store.scalars(s.step, values)
        if s.histograms is not None:
            names = [u.name for u in self.units]
            for name, layer in zip(names, s.histograms["layers"], strict=True):
                layer["layer"] = name
            self.store.event(s.step, "histogram", s.histograms)
        first = s.first_nonfinite_layer()
        if first is None or self._nonfinite_seen:
            return
        self._nonfinite_seen = True  # the first non-finite sample decides; later ones follow
        layer = self.units[first].name
        where = s.nonfinite_where(first)
        self.store.event(
            s.step,
            "nonfinite",
            {"layer": layer, "layer_index": first, "what": "probe", "where": where},
        )
        policy = self.cfg.probe.on_nonfinite
        if policy == "stop":
            raise StopTraining("diverged", f"non-finite values at step {s.step} in layer {layer}")
        if policy == "pause":
            self._pause(reason=f"non-finite values in layer {layer}")

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
        self.store.set_meta(step=self.step, best=self.best)
        self._last_eval = values
        return values

    # -- control -----------------------------------------------------------------------------
    def _handle_controls(self) -> None:
        for _, command in self.store.pending_controls():
            if command == "stop":
                raise StopTraining("stopped", "stop requested")
            if command == "checkpoint":
                self._save(self.checkpoints / "last.pt")
            elif command == "pause":
                self._pause()

    def _pause(self, reason: str = "") -> None:
        self._flush_samples()
        self._save(self.checkpoints / "last.pt")
        self.store.set_meta(step=self.step)
        self.store.set_status("paused", self.step, reason=reason)
        self._progress("paused")
        while True:
            if self.stop_requested:
                raise StopTraining("stopped", self.stop_requested)
            for _, command in self.store.pending_controls():
                if command == "stop":
                    raise StopTraining("stopped", "stop requested")
                if command == "resume":
                    self.store.set_status("running", self.step)
                    self._progress("running")
                    return
                if command == "checkpoint":
                    self._save(self.checkpoints / "last.pt")
            time.sleep(CONTROL_INTERVAL)

    def _progress(self, status: str) -> None:
        if self.on_progress is None:
            return
        last = getattr(self, "_last_eval", {})
        metric = last.get("val/acc", last.get("val/loss"))
        self.on_progress(
            Progress(
                step=self.step,
                total=self.total_steps,
                epoch=self.step // max(self.batches_per_epoch, 1),
                loss=self.last_loss,
                val_metric=metric,
                steps_per_s=self.rate,
                status=status,
            )
        )

    # -- checkpoints ---------------------------------------------------------------------------
    def _save(self, path: Path, durable: bool = True) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "step": self.step,
            "best": dict(self.best),
            "rng": ckpt.rng_state(),
            "probe_every": self.sampler.every,
        }
        ckpt.save_atomic(state, path, fsync=durable)
        self.store.event(self.step, "checkpoint", {"path": path.name})

    def _load(self, path: Path) -> None:
        state = ckpt.load(path, self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.best = dict(state.get("best", {}))
        self.sampler.restore(state.get("probe_every"))
        ckpt.set_rng_state(state["rng"])
