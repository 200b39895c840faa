"""Provides DistributedTrainer: the Trainer as one rank of a torch.distributed run (DDP).

``tui-trainer run PRESET --nproc N`` starts N of these through PyTorch's own launcher
(``torch.distributed.run``; the worker is ``tui_trainer.runner.ddp``). What changes against
one process, all of it here (the Trainer only has the ``eager`` hook: the DDP model):

- ``data.batch_size`` stays the *global* batch: every rank builds the same epoch order
  (a function of seed and epoch) and takes its 1/N slice of each step's batch, so the run
  sees the examples a 1-process run sees, step for step. DDP averages the gradients, so
  ``optim.lr`` is the learning rate of that global batch: a preset means the same
  experiment on any number of processes.
- Rank 0 alone writes the store (the other ranks record into a NullRecorder) and evaluates.
  At log steps the loss and accuracy sums of all ranks are gathered (the logged loss is the
  global batch's), with every rank's steps/s as ``rank<k>/steps_per_s``.
- Gradient statistics are read after the all-reduce: at sampled steps (with a fixed
  ``probe.every``) every rank's gradient-norm vector is gathered and the largest relative
  difference from rank 0's is recorded as ``dist/grad_norm_spread`` (0 when identical).
  Activation statistics are rank 0's own slice.
- Controls: every CONTROL_SYNC_STEPS steps the ranks all-reduce (max) a few flags: stop,
  pause, resume, checkpoint (from the control rows rank 0 reads) and a signal any rank got.
  So every rank stops, pauses or checkpoints at the same step boundary. A rank whose
  launcher died (its parent changed) asks for a stop the same way: paused ranks would
  otherwise wait for a resume forever, with no one left to reap them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from tui_trainer.config import RunConfig
from tui_trainer.engine.controls import CONTROL_INTERVAL, StopTraining
from tui_trainer.engine.system_scalars import nvml_indices
from tui_trainer.engine.train_log import Window
from tui_trainer.engine.trainer import Trainer

__all__ = ["CONTROL_SYNC_STEPS", "DistributedTrainer", "NullRecorder", "RankSlice", "rank_device"]

CONTROL_SYNC_STEPS = 10  # steps between the ranks' agreement on controls and signals
STOP, PAUSE, RESUME, CHECKPOINT = range(4)  # the flags' positions


class NullRecorder:
    """What a rank other than 0 records into: nothing. It reads no controls either."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def set_meta(self, **values: Any) -> None:
        pass

    def set_status(self, status: str, step: int = 0, **data: Any) -> None:
        pass

    def set_layers(self, layers: Iterable[tuple[str, str, str, int]]) -> None:
        pass

    def scalars(self, step: int, values: dict[str, float], wall: float | None = None) -> None:
        pass

    def layer_stats(self, step: int, rows: Sequence[Sequence[float | None]]) -> None:
        pass

    def event(self, step: int, kind: str, data: dict[str, Any] | None = None) -> None:
        pass

    def pending_controls(self) -> list[tuple[int, str]]:
        return []

    def flush(self) -> None:
        pass


class NullEvaluator:
    """A rank other than 0 does not evaluate (rank 0 does, on the whole validation set)."""

    def metrics(self) -> dict[str, float]:
        return {}

    def record_exhibits(self, store: Any, step: int) -> None:
        pass


class RankSlice:
    """This rank's slice of each step's global batch (``EpochBatches`` underneath)."""

    def __init__(self, batches: Any, rank: int, world: int) -> None:
        self.inner, self.rank, self.world = batches, rank, world

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.inner.batch(step)
        return x.tensor_split(self.world)[self.rank], y.tensor_split(self.world)[self.rank]


def rank_memory_mb(device: torch.device) -> tuple[float, float]:
    """This process's memory (MB), now and at its peak: torch's allocator on a GPU, else
    the resident set (psutil) and its high-water mark (getrusage)."""
    if device.type == "cuda":
        now, peak = torch.cuda.memory_allocated(device), torch.cuda.max_memory_allocated(device)
        return now / 2**20, peak / 2**20
    import resource

    import psutil

    rss = psutil.Process().memory_info().rss / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss, max(rss, peak / (2**20 if sys.platform == "darwin" else 2**10))


