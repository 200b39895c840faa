"""Benchmark: the engine's steps/s against a plain PyTorch loop on the same model and data.

    OMP_NUM_THREADS=1 python benchmarks/train_loop.py [--preset P] [--rounds 10] [--epochs N]

Both train the preset's model on the same data with the same optimizer, batch size and step
count. The comparison is fair: the plain loop reads the loss every ``log_every`` steps,
evaluates validation loss and accuracy once an epoch, saves best.pt on improvement and
last.pt at the end, like the engine. The engine run includes everything `tui-trainer run`
does besides: probes at the default interval, train accuracy, the SQLite store, control
polling.

Interleaved by epoch: in each round the two train side by side in one process, the plain
loop's epoch k running just before the engine's epoch k (the engine's own ``run()``,
whose loop body is wrapped). On the shared 2-core sandbox the machine's speed drifts by
up to 40% between seconds (two runs of the same loop, one after the other, differed that
much); epochs of ~20 ms side by side see the same machine, so a round's ratio is good to a
few percent where whole runs one after the other were not. (The plain loop's epochs draw
from the global generator only through dropout, which digits-mlp has none of; with it, the
engine's run would see a different random stream than alone, not a different cost.) If
anything this is hard on the engine: its time-based work (the store's writes every 0.25 s,
the log's reads every 0.2 s) comes about twice as often per step of its own.

Two figures each: steps per second of wall time, and per second of the process's CPU time
(``time.process_time``) over the same steps; the median round, and the round ratios'
quartiles. Setup (building the model, the store) is outside the timing; the engine's
closing evaluation, last save and the store's last flush are inside, as the plain loop's
last save is.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

if "MALLOC_MMAP_THRESHOLD_" not in os.environ:  # glibc reads it at start-up: re-exec
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="1000000000", MALLOC_TRIM_THRESHOLD_="1000000000")
    os.execve(sys.executable, [sys.executable, *sys.argv], env)  # see DESIGN.md §4

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tui_trainer.config import (
    config_to_toml,  # noqa: E402
    find_preset,  # noqa: E402
)
from tui_trainer.engine.data import build_dataset, epoch_order, num_batches  # noqa: E402
from tui_trainer.engine.models import build_model  # noqa: E402
from tui_trainer.engine.optim import build_optimizer  # noqa: E402
from tui_trainer.engine.trainer import Trainer, seed_everything  # noqa: E402
from tui_trainer.store import RunStore  # noqa: E402


class PlainLoop:
    """The loop a careful person writes, doing what the engine does at the same points:
    the training loss read every ``log_every`` steps (printed, here kept), validation loss
    and accuracy once an epoch, ``best.pt`` saved when validation accuracy improves and
    ``last.pt`` (fsync'd) at the end."""

    def __init__(self, cfg, data, out_dir: str) -> None:
        seed_everything(cfg.train.seed)
        self.cfg, self.data, self.out_dir = cfg, data, out_dir
        self.model = build_model(cfg.model, data.input_shape, data.num_classes)
        self.opt = build_optimizer(cfg.optim, self.model)
        self.bs, self.n = cfg.data.batch_size, len(data.y_train)
        self.nb = num_batches(self.n, self.bs)
        self.steps = cfg.train.max_steps or cfg.train.epochs * self.nb
        self.best, self.logged = -1.0, []

    def epoch(self, epoch: int) -> None:
        """The steps of ``epoch`` (the last one: up to ``steps``), then its evaluation."""
        cfg, data, model, opt, bs = self.cfg, self.data, self.model, self.opt, self.bs
        order = epoch_order(self.n, cfg.train.seed, epoch)
        first = epoch * self.nb
        for step in range(first, min(first + self.nb, self.steps)):
            b = step - first
            idx = order[b * bs : (b + 1) * bs]
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if (step + 1) % cfg.train.log_every == 0:
                self.logged.append(loss.item())
        with torch.no_grad():  # evaluate once an epoch and at the end, as the engine does
            model.eval()
            out = model(data.x_val)
            F.cross_entropy(out, data.y_val).item()
            acc = (out.argmax(1) == data.y_val).float().mean().item()
            model.train()
        if acc > self.best:
            self.best = acc
            self._save(os.path.join(self.out_dir, "best.pt"), fsync=False)

    def finish(self) -> None:
        self._save(os.path.join(self.out_dir, "last.pt"), fsync=True)

    def _save(self, path: str, fsync: bool) -> None:
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict()}
        with open(path + ".tmp", "wb") as fh:
            torch.save(state, fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(path + ".tmp", path)


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def interleaved(cfg, data, runs_dir: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """One round: the plain loop's epoch k just before the engine's epoch k. Returns
    (plain, engine) as (steps per wall second, steps per CPU second)."""
    plain = PlainLoop(cfg, data, runs_dir)
    store = RunStore.create(runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg))
    trainer = Trainer(cfg, dataset=data)
    spent = [0.0, 0.0]  # the plain loop's wall and CPU seconds
    start: list[tuple[float, float]] = []
    iteration = trainer._iteration

    def plain_then_engine() -> None:
        if not start:
            start.append(clocks())
        if trainer.step % plain.nb == 0:  # an epoch begins: the plain loop's same epoch first
            w0, c0 = clocks()
            plain.epoch(trainer.step // plain.nb)
            if trainer.step + plain.nb >= plain.steps:
                plain.finish()
            w1, c1 = clocks()
            spent[0] += w1 - w0
            spent[1] += c1 - c0
        iteration()

    trainer._iteration = plain_then_engine
    result = trainer.run(store)
    end = clocks()
    store.close()
    assert result.status == "finished", result
    steps = plain.steps
    wall, cpu = end[0] - start[0][0] - spent[0], end[1] - start[0][1] - spent[1]
    return (steps / spent[0], steps / spent[1]), (steps / wall, steps / cpu)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="digits-mlp")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=0, help="instead of the preset's")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    over = ['train.device="cpu"'] + ([f"train.epochs={args.epochs}"] if args.epochs else [])
    cfg = find_preset(args.preset).resolve(None, over)
    data = build_dataset(cfg.data)
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as runs:
        interleaved(cfg, data, runs)  # warm-up: allocator, kernels
        for _ in range(args.rounds):
            a, b = interleaved(cfg, data, runs)
            plain.append(a)
            ours.append(b)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
        f"python {sys.version.split()[0]}; load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"preset {args.preset}: {cfg.train.epochs} epochs, batch {cfg.data.batch_size}, "
        f"median of {args.rounds} rounds, the two loops interleaved by epoch"
    )
    print(f"{'loop':<34}{'steps/s':>10}{'ratio':>8}{'steps/cpu-s':>13}{'ratio':>8}")
    for how, pick in (("median", statistics.median), ("best", max)):
        pw, pc = (pick(r[i] for r in plain) for i in (0, 1))
        ow, oc = (pick(r[i] for r in ours) for i in (0, 1))
        print(f"{f'plain PyTorch loop, {how}':<34}{pw:>10.0f}{1.0:>8.2f}{pc:>13.0f}{1.0:>8.2f}")
        print(f"{f'tui-trainer engine, {how}':<34}{ow:>10.0f}{ow / pw:>8.2f}{oc:>13.0f}"
              f"{oc / pc:>8.2f}")
    paired = sorted(b[0] / a[0] for a, b in zip(plain, ours, strict=True))
    q = statistics.quantiles(paired, n=4) if len(paired) > 1 else paired * 3
    print(f"paired ratio (ours / plain, wall): median {statistics.median(paired):.3f}, "
          f"quartiles {q[0]:.3f}-{q[2]:.3f}, over {len(paired)} rounds")
    print(
        "rounds, wall (plain / ours): "
        + ", ".join(f"{a[0]:.0f}/{b[0]:.0f}" for a, b in zip(plain, ours, strict=False))
    )


if __name__ == "__main__":
    main()
