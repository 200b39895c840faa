"""Benchmark: the engine's steps/s against a plain PyTorch loop on the same model and data.

    OMP_NUM_THREADS=1 python benchmarks/train_loop.py [--preset P] [--rounds 3] [--epochs N]

Both train the preset's model on the same data with the same optimizer, batch size and step
count, alternating in one process so machine drift cancels. The comparison is fair: the
plain loop reads the loss every ``log_every`` steps, evaluates validation loss and accuracy
once an epoch, saves best.pt on improvement and last.pt at the end, like the engine. The
engine run includes everything `tui-trainer run` does besides: probes at the default
interval, train accuracy, the SQLite store, control polling.

Two figures each: steps per second of wall time, and per second of the process's CPU time
(``time.process_time``: every thread of the process, the store's included) over the same
steps; the median of the rounds and the best (fastest) round of each; and the paired ratio,
each engine round over the plain round just before it (median, quartiles): on the 2-core
sandbox two runs of the same loop in one process differ by up to 15% (allocation, caches,
the neighbours), so only many rounds tell a few percent apart.
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


def plain_loop(cfg, data, out_dir: str) -> tuple[float, float]:
    """The loop a careful person writes, doing what the engine does at the same points:
    the training loss read every ``log_every`` steps (printed, here kept), validation loss
    and accuracy once an epoch, ``best.pt`` saved when validation accuracy improves and
    ``last.pt`` (fsync'd) at the end. Timed from the first step to the last save."""
    seed_everything(cfg.train.seed)
    model = build_model(cfg.model, data.input_shape, data.num_classes)
    opt = build_optimizer(cfg.optim, model)
    bs, n = cfg.data.batch_size, len(data.y_train)
    nb = num_batches(n, bs)
    steps = cfg.train.max_steps or cfg.train.epochs * nb
    log_every, best, logged = cfg.train.log_every, -1.0, []
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(steps):
        epoch, b = divmod(step, nb)
        if b == 0:
            order = epoch_order(n, cfg.train.seed, epoch)
        idx = order[b * bs : (b + 1) * bs]
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % log_every == 0:
            logged.append(loss.item())
        if b == nb - 1 or step + 1 == steps:  # evaluate once an epoch and at the end, as
            # the engine does
            with torch.no_grad():
                model.eval()
                out = model(data.x_val)
                F.cross_entropy(out, data.y_val).item()
                acc = (out.argmax(1) == data.y_val).float().mean().item()
                model.train()
            if acc > best:
                best = acc
                _save(model, opt, step, os.path.join(out_dir, "best.pt"), fsync=False)
    _save(model, opt, steps, os.path.join(out_dir, "last.pt"), fsync=True)
    return steps / (time.perf_counter() - t0), steps / (time.process_time() - c0)


def _save(model, opt, step: int, path: str, fsync: bool) -> None:
    with open(path + ".tmp", "wb") as fh:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, fh)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(path + ".tmp", path)


def engine_loop(cfg, data, runs_dir: str) -> tuple[float, float]:
    """The engine's training, timed like the plain loop: from its first step through its
    closing evaluation, last save and the store's last flush (setup excluded)."""
    store = RunStore.create(runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg))
    trainer = Trainer(cfg, dataset=data)
    start: list[tuple[float, float, int]] = []
    loop = trainer._loop

    def timed_loop() -> None:
        start.append((time.perf_counter(), time.process_time(), trainer.step))
        loop()

    trainer._loop = timed_loop
    result = trainer.run(store)
    wall, cpu = time.perf_counter() - start[0][0], time.process_time() - start[0][1]
    store.close()
    assert result.status == "finished", result
    steps = trainer.step - start[0][2]
    return steps / wall, steps / cpu


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
        plain_loop(cfg, data, runs)  # warm-up: allocator, kernels
        for _ in range(args.rounds):
            plain.append(plain_loop(cfg, data, runs))
            ours.append(engine_loop(cfg, data, runs))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
        f"python {sys.version.split()[0]}; load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"preset {args.preset}: {cfg.train.epochs} epochs, batch {cfg.data.batch_size}, "
        f"median of {args.rounds} alternating rounds"
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
