"""Provides the ``tui-trainer`` command line (Typer): parse, call, print.

torch is never imported at module level: ``tui-trainer --help`` stays fast, and only
commands that train pay for it. Bad input exits 2 with one line on stderr.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    help="Watch a deep network learn, in the terminal. Run without a command to open the app.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

RunsDir = Annotated[
    str | None,
    typer.Option("--runs-dir", help="Where runs live (default $TUI_TRAINER_RUNS_DIR or ./runs)."),
]
PresetsDir = Annotated[
    str | None, typer.Option("--presets-dir", help="Another folder of preset files.")
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
RunRef = Annotated[str, typer.Argument(metavar="RUN", help="Run id, prefix, path or latest.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def bad_input(fn: F) -> F:
    """Turn the project's input errors into one line on stderr and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from tui_trainer.store import StoreError
        from tui_trainer.text import first_line

        try:
            return fn(*args, **kwargs)
        except (ValueError, StoreError, FileNotFoundError) as exc:
            raise fail(first_line(exc)) from None

    return wrapper  # type: ignore[return-value]


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


@app.callback()
def root(
    ctx: typer.Context,
    runs_dir: RunsDir = None,
    presets_dir: PresetsDir = None,
) -> None:
    """Open the app (preset picker) when no command is given."""
    if ctx.invoked_subcommand is None:
        from tui_trainer.tui.app import run_app

        run_app(runs_dir=runs_dir, presets_dir=presets_dir)


@app.command()
@bad_input
def presets(presets_dir: PresetsDir = None, json_out: JsonOut = False) -> None:
    """List presets with their lecture claim."""
    from tui_trainer.config import all_presets

    items = []
    for p in all_presets(presets_dir):
        cfg = p.resolve()
        items.append(
            {
                "name": p.name,
                "title": cfg.title,
                "section": cfg.section,
                "claim": cfg.claim,
                "scale": cfg.scale,
                "variants": p.variant_names,
                "default_variant": p.default_variant,
                "path": str(p.path),
            }
        )
    if json_out:
        _print_json(items)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="presets")
    for col in ("name", "claim", "title", "variants"):
        table.add_column(col)
    for it in sorted(items, key=lambda i: (i["claim"], i["name"])):
        table.add_row(it["name"], str(it["claim"] or ""), it["title"], ", ".join(it["variants"]))
    Console().print(table)


@app.command()
@bad_input
def show(
    preset: Annotated[str, typer.Argument(help="Preset name or .toml path.")],
    variant: Annotated[str | None, typer.Option("--variant", help="Variant to resolve.")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="key=value override.")] = None,
    presets_dir: PresetsDir = None,
    json_out: JsonOut = False,
) -> None:
    """Print the resolved config of a preset."""
    from tui_trainer.config import config_to_toml, find_preset

    cfg = find_preset(preset, presets_dir).resolve(variant, sets or [])
    if json_out:
        _print_json(cfg.to_dict())
    else:
        typer.echo(config_to_toml(cfg), nl=False)


@app.command()
@bad_input
def run(
    preset: Annotated[str, typer.Argument(help="Preset name or .toml path.")],
    variant: Annotated[str | None, typer.Option("--variant", help="Train this variant.")] = None,
    all_variants: Annotated[bool, typer.Option("--all", help="Train every variant.")] = False,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="key=value override, e.g. optim.lr=0.01.")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.")] = None,
    runs_dir: RunsDir = None,
    presets_dir: PresetsDir = None,
    json_out: JsonOut = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display.")] = False,
) -> None:
    """Train a preset headless, record the run, print a summary."""
    from rich.console import Console

    from tui_trainer.cli.headless import summary_table, train_config
    from tui_trainer.config import find_preset

    if variant and all_variants:
        raise fail("--variant and --all: give one or the other")
    p = find_preset(preset, presets_dir)
    overrides = list(sets or [])
    if device:
        overrides.append(f'train.device="{device}"')
    names: list[str | None] = list(p.variant_names) if all_variants and p.variants else [variant]
    configs = [p.resolve(v, overrides) for v in names]  # every variant checked before training
    console = Console(stderr=json_out)
    results = [train_config(cfg, runs_dir, console, show_progress=not quiet) for cfg in configs]
    if json_out:
        _print_json(results if all_variants else results[0])
    else:
        if not quiet:
            console.print(summary_table(results))
        for r in results:
            console.print(f"{r['status']}: {r['run_dir']}", highlight=False)
            if r.get("error"):
                console.print(f"  {r['error']}", highlight=False, markup=False)
    if any(r["status"] != "finished" for r in results):
        raise typer.Exit(1)


