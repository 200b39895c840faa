"""Provides ``tui-trainer verify``: train the presets' variants and check their lecture claims.

For each preset named (by default every preset of ``scale = "cpu"`` that has checks), the
variants its ``[expect]`` checks read are trained headless, once per seed, as ordinary
recorded runs; then every check is evaluated on those runs (see ``tui_trainer.config.expect`` for
the schema). Output: a table (preset, claim, check, measured, expected, pass/fail), or with
``--json`` exactly ``{"checks": [{"preset", "claim", "check", "measured", "expected",
"passed"}, ...]}`` on stdout. Progress goes to stderr. torch is imported only to train.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from typing import Any

from tui_trainer.config import PresetFile
from tui_trainer.config.expect import (
    OPS,
    Check,
    RunView,
    bind_variants,
    measure,
    parse_expect,
    required_passes,
)
from tui_trainer.text import run_label

__all__ = ["CheckResult", "PresetPlan", "evaluate", "plan", "verify_command"]


@dataclass
class PresetPlan:
    """What verify trains for one preset: its checks, the variants they read, the seeds."""

    preset: PresetFile
    claim: int
    checks: list[Check]
    variants: list[str]  # in the preset's order; "" for a preset without variants
    seeds: list[int]
    runs: dict[tuple[str, int], str] = field(default_factory=dict)  # (variant, seed) -> run_dir


@dataclass(frozen=True)
class CheckResult:
    preset: str
    claim: int
    check: str
    measured: str
    expected: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "claim": self.claim,
            "check": self.check,
            "measured": self.measured,
            "expected": self.expected,
            "passed": self.passed,
        }


def plan(names: list[str], seeds: int, presets_dir: str | None = None) -> list[PresetPlan]:
    """Resolve the presets and their checks; bad input raises ValueError (one line)."""
    from tui_trainer.config import all_presets, find_preset

    if seeds < 1:
        raise ValueError(f"--seeds: expected an integer >= 1, got {seeds}")
    if names:
        presets = [find_preset(n, presets_dir) for n in names]
    else:
        presets = sorted(
            (p for p in all_presets(presets_dir)
             if p.resolve().scale == "cpu" and p.resolve().expect),
            key=lambda p: (p.resolve().claim, p.name),
        )
    plans = []
    for p in presets:
        cfg = p.resolve()
        checks = parse_expect(cfg.expect, str(p.path)) if cfg.expect else []
        if not checks:
            raise ValueError(f"{p.path}: preset {p.name!r} has no [expect] checks to verify")
        checks = [_bind_variants(c, p) for c in checks]
        wanted = {v for c in checks for v in c.variants}
        order = p.variant_names or [""]
        n = max([seeds] + [c.seeds for c in checks])
        plans.append(
            PresetPlan(p, cfg.claim, checks, [v for v in order if v in wanted],
                       [cfg.train.seed + i for i in range(n)])
        )
    return plans


def _bind_variants(check: Check, p: PresetFile) -> Check:
    """Map "" to the default variant (the preset was checked for unknown ones on load)."""
    return bind_variants(check, list(p.variants), p.default_variant, str(p.path))


def train_plan(item: PresetPlan, runs_dir: str | None, console: Any) -> None:
    """Train every (variant, seed) of the plan, recording the run directories."""
    import time

    from tui_trainer.cli.headless import train_config

    for variant in item.variants:
        for seed in item.seeds:
            cfg = item.preset.resolve(variant or None, [f"train.seed={seed}"])
            label = f"{run_label(item.preset.name, variant)} seed {seed}"
            t0 = time.perf_counter()
            out = train_config(cfg, runs_dir, console, show_progress=console.is_terminal)
            item.runs[(variant, seed)] = out["run_dir"]
            console.print(
                f"verify: {label}: {out['status']} in {time.perf_counter() - t0:.1f}s, "
                f"{out['steps']} steps ({out['run_dir']})",
                highlight=False, markup=False, soft_wrap=True,
            )
            if out["status"] == "stopped":  # a stop stops verify, not just this run
                import typer

                console.print("verify: stopped; the remaining runs were not started")
                raise typer.Exit(1)


def evaluate(item: PresetPlan) -> list[CheckResult]:
    """Evaluate the plan's checks on its runs (``item.runs``)."""
    from tui_trainer.store import RunReader

    views: dict[tuple[str, int], RunView] = {}
    readers = []
    try:
        for key, run_dir in item.runs.items():
            reader = RunReader(run_dir)
            readers.append(reader)
            views[key] = RunView(reader)
        return [_evaluate_check(item, c, views) for c in item.checks]
    finally:
        for r in readers:
            r.close()


