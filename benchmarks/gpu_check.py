"""GPU check: everything worth knowing from a short lease of a GPU machine, in one table.

    benchmarks/gpu_check.sh                      # on a lent GPU box: < 5 min
    benchmarks/gpu_check.sh --device cpu --quick # the same on the CPU, < 1 min (CI runs it)

It runs the GPU-marked tests, then trains digits-mlp and a ResNet-20 (cifar_net depth 20)
on CIFAR-shaped synthetic data (random bytes in CIFAR-10's binary format, so the real
loader reads them) through the engine's Trainer: probes off and on, fp32 and bf16,
torch.compile off and on (bf16 only; not with --quick), on one process and (through the
launcher of ``tui-trainer run --nproc``) on every GPU. Per row: steps/s and images/s (the
median of the run's logged rates after its first third: compilation and warm-up
excluded), the probe overhead ratio (steps/s without probes over steps/s with them, same
precision and compile), peak memory (CUDA allocator), and an MFU estimate: the FLOPs of
one training step counted by torch.utils.flop_counter.FlopCounterMode, times steps/s,
over the card's dense bf16 peak (H100 SXM / H200 989e12, A100 312e12; "-" for an unknown
card or the CPU).

Needs torch and numpy (scikit-learn for digits-mlp, pytest for the test step: each is
skipped, saying so, when missing). Exit code 1 when a row or the tests failed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tui_trainer.config import RunConfig  # noqa: E402

GPU_TEST_FILES = [
    "tests/unit/test_precision.py",
    "tests/unit/test_placement.py",
    "tests/integration/test_distributed.py",
]  # the files holding @pytest.mark.gpu tests
PEAK_BF16 = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12}


@dataclass
class Row:
    model: str
    precision: str
    compile: bool
    probes: bool
    nproc: int = 1
    steps_per_s: float = float("nan")
    images_per_s: float = float("nan")
    overhead: float = float("nan")
    peak_mb: float = float("nan")
    mfu: float = float("nan")
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def peak_flops(device: torch.device) -> float | None:
    """Dense bf16 peak of the card, by name; None when unknown (or the CPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16.items():
        if key in name:
            return value
    return None


def fake_cifar(root: Path, per_file: int, seed: int = 0) -> Path:
    """CIFAR-10's binary format (label byte + 3072 pixel bytes) filled with noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        rec = rng.integers(0, 256, size=(per_file, 3073), dtype=np.uint8)
        rec[:, 0] %= 10
        (root / name).write_bytes(rec.tobytes())
    return root


def model_config(model: str, args: argparse.Namespace, cifar_dir: Path) -> dict[str, Any]:
    steps = args.steps or (100 if args.quick else 300)
    train = {"device": args.device, "max_steps": steps, "log_every": 5, "eval_every": 10**6}
    ckpt = {"every_seconds": 0.0, "keep_best": False}
    if model == "digits-mlp":
        return {
            "preset": "gpu-check-mlp", "data": {"name": "digits", "batch_size": 64},
            "model": {"kind": "mlp", "depth": 2, "width": 128, "init": "he"},
            "optim": {"name": "adam", "lr": 0.002}, "train": train, "checkpoint": ckpt,
        }  # fmt: skip
    batch = 16 if args.quick else 256
    train = {**train, "max_steps": args.steps or (8 if args.quick else 200)}
    return {
        "preset": "gpu-check-resnet20",
        "data": {"name": "cifar10", "dir": str(cifar_dir), "batch_size": batch},
        "model": {"kind": "cifar_net", "depth": 20, "width": 16, "residual": True,
                  "norm": "batchnorm"},
        "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9}, "train": train, "checkpoint": ckpt,
    }  # fmt: skip


def row_config(base: dict[str, Any], row: Row) -> RunConfig:
    raw = {**base, "train": {**base["train"], "precision": row.precision, "compile": row.compile}}
    raw["probe"] = {"every": 10 if row.probes else 0}
    return RunConfig.from_dict(raw, f"gpu_check:{row.model}")


def step_flops(cfg: RunConfig, device: torch.device) -> float:
    """FLOPs of one training step (forward + backward) on one global batch."""
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from tui_trainer.engine.data import build_dataset
    from tui_trainer.engine.models import build_model

    data = build_dataset(cfg.data)
    model = build_model(cfg.model, data.input_shape, data.num_classes).to(device)
    x = data.x_train[: cfg.data.batch_size].to(device)
    y = data.y_train[: cfg.data.batch_size].to(device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return float(counter.get_total_flops())


def steady_rate(run_dir: Path) -> float:
    """Median logged steps/s after the first third of the run (warm-up, compilation)."""
    from tui_trainer.store import RunReader

    with RunReader(run_dir) as reader:
        rates = [v for _, v in reader.series("perf/steps_per_s") if v is not None]
        meta_rate = float(reader.meta().get("steps_per_s") or 0.0)
    late = rates[len(rates) // 3 :]
    return statistics.median(late) if late else meta_rate


def peak_mb(run_dir: Path) -> float:
    from tui_trainer.store import RunReader

    with RunReader(run_dir) as reader:
        value = reader.last_values().get("sys/cuda_mem_peak_mb")
    return float(value) if value is not None else float("nan")


def train_one(cfg: RunConfig, runs_dir: Path, row: Row) -> Path:
    """One process, in this one: the engine's Trainer into a store, as `tui-trainer run`."""
    from tui_trainer.config import config_to_toml
    from tui_trainer.engine.trainer import Trainer
    from tui_trainer.store import RunStore

    if torch.cuda.is_available() and cfg.train.device != "cpu":
        torch.cuda.reset_peak_memory_stats()
    store = RunStore.create(runs_dir, cfg.preset, "", cfg.to_json(), config_to_toml(cfg))
    try:
        result = Trainer(cfg).run(store)
    finally:
        store.close()
    if result.status != "finished":
        raise RuntimeError(f"{result.status}: {result.error}")
    return store.run_dir


def train_ddp(cfg: RunConfig, runs_dir: Path, row: Row) -> Path:
    """``row.nproc`` ranks through the launcher ``tui-trainer run --nproc`` uses."""
    from tui_trainer.runner.torchrun import Launch, launch_distributed
    from tui_trainer.store import RunReader

    out = launch_distributed(cfg, Launch(nproc=row.nproc), str(runs_dir), stdout=sys.stderr)
    with RunReader(out.run_dir) as reader:
        status = reader.status()
    if out.returncode != 0 or status != "finished":
        raise RuntimeError(f"--nproc {row.nproc}: {status}, launcher exit {out.returncode}")
    return out.run_dir


def measure(row: Row, base: dict[str, Any], runs_dir: Path, flops: dict, device: Any) -> None:
    cfg = row_config(base, row)
    try:
        run_dir = (train_ddp if row.nproc > 1 else train_one)(cfg, runs_dir, row)
    except Exception as exc:  # a row that fails is a finding, not the end of the check
        row.note = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        return
    row.steps_per_s = steady_rate(run_dir)
    row.images_per_s = row.steps_per_s * cfg.data.batch_size
    row.peak_mb = peak_mb(run_dir)
    peak = peak_flops(device)
    if row.model not in flops:
        flops[row.model] = step_flops(cfg, device)
    if peak:
        row.mfu = flops[row.model] * row.steps_per_s / (peak * row.nproc)


def plan(args: argparse.Namespace, gpus: int) -> list[Row]:
    rows = []
    # fp32 and bf16 eager; compiled in bf16 only (each compile costs tens of seconds)
    settings = [("fp32", False), ("bf16", False)] + ([] if args.quick else [("bf16", True)])
    for model in ("digits-mlp", "resnet20"):
        for precision, comp in settings:
            for probes in (False, True):
                rows.append(Row(model, precision, comp, probes))
    world = gpus if args.device != "cpu" else 2
    if world > 1 and not args.no_ddp:
        for model in ("digits-mlp",) if args.quick else ("digits-mlp", "resnet20"):
            rows.append(Row(model, "bf16", False, True, nproc=world))
    return rows


def overheads(rows: list[Row]) -> None:
    """Probe overhead: steps/s without probes over steps/s with them, same other settings."""
    bare = {(r.model, r.precision, r.compile, r.nproc): r for r in rows if not r.probes}
    for r in rows:
        other = bare.get((r.model, r.precision, r.compile, r.nproc))
        if r.probes and other is not None and r.steps_per_s > 0:
            r.overhead = other.steps_per_s / r.steps_per_s


def fmt(v: float, spec: str) -> str:
    return "-" if v != v else format(v, spec)


def table(rows: list[Row]) -> str:
    head = ["model", "prec", "compile", "probes", "nproc", "steps/s", "images/s",
            "probe ovh", "peak MB", "MFU", "note"]  # fmt: skip
    body = [
        [r.model, r.precision, "on" if r.compile else "off", "on" if r.probes else "off",
         str(r.nproc), fmt(r.steps_per_s, ".1f"), fmt(r.images_per_s, ".0f"),
         fmt(r.overhead, ".3f"), fmt(r.peak_mb, ".0f"), fmt(r.mfu * 100, ".2f") + "%"
         if r.mfu == r.mfu else "-", r.note]
        for r in rows
    ]  # fmt: skip
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [head, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_tests(args: argparse.Namespace) -> str:
    try:
        import pytest  # noqa: F401
    except ImportError:
        return "skipped (pytest is not installed)"
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
           *GPU_TEST_FILES]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    return ("ok: " if proc.returncode in (0, 5) else "FAILED: ") + last


def environment(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{torch.cuda.device_count()} x {name}, torch {torch.__version__}"
    threads = torch.get_num_threads()
    return f"CPU ({os.cpu_count()} cores, {threads} threads), torch {torch.__version__}"


def telemetry() -> str:
    """The cards' figures as the app reads them (NVML, else nvidia-smi), after the rows."""
    from tui_trainer.sysinfo import gpu_stats

    def num(v: float | None, unit: str) -> str:
        return "?" if v is None else f"{v:.0f}{unit}"

    gpus = gpu_stats()
    if not gpus:
        return "telemetry: neither NVML (nvidia-ml-py) nor nvidia-smi answered"
    return "telemetry after the rows: " + "; ".join(
        f"GPU{g.index} {g.name}: util {num(g.util_pct, '%')}, mem {num(g.mem_used_mb, '')}/"
        f"{num(g.mem_total_mb, ' MB')}, {num(g.temp_c, ' C')}, {num(g.power_w, ' W')}, "
        f"SM {num(g.sm_clock_mhz, ' MHz')}, mem clock {num(g.mem_clock_mhz, ' MHz')}"
        for g in gpus
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    ap.add_argument("--quick", action="store_true", help="fewer steps and no compile rows")
    ap.add_argument("--steps", type=int, default=0, help="steps per row (default by model)")
    ap.add_argument("--no-tests", action="store_true", help="skip the GPU-marked tests")
    ap.add_argument("--no-ddp", action="store_true", help="skip the --nproc rows")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda: torch sees no CUDA device (use --device cpu)", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    t0 = time.perf_counter()
    tests = "skipped (--no-tests)" if args.no_tests else run_tests(args)
    print(f"gpu_check on {environment(device)}\nGPU-marked tests: {tests}", flush=True)
    rows = plan(args, torch.cuda.device_count() if device.type == "cuda" else 0)
    flops: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        cifar = fake_cifar(Path(tmp) / "cifar", 128 if args.quick else 4096)
        bases = {m: model_config(m, args, cifar) for m in ("digits-mlp", "resnet20")}
        for row in rows:
            measure(row, bases[row.model], Path(tmp) / "runs", flops, device)
            print(f"  {row.model} {row.precision} compile={row.compile} probes={row.probes} "
                  f"nproc={row.nproc}: {fmt(row.steps_per_s, '.1f')} steps/s {row.note}",
                  file=sys.stderr, flush=True)  # fmt: skip
    overheads(rows)
    print(table(rows))
    flop_text = ", ".join(f"{m} {v / 1e9:.3g} GFLOP/step" for m, v in flops.items())
    print(f"FLOPs (FlopCounterMode, forward+backward, one global batch): {flop_text}")
    print(f"MFU against the dense bf16 peak of the card; total {time.perf_counter() - t0:.0f} s")
    if device.type == "cuda":
        print(telemetry())
    failed = any(r.note.startswith("FAILED") for r in rows) or tests.startswith("FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