@app.command()
@bad_input
def resume(
    run_ref: RunRef,
    runs_dir: RunsDir = None,
    json_out: JsonOut = False,
) -> None:
    """Continue a stopped run from its last checkpoint, exactly where it left off."""
    from rich.console import Console

    from tui_trainer.cli.headless import train_config
    from tui_trainer.config import load_preset_file
    from tui_trainer.store import RunReader, resolve_run

    run_dir = resolve_run(run_ref, runs_dir)
    with RunReader(run_dir) as r:
        status, meta = r.status(), r.meta()
    if meta.get("kind") == "watch":
        script = " ".join(meta.get("argv") or []) or "your script"
        raise fail(f"{run_dir}: recorded by tui_trainer.watch; run `python {script}` again")
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        raise fail(f"{run_dir}: no checkpoints/last.pt to resume from")
    if status in ("running", "paused"):
        raise fail(f"{run_dir}: the run is still {status}")
    cfg = load_preset_file(run_dir / "config.toml").resolve()
    console = Console(stderr=json_out)
    result = train_config(cfg, runs_dir, console, show_progress=True, resume_dir=run_dir)
    if json_out:
        _print_json(result)
    else:
        console.print(f"{result['status']} at step {result['steps']}: {run_dir}", highlight=False)
    if result["status"] != "finished":
        raise typer.Exit(1)


@app.command()
@bad_input
def runs(runs_dir: RunsDir = None, json_out: JsonOut = False) -> None:
    """List runs and their status, newest first."""
    from tui_trainer.store import list_runs

    items = list_runs(runs_dir)
    if json_out:
        _print_json(
            [
                {
                    "run_id": r.run_id,
                    "run_dir": str(r.run_dir),
                    "preset": r.preset,
                    "variant": r.variant,
                    "status": r.status,
                    "steps": r.steps,
                    "best": r.best,
                    "created": r.created,
                }
                for r in items
            ]
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"runs ({len(items)})")
    for col in ("run", "preset", "variant", "status", "steps", "best", "age"):
        table.add_column(col, overflow="fold")
    now = time.time()
    for r in items:
        best = ", ".join(f"{k}={v:.4g}" for k, v in r.best.items() if k != "step")
        table.add_row(
            r.run_id, r.preset, r.variant, r.status, str(r.steps), best, _age(now - r.created)
        )
    Console().print(table)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@app.command()
@bad_input
def stream(
    run_ref: RunRef,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep reading while it runs.")
    ] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Print the run's records as JSON lines (scalars, layer stats, events)."""
    from tui_trainer.store import LIVE_STATUSES, RunReader, resolve_run
    from tui_trainer.store.stream import stream_records

    reader = RunReader(resolve_run(run_ref, runs_dir))
    out = sys.stdout
    while True:
        tail = reader.tail()
        for record in stream_records(tail):
            out.write(json.dumps(record, allow_nan=False, default=str) + "\n")
        out.flush()
        if tail:
            continue  # a table may hold more than one tail's limit: read on until caught up
        if not follow or reader.status() not in LIVE_STATUSES:
            break
        time.sleep(0.25)


