"""Provides the headless ``run``: train variants in-process with a Rich progress display.

A terminal gets a live progress bar; anything else (a pipe, a CI log) gets a plain line
every few seconds. ``--json`` keeps stdout for the one JSON document and sends progress to
stderr. Ctrl+C, SIGTERM and SIGHUP ask the trainer to checkpoint and stop after the
current step (engine.signals); a second Ctrl+C repeats the request and never tears a
step (Ctrl+\\ ends the process at once, keeping the last checkpoint).
"""

from __future__ import annotations

import math
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tui_trainer.cli.output_log import tee_output
from tui_trainer.config import RunConfig, config_to_toml
from tui_trainer.engine.signals import stop_on_signals
from tui_trainer.store import RunReader, RunStore
from tui_trainer.text import first_line, run_label

if TYPE_CHECKING:
    from tui_trainer.engine.runtime import TrainResult

__all__ = ["HEADLINE_PREFIXES", "PLAIN_INTERVAL", "headline", "summary_table", "train_config"]

PLAIN_INTERVAL = 2.0  # seconds between plain progress lines when output is not a terminal
HEADLINE_PREFIXES = ("train/", "val/", "test/")  # the scalars ``--json``'s final reports


def _fmt(v: float | None, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}g}"


def train_config(
    cfg: RunConfig,
    runs_dir: str | None,
    console: Console,
    show_progress: bool,
    resume_dir: Path | None = None,
) -> dict[str, Any]:
    """Create a run for cfg (or continue the stopped run in ``resume_dir`` from its last
    checkpoint), train it, and return the result as a JSON-able dict."""
    from tui_trainer.engine.trainer import Trainer  # torch loads here, not at CLI import

    trainer = Trainer(cfg)
    trainer.prepare()  # bad data/model input fails here, before a run directory exists
    if resume_dir is None:
        store = RunStore.create(
            runs_dir, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg)
        )
        store.set_meta(argv=sys.argv)  # the command, for the overview's "repeat it"
    else:
        store = RunStore(resume_dir)
    resume = resume_dir is not None
    label = cfg.label
    failure = ""
    try:
        with stop_on_signals(trainer, ending=True):
            if show_progress and console.is_terminal:
                result = _with_bar(trainer, store, label, console, resume)
            elif show_progress:
                result = _with_lines(trainer, store, label, console, resume)
            else:
                result = run_logged(trainer, store, resume)
    except (sqlite3.Error, OSError) as exc:  # the disk filled up, the store went away
        failure = first_line(exc)
    finally:
        failure = _close(store) or failure
    if failure:
        result = _unrecorded(trainer, store.run_dir, failure)
    out = result.to_dict()
    with RunReader(store.run_dir) as reader:
        out["final"] = headline(reader.last_values(), cfg)
        out["best"] = reader.meta().get("best", {})
    out["preset"], out["variant"] = cfg.preset, cfg.variant
    return out


def _close(store: RunStore) -> str:
    try:
        store.close()
    except (sqlite3.Error, OSError) as exc:
        return first_line(exc)
    return ""


def _unrecorded(trainer: Any, run_dir: Path, why: str) -> TrainResult:
    """The result of a run whose store could not be written (a full disk): crashed, with
    one line that says so; the rows written before stay readable."""
    from tui_trainer.engine.runtime import TrainResult

    error = (
        f"cannot write {run_dir / 'run.db'} ({why}): is the disk full? What was recorded "
        f"before is intact; `tui-trainer resume {run_dir.name}` goes on from the last checkpoint"
    )
    return TrainResult(
        run_id=run_dir.name, run_dir=str(run_dir), status="crashed", steps=trainer.step,
        epochs=trainer.step / max(trainer.batches_per_epoch, 1), steps_per_s=trainer.rate,
        elapsed_s=0.0, error=error,
    )  # fmt: skip


def headline(values: dict[str, Any], cfg: RunConfig) -> dict[str, Any]:
    """The run's headline scalars: train/, val/ and test/ ones and those ``[expect]`` reads
    (not every ``grad_norm/<param>``)."""
    from tui_trainer.config.expect import parse_expect

    checks = parse_expect(cfg.expect) if cfg.expect else []
    wanted = {r.metric for c in checks for r in (c.left, c.right) if r is not None}
    return {k: v for k, v in values.items() if k.startswith(HEADLINE_PREFIXES) or k in wanted}


def _with_bar(trainer: Any, store: RunStore, label: str, console: Console, resume: bool) -> Any:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("ep {task.fields[epoch]}"),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("val {task.fields[val]}"),
        TextColumn("{task.fields[rate]} steps/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with progress:
        task = progress.add_task(label, total=None, epoch=0, loss="-", val="-", rate="-")

        def update(p: Any) -> None:
            progress.update(
                task,
                completed=p.step,
                total=p.total,
                epoch=p.epoch,
                loss=_fmt(p.loss),
                val=_fmt(p.val_metric),
                rate=f"{p.steps_per_s:.0f}",
                description=label + (" [yellow](paused)" if p.status == "paused" else ""),
            )

        trainer.on_progress = update
        return run_logged(trainer, store, resume)


def _with_lines(trainer: Any, store: RunStore, label: str, console: Console, resume: bool) -> Any:
    from tui_trainer.engine.runtime import every_so_often

    def update(p: Any) -> None:
        eta = (p.total - p.step) / p.steps_per_s if p.steps_per_s > 0 else float("nan")
        console.print(
            f"{label} step {p.step}/{p.total} epoch {p.epoch} loss {_fmt(p.loss)} "
            f"val {_fmt(p.val_metric)} {p.steps_per_s:.0f} steps/s eta {_fmt(eta, 3)}s",
            highlight=False,
            soft_wrap=True,
        )

    trainer.on_progress = every_so_often(update, PLAIN_INTERVAL)
    return run_logged(trainer, store, resume)


def run_logged(trainer: Any, store: RunStore, resume: bool) -> Any:
    """``trainer.run`` with what it prints copied into output.log, and there also the end
    of the run, as a training child's log says it (a crash: its traceback)."""
    started = time.time()
    with tee_output(store.run_dir) as log:
        result = trainer.run(store, resume=resume)
        if result.status == "crashed":
            with RunReader(store.run_dir) as reader:
                errors = reader.events("error")
            log.write("stderr", str(errors[-1][3].get("traceback", "")) if errors else "")
        log.write(
            "stdout",
            f"{result.status} after {result.steps} steps in {time.time() - started:.1f}s"
            + (f": {result.error}" if result.error else "")
            + "\n",
        )
    return result


def summary_table(results: list[dict[str, Any]]) -> Table:
    table = Table(title="tui-trainer: summary (run directories below)")
    for col in ("run", "status", "steps", "steps/s", "train loss", "val loss", "val acc"):
        left = col in ("run", "status")
        run = col == "run"
        table.add_column(
            col,
            justify="left" if left else "right",
            no_wrap=not run,
            overflow="fold" if run else "ellipsis",
        )
    colour = {"finished": "green", "stopped": "yellow"}
    for r in results:
        f = r.get("final", {})
        st = r["status"]
        label = run_label(r.get("preset", ""), r.get("variant"))
        table.add_row(
            label or r["run_id"],
            f"[{colour.get(st, 'red')}]{st}[/]",
            str(r["steps"]),
            f"{r['steps_per_s']:.0f}",
            _fmt(f.get("train/loss")),
            _fmt(f.get("val/loss")),
            _fmt(f.get("val/acc")),
        )
    return table
