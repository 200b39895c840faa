"""Provides Monitor: tui-trainer's probes, store and dashboard on your own training loop.

``tui_trainer.watch(model)`` makes ``runs/<id>/`` and returns a Monitor; ``mon.step(loss=...)``
once per optimizer step records, and ``tui-trainer attach latest`` shows the run live, as
for a preset. What is measured when:

- Layers are found in the first forward pass after ``watch`` (``discover.py``); the first
  sample is the step after it.
- A sampled step: ``mon.step`` of the step before puts the probe's hooks on, so the
  forward and backward of the sampled step are seen (activations, output gradients). The
  gradients and weights are read just before the optimizer's ``step()``, and the update
  just after it, from optimizer step hooks: on ``optimizer=`` when given, otherwise on the
  first ``torch.optim`` optimizer that steps this model's parameters (a global step hook
  that compares parameters, until found). With ``step(closure)`` (LBFGS, Lightning) the
  gradients are read when the closure first returns. They are read after
  ``GradScaler.unscale_`` (a GradScaler is found on the stack when it steps; or pass
  ``scaler=``); after ``clip_grad_norm_`` before ``step()`` they are the clipped ones.
- No ``torch.optim`` optimizer (a hand-written update): gradients are read at
  ``mon.step``, so call it before zeroing them; the update ratio is not measured.
- ``torch.compile``'d models: hooks added to a compiled module never fire
  (pytorch#117758), so activation and output-gradient statistics stay empty; gradients,
  weights and updates are measured (they come from the optimizer hooks).

Cost: an unsampled ``mon.step`` appends its values to lists and asks the schedule whether
the next step is sampled; every ``log_every`` steps the means go to a queue that a writer
thread (``writer.py``) empties into SQLite. Samples follow the preset trainer's schedule
(``every="auto"``: calibrated to the 3% budget) and its recording path
(``engine.recording.SampleRecorder``). Nothing here raises into training after ``watch``
returns: a failure is one warning and, where possible, an event in the run.
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tui_trainer.engine.layers import count_parameters
from tui_trainer.engine.probes import LayerProbe
from tui_trainer.engine.provenance import provenance
from tui_trainer.engine.recording import SampleRecorder
from tui_trainer.engine.runtime import device_name
from tui_trainer.engine.sampling import ProbeSchedule
from tui_trainer.engine.system_scalars import SystemScalars
from tui_trainer.monitor import exits
from tui_trainer.monitor.discover import Discovery, match_layers, unwrap
from tui_trainer.monitor.optim_hooks import OptimizerWatch
from tui_trainer.monitor.run_files import create_store
from tui_trainer.monitor.values import as_float, kept, mean_of
from tui_trainer.monitor.writer import CONTROL_INTERVAL, BackgroundWriter
from tui_trainer.store.liveness import process_identity
from tui_trainer.store.schema import STATUSES
from tui_trainer.text import first_line

__all__ = ["DEFAULT_LOG_EVERY", "Monitor"]

DEFAULT_LOG_EVERY = 10
ALL_STATS = ("grad", "weight", "update", "out_grad", "act")
GRAD_STATS = ("grad", "weight", "update")  # what a compiled model still allows


class Monitor:
    """One watched run. Make it with ``tui_trainer.watch``; see the module docstring."""

    def __init__(
        self,
        model: nn.Module,
        name: str = "watch",
        *,
        optimizer: torch.optim.Optimizer | None = None,
        scaler: Any = None,
        every: int | str = "auto",
        layers: str | list[str] | None = None,
        config: Any = None,
        runs_dir: str | os.PathLike[str] | None = None,
        log_every: int = DEFAULT_LOG_EVERY,
        budget: float = 0.03,
        total_steps: int = 0,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"watch(model): expected a torch.nn.Module, got {type(model).__name__}")
        if not (every == "auto" or (isinstance(every, int) and every >= 0)):
            raise ValueError(f"watch(every=...): expected 'auto' or an integer >= 0, got {every!r}")
        if not (isinstance(log_every, int) and log_every >= 1):
            raise ValueError(f"watch(log_every=...): expected an integer >= 1, got {log_every!r}")
        self.compiled = hasattr(model, "_orig_mod")
        self.model = unwrap(model)
        self._patterns = match_layers(self.model, layers)
        self.log_every = log_every
        self.global_step = 0  # calls of mon.step: optimizer steps
        self.best: dict[str, float] = {}
        self.status = "running"
        first = next(self.model.parameters(), None)
        self.device = first.device if first is not None else torch.device("cpu")
        store = create_store(runs_dir, name, config)
        self.run_dir: Path = store.run_dir
        self.run_id = self.run_dir.name
        store.set_meta(
            kind="watch",
            **process_identity(),
            argv=sys.argv,
            device=str(self.device),
            device_name=device_name(self.device),
            **provenance(),
            started=time.time(),
            total_steps=int(total_steps or 0),
            params=count_parameters(self.model),
            step=0,
        )
        store.set_status("running", 0)
        self._writer = BackgroundWriter(store)
        self._system = SystemScalars(self.device)
        self.sampler = ProbeSchedule(every, budget)
        self._auto = self.sampler.auto
        self._discovery: Discovery | None = Discovery(self.model)
        self._probe: LayerProbe | None = None
        self._samples: SampleRecorder | None = None
        self._probe_ok = True
        self._armed = False  # the probe's hooks are on for the step in progress
        self._opt = OptimizerWatch(self, optimizer, scaler)
        self._window: defaultdict[str, list[Any]] = defaultdict(list)
        self._next_log = log_every
        self._log_mark = (0, time.perf_counter())
        self._t_last = time.perf_counter()
        self._stop = ""
        self._paused = False
        self._checkpoint: bool | str = False  # True, then "seen" once read
        self._nonfinite_loss = False
        self._finished = False
        exits.register(self)

    # -- the per-step call -------------------------------------------------------------------
    def step(self, loss: Any = None, **scalars: Any) -> None:
        """Record one optimizer step: ``loss`` (a tensor or float) and any scalars (``lr``
        -> ``train/lr``; means over the log window, ``lr`` its latest value). Blocks while
        the run is paused from outside."""
        step = self.global_step = self.global_step + 1
        if self._checkpoint == "seen":
            self._checkpoint = False
        window = self._window
        if loss is not None:
            window["train/loss"].append(kept(loss))
        for key, v in scalars.items():
            window[key].append(kept(v))
        sampled = self._armed
        if sampled:
            self._end_sample(step)
        if step >= self._next_log:
            self._log(step)
        if self._writer.attention and self._attend(block=True):
            sampled = None  # a pause: this step's time says nothing
        if self._auto and sampled is not None:
            self.sampler.observe(sampled, self._t_last, self.device)
        if self._discovery is not None:
            self._setup(step)
        elif self._probe_ok and self.sampler.due(step):
            self._arm()
        if self.sampler.changed and self._samples is not None:
            self._samples.note_interval(step)
        self._t_last = time.perf_counter()

    def log(self, values: dict[str, Any], step: int | None = None) -> None:
        """Record any scalars, under the names given, at ``step`` (default: the current)."""
        at = self.global_step if step is None else int(step)
        self._writer.scalars(at, {k: as_float(v) for k, v in values.items()})

    def eval(self, values: dict[str, Any], step: int | None = None) -> None:
        """Record validation metrics (``loss`` -> ``val/loss``; names with a ``/`` as given);
        the best ``val/acc`` (or lowest ``val/loss``) is the run's best."""
        at = self.global_step if step is None else int(step)
        vals = {(k if "/" in k else f"val/{k}"): as_float(v) for k, v in values.items()}
        self._writer.scalars(at, vals)
        self._writer.event(at, "eval", vals)
        key = "val/acc" if "val/acc" in vals else "val/loss" if "val/loss" in vals else None
        if key is not None and math.isfinite(vals[key]):
            better = max if key == "val/acc" else min
            if key not in self.best or better(vals[key], self.best[key]) == vals[key]:
                self.best = {key: vals[key], "step": at}
                self._writer.set_meta(best=self.best)

    def event(self, kind: str, data: dict[str, Any] | None = None) -> None:
        """Record an event at the current step (``checkpoint`` with a ``path``, or your own)."""
        self._writer.event(self.global_step, kind, data or {})

    @property
    def should_stop(self) -> bool:
        """True once a stop was asked for (``tui-trainer stop``, the app): end your loop."""
        if self._writer.attention:
            self._attend(block=False)
        return bool(self._stop)

    @property
    def checkpoint_requested(self) -> bool:
        """True after a checkpoint request (the app's ``c``), until the ``mon.step`` after it
        was first read as True."""
        if self._writer.attention:
            self._attend(block=False)
        if self._checkpoint:
            self._checkpoint = "seen"
        return bool(self._checkpoint)

    def finish(self, status: str = "finished", reason: str = "") -> None:
        """End the run (idempotent). ``finished`` after a stop request records ``stopped``."""
        if status not in STATUSES:
            raise ValueError(f"finish(status=...): expected one of {', '.join(STATUSES)}")
        if self._finished:
            return
        self._finished = True
        exits.unregister(self)
        if status == "finished" and self._stop:
            status, reason = "stopped", reason or self._stop
        self._opt.close()
        if self._discovery is not None:
            self._discovery.close()
        self._armed = False
        if self._probe is not None:
            self._probe.detach()
            self._guard_probe(lambda: self._samples.flush(wait=True) if self._samples else None)
        if any(self._window.values()):
            self._log(self.global_step)
        w = self._writer
        w.set_meta(step=self.global_step, best=self.best)
        w.set_status(status, self.global_step, **({"reason": reason} if reason else {}))
        w.close()
        self.status = status
        self._warn_problems()

    def crashed(self, exc: BaseException) -> None:
        """Record ``exc`` (with its traceback) and end the run as ``crashed``."""
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        reason = first_line(exc, with_type=True)
        self._writer.event(self.global_step, "error", {"error": reason, "traceback": tb})
        self.finish("crashed", reason)

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None:
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("stopped", "interrupted")
        else:
            self.crashed(exc)
        return False

    def __repr__(self) -> str:
        return f"<Monitor {self.run_id} step={self.global_step} {self.status}>"

    # -- sampling ------------------------------------------------------------------------------
    def _setup(self, step: int) -> None:
        """After the first forward pass: the layers, the probe, the recording path."""
        disc = self._discovery
        assert disc is not None
        if not disc.ran and step < 3:
            return  # mon.step before any forward: wait a little for one
        self._discovery = None

        def build() -> None:
            units = disc.units(self._patterns)
            stats = GRAD_STATS if self.compiled else ALL_STATS
            params = list(self.model.named_parameters())
            probe = LayerProbe(units, params, stats, self.device, direct_params=True)
            probe.on_error = self._hook_failed
            self._opt.attach_scale(probe)
            self._samples = SampleRecorder(self._writer, probe, self.sampler, units)
            self._samples.record_layers()
            self._writer.set_meta(probe_every=self.sampler.every, layers=len(units))
            self._probe = probe

        self._guard_probe(build)
        disc.close()
        if self._probe is not None and self.sampler.due(step):
            self._arm()

    def _arm(self) -> None:
        probe = self._probe
        assert probe is not None
        if self._guard_probe(lambda: probe.attach(histogram=self.sampler.histogram)):
            self._armed = True
            self._opt.arm()

    def _end_sample(self, step: int) -> None:
        """The sampled step is over: read what the optimizer hooks did not, record."""
        self._armed = False
        probe, samples = self._probe, self._samples
        assert probe is not None and samples is not None
        stage = self._opt.disarm()

        def finish_sample() -> None:
            if stage == "skipped":  # a GradScaler skipped the optimizer step (inf/NaN)
                probe.detach()
                self._writer.event(step, "probe_skipped", {"reason": "optimizer step skipped"})
            elif stage != "stepped":
                without_update(probe, step, read_grads=stage == "none")
            samples.flush(wait=False)

        self._guard_probe(finish_sample)

    def _guard_probe(self, fn: Any) -> bool:
        if not self._probe_ok:
            return False
        try:
            fn()
        except Exception as exc:
            self._probe_ok = False
            self._armed = False
            if self._probe is not None:
                self._probe.detach()
            self._problem(
                f"the probes failed ({first_line(exc, with_type=True)}); layer "
                "statistics are off for this run"
            )
            return False
        return True

    def _hook_failed(self, unit: int, exc: BaseException) -> None:
        name = self._samples.names[unit] if self._samples else str(unit)
        self._problem(
            f"a probe failed on layer {name} ({first_line(exc, with_type=True)}); "
            "that layer's activation statistics are off"
        )

    # -- records ------------------------------------------------------------------------------
    def _log(self, step: int) -> None:
        values: dict[str, float] = {}
        for key, vals in self._window.items():
            if vals:
                name = key if "/" in key else f"train/{key}"
                values[name] = as_float(vals[-1]) if key == "lr" else mean_of(vals)
                vals.clear()
        s0, t0 = self._log_mark
        now = time.perf_counter()
        rate = (step - s0) / max(now - t0, 1e-9)
        self._log_mark = (step, now)
        values["perf/steps_per_s"] = rate
        values.update(self._system.values())  # sys/*, CPU and memory at most every 2 s
        w = self._writer
        w.step = step
        w.scalars(step, values)
        w.set_meta(step=step, steps_per_s=rate)
        self._next_log = step + self.log_every
        loss = values.get("train/loss")
        if loss is not None and not math.isfinite(loss) and not self._nonfinite_loss:
            self._nonfinite_loss = True
            w.event(step, "nonfinite", {"what": "train/loss", "value": loss})

    # -- control and problems -----------------------------------------------------------------
    def _attend(self, block: bool) -> bool:
        """Problems to warn about; control rows. Returns whether it paused."""
        w = self._writer
        w.attention = False
        self._warn_problems()
        self._read_controls()
        if not (block and self._paused and not self._stop):
            return False
        step = self.global_step
        w.set_meta(step=step)
        w.set_status("paused", step)
        while self._paused and not self._stop:
            time.sleep(CONTROL_INTERVAL)
            self._warn_problems()
            self._read_controls()
        if not self._stop:
            w.set_status("running", step)
        return True

    def _read_controls(self) -> None:
        w = self._writer
        for _, command in w.pending_controls():
            if command == "stop" and not self._stop:
                self._stop = "stop requested"
                w.event(self.global_step, "stop_requested", {})
            elif command == "checkpoint":
                self._checkpoint = True
                w.event(self.global_step, "checkpoint_requested", {})
            elif command in ("pause", "resume"):
                self._paused = command == "pause"

    def _problem(self, line: str) -> None:
        self._writer.problems.append(line)
        self._writer.event(self.global_step, "warning", {"message": line})
        self._writer.attention = True

    def _warn_problems(self) -> None:
        problems = self._writer.problems
        while problems:
            line = problems.popleft()
            warnings.warn(
                f"tui_trainer.watch: {line}; training goes on", RuntimeWarning, stacklevel=4
            )


def without_update(probe: LayerProbe, step: int, read_grads: bool) -> None:
    """Finish a sample no optimizer step bounded: gradients as they are now (when the
    pre-step hook did not read them), no update ratio."""
    had = "update" in probe.stats
    probe.stats.discard("update")
    try:
        if read_grads:
            probe.after_backward()
        probe.after_step(step)
    finally:
        if had:
            probe.stats.add("update")
