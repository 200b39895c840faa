"""Provides export_tensorboard: a run's scalars and layer statistics as TensorBoard events.

Needs the ``tensorboard`` package (``pip install tensorboard``); torch loads only here.
"""

from __future__ import annotations

from pathlib import Path

from tui_trainer.store import STAT_COLUMNS, RunReader, StoreError
from tui_trainer.store.export import prepare_out_dir

__all__ = ["export_tensorboard"]


def export_tensorboard(run_dir: Path, out: Path) -> Path:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise StoreError(
            "TensorBoard export needs the tensorboard package (pip install tensorboard)"
        ) from None
    out = prepare_out_dir(out)
    with RunReader(run_dir) as reader:
        names = {lay["index"]: lay["name"] for lay in reader.layers()}
        tail = reader.tail(limit=1 << 62)
        writer = SummaryWriter(log_dir=str(out))
        for step, name, value, wall in tail.scalars:
            if value is not None:
                writer.add_scalar(name, value, step, walltime=wall)
        for step, layer, *stats in tail.layer_stats:
            for col, value in zip(STAT_COLUMNS, stats, strict=True):
                if value is not None:
                    writer.add_scalar(f"layers/{col}/{names.get(layer, layer)}", value, step)
        writer.close()
    return out
