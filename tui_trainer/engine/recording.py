"""Provides SampleRecorder: the one recording path of the probes, shared by the preset
Trainer and ``tui_trainer.watch``.

Both hand it the same things (a Recorder, a LayerProbe, a ProbeSchedule and the layer
units) and it writes the same records: the layer table, each finished sample's
layer-statistics rows and gradient-norm scalars (``sample.record_sample``), a step the
GradScaler skipped, the probe interval's changes, and the first non-finite sample. What to
do about a non-finite sample (continue, pause, stop) is the caller's policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tui_trainer.engine.layers import LayerUnit, count_parameters
from tui_trainer.engine.probes import LayerProbe, Sample
from tui_trainer.engine.recorder import Recorder, note_meta
from tui_trainer.engine.sample import record_sample
from tui_trainer.engine.sampling import ProbeSchedule

__all__ = ["Nonfinite", "SampleRecorder", "layer_rows"]


def layer_rows(units: Sequence[LayerUnit]) -> list[tuple[str, str, str, int]]:
    """The store's layer table: (name, kind, activation, parameter count), depth order."""
    return [(u.name, u.kind, u.activation, count_parameters(u.module)) for u in units]


@dataclass(frozen=True)
class Nonfinite:
    """Where non-finite values first appeared: the sample's step and the layer."""

    step: int
    layer: str


class SampleRecorder:
    """Records a probe's samples into a Recorder; notes the first non-finite one."""

    def __init__(
        self,
        recorder: Recorder,
        probe: LayerProbe,
        sampler: ProbeSchedule,
        units: Sequence[LayerUnit],
    ) -> None:
        self.recorder = recorder
        self.probe = probe
        self.sampler = sampler
        self.units = list(units)
        self.names = [u.name for u in self.units]
        self.nonfinite_seen = False  # the first non-finite sample decides; later ones follow

    def record_layers(self) -> None:
        self.recorder.set_layers(layer_rows(self.units))

    def flush(self, wait: bool = True) -> Nonfinite | None:
        """Record the probe's finished samples (``wait=False``: only those whose copy from
        an accelerator is complete). Returns where non-finite values first appeared, once
        per run, after recording every sample."""
        found = None
        for sample in self.probe.drain(wait=wait):
            found = self._record(sample) or found
        return found

    def _record(self, s: Sample) -> Nonfinite | None:
        rec = self.recorder
        if s.skipped:  # fp16: the GradScaler found inf/NaN and skipped this step, as designed
            rec.event(s.step, "probe_skipped", {"reason": "fp16 overflow, step skipped"})
            return None
        record_sample(rec, s, self.names)
        first = s.first_nonfinite_layer()
        if first is None or self.nonfinite_seen:
            return None
        self.nonfinite_seen = True
        layer = self.names[first]
        data: dict[str, Any] = {"layer": layer, "layer_index": first, "what": "probe"}
        data["where"] = s.nonfinite_where(first)
        rec.event(s.step, "nonfinite", data)
        return Nonfinite(s.step, layer)

    def note_interval(self, step: int) -> None:
        """Record a change of the probe interval (``every = "auto"``)."""
        if self.sampler.changed:
            self.sampler.changed = False
            note_meta(self.recorder, probe_every=self.sampler.every)
            self.recorder.event(step, "probe_interval", {"every": self.sampler.every})
