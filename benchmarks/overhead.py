"""Benchmark: what the per-layer probes cost, against the bare loop and two common trackers.

    OMP_NUM_THREADS=1 python benchmarks/overhead.py [--models mlp,resnet20] [--rounds N]

Trains a 20-layer MLP (width 256) and the CIFAR-style ResNet-20 on 32x32 random data (batch
128, SGD with momentum) and prints steps/s and the ratio to the bare loop for: the bare
loop; our probes at the default interval (``probe.every = "auto"``, recording into a real
RunStore as the trainer does); our probes every step; ``wandb.watch(model, log="all",
log_freq=N)`` in offline mode, if wandb is installed; TensorBoard's
``SummaryWriter.add_histogram`` of every parameter and gradient every N steps, if tensorboard
is installed. N is the interval "auto" settles on for that model (at least 2, so that the
anchors are not compared at every step when the probes are cheap enough to sample every
step); our probes at that same fixed N are shown too.

How it is timed: all variants train one shared model (same shapes, same memory; wandb is
watched only during its own blocks), and in each round every variant runs one block of
steps, in turn, alternating the order, so drift cancels. A variant's ratio is its steps per
second over all its blocks, over the bare loop's. Two ratios are printed: wall-clock, and
CPU time of this process (``time.process_time``), which a machine shared with other
processes disturbs far less (two identical bare variants differed by up to 10% wall-clock
and 2% CPU time here while other engineers trained on the same two cores).
A second bare loop, timed as one more variant, shows the noise floor: its ratio is what
the measurement alone gives (1.000 on a quiet machine; 5 rounds instead of 12 left ±4% on
the MLP here). ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` are set before
torch loads: glibc returning memory to the OS between steps distorted timings by up to 40%
(DESIGN.md §4).
"""

from __future__ import annotations

import os

os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "1000000000000")
os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "1000000000000")
os.environ.setdefault("WANDB_SILENT", "true")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from tui_trainer.config import ModelConfig  # noqa: E402
from tui_trainer.engine.models import build_model  # noqa: E402
from tui_trainer.engine.probes import LayerProbe  # noqa: E402
from tui_trainer.engine.sampling import ProbeSchedule  # noqa: E402
from tui_trainer.store import RunStore  # noqa: E402

BATCH = 128
MODELS = {
    "mlp": (
        "20-layer MLP, width 256",
        ModelConfig(kind="mlp", depth=20, width=256, activation="relu", init="he"),
        {"block": 60, "rounds": 12, "calibrate": 60},
    ),
    "resnet20": (
        "ResNet-20 (CIFAR, width 16)",
        ModelConfig(kind="cifar_net", depth=20, width=16, residual=True),
        {"block": 6, "rounds": 6, "calibrate": 26},
    ),
}


def _nothing(*args: object) -> None:
    return None


@dataclass
class Variant:
    """One way of training the shared model: what it does around each step."""

    name: str
    every: str = "-"
    before: Callable[[int], None] = _nothing  # before forward
    after_backward: Callable[[int], None] = _nothing
    after: Callable[[int, torch.Tensor], None] = _nothing
    start: Callable[[], None] = _nothing  # before each of its blocks
    stop: Callable[[], None] = _nothing  # after each of its blocks
    close: Callable[[], None] = _nothing
    step: int = 0
    steps_timed: int = 0
    wall: float = 0.0  # seconds, over the timed blocks
    cpu: float = 0.0  # CPU seconds of this process, over the timed blocks


