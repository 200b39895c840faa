"""Provides ``tui-trainer run --nproc N``'s side of the command: start each config's ranks
through ``runner.torchrun`` and read the result back from the run's store (rank 0 wrote it).

The summary states the global batch (``data.batch_size``, split among the processes) and
the learning rate it is trained with (``optim.lr``: DDP averages the gradients).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from tui_trainer.config import RunConfig
from tui_trainer.runner.torchrun import Launch, launch_distributed
from tui_trainer.store import RunReader

__all__ = ["distributed_result", "run_distributed", "world_line"]


def world_line(result: dict[str, Any]) -> str:
    """One line: the processes, the global batch and its learning rate."""
    world = result.get("world_size") or result.get("nproc", 1)
    batch = result.get("global_batch")
    per = f" ({result.get('rank_batch')} per process)" if result.get("rank_batch") else ""
    noun = "process" if world == 1 else "processes"
    return (
        f"{world} {noun} ({result.get('backend') or 'torch.distributed'}): "
        f"global batch {batch}{per}, lr {result.get('lr')}"
    )


def distributed_result(cfg: RunConfig, run_dir: Path, launch: Launch, elapsed: float) -> dict:
    """The headless ``run``'s JSON result, from the store rank 0 wrote."""
    from tui_trainer.cli.headless import headline

    with RunReader(run_dir) as reader:
        meta, values = reader.meta(), reader.last_values()
        statuses = reader.events("status")
    last = statuses[-1][3] if statuses else {}
    status = str(meta.get("status") or "crashed")
    steps = int(meta.get("step") or 0)
    out: dict[str, Any] = {
        "run_id": run_dir.name,
        "run_dir": str(run_dir),
        "status": status,
        "steps": steps,
        "epochs": round(steps / max(int(meta.get("batches_per_epoch") or 1), 1), 4),
        "steps_per_s": round(float(meta.get("steps_per_s") or 0.0), 2),
        "elapsed_s": round(elapsed, 3),
        "final": headline(values, cfg),
        "best": meta.get("best", {}),
        "preset": cfg.preset,
        "variant": cfg.variant,
        "nproc": launch.nproc,
        "nnodes": launch.nnodes,
        "world_size": meta.get("world_size", launch.nproc * launch.nnodes),
        "backend": meta.get("backend"),
        "global_batch": cfg.data.batch_size,
        "rank_batch": cfg.data.batch_size // (launch.nproc * launch.nnodes),
        "lr": cfg.optim.lr,
    }
    error = last.get("error") or (last.get("reason") if status not in ("finished",) else "")
    if status not in ("finished", "stopped") and error:
        out["error"] = str(error)
    return out


def run_distributed(
    configs: list[RunConfig],
    launch: Launch,
    runs_dir: str | None,
    json_out: bool,
    resume_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Train each config on ``launch``'s processes, one after the other; a stop ends the
    series. On a node other than 0 nothing is recorded here (rank 0 records on node 0).
    ``resume_dir``: continue that stopped run (its one config) instead."""
    results = []
    for cfg in configs:
        launch.validate(cfg)  # every config checked before the first starts
    for cfg in configs:
        t0 = time.perf_counter()
        stdout = sys.stderr if json_out else None
        out = launch_distributed(cfg, launch, runs_dir, stdout, resume_dir, resume_dir is not None)
        if launch.node_rank != 0:
            status = "finished" if out.returncode == 0 else "crashed"
            results.append({"status": status, "node_rank": launch.node_rank, "run_dir": ""})
            continue
        results.append(distributed_result(cfg, out.run_dir, launch, time.perf_counter() - t0))
        if results[-1]["status"] == "stopped":
            break
    return results
