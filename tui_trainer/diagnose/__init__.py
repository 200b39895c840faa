"""Provides diagnose_run: findings in plain language from a run's recorded statistics.

Rules read what the probes and the trainer recorded (``layer_stats``, scalars, events) and
say what is wrong, where, since when, with the numbers behind it and the lecture's remedy.
Standard library only (no torch): the app, ``tui-trainer diagnose`` and the lecture checks
use it on live or finished runs.

``thresholds`` holds the numbers the rules judge by (and where they come from), ``model``
the Finding and what the rules read, ``rules`` the rules themselves.
"""

from __future__ import annotations

from pathlib import Path

from tui_trainer.diagnose.model import Finding, RunData
from tui_trainer.diagnose.rules import (  # noqa: F401 (re-exported: the rules by name)
    RULES,
    dead_relu,
    depth_ratio,
    divergence,
    exploding_norm,
    loss_plateau,
    overfitting,
    saturated,
    update_ratio,
)
from tui_trainer.diagnose.thresholds import (  # noqa: F401 (re-exported: dg.VANISHING_RATIO, ...)
    DEAD_FRAC,
    EARLY,
    EXPLAINED_BY,
    EXPLODING_GROWTH,
    EXPLODING_RATIO,
    MIN_EVALS,
    MIN_LOSS_POINTS,
    MIN_SAMPLES,
    OVERFIT_RISE,
    PLATEAU_DROP,
    RELU_LIKE,
    REMEDIES,
    SATURATED_FRAC,
    SATURATING,
    SEVERITY_ORDER,
    SUSTAINED,
    UPDATE_HIGH,
    UPDATE_LOW,
    VANISHING_RATIO,
)
from tui_trainer.store import RunReader

__all__ = ["RULES", "Finding", "diagnose_reader", "diagnose_run"]


def diagnose_run(run_dir: str | Path) -> list[Finding]:
    """Findings for the run in ``run_dir``, most severe first."""
    with RunReader(run_dir) as reader:
        return diagnose_reader(reader)


def diagnose_reader(reader: RunReader) -> list[Finding]:
    """Findings from an open reader (a live run too: rules use what is recorded so far)."""
    data = RunData(reader)
    found: dict[str, Finding] = {}
    for rule in RULES:
        for f in rule(data):
            found.setdefault(f.rule, f)  # two ways to see one problem: the first says it
    for rule, causes in EXPLAINED_BY.items():
        if rule in found and causes & found.keys():
            del found[rule]
    return sorted(found.values(), key=lambda f: SEVERITY_ORDER.get(f.severity, 9))


def main(argv: list[str] | None = None) -> int:
    """``python -m tui_trainer.diagnose [--nice] RUN_DIR``: the findings as one JSON list.

    The app runs this in a child process, so a long run's record never fills the app's
    memory; ``--nice`` lowers its priority below the dashboard's and the training's."""
    import json
    import os
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if "--nice" in args:
        args.remove("--nice")
        if hasattr(os, "nice"):
            os.nice(10)
    if len(args) != 1:
        print("usage: python -m tui_trainer.diagnose [--nice] RUN_DIR", file=sys.stderr)
        return 2
    print(json.dumps([f.to_dict() for f in diagnose_run(args[0])], default=str))
    return 0
