"""Provides run listing, lookup and deletion: list_runs, resolve_run, delete_run."""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_trainer.store.reader import RunReader, effective_status
from tui_trainer.store.schema import RUN_ID, StoreError, runs_root

__all__ = ["RunInfo", "delete_run", "list_runs", "resolve_run"]


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_dir: Path
    preset: str
    variant: str
    status: str
    created: float
    steps: int
    best: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """What ``runs --json`` prints for the run."""
        return {
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "preset": self.preset,
            "variant": self.variant,
            "status": self.status,
            "steps": self.steps,
            "best": self.best,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunInfo:
        """A run as ``runs --json`` printed it (on another box)."""
        return cls(
            run_id=str(d["run_id"]),
            run_dir=Path(str(d.get("run_dir", ""))),
            preset=str(d.get("preset", "")),
            variant=str(d.get("variant", "")),
            status=str(d.get("status", "")),
            created=float(d.get("created") or 0),
            steps=int(d.get("steps") or 0),
            best=dict(d.get("best") or {}),
        )


def list_runs(runs_dir: str | os.PathLike[str] | None = None) -> list[RunInfo]:
    """Runs under the runs directory, newest first."""
    root = runs_root(runs_dir)
    out: list[RunInfo] = []
    if not root.is_dir():
        return out
    for d in root.iterdir():
        if d.name.startswith(".") or not (d / "run.db").is_file():
            continue
        try:
            with RunReader(d) as r:
                meta = r.meta()
            info = RunInfo(
                run_id=d.name,
                run_dir=d,
                preset=str(meta.get("preset", "?")),
                variant=str(meta.get("variant", "")),
                status=effective_status(meta),
                created=float(meta.get("created", 0.0)),
                steps=int(meta.get("step") or 0),
                best=dict(meta.get("best") or {}),
            )
        except (sqlite3.Error, StoreError, ValueError, TypeError):
            continue  # a damaged store or meta row, another schema: not this list's to break
        out.append(info)
    out.sort(key=lambda r: (r.created, r.run_id), reverse=True)
    return out


def resolve_run(ref: str, runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """A run directory from ``latest``, a run id, a unique id prefix or a path to a run."""
    root = runs_root(runs_dir)
    if ref == "latest":
        runs = list_runs(root)
        if not runs:
            raise StoreError(f"no runs in {root}")
        return runs[0].run_dir
    p = Path(ref)
    if (p / "run.db").is_file():
        return p
    if not RUN_ID.match(ref):
        raise StoreError(f"run {ref!r}: not a run id or a run directory")
    if (root / ref / "run.db").is_file():
        return root / ref
    matches = [r.run_dir for r in list_runs(root) if r.run_id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise StoreError(f"run {ref!r}: not found in {root}")
    raise StoreError(f"run {ref!r}: ambiguous in {root} ({len(matches)} runs match)")


def delete_run(run_dir: str | os.PathLike[str]) -> None:
    """Remove a run directory for good: first renamed out of sight (one atomic step, so a
    lister or follower never sees half a run, nor recreates a file in it), then removed."""
    target = Path(run_dir)
    if not (target / "run.db").is_file():
        raise StoreError(f"{target}: not a run directory (no run.db)")
    trash = target.with_name(f".deleting-{target.name}-{secrets.token_hex(3)}")
    target.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)