def _evaluate_check(
    item: PresetPlan, check: Check, views: dict[tuple[str, int], RunView]
) -> CheckResult:
    n = len(item.seeds)
    per_seed, passes = [], 0
    for seed in item.seeds:
        left = _value(views, check.left, seed)
        right = _value(views, check.right, seed) if check.right is not None else None
        ok = compare(check, left, right)
        passes += ok
        text = _describe(check, left, right)
        unfinished = []
        for v in check.variants:
            status = views[(v, seed)].meta.get("status") if (v, seed) in views else "missing"
            if status != "finished":
                unfinished.append(f"{v} {status}".strip())
        per_seed.append(text + (f" (run {', '.join(unfinished)})" if unfinished else ""))
    need = required_passes(check, n)
    measured = per_seed[0] if n == 1 else f"{passes}/{n} seeds pass: " + "; ".join(per_seed)
    return CheckResult(
        item.preset.name, item.claim, check.text, measured, check.expected(n), passes >= need
    )


def _value(views: dict[tuple[str, int], RunView], ref: Any, seed: int) -> float | None:
    """The number ref names on the seed's run; None unless that run finished (a diverged
    or crashed run proves nothing, whatever it recorded before it stopped)."""
    view = views.get((ref.variant, seed))
    if view is None or view.meta.get("status") != "finished":
        return None
    return measure(view, ref)


def compare(check: Check, left: float | None, right: float | None) -> bool:
    """Whether one seed's numbers satisfy the check; a missing or NaN number fails."""
    rhs = check.value if check.right is None else (
        None if right is None else check.factor * right
    )
    if left is None or rhs is None or math.isnan(left) or math.isnan(rhs):
        return False
    if math.isinf(left) and math.isinf(rhs):
        return False  # neither reached the target: nothing was shown
    return OPS[check.op](left, rhs)


def _describe(check: Check, left: float | None, right: float | None) -> str:
    from tui_trainer.config.expect import _num

    unit = f" {check.left.unit}" if check.left.at == "reach" else ""
    if check.right is None:
        return f"{_num(left)}{unit}"
    l_name = r_name = ""
    if check.right.variant != check.left.variant:
        l_name, r_name = f"{check.left.variant} ", f"{check.right.variant} "
    elif check.right.metric != check.left.metric:
        r_name = f"{check.right.metric} "
    text = f"{l_name}{_num(left)} vs {r_name}{_num(right)}{unit}"
    if (
        check.factor != 1 and left is not None and right
        and math.isfinite(left) and math.isfinite(right)
    ):
        text += f" ({left / right:.3g}x)"
    return text


def verify_command(
    names: list[str],
    seeds: int,
    runs_dir: str | None,
    presets_dir: str | None,
    json_out: bool,
) -> int:
    """``tui-trainer verify``: 0 all checks pass, 1 one failed; bad input raises ValueError."""
    from rich.console import Console

    from tui_trainer.config.preflight import check_inputs

    plans = plan(names, seeds, presets_dir)
    for item in plans:  # data files and factories, before the first run trains
        for v in item.variants:
            check_inputs(item.preset.resolve(v or None))
    progress = Console(stderr=True)
    results: list[CheckResult] = []
    for item in plans:
        train_plan(item, runs_dir, progress)
        results.extend(evaluate(item))
    if json_out:
        sys.stdout.write(json.dumps({"checks": [r.to_dict() for r in results]}, indent=2) + "\n")
    else:
        Console().print(results_table(results))
    return 0 if all(r.passed for r in results) else 1


def results_table(results: list[CheckResult]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="tui-trainer verify: the lecture's claims")
    for col in ("preset", "claim", "check", "measured", "expected", "result"):
        table.add_column(col, overflow="fold")
    for r in results:
        verdict = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
        table.add_row(
            r.preset, str(r.claim), Text(r.check), Text(r.measured), Text(r.expected), verdict
        )
    return table
