"""Provides the ``tui-trainer`` Typer app and what its commands share: the option types,
``fail`` (one line on stderr, exit 2) and ``bad_input``; the commands themselves are in
``preset_commands.py`` (presets, show, run, pause, resume, verify) and ``run_commands.py`` (the
commands on recorded runs).

torch is never imported at module level: ``tui-trainer --help`` stays fast, and only
commands that train pay for it. Bad input exits 2 with one line on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer

__all__ = [
    "JsonOut",
    "PresetsDir",
    "RunRef",
    "RunsDir",
    "app",
    "bad_input",
    "fail",
    "main",
    "print_json",
]

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
        except (ValueError, StoreError, OSError) as exc:  # OSError: a path, a permission
            raise fail(first_line(exc)) from None

    return wrapper  # type: ignore[return-value]


def ask_live_run(run_ref: str, runs_dir: str | None, command: str, code: int = 2) -> None:
    """Send a live run a control row and say so; a run that is not live exits ``code``."""
    from tui_trainer.store import LIVE_STATUSES, RunReader, resolve_run, send_control

    run_dir = resolve_run(run_ref, runs_dir)
    with RunReader(run_dir) as reader:
        status = reader.status()
    if status not in LIVE_STATUSES:
        raise fail(f"run {run_dir.name} is {status}, not running", code=code)
    send_control(run_dir, command)
    typer.echo(f"asked {run_dir.name} to {command}")


def print_json(doc: Any) -> None:
    """One strict JSON document: a value that is not finite is "nan", "inf" or "-inf"."""
    from tui_trainer.store.schema import strict_json

    sys.stdout.write(json.dumps(strict_json(doc), indent=2, default=str, allow_nan=False) + "\n")


@app.callback()
def root(
    ctx: typer.Context,
    runs_dir: RunsDir = None,
    presets_dir: PresetsDir = None,
    ssh: Annotated[
        list[str] | None,
        typer.Option("--ssh", metavar="HOST", help="List the runs of HOST too (repeatable)."),
    ] = None,
    remote_cmd: Annotated[
        str | None, typer.Option("--remote-cmd", help="tui-trainer on those hosts.")
    ] = None,
) -> None:
    """Open the app (preset picker) when no command is given."""
    if ctx.invoked_subcommand is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            headless_demo(runs_dir, presets_dir)
            return
        from tui_trainer.remote import Remote
        from tui_trainer.tui.app import run_app

        for host in ssh or []:
            try:
                Remote(host)
            except ValueError as exc:
                raise fail(str(exc)) from None
        run_app(runs_dir=runs_dir, presets_dir=presets_dir, hosts=ssh, remote_cmd=remote_cmd)


DEMO = "digits-mlp"


def headless_demo(runs_dir: str | None, presets_dir: str | None) -> None:
    """Without a terminal (piped, in a script) the app cannot draw: say so in one line and
    train the demo headless instead (plain progress lines, ``run``'s exit code)."""
    from tui_trainer.cli.preset_commands import run

    typer.echo(
        f"tui-trainer: the app needs a terminal (stdin and stdout are not one); "
        f"running the headless demo instead: tui-trainer run {DEMO}",
        err=True,
    )
    run(DEMO, runs_dir=runs_dir, presets_dir=presets_dir)


def main() -> None:
    app(prog_name="tui-trainer")