def rank_device(name: str, local_rank: int) -> str:
    """The device of one rank: ``cuda:<local rank>`` when the config asks for CUDA (or auto
    and there is one), else the CPU (gloo)."""
    if name.startswith("cuda") or (name == "auto" and torch.cuda.is_available()):
        return f"cuda:{local_rank}"
    return "cpu"


class DistributedTrainer(Trainer):
    """One rank of a DDP run; the process group must be initialised."""

    fold_seconds = 0.0  # the log is read at every log step, on every rank: see _log_window

    def __init__(self, cfg: RunConfig, local_rank: int = 0, **kwargs: Any) -> None:
        device = rank_device(cfg.train.device, local_rank)
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device=device))
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self._signal = ""  # a signal this rank got; acted on when the ranks agree
        self._launcher = os.getppid()  # torch.distributed.run's agent: if it dies, stop
        self._agreed_stop = ""
        self._pending_pause = ""
        super().__init__(cfg, **kwargs)

    # The signal handler and the loop read and set stop_requested: here a signal only counts
    # once every rank knows of it (at the next sync), so the ranks stop at the same step.
    @property  # type: ignore[override]
    def stop_requested(self) -> str:
        return self._agreed_stop

    @stop_requested.setter
    def stop_requested(self, value: str) -> None:
        self._signal = value

    def prepare(self) -> None:
        super().prepare()
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        self.eager = DistributedDataParallel(self.model, device_ids=ids)
        self.compiled = self.precision.compiled(self.eager)
        self.batches = RankSlice(self.batches, self.rank, self.world)  # type: ignore[assignment]
        if self.rank != 0:
            self.evaluator = NullEvaluator()  # type: ignore[assignment]
        after_backward = self.probe.after_backward

        def checked() -> None:
            after_backward()
            self._check_grads()

        self.probe.after_backward = checked  # type: ignore[method-assign]

    # -- collectives --------------------------------------------------------------------------
    def _gather(self, values: torch.Tensor) -> torch.Tensor:
        """Every rank's ``values`` (1-d, same length), stacked: shape (world, len)."""
        values = values.reshape(-1).contiguous()
        out = torch.empty(self.world * len(values), dtype=values.dtype, device=values.device)
        getattr(dist, "all_gather_single", dist.all_gather_into_tensor)(out, values)
        return out.view(self.world, len(values))

    def _check_grads(self) -> None:
        """After the all-reduce every rank holds the same gradients: record how far the
        ranks' gradient norms are apart (relative to rank 0's); a fixed interval only (the
        ranks then sample at the same steps)."""
        if self.sampler.auto:
            return
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if not grads:
            return
        norms = torch.stack(torch._foreach_norm(grads)).float()  # noqa: SLF001
        all_norms = self._gather(norms)
        spread = (all_norms - all_norms[0]).abs().max() / all_norms[0].abs().max().clamp_min(1e-30)
        self.store.scalars(self.step + 1, {"dist/grad_norm_spread": float(spread)})

    def _record_start(self) -> None:
        super()._record_start()
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        if self.rank == 0 and self.device.type == "cuda" and local > 1:  # the node's GPUs
            self.system.gpus |= nvml_indices([torch.device("cuda", r) for r in range(local)])
        pids = self._gather(torch.tensor([os.getpid()], dtype=torch.int64, device=self.device))
        per_rank = -(-self.cfg.data.batch_size // self.world)
        self.store.set_meta(
            world_size=self.world,
            nnodes=self.world // local,  # a resume on one machine takes world_size processes
            backend=dist.get_backend(),
            global_batch=self.cfg.data.batch_size,
            rank_batch=per_rank,
            lr=self.cfg.optim.lr,
            rank_pids=[int(p) for p in pids.flatten().tolist()],
        )

    def _log_window(self, w: Window) -> Window:
        """The global batch's loss and accuracy; every rank's steps/s and memory (MB: on a
        GPU torch's allocator, now and at its peak; on the CPU the process's RSS and peak).
        Every rank folds its log at every log step (``fold_seconds = 0``), so the ranks
        gather at the same steps, and all see the same global loss (and stop together)."""
        dev = self.device
        mine = [w.loss * w.seen, w.correct or 0, w.seen, w.extra["perf/steps_per_s"]]
        figures = [*mine, *rank_memory_mb(dev)]
        rows = self._gather(torch.tensor(figures, dtype=torch.float64, device=dev))
        values = {}
        for k, (rate, mem_mb, peak_mb) in enumerate(rows[:, 3:].tolist()):
            values[f"rank{k}/steps_per_s"] = rate
            values[f"rank{k}/mem_mb"], values[f"rank{k}/peak_mem_mb"] = mem_mb, peak_mb
        self.store.scalars(w.step, values)
        loss_sum, correct_sum, seen = rows[:, :3].sum(0).tolist()
        correct = None if w.correct is None else round(correct_sum)
        return super()._log_window(Window(w.step, int(seen), loss_sum / seen, correct, w.extra))

    def _restored_rng(self, rng: dict[str, Any]) -> None:
        """last.pt holds rank 0's generators, whose cuda:0 is the one rank 0 drew from; the
        others' entries are generators no rank of this run used. Every rank draws from its
        own device (seeded alike, advanced alike: same model, same batch shapes), so each
        takes rank 0's cuda:0 state for its own device."""
        if self.device.type == "cuda" and rng.get("cuda"):
            torch.cuda.set_rng_state(rng["cuda"][0].cpu(), self.device)

    def _save(self, path: Path, durable: bool = True) -> None:
        if self.rank == 0:  # the weights are the same on every rank
            super()._save(path, durable)

    # -- controls -----------------------------------------------------------------------------
    def _agree(self, read_rows: bool) -> list[bool]:
        """All-reduce (max) the flags: control rows (rank 0), a signal or a non-finite pause
        (any rank)."""
        flags = [0, 0, 0, 0]
        if self.rank == 0 and read_rows:
            for _, command in self.store.pending_controls():
                index = {"stop": STOP, "pause": PAUSE, "resume": RESUME, "checkpoint": CHECKPOINT}
                if command in index:
                    flags[index[command]] = 1
        if not self._signal and os.getppid() != self._launcher:  # orphaned: no one would
            self._signal = f"the launcher (pid {self._launcher}) is gone"  # reap or stop us
        if self._signal:
            flags[STOP] = 1
        if self._pending_pause:
            flags[PAUSE] = 1
        t = torch.tensor(flags, dtype=torch.int64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def _poll_controls(self) -> bool:
        """Every CONTROL_SYNC_STEPS steps: the ranks agree on stop, checkpoint and pause."""
        if self.step % CONTROL_SYNC_STEPS != 0 or self.step >= self.total_steps:
            return False
        now = time.monotonic()
        read_rows = now - self._last_control >= CONTROL_INTERVAL
        if read_rows:
            self._last_control = now
        flags = self._agree(read_rows)
        self._act(flags)
        if flags[PAUSE] and not flags[RESUME]:
            self._pause_together()
        return False

    def _act(self, flags: list[bool]) -> None:
        if flags[STOP]:
            self._agreed_stop = self._signal or "stop requested"
            raise StopTraining("stopped", self._agreed_stop)
        if flags[CHECKPOINT]:
            self._save(self.checkpoints / "last.pt")

    def _pause_together(self) -> None:
        """Paused: rank 0 reads the control rows every CONTROL_INTERVAL and the ranks agree
        on each read (so no rank waits in a collective for longer than that)."""
        reason, self._pending_pause = self._pending_pause, ""
        self._set_paused(True, reason)
        while True:
            if self.rank == 0:
                time.sleep(CONTROL_INTERVAL)
            flags = self._agree(read_rows=True)
            self._act(flags)
            if flags[RESUME]:
                self._set_paused(False)
                return

    def _handle_controls(self, pause_reason: str | None = None) -> None:
        """A non-finite sample asks for a pause: the ranks take it at the next sync."""
        self._pending_pause = pause_reason or "paused"