@app.command()
@bad_input
def stop(
    run_ref: RunRef,
    runs_dir: RunsDir = None,
) -> None:
    """Ask a running run to checkpoint and stop."""
    from tui_trainer.store import LIVE_STATUSES, RunReader, resolve_run, send_control

    run_dir = resolve_run(run_ref, runs_dir)
    with RunReader(run_dir) as reader:
        status = reader.status()
    if status not in LIVE_STATUSES:
        raise fail(f"run {run_dir.name} is {status}, not running", code=1)
    send_control(run_dir, "stop")
    typer.echo(f"asked {run_dir.name} to stop")


@app.command()
@bad_input
def export(
    run_ref: RunRef,
    fmt: Annotated[str, typer.Option("--format", help="csv or tensorboard.")] = "csv",
    out: Annotated[str, typer.Option("--out", help="Directory to write.")] = "",
    runs_dir: RunsDir = None,
) -> None:
    """Export a run's records: CSV files, or TensorBoard event files."""
    from tui_trainer.store import resolve_run

    if fmt not in ("csv", "tensorboard"):
        raise fail(f"--format {fmt}: expected csv or tensorboard")
    if not out:
        raise fail("--out: expected a directory to write the export to")
    run_dir = resolve_run(run_ref, runs_dir)
    if fmt == "csv":
        from tui_trainer.store.export import export_csv

        for path in export_csv(run_dir, Path(out)):
            typer.echo(str(path))
    else:
        from tui_trainer.store.export_tb import export_tensorboard

        typer.echo(str(export_tensorboard(run_dir, Path(out))))


@app.command()
@bad_input
def attach(
    run_ref: Annotated[
        str, typer.Argument(metavar="[RUN|latest]", help="Run id, prefix, path or latest.")
    ] = "latest",
    ssh: Annotated[
        str | None, typer.Option("--ssh", help="Open the dashboard on HOST over ssh.")
    ] = None,
    runs_dir: RunsDir = None,
) -> None:
    """Open the dashboard on a live or finished run."""
    if ssh:
        import os
        import shlex

        remote = "tui-trainer attach " + shlex.quote(run_ref)
        if runs_dir:
            remote += " --runs-dir " + shlex.quote(runs_dir)
        os.execvp("ssh", ["ssh", "-t", ssh, remote])
    from tui_trainer.store import resolve_run
    from tui_trainer.tui.app import run_app

    run_app(runs_dir=runs_dir, attach=resolve_run(run_ref, runs_dir))


@app.command()
@bad_input
def diagnose(
    run_ref: RunRef,
    runs_dir: RunsDir = None,
    json_out: JsonOut = False,
) -> None:
    """Findings from a run's statistics: vanishing/exploding layers, dead units, ..."""
    from tui_trainer.diagnose import diagnose_run
    from tui_trainer.store import resolve_run

    findings = diagnose_run(resolve_run(run_ref, runs_dir))
    if json_out:
        _print_json([f.to_dict() for f in findings])
        return
    if not findings:
        typer.echo("no findings: nothing looks wrong")
    for f in findings:
        typer.echo(f"[{f.severity}] {f.rule}: {f.message}")
        typer.echo(f"    remedy: {f.remedy}")


@app.command()
@bad_input
def verify(
    names: Annotated[list[str] | None, typer.Argument(metavar="[PRESET]...")] = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Repeat with N seeds.")] = 1,
    runs_dir: RunsDir = None,
    presets_dir: PresetsDir = None,
    json_out: JsonOut = False,
) -> None:
    """Check the presets' lecture claims; print a table; exit 1 if one fails."""
    from tui_trainer.cli.verify import verify_command

    code = verify_command(names or [], seeds, runs_dir, presets_dir, json_out)
    raise typer.Exit(code)


@app.command()
def doctor() -> None:
    """The environment: Python, torch, CUDA/MPS, GPUs, cores, terminal."""
    from tui_trainer.cli.doctor import report

    for key, value in report():
        typer.echo(f"{key:>16}: {value}")


def main() -> None:
    app(prog_name="tui-trainer")
