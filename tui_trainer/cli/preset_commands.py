"""Provides the commands on presets: ``presets``, ``show``, ``run`` (``--detach``: in the
background), ``pause`` and ``resume`` (a live run, or a stopped one from its checkpoint),
``verify``."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tui_trainer.cli.root import (
    JsonOut,
    PresetsDir,
    RunRef,
    RunsDir,
    app,
    ask_live_run,
    bad_input,
    fail,
    print_json,
)

if TYPE_CHECKING:
    from tui_trainer.config import RunConfig
    from tui_trainer.runner.torchrun import Launch


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
        print_json(items)
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
        print_json(cfg.to_dict())
    else:
        typer.echo(config_to_toml(cfg), nl=False)


# --nproc and the nodes: passed to torch.distributed.run (docs/distributed.md)
Nproc = Annotated[
    int | None,
    typer.Option("--nproc", help="Processes (per node) through torch.distributed (DDP)."),
]
Nnodes = Annotated[int, typer.Option("--nnodes", help="With --nproc: machines.")]
NodeRank = Annotated[int, typer.Option("--node-rank", help="This machine's rank.")]
RdzvEndpoint = Annotated[
    str, typer.Option("--rdzv-endpoint", help="HOST:PORT of node 0 (--nnodes > 1).")
]


@app.command()
@bad_input
def run(
    preset: Annotated[str, typer.Argument(help="Preset name or .toml path.")],
    variant: Annotated[str | None, typer.Option("--variant", help="Train this variant.")] = None,
    all_variants: Annotated[bool, typer.Option("--all", help="Train every variant.")] = False,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="key=value override, e.g. optim.lr=0.01.")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")
    ] = None,
    runs_dir: RunsDir = None,
    presets_dir: PresetsDir = None,
    json_out: JsonOut = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display.")] = False,
    detach: Annotated[
        bool,
        typer.Option("--detach", help="Train in the background; print the run id and return."),
    ] = False,
    nproc: Nproc = None,
    nnodes: Nnodes = 1,
    node_rank: NodeRank = 0,
    rdzv_endpoint: RdzvEndpoint = "",
) -> None:
    """Train a preset headless, record the run, print a summary (--detach: in the background)."""
    from rich.console import Console

    from tui_trainer.cli.headless import train_config
    from tui_trainer.config import find_preset
    from tui_trainer.runner.torchrun import Launch

    if variant and all_variants:
        raise fail("--variant and --all: give one or the other")
    p = find_preset(preset, presets_dir)
    overrides = list(sets or [])
    if device:
        overrides.append(f'train.device="{device}"')
    names: list[str | None] = list(p.variant_names) if all_variants and p.variants else [variant]
    configs = _checked([p.resolve(v, overrides) for v in names])  # all, before any trains
    launch = Launch(1 if nproc is None else nproc, nnodes, node_rank, rdzv_endpoint)
    distributed = nproc is not None or launch != Launch()  # --nproc 1: one rank, through torchrun
    if detach:
        if distributed:
            _detach_distributed(configs, launch, runs_dir, json_out)
        else:
            _detach(configs, runs_dir, json_out)
        return
    console = Console(stderr=json_out)
    results = []
    if distributed:
        from tui_trainer.cli.distributed import run_distributed

        results = run_distributed(configs, launch, runs_dir, json_out)
    for cfg in configs if not distributed else []:
        results.append(train_config(cfg, runs_dir, console, show_progress=not quiet))
        if results[-1]["status"] == "stopped":  # Ctrl+C, SIGTERM, SIGHUP, `stop`: the command
            break
    _print_results(results, console, json_out, quiet, all_variants, distributed)
    if any(r["status"] != "finished" for r in results):
        raise typer.Exit(1)


def _print_results(
    results: list[dict], console: Any, json_out: bool, quiet: bool, many: bool, distributed: bool
) -> None:
    from tui_trainer.cli.distributed import world_line
    from tui_trainer.cli.headless import summary_table

    if json_out:
        print_json(results if many else results[0])
    else:
        if not quiet and all(r.get("run_id") for r in results):
            console.print(summary_table(results))
        for r in results:
            if distributed and not r.get("run_id"):  # a node other than 0 records nothing
                console.print(f"node {r['node_rank']}: {r['status']} (node 0 records the run)")
                continue
            if distributed:
                console.print(world_line(r), highlight=False)
            console.print(f"{r['status']}: {r['run_dir']}", highlight=False, soft_wrap=True)
            if r.get("error"):
                console.print(f"  {r['error']}", highlight=False, markup=False)


def _checked(configs: list[RunConfig]) -> list[RunConfig]:
    """The configs, once each one's data files and factory module are known to be there."""
    from tui_trainer.config.preflight import check_inputs

    for cfg in configs:
        check_inputs(cfg)
    return configs


