"""Provides read_overview: what a run is and where it came from, for the overview pane.

Plain Python (no Textual): the resolved config (config.toml), preset and claim, host,
device and versions, start, end and duration, the status history (status events), the
checkpoint files, and the commands that repeat the run or continue it.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.store import LIVE_STATUSES, RunReader

__all__ = ["Overview", "override_sets", "read_overview", "repeat_commands"]

SKIP_SETS = frozenset({"preset", "variant", "title", "section", "claim", "description"})


@dataclass(frozen=True)
class Overview:
    """One run's provenance, read at one moment."""

    run_id: str
    meta: dict[str, Any]
    status: str
    config_toml: str
    statuses: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    checkpoints: list[tuple[str, int, float]] = field(default_factory=list)  # name, bytes, mtime
    commands: list[tuple[str, str]] = field(default_factory=list)  # what it does, the command

    @property
    def duration_s(self) -> float | None:
        started = self.meta.get("started")
        if not isinstance(started, int | float):
            return None
        ended = self.meta.get("ended")
        if self.status in LIVE_STATUSES or not isinstance(ended, int | float):
            ended = time.time()
        return max(0.0, float(ended) - float(started))


def read_overview(run_dir: Path) -> Overview:
    run_dir = Path(run_dir)
    with RunReader(run_dir) as reader:
        meta, status = reader.meta(), reader.status()
        statuses = [(w, s, d) for s, w, _, d in reader.events("status")]
    try:
        toml = (run_dir / "config.toml").read_text(encoding="utf-8")
    except OSError:
        toml = ""
    return Overview(
        run_dir.name, meta, status, toml, statuses, checkpoints(run_dir),
        repeat_commands(run_dir, meta, status),
    )  # fmt: skip


def checkpoints(run_dir: Path) -> list[tuple[str, int, float]]:
    """The run's checkpoint files (checkpoints/*.pt), newest first."""
    out = []
    try:
        files = list((run_dir / "checkpoints").glob("*.pt"))
    except OSError:
        return []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        out.append((f.name, st.st_size, st.st_mtime))
    return sorted(out, key=lambda c: (-c[2], c[0]))


def repeat_commands(run_dir: Path, meta: dict[str, Any], status: str) -> list[tuple[str, str]]:
    """What repeats the run (the preset with its overrides; exactly its config.toml) and,
    for a stopped or crashed run with a checkpoint, what continues it."""
    rid = run_dir.name
    if meta.get("kind") == "watch":
        argv = [str(a) for a in meta.get("argv") or []]
        return [("run the script again", shlex.join(["python", *argv]))] if argv else []
    out = []
    preset, variant = str(meta.get("preset") or ""), str(meta.get("variant") or "")
    sets = override_sets(preset, variant, meta.get("config") or {})
    if sets is not None:
        argv = ["tui-trainer", "run", preset] + (["--variant", variant] if variant else [])
        for s in sets:
            argv += ["--set", s]
        out.append(("the preset again, with this run's overrides", shlex.join(argv)))
    shown = _shown(run_dir)
    out.append(("exactly this config", shlex.join(["tui-trainer", "run", f"{shown}/config.toml"])))
    resume = ["tui-trainer", "resume", rid]
    if shown.parent != Path("runs"):
        resume += ["--runs-dir", str(shown.parent)]
    if status in ("stopped", "crashed") and (run_dir / "checkpoints" / "last.pt").is_file():
        out.append(("continue it from checkpoints/last.pt", shlex.join(resume)))
    elif status == "paused":
        out.append(("continue it", shlex.join(resume)))
    return out


def _shown(run_dir: Path) -> Path:
    """The run directory as a person would type it here: relative to the working
    directory when it is below it."""
    try:
        return run_dir.resolve().relative_to(Path.cwd().resolve())
    except (ValueError, OSError):
        return run_dir


def override_sets(preset: str, variant: str, config: dict[str, Any]) -> list[str] | None:
    """The ``--set key=value`` that turn the preset's variant into ``config``; None when the
    preset is not found here (or its files no longer resolve)."""
    from tui_trainer.config.presets import find_preset

    try:
        base = json.loads(find_preset(preset).resolve(variant or None).to_json())
    except Exception:  # noqa: BLE001 (a preset renamed, edited into an error, removed)
        return None
    ours, theirs = _flat(config), _flat(base)
    sets = []
    for key in sorted(ours):
        skip = key.split(".")[0] in SKIP_SETS or "." not in key or ours[key] is None
        if skip or theirs.get(key) == ours[key]:
            continue
        sets.append(f"{key}={_toml_value(ours[key])}")
    return sets


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str | list):
        return json.dumps(v)
    return str(v)
