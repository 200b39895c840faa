"""Benchmark: what ``tui_trainer.watch`` costs a user's own loop, and one ``mon.step``.

    OMP_NUM_THREADS=1 python benchmarks/watch.py [--rounds N] [--models small,mlp]

Part 1, the loop: a plain PyTorch loop (forward, cross-entropy, zero_grad, backward, SGD
step) against the same loop with the three lines of ``watch`` added, at the default
interval (``every="auto"``, 3% budget), and every step (``every=1``, what the probes cost
at most), and with the probes off (``every=0``: the cost of ``mon.step`` and the writer
thread alone). Each variant trains its own copy of the model (same shapes) and in each
round every variant runs one block of steps, in turn, alternating the order, so drift
cancels; ratios are steps/s over the bare loop's, wall-clock and CPU time of this process
(the writer thread's CPU time counts: it is this process's). A second bare loop shows the
noise floor. Models: "small", a 3-layer MLP (64-128-64-10, batch 32: steps of ~0.1 ms,
where a per-step cost shows most) and "mlp", 20 layers of 256 (batch 128).

Part 2, one call: ``mon.step(loss=..., lr=...)`` on an unsampled step, timed over many
calls (probes off, so every call is unsampled; every ``log_every`` = 10th call also
computes the window's means and queues them), against a do-nothing function taking the
same arguments; with a float loss and with a CPU tensor loss (``.item()`` per call).
"""

from __future__ import annotations

import os

os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "1000000000000")
os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "1000000000000")

import argparse  # noqa: E402
import copy  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import tui_trainer  # noqa: E402


def small() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    )


def deep() -> nn.Module:
    layers: list[nn.Module] = [nn.Linear(256, 256)]
    for _ in range(19):
        layers += [nn.ReLU(), nn.Linear(256, 256)]
    return nn.Sequential(*layers[:-1], nn.Linear(256, 10))


MODELS = {
    "small": ("3-layer MLP 64-128-64-10, batch 32", small, 64, 32, 400),
    "mlp": ("20-layer MLP, width 256, batch 128", deep, 256, 128, 40),
}


@dataclass
class Variant:
    name: str
    model: nn.Module
    opt: torch.optim.Optimizer
    mon: Any = None
    wall: float = 0.0
    cpu: float = 0.0
    steps: int = 0
    every: str = "-"
    extra: dict[str, Any] = field(default_factory=dict)

    def block(self, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
        model, opt, mon = self.model, self.opt, self.mon
        t0, c0 = time.perf_counter(), time.process_time()
        if mon is None:
            for _ in range(steps):
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        else:
            for _ in range(steps):
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                mon.step(loss=loss, lr=0.01)
        self.wall += time.perf_counter() - t0
        self.cpu += time.process_time() - c0
        self.steps += steps
        if mon is not None:
            self.every = str(mon.sampler.every) if mon.sampler.every else "off"


def bench_loop(key: str, rounds: int, workdir: str) -> list[tuple[str, str, float, float]]:
    title, make, d_in, batch, block = MODELS[key]
    torch.manual_seed(0)
    base = make()
    x, y = torch.randn(batch, d_in), torch.randint(0, 10, (batch,))
    variants = []
    for name, every in (
        ("bare loop", None),
        ("bare loop again (noise floor)", None),
        ("watch, every='auto' (default)", "auto"),
        ("watch, every=1", 1),
        ("watch, probes off (every=0)", 0),
    ):
        model = copy.deepcopy(base)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        v = Variant(name, model, opt)
        if every is not None:
            v.mon = tui_trainer.watch(model, name=f"bench-{key}", every=every, runs_dir=workdir)
        variants.append(v)
    for v in variants:  # warm-up: allocation, discovery, the auto interval's calibration
        v.block(x, y, 3 * block if v.mon is not None else block)
        v.wall = v.cpu = 0.0
        v.steps = 0
    for r in range(rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for v in order:
            v.block(x, y, block)
    for v in variants:
        if v.mon is not None:
            v.mon.finish()
    bare = variants[0]
    rows = []
    for v in variants:
        wall_ratio = (v.steps / v.wall) / (bare.steps / bare.wall)
        cpu_ratio = (v.steps / v.cpu) / (bare.steps / bare.cpu)
        rows.append((v.name, v.every, v.steps / v.wall, wall_ratio, cpu_ratio))
    print(f"\n{title}: {rounds} rounds of {block} steps per variant")
    print(f"{'variant':34} {'every':>6} {'steps/s':>9} {'wall ratio':>11} {'cpu ratio':>10}")
    for name, every, rate, w, c in rows:
        print(f"{name:34} {every:>6} {rate:9.0f} {w:11.3f} {c:10.3f}")
    return [(key, r[0], r[3], r[4]) for r in rows]


def noop(loss: Any = None, **scalars: Any) -> None:
    return None


def bench_call(workdir: str, calls: int) -> None:
    model = small()
    mon = tui_trainer.watch(model, name="bench-call", every=0, runs_dir=workdir)
    loss_t = torch.tensor(0.5)
    print(f"\none mon.step on an unsampled step ({calls:,} calls; mean per call)")
    print(f"{'loss given as':16} {'no-op call':>11} {'mon.step':>10} {'cost':>9}")
    for label, loss in (("float", 0.5), ("CPU tensor", loss_t)):
        best = []
        for fn in (noop, mon.step):
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                for _ in range(calls):
                    fn(loss=loss, lr=0.01)
                times.append((time.perf_counter() - t0) / calls)
            best.append(min(times))
        print(
            f"{label:16} {best[0] * 1e6:9.2f}us {best[1] * 1e6:8.2f}us "
            f"{(best[1] - best[0]) * 1e6:7.2f}us"
        )
    mon.finish()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--models", default="small,mlp")
    ap.add_argument("--calls", type=int, default=100_000)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    warnings.simplefilter("error", RuntimeWarning)  # a monitor problem must not go unseen
    print("$ " + shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]))
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    with tempfile.TemporaryDirectory() as workdir:
        for key in args.models.split(","):
            bench_loop(key, args.rounds, workdir)
        bench_call(workdir, args.calls)


if __name__ == "__main__":
    main()