@dataclass
class Bench:
    model: nn.Module
    opt: torch.optim.Optimizer
    x: torch.Tensor
    y: torch.Tensor

    def block(self, v: Variant, steps: int) -> None:
        model, opt = self.model, self.opt
        v.start()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            v.before(v.step)
            loss = F.cross_entropy(model(self.x), self.y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            v.after_backward(v.step)
            opt.step()
            v.after(v.step, loss)
            v.step += 1
        t1, c1 = time.perf_counter(), time.process_time()
        v.stop()
        v.steps_timed += steps
        v.wall += t1 - t0
        v.cpu += c1 - c0


def probe_variant(b: Bench, name: str, every: int | str, workdir: str) -> Variant:
    """Our probes as the trainer drives them: schedule, hooks, one copy to the host, store
    writes (each variant its own store, so none pays for another's flushes)."""
    store = RunStore.create(workdir, "overhead", "probes", "{}", "")
    probe = LayerProbe(b.model.layer_units(), list(b.model.named_parameters()))
    schedule = ProbeSchedule(every)
    v = Variant(name, every=str(schedule.every), close=store.close)
    state = {"sampled": False, "t": 0.0}
    device = torch.device("cpu")

    def before(step: int) -> None:
        state["t"] = time.perf_counter()
        state["sampled"] = schedule.due(step)
        if state["sampled"]:
            probe.attach()

    def after_backward(step: int) -> None:
        if state["sampled"]:
            probe.after_backward()

    def after(step: int, loss: torch.Tensor) -> None:
        if state["sampled"]:
            probe.after_step(step + 1, keep=schedule.will_sample(step + 1))
            for s in probe.drain():
                store.layer_stats(s.step, s.rows)
                values = {f"grad_norm/{n}": g for n, g in s.param_grad_norms.items()}
                values["grad/total_norm"] = s.total_grad_norm
                store.scalars(s.step, values)
        schedule.observe(state["sampled"], state["t"], device)
        v.every = str(schedule.every)

    v.before, v.after_backward, v.after = before, after_backward, after
    return v


def wandb_variant(b: Bench, every: int, workdir: str) -> Variant | None:
    try:
        import wandb
    except ImportError:
        return None
    run = wandb.init(project="overhead", mode="offline", dir=workdir)
    v = Variant(f"wandb.watch(log='all', log_freq={every}), offline", every=str(every))
    v.start = lambda: run.watch(b.model, log="all", log_freq=every)
    v.stop = lambda: run.unwatch(b.model)

    def after(step: int, loss: torch.Tensor) -> None:
        if (step + 1) % every == 0:
            run.log({"loss": loss.item()}, step=v.step + 1)

    v.after = after
    v.close = lambda: run.finish(quiet=True)
    return v


def tensorboard_variant(b: Bench, every: int, workdir: str) -> Variant | None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    writer = SummaryWriter(os.path.join(workdir, "tb"))
    v = Variant(f"TensorBoard add_histogram every {every}", every=str(every), close=writer.close)

    def after_backward(step: int) -> None:
        if step % every == 0:
            for name, p in b.model.named_parameters():
                writer.add_histogram(name, p, step)
                if p.grad is not None:
                    writer.add_histogram(name + ".grad", p.grad, step)

    v.after_backward = after_backward
    return v


def bench_model(key: str, rounds: int, workdir: str, anchors: bool) -> list[tuple[str, ...]]:
    title, cfg, sizes = MODELS[key]
    rounds = rounds or sizes["rounds"]
    torch.manual_seed(0)
    model = build_model(cfg, (3, 32, 32), 10)
    g = torch.Generator().manual_seed(1)
    b = Bench(
        model,
        torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
        torch.randn(BATCH, 3, 32, 32, generator=g),
        torch.randint(0, 10, (BATCH,), generator=g),
    )
    auto = probe_variant(b, 'our probes, default (every = "auto")', "auto", workdir)
    variants = [
        Variant("bare loop"),
        Variant("bare loop, again (the noise floor)"),
        auto,
        probe_variant(b, "our probes, every step", 1, workdir),
    ]
    b.block(variants[0], 3)  # warm-up: allocator, kernels
    b.block(auto, sizes["calibrate"])  # untimed: "auto" calibrates and picks its interval
    n = max(int(auto.every), 2)
    variants.append(probe_variant(b, f"our probes, every {n}", n, workdir))
    if anchors:
        for make in (wandb_variant, tensorboard_variant):
            v = make(b, n, workdir)
            if v is not None:
                variants.append(v)
    for v in variants:
        b.block(v, 2)
        v.steps_timed, v.wall, v.cpu = 0, 0.0, 0.0
    for r in range(rounds):
        for v in variants if r % 2 == 0 else variants[::-1]:
            b.block(v, sizes["block"])
    for v in variants:
        with contextlib.suppress(Exception):
            v.close()
    bare = variants[0]
    rows = []
    for v in variants:
        rate = v.steps_timed / v.wall
        wall = rate / (bare.steps_timed / bare.wall)
        cpu = (v.steps_timed / v.cpu) / (bare.steps_timed / bare.cpu)
        label = f"{v.name} [N={v.every}]" if v.every != "-" else v.name
        rows.append((title, label, f"{rate:.2f}", f"{wall:.3f}", f"{cpu:.3f}"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--models", default="mlp,resnet20")
    ap.add_argument("--rounds", type=int, default=0, help="default: 12 (MLP), 6 (ResNet-20)")
    ap.add_argument("--no-anchors", action="store_true", help="skip wandb and TensorBoard")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    env = [f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS",) if k in os.environ]
    print("command: " + " ".join(env + ["python"] + [shlex.quote(a) for a in sys.argv]))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {cpu}, {os.cpu_count()} cores (load {load:.1f} at start), "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"python {sys.version.split()[0]}, batch {BATCH}"
    )
    head = ("model", "variant", "steps/s", "ratio", "ratio (CPU time)")
    widths = (28, 58, 9, 7, 17)
    print(
        "".join(
            f"{h:<{w}}" if i < 2 else f"{h:>{w}}"
            for i, (h, w) in enumerate(zip(head, widths, strict=True))
        )
    )
    with tempfile.TemporaryDirectory() as workdir:
        for key in args.models.split(","):
            t0 = time.perf_counter()
            for row in bench_model(key, args.rounds, workdir, not args.no_anchors):
                print(
                    "".join(
                        f"{c:<{w}}" if i < 2 else f"{c:>{w}}"
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))
                    )
                )
            print(f"{'':<28}({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