def _detach_distributed(
    configs: list[RunConfig], launch: Launch, runs_dir: str | None, json_out: bool
) -> None:
    """--nproc --detach: the ranks' launcher in the background, on one run."""
    from tui_trainer.runner.detached import start_detached

    if len(configs) > 1:
        raise fail("--detach --nproc: one variant at a time (--all would start them together)")
    run_dir, pid = start_detached(configs[0], launch, runs_dir)
    _started([(run_dir, pid)], runs_dir, json_out, f" on {launch.nproc} processes")


def _started(
    runs: list[tuple[Path, int]], runs_dir: str | None, json_out: bool, how: str = ""
) -> None:
    if json_out:
        print_json({"runs": [{"run_id": d.name, "run_dir": str(d), "pid": p} for d, p in runs]})
        return
    where = f" --runs-dir {shlex.quote(runs_dir)}" if runs_dir else ""
    for run_dir, pid in runs:
        typer.echo(f"started {run_dir.name} (pid {pid}){how} in the background: {run_dir}")
        typer.echo(f"  attach: tui-trainer attach {run_dir.name}{where}")


def _detach(configs: list[RunConfig], runs_dir: str | None, json_out: bool) -> None:
    """Start each run as a training child in its own session (the app's "leave running"
    launch): it outlives this command, its terminal and a SIGHUP. Prints how to attach."""
    from tui_trainer.runner import RunSupervisor

    processes = RunSupervisor(runs_dir).start_configs(configs)
    _started([(p.run_dir, p.pid) for p in processes], runs_dir, json_out)


@app.command()
@bad_input
def pause(
    run_ref: RunRef,
    runs_dir: RunsDir = None,
) -> None:
    """Ask a live run to checkpoint and pause; `resume` continues it."""
    ask_live_run(run_ref, runs_dir, "pause")


@app.command()
@bad_input
def resume(
    run_ref: RunRef,
    runs_dir: RunsDir = None,
    json_out: JsonOut = False,
    nproc: Annotated[
        int | None,
        typer.Option(
            "--nproc",
            help="Processes (DDP, this machine); default: as many as the run had.",
        ),
    ] = None,
) -> None:
    """Continue a paused run, or a stopped one from its last checkpoint where it left off."""
    from rich.console import Console

    from tui_trainer.cli.headless import train_config
    from tui_trainer.config import load_preset_file
    from tui_trainer.store import LIVE_STATUSES, RunReader, resolve_run

    run_dir = resolve_run(run_ref, runs_dir)
    with RunReader(run_dir) as r:
        status, meta, controls = r.status(), r.meta(), r.controls()
    if status in LIVE_STATUSES:
        _continue(run_dir, status, controls, json_out)
        return
    if meta.get("kind") == "watch":
        script = " ".join(meta.get("argv") or []) or "your script"
        raise fail(f"{run_dir}: recorded by tui_trainer.watch; run `python {script}` again")
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        raise fail(f"{run_dir}: no checkpoints/last.pt to resume from")
    from tui_trainer.store.writer import claim

    held = claim(run_dir)  # another resume at work: say so before loading anything
    if held is not None:
        held.close()
    cfg = load_preset_file(run_dir / "config.toml").resolve()
    console = Console(stderr=json_out)
    world = _resume_processes(run_dir, meta, nproc)
    if world:  # through torch.distributed.run, every rank from last.pt
        from tui_trainer.cli.distributed import run_distributed, world_line
        from tui_trainer.runner.torchrun import Launch

        (result,) = run_distributed([cfg], Launch(world), runs_dir, json_out, resume_dir=run_dir)
        if not json_out:
            console.print(world_line(result), highlight=False)
    else:
        result = train_config(cfg, runs_dir, console, show_progress=True, resume_dir=run_dir)
    if json_out:
        print_json(result)
    else:
        console.print(f"{result['status']} at step {result['steps']}: {run_dir}", highlight=False)
    if result["status"] != "finished":
        raise typer.Exit(1)


def _resume_processes(run_dir: Path, meta: dict[str, Any], nproc: int | None) -> int:
    """How many DDP processes continue the run: --nproc, else as many as it had on its one
    machine; 0: one plain process (a run that had one)."""
    if nproc is not None:
        if nproc < 1:
            raise fail(f"--nproc {nproc}: expected an integer >= 1")
        return nproc
    world, nodes = int(meta.get("world_size") or 0), int(meta.get("nnodes") or 1)
    if nodes > 1:
        raise fail(
            f"{run_dir.name}: trained on {nodes} machines ({world} processes); resume it on this "
            f"one with --nproc N (the global batch, data.batch_size, stays the same)"
        )
    return world


def _continue(
    run_dir: Path, status: str, controls: list[tuple[int, str, bool]], json_out: bool
) -> None:
    """A live run: send the resume control if it is paused (or a pause is still pending)."""
    from tui_trainer.store import send_control

    pending = [command for _, command, done in controls if not done]
    if status != "paused" and "pause" not in pending:
        raise fail(f"{run_dir}: the run is still {status}, not paused")
    send_control(run_dir, "resume")
    if json_out:
        print_json({"run_id": run_dir.name, "run_dir": str(run_dir), "status": "resuming"})
    else:
        typer.echo(f"asked {run_dir.name} to resume")


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
