"""Provides RunFollower: tails a run's store into bounded accumulators and makes snapshots.

Plain Python (no Textual), so the benchmark and the tests drive it directly. The dashboard
runs ``RunFollower.run`` in a thread worker; each snapshot is an immutable copy the UI
thread renders at its own pace, so a fast run never costs the UI more than its refresh rate.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.store import LIVE_STATUSES, STAT_COLUMNS, RunReader, Tail
from tui_trainer.text import run_label
from tui_trainer.tui.history import HeatData, LayerHistory
from tui_trainer.tui.series import LOG_FLOOR, CurveData, MinMaxSeries

__all__ = [
    "HEAT_STATS",
    "LOG_STATS",
    "RunFollower",
    "RunSnapshot",
    "SPARK_STATS",
]

# Statistics the heatmap can show (cycled with a key); norms and ratios on a log scale.
HEAT_STATS = ("grad_norm", "out_grad_norm", "update_ratio", "act_std", "dead_frac", "sat_frac")
LOG_STATS = frozenset(
    {"grad_norm", "weight_grad_norm", "bias_grad_norm", "weight_norm", "update_ratio",
     "out_grad_norm", "act_std"}
)  # fmt: skip
SPARK_STATS = ("act_mean", "act_std", "dead_frac", "sat_frac", "grad_norm")
CURVE_PREFIXES = ("train/", "val/", "perf/", "grad/", "sys/")
MAX_CURVES = 32  # scalar series kept as curves; any others keep their last value only
NOTABLE_EVENTS = ("nonfinite", "error", "status", "checkpoint")
EXHIBIT_EVENTS = ("truth_table", "features")  # lecture records: the latest one is shown
TAIL_LIMIT = 20_000  # rows per table per read: a long run is read in slices, memory flat
OPEN_BULK_ROWS = 100_000  # a run with more rows opens from bulk reads (roll-ups, SQL sums)
QUICK_LAYER_ROWS = 25_000  # layer rows summed for the first look; then all of them
POLL_S = 0.1
POST_S = 0.2
META_S = 1.0


@dataclass(frozen=True)
class RunSnapshot:
    """What the dashboard shows of one run, at one moment (immutable)."""

    run_dir: Path
    run_id: str
    preset: str = ""
    variant: str = ""
    title: str = ""
    task: str = ""  # classify, perceptron, reconstruct (recorded at the start of training)
    kind: str = "preset"  # "watch": recorded by tui_trainer.watch from a script's own loop
    status: str = "created"
    reason: str = ""
    error: str = ""
    log_tail: str = ""
    step: int = 0
    total_steps: int = 0
    epoch: float | None = None
    steps_per_s: float | None = None
    started: float | None = None
    ended: float | None = None
    device: str = ""
    device_name: str = ""
    pid: int | None = None
    host: str = ""
    remote: str = ""  # a copy of a run on another box: its state (live, reconnecting, ...)
    remote_host: str = ""  # ... and that box, as the user named it to ssh
    probe_every: int | None = None
    layers: tuple[dict[str, Any], ...] = ()
    curves: dict[str, CurveData] = field(default_factory=dict)
    last: dict[str, float | None] = field(default_factory=dict)
    heat: HeatData | None = None
    latest: tuple[tuple[float | None, ...] | None, ...] = ()
    latest_step: int = -1
    sparks: dict[str, tuple[tuple[float | None, ...], ...]] = field(default_factory=dict)
    events: tuple[tuple[int, str, dict[str, Any]], ...] = ()
    exhibits: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    newest_wall: float = 0.0
    catching_up: bool = False
    version: int = 0

    @property
    def label(self) -> str:
        return run_label(self.preset, self.variant)

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def eta_s(self) -> float | None:
        rate = self.steps_per_s
        if self.status != "running" or not rate or rate <= 0 or not self.total_steps:
            return None
        return max(0.0, (self.total_steps - self.step) / rate)


class RunFollower:
    """Follows one run: ``poll`` reads what is new, ``snapshot`` copies what to show."""

    def __init__(
        self, run_dir: Path, heat_stat: str = HEAT_STATS[0], bulk_open: bool = True
    ) -> None:
        self.run_dir = Path(run_dir)
        self._opened = not bulk_open  # a long run's history comes in bulk on the first poll
        self._refine: tuple[int, int] | None = None  # (width, cut) of a sampled heatmap
        self.reader = RunReader(self.run_dir)
        self.heat_stat = heat_stat  # set by the UI thread; read when a snapshot is made
        self.curves: dict[str, MinMaxSeries] = {}
        self.last: dict[str, float | None] = {}
        self.history = LayerHistory(HEAT_STATS, STAT_COLUMNS, LOG_STATS)
        self.events: deque[tuple[int, str, dict[str, Any]]] = deque(maxlen=20)
        self.exhibits: dict[str, tuple[int, dict[str, Any]]] = {}
        self.meta: dict[str, Any] = {}
        self.status = "created"
        self.reason = self.error = self.log_tail = ""
        self.layers: tuple[dict[str, Any], ...] = ()
        self.step = 0
        self.newest_wall = 0.0
        self.catching_up = False
        self.version = 0
        self._rate: tuple[float, int] | None = None  # (wall, step) of the last train row
        self._measured_rate: float | None = None
        self._meta_at = 0.0
        self.requested = True  # the UI asked for a snapshot (a new heatmap statistic)
        self.refresh_meta()

    # -- reading ---------------------------------------------------------------------
    def refresh_meta(self) -> None:
        meta = self.reader.meta()
        status = self.reader.status()
        self._meta_at = time.monotonic()
        if not self.layers or len(self.layers) < self.history.layers:
            layers = tuple(self.reader.layers())
            if layers != self.layers:
                self.layers = layers
                self.version += 1
        if meta != self.meta or status != self.status:
            self.meta, self.status = meta, status
            self.step = max(self.step, int(meta.get("step") or 0))
            self.version += 1

    def poll(self) -> bool:
        """Read rows written since the last poll; True when there were any."""
        if not self._opened:
            self._opened = True
            if self.open_in_bulk():
                return True
        # per-parameter gradient norms are not drawn: leave them in the store (in SQL)
        tail = self.reader.tail(TAIL_LIMIT, skip_prefixes=("grad_norm/",))
        self.catching_up = (
            max(len(tail.scalars), len(tail.layer_stats), len(tail.events)) >= TAIL_LIMIT
        )
        if tail:
            self.ingest(tail)
        if tail.events or time.monotonic() - self._meta_at >= META_S:
            self.refresh_meta()
        if not tail and self._refine is not None:  # caught up, the heatmap a sample: exact
            self._exact_heat(*self._refine)
            self._refine = None
            return True
        return bool(tail)

    def open_in_bulk(self) -> bool:
        """A long run's whole history at once, decimated to what a screen shows: curves
        from the store's roll-ups, the heatmap from SQL sums per bucket, last values; the
        tail then reads only newer rows (and the last few samples, for the sparklines).
        False (nothing done) for a run short enough to read row by row."""
        reader, hist = self.reader, self.history
        ids = reader.last_ids()
        if max(ids["scalars"], ids["layer_stats"]) < OPEN_BULK_ROWS:
            return False
        end = max(reader.last_step(), int(self.meta.get("step") or 0), 1)
        for name, value in reader.last_values().items():
            self.last[name] = value
        for name in reader.scalar_names():
            if name.startswith(CURVE_PREFIXES) and len(self.curves) < MAX_CURVES:
                series = self.curves[name] = MinMaxSeries()
                width = _width(end, series.capacity)
                series.seed(width, *reader.scalar_buckets(name, width, ids["scalars"]))
                series.last = self.last.get(name)
        nlayers = len(self.layers) or 1
        cut = max(0, ids["layer_stats"] - hist.spark_len * nlayers)  # the rest: add_rows
        width, k = _width(end, hist.capacity), max(1, cut // QUICK_LAYER_ROWS)
        self._seed_heat(hist, width, cut, (nlayers, k))
        self._refine = (width, cut) if k > 1 else None
        reader.cursor["scalars"], reader.cursor["layer_stats"] = ids["scalars"], cut
        self.step = max(self.step, end)
        self.version += 1
        return True

    def _seed_heat(self, hist: LayerHistory, width: int, cut: int, every: tuple[int, int]) -> None:
        cols = [STAT_COLUMNS[c] for c in hist.col]
        rows = self.reader.layer_stat_buckets(cols, list(hist.log), width, cut, LOG_FLOOR, every)
        hist.seed(width, max((r[1] for r in rows), default=-1) + 1, rows)

    def _exact_heat(self, width: int, cut: int) -> None:
        """Replace the sampled heatmap by one summed over every row (rows after ``cut``
        that the tail has read are added again, in order)."""
        fresh = LayerHistory(HEAT_STATS, STAT_COLUMNS, LOG_STATS)
        self._seed_heat(fresh, width, cut, (1, 1))
        upto = self.reader.cursor["layer_stats"]
        rows = self.reader.rows_after("layer_stats", cut, max(0, upto - cut))
        fresh.add_rows([r[1:] for r in rows if r[0] <= upto])
        self.history = fresh
        self.version += 1

    def ingest(self, tail: Tail) -> None:
        curves, last = self.curves, self.last
        step = self.step
        for s, name, value, wall in tail.scalars:
            last[name] = value
            if s > step:
                step = s
            if name.startswith(CURVE_PREFIXES):
                series = curves.get(name)
                if series is None:
                    if len(curves) >= MAX_CURVES:
                        continue
                    series = curves[name] = MinMaxSeries()
                series.add(s, value)
                if name == "train/loss":
                    self._observe_rate(wall, s)
        if tail.scalars:
            self.newest_wall = max(self.newest_wall, tail.scalars[-1][3])
        if tail.layer_stats:
            self.history.add_rows(tail.layer_stats)
            step = max(step, self.history.latest_step)
        for s, wall, kind, data in tail.events:
            self._event(s, wall, kind, data)
        self.step = step
        self.version += 1

    def _observe_rate(self, wall: float, step: int) -> None:
        if self._rate is not None:
            w0, s0 = self._rate
            if wall - w0 >= 1.0 and step > s0:
                rate = (step - s0) / (wall - w0)
                prev = self._measured_rate
                self._measured_rate = rate if prev is None else 0.7 * prev + 0.3 * rate
                self._rate = (wall, step)
        else:
            self._rate = (wall, step)

    def _event(self, step: int, wall: float, kind: str, data: dict[str, Any]) -> None:
        self.newest_wall = max(self.newest_wall, wall)
        if kind in EXHIBIT_EVENTS:
            self.exhibits[kind] = (step, data)
            return
        if kind not in NOTABLE_EVENTS:
            return
        self.events.append((step, kind, data))
        if kind == "status":
            self.reason = str(data.get("reason") or "")
            if data.get("status") == "running":
                self.error = self.log_tail = ""
            if data.get("error"):
                self.error = str(data["error"])
            if data.get("log"):
                self.log_tail = str(data["log"])
        elif kind == "error":
            self.error = str(data.get("error") or "")

    # -- showing ---------------------------------------------------------------------
    def steps_per_s(self) -> float | None:
        rate = self.last.get("perf/steps_per_s")
        if rate is not None and math.isfinite(rate) and rate > 0:
            return rate
        return self._measured_rate or self.meta.get("steps_per_s")

    def snapshot(self) -> RunSnapshot:
        meta, hist = self.meta, self.history
        return RunSnapshot(
            run_dir=self.run_dir,
            run_id=self.run_dir.name,
            preset=str(meta.get("preset", "")),
            variant=str(meta.get("variant", "")),
            title=str((meta.get("config") or {}).get("title", "")),
            task=str(meta.get("task", "")),
            kind=str(meta.get("kind", "preset")),
            status=self.status,
            reason=self.reason,
            error=self.error,
            log_tail=self.log_tail,
            step=self.step,
            total_steps=int(meta.get("total_steps") or 0),
            epoch=self.last.get("train/epoch"),
            steps_per_s=self.steps_per_s(),
            started=meta.get("started"),
            ended=meta.get("ended"),
            device=str(meta.get("device", "")),
            device_name=str(meta.get("device_name", "")),
            pid=meta.get("pid"),
            host=str(meta.get("host", "")),
            remote=str((meta.get("mirror") or {}).get("state", "")),
            remote_host=str((meta.get("mirror") or {}).get("host", "")),
            probe_every=meta.get("probe_every"),
            layers=self.layers,
            curves={name: s.data() for name, s in self.curves.items()},
            last=dict(self.last),
            heat=hist.heat(self.heat_stat),
            latest=hist.latest_rows(),
            latest_step=hist.latest_step,
            sparks={s: hist.spark(STAT_COLUMNS.index(s)) for s in SPARK_STATS},
            events=tuple(self.events),
            exhibits=dict(self.exhibits),
            newest_wall=self.newest_wall,
            catching_up=self.catching_up,
            version=self.version,
        )

    def run(
        self,
        post: Callable[[RunSnapshot], None],
        cancelled: Callable[[], bool],
        poll_s: float = POLL_S,
        post_s: float = POST_S,
    ) -> None:
        """Poll until cancelled, posting a snapshot at most every ``post_s`` seconds."""
        posted_version, posted_at = -1, 0.0
        while not cancelled():
            started = time.monotonic()
            got = self.poll()
            now = time.monotonic()
            if (self.version != posted_version or self.requested) and (
                now - posted_at >= post_s or self.requested
            ):
                self.requested = False
                posted_version, posted_at = self.version, now
                post(self.snapshot())
            if not (got and self.catching_up):
                # a finished run changes rarely (a later resume); poll it slowly
                period = poll_s if self.status in LIVE_STATUSES else poll_s * 5
                time.sleep(max(0.0, period - (time.monotonic() - started)))
        self.reader.close()

    def request(self, heat_stat: str | None = None) -> None:
        """Ask for a snapshot at the next poll (from the UI thread)."""
        if heat_stat is not None:
            self.heat_stat = heat_stat
        self.requested = True


def _width(end_step: int, capacity: int) -> int:
    """The bucket width (a power of two) that puts steps 0..end_step in at most half of
    ``capacity`` buckets, leaving room to grow before the first compaction."""
    width = 1
    while end_step // width >= max(1, capacity // 2):
        width *= 2
    return width
