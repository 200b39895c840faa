"""Provides the commands on recorded runs: ``runs``, ``stream``, ``stop``, ``export``,
``attach``, ``diagnose``; and ``doctor``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from tui_trainer.cli.root import (
    JsonOut,
    RunRef,
    RunsDir,
    app,
    ask_live_run,
    bad_input,
    fail,
    print_json,
)

SshHost = Annotated[
    str | None,
    typer.Option("--ssh", metavar="HOST", help="On HOST, over ssh ($TUI_TRAINER_SSH)."),
]
RemoteCmd = Annotated[
    str | None,
    typer.Option(
        "--remote-cmd",
        help="tui-trainer on the remote side (default $TUI_TRAINER_REMOTE_CMD or tui-trainer).",
    ),
]


CONTROLS = ("pause", "resume", "stop", "checkpoint")


@app.command()
@bad_input
def runs(
    runs_dir: RunsDir = None,
    json_out: JsonOut = False,
    ssh: SshHost = None,
    remote_cmd: RemoteCmd = None,
) -> None:
    """List runs and their status, newest first (with --ssh: a remote box's runs)."""
    if ssh:
        from tui_trainer.cli.remote import remote_runs

        items = remote_runs(ssh, remote_cmd, runs_dir)
    else:
        from tui_trainer.store import list_runs

        items = [r.to_dict() for r in list_runs(runs_dir)]
    if json_out:
        print_json(items)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"runs ({len(items)})" + (f" on {ssh}" if ssh else ""))
    for col in ("run", "preset", "variant", "status", "steps", "best", "age"):
        table.add_column(col, overflow="fold")
    now = time.time()
    for r in items:
        best = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, int | float) else f"{k}={v}"
            for k, v in (r.get("best") or {}).items()
            if k != "step"
        )
        age = _age(now - float(r.get("created") or now))
        table.add_row(
            r["run_id"], r["preset"], r["variant"], r["status"], str(r["steps"]), best, age
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
    since: Annotated[
        str | None, typer.Option("--since", help="Resume after this cursor (from a line).")
    ] = None,
    every: Annotated[
        int, typer.Option("--every", help="Every K-th scalar and layer row (slow links).")
    ] = 1,
    runs_dir: RunsDir = None,
    ssh: SshHost = None,
    remote_cmd: RemoteCmd = None,
) -> None:
    """Print the run's records as JSON lines: hello, meta, layers, records, end
    (docs/stream.md)."""
    from tui_trainer.store.stream import parse_cursor, write_stream

    if since:
        parse_cursor(since)  # a bad cursor is bad input here, not over there
    if every < 1:
        raise fail(f"--every {every}: expected an integer >= 1")
    if ssh:
        from tui_trainer.cli.remote import remote_stream

        code = remote_stream(
            ssh, remote_cmd, runs_dir, run_ref, follow=follow, since=since, every=every
        )
        raise typer.Exit(code)
    from tui_trainer.store import RunReader, resolve_run

    with RunReader(resolve_run(run_ref, runs_dir)) as reader:
        try:
            write_stream(reader, sys.stdout, follow=follow, since=since, every=every)
        except BrokenPipeError:  # the reader went away (| head, a dropped ssh)
            sys.stderr.close()


@app.command()
@bad_input
def stop(
    run_ref: RunRef,
    runs_dir: RunsDir = None,
) -> None:
    """Ask a running run to checkpoint and stop."""
    ask_live_run(run_ref, runs_dir, "stop")


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
    ssh: SshHost = None,
    remote_cmd: RemoteCmd = None,
    remote_ui: Annotated[
        bool, typer.Option("--remote-ui", help="With --ssh: run the whole app there (ssh -t).")
    ] = False,
    every: Annotated[
        int, typer.Option("--every", help="With --ssh: every K-th scalar (slow links).")
    ] = 1,
    runs_dir: RunsDir = None,
) -> None:
    """Open the dashboard on a live or finished run (with --ssh: a run on HOST, drawn here)."""
    if every < 1:
        raise fail(f"--every {every}: expected an integer >= 1")
    if ssh:
        from tui_trainer.cli.remote import remote_attach

        remote_attach(ssh, remote_cmd, runs_dir, run_ref, remote_ui=remote_ui, every=every)
        return
    from tui_trainer.store import resolve_run
    from tui_trainer.tui.app import run_app

    run_app(runs_dir=runs_dir, attach=resolve_run(run_ref, runs_dir))


@app.command()
@bad_input
def control(
    run_ref: RunRef,
    command: Annotated[str, typer.Argument(help="pause, resume, stop or checkpoint.")],
    runs_dir: RunsDir = None,
) -> None:
    """Send a live run a control: pause, resume, stop or checkpoint (what the app's keys do)."""
    if command not in CONTROLS:
        raise fail(f"{command!r}: expected one of {', '.join(CONTROLS)}")
    ask_live_run(run_ref, runs_dir, command)


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
        print_json([f.to_dict() for f in findings])
        return
    if not findings:
        typer.echo("no findings: nothing looks wrong")
    for f in findings:
        typer.echo(f"[{f.severity}] {f.rule}: {f.message}")
        typer.echo(f"    remedy: {f.remedy}")


@app.command()
def doctor() -> None:
    """The environment: Python, torch, CUDA/MPS, GPUs, cores, terminal."""
    from tui_trainer.cli.doctor import report

    for key, value in report():
        typer.echo(f"{key:>16}: {value}")
