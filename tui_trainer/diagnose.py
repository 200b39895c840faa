"""Provides diagnose_run: findings in plain language from a run's recorded statistics.

Rules read what the probes and the trainer recorded (``layer_stats``, scalars, events) and
say what is wrong, where, since when, with the numbers behind it and the lecture's remedy.
Standard library only (no torch): the app, ``tui-trainer diagnose`` and the lecture checks
use it on live or finished runs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_trainer.store import RunReader

__all__ = ["RULES", "Finding", "diagnose_reader", "diagnose_run"]

# -- thresholds, and where they come from -----------------------------------------------------
# First/last layer gradient-norm ratio. The lecture's 20-layer sigmoid MLP measures ~1e-16,
# tanh ~1e-5; ReLU+He, batch norm and residual nets stay within [1e-3, 1e3] (issue 3's band,
# checked by presets/vanishing-gradients.toml). Outside that band, sustained, is a finding.
VANISHING_RATIO = 1e-3
EXPLODING_RATIO = 1e3
SUSTAINED = 0.5  # ... in at least this share of the samples
MIN_SAMPLES = 3  # fewer samples than this: too little to call anything sustained
# Total gradient norm this many times its early level (the least of the first EARLY samples).
# A too-high learning rate on the digits MLP (SGD, lr 20) jumps 1.4 -> 3e8; healthy runs
# here only fall or wander within ~10x.
EXPLODING_GROWTH = 1e3
EARLY = 3
# Fraction of exact zeros in a ReLU layer's output. He-initialised ReLU layers sit near 0.5
# (digits-mlp: 0.24-0.33); at 0.9 most units are off for most inputs (Adam at lr 0.2 on the
# digits MLP drives both layers to 1.0).
DEAD_FRAC = 0.9
# Fraction of sigmoid outputs < 0.01 or > 0.99 (tanh |y| > 0.99): over half means the slope
# is ~0 for most units (tanh with SGD at lr 3 on digits: 0.94-1.0; healthy nets: ~0).
SATURATED_FRAC = 0.5
# Update-to-weight ratio per step: the lecture's rule of thumb is ~1e-3 (Karpathy, CS231n).
# digits-mlp measures 6e-4-8e-4, sigmoid+batch norm 3e-3-7e-3; a learning rate 30x too high
# or 100x too low leaves the band.
UPDATE_HIGH = 3e-2
UPDATE_LOW = 1e-5
# Training loss over the last tenth of the run within 10% of the first tenth: it never got
# going (the 20-layer sigmoid MLP: 2.33 -> 2.31; every healthy preset falls by over 80%).
PLATEAU_DROP = 0.1
MIN_LOSS_POINTS = 8
# Validation loss (median of 3 evaluations) 20% above its minimum at the end while the
# training loss kept falling. digits-mlp's val loss wanders 7-8% above its minimum late in
# the run; 100 training examples at Adam lr 1e-2 end 22% above.
OVERFIT_RISE = 0.2
MIN_EVALS = 6

# A finding that is only a consequence of another is left out: dead ReLUs have zero gradient
# (not "vanishing"), and layers that do not get a gradient do not move ("lr too low").
EXPLAINED_BY = {
    "vanishing_gradients": {"dead_relu"},
    "update_ratio_low": {"dead_relu", "vanishing_gradients", "exploding_gradients", "divergence"},
}
RELU_LIKE = ("relu", "leaky_relu")
SATURATING = ("sigmoid", "tanh")
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

REMEDIES = {
    "vanishing_gradients": "Use ReLU with He initialisation instead of sigmoid/tanh, add batch "
    "normalisation, or add residual connections; initialise carefully (Xavier/He).",
    "exploding_gradients": "Lower the learning rate, clip the gradient norm (train.grad_clip), "
    "initialise carefully; batch normalisation and residual connections keep deep nets stable.",
    "dead_relu": "Lower the learning rate and use He initialisation; batch normalisation before "
    "the ReLU or a leaky ReLU keeps units alive.",
    "saturated": "Use ReLU, or Xavier initialisation and batch normalisation so pre-activations "
    "stay in the sigmoid's/tanh's linear range; lower the learning rate.",
    "update_ratio_high": "Lower the learning rate: updates should be about 1e-3 of the weights "
    "per step.",
    "update_ratio_low": "Raise the learning rate (updates of about 1e-3 of the weights per "
    "step); if only the early layers are slow, treat it as vanishing gradients.",
    "loss_plateau": "Check the learning rate (raise it if updates are tiny, lower it if the loss "
    "jumps), the initialisation and vanishing gradients; normalise the inputs.",
    "divergence": "Lower the learning rate, clip gradients (train.grad_clip), prefer bf16 to "
    "fp16 (or keep the GradScaler), and check the inputs for NaN.",
    "overfitting": "More data or augmentation, dropout, weight decay or a smaller model; or stop "
    "early: the best checkpoint is kept.",
}


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a run, in plain language, with the numbers behind it."""

    rule: str
    severity: str  # "error", "warning" or "info"
    message: str
    layers: tuple[str, ...] = ()
    first_step: int | None = None
    numbers: dict[str, float] = field(default_factory=dict)
    remedy: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "layers": list(self.layers),
            "first_step": self.first_step,
            "numbers": {k: _json_number(v) for k, v in self.numbers.items()},
            "remedy": self.remedy,
        }


def _json_number(v: float) -> float | str | None:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


class RunData:
    """What the rules read from a run, fetched once."""

    def __init__(self, reader: RunReader) -> None:
        self.reader = reader
        self.layers = reader.layers()
        self.names = [layer["name"] for layer in self.layers]
        self.activations = [layer["activation"] for layer in self.layers]
        self.meta = reader.meta()
        self.status = reader.status()
        self._matrices: dict[str, tuple[list[int], list[list[float | None]]]] = {}

    def matrix(self, column: str) -> tuple[list[int], list[list[float | None]]]:
        if column not in self._matrices:
            self._matrices[column] = self.reader.layer_stat_matrix(column)
        return self._matrices[column]

    def series(self, name: str) -> list[tuple[int, float | None]]:
        return self.reader.series(name)


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


# -- helpers ------------------------------------------------------------------------------------
def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _late(row: Sequence[float | None]) -> list[float]:
    """The finite values of the later half of the samples (where a run has settled)."""
    return [v for v in row[len(row) // 2 :] if _finite(v)]  # type: ignore[misc]


def _fmt(v: float) -> str:
    return f"{v:.2g}" if abs(v) < 1e-2 or abs(v) >= 1e3 else f"{v:.3g}"


def _names(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# -- rules ----------------------------------------------------------------------------------
def depth_ratio(d: RunData) -> list[Finding]:
    """Vanishing or exploding gradients by depth: first/last layer gradient-norm ratio."""
    steps, grad = d.matrix("grad_norm")
    if len(grad) < 2:  # one layer, or nothing sampled yet
        return []
    pairs = [
        (s, a / b)
        for s, a, b in zip(steps, grad[0], grad[-1], strict=True)
        if _finite(a) and _finite(b) and b > 0  # type: ignore[operator]
    ]
    if len(pairs) < MIN_SAMPLES:
        return []
    ratios = [r for _, r in pairs]
    median = statistics.median(ratios)
    out = []
    for rule, bad in (
        ("vanishing_gradients", lambda r: r < VANISHING_RATIO),
        ("exploding_gradients", lambda r: r > EXPLODING_RATIO),
    ):
        share = sum(map(bad, ratios)) / len(ratios)
        if share < SUSTAINED:
            continue
        first = next(s for s, r in pairs if bad(r))
        last_med = statistics.median(v for v in grad[-1] if _finite(v))  # type: ignore[type-var]
        layers = []
        for name, row in zip(d.names, grad, strict=False):
            vals = [v for v in row if _finite(v)]
            if vals and bad(statistics.median(vals) / last_med):  # type: ignore[type-var]
                layers.append(name)
        vanish = rule == "vanishing_gradients"
        message = (
            f"Gradients {'vanish' if vanish else 'explode'} toward the input: the first layer's "
            f"gradient norm is {_fmt(median)} times the last layer's (median of {len(ratios)} "
            f"samples; {'below' if vanish else 'above'} "
            f"{_fmt(VANISHING_RATIO if vanish else EXPLODING_RATIO)} in {share:.0%} of them)."
            + (" The early layers barely learn." if vanish else "")
            + (f" Affected: {_names(layers)}." if layers else "")
        )
        numbers = {"median_ratio": median, "min_ratio": min(ratios), "max_ratio": max(ratios)}
        numbers["share_of_samples"] = share
        out.append(Finding(rule, "warning", message, tuple(layers), first, numbers, REMEDIES[rule]))
    return out


def exploding_norm(d: RunData) -> list[Finding]:
    """The total gradient norm grows by orders of magnitude over its early value."""
    rows = [(s, v) for s, v in d.series("grad/total_norm") if v is not None and not math.isnan(v)]
    if len(rows) < EARLY + 1:
        return []
    base = min(v for _, v in rows[:EARLY])
    if base <= 0:
        return []
    peak_step, peak = max(rows[EARLY:], key=lambda sv: sv[1])
    if peak < EXPLODING_GROWTH * base:
        return []
    first = next(s for s, v in rows[EARLY:] if v >= EXPLODING_GROWTH * base)
    steps, grad = d.matrix("grad_norm")
    layers: list[str] = []
    if peak_step in steps:
        j = steps.index(peak_step)
        col = [(row[j], name) for row, name in zip(grad, d.names, strict=False)]
        layers = [name for v, name in sorted(col, key=lambda t: -(t[0] or 0.0))[:3] if v]
    growth = peak / base
    message = (
        f"Gradients explode: the total gradient norm reached {_fmt(peak)} at step {peak_step}, "
        f"{_fmt(growth)} times its early level ({_fmt(base)})."
        + (f" Largest in {_names(layers)}." if layers else "")
    )
    numbers = {"early_norm": base, "peak_norm": peak, "growth": growth}
    rule = "exploding_gradients"
    return [Finding(rule, "warning", message, tuple(layers), first, numbers, REMEDIES[rule])]


def _layer_fraction_rule(
    d: RunData, rule: str, column: str, kinds: tuple[str, ...], limit: float, what: str
) -> list[Finding]:
    steps, matrix = d.matrix(column)
    hits: list[tuple[str, float, int]] = []
    for name, act, row in zip(d.names, d.activations, matrix, strict=False):
        late = _late(row)
        if act not in kinds or len(late) < max(1, MIN_SAMPLES // 2):
            continue
        level = statistics.median(late)
        if level >= limit:
            first = next(s for s, v in zip(steps, row, strict=True) if _finite(v) and v >= limit)  # type: ignore[operator]
            hits.append((name, level, first))
    if not hits:
        return []
    worst = max(hits, key=lambda h: h[1])
    message = (
        f"{len(hits)} layer{'s' if len(hits) > 1 else ''} {what}: {_names([h[0] for h in hits])} "
        f"(worst {worst[0]} at {worst[1]:.0%}, median over the later half of the run; "
        f"threshold {limit:.0%})."
    )
    numbers = {f"{name}": level for name, level, _ in hits}
    first = min(h[2] for h in hits)
    layers = tuple(h[0] for h in hits)
    return [Finding(rule, "warning", message, layers, first, numbers, REMEDIES[rule])]


def dead_relu(d: RunData) -> list[Finding]:
    """ReLU layers whose outputs are almost all exactly zero."""
    return _layer_fraction_rule(
        d, "dead_relu", "dead_frac", RELU_LIKE, DEAD_FRAC,
        "mostly dead (outputs exactly zero): those units no longer learn",
    )  # fmt: skip


def saturated(d: RunData) -> list[Finding]:
    """Sigmoid/tanh layers stuck at their bounds, where the slope is ~0."""
    return _layer_fraction_rule(
        d, "saturated", "sat_frac", SATURATING, SATURATED_FRAC,
        "saturated (outputs at the sigmoid's/tanh's bounds, slope ~0)",
    )  # fmt: skip


def update_ratio(d: RunData) -> list[Finding]:
    """Update-to-weight ratio far from ~1e-3: the learning rate is too high or too low."""
    steps, matrix = d.matrix("update_ratio")
    per_layer = []
    for name, row in zip(d.names, matrix, strict=False):
        late = [v for v in _late(row) if v >= 0]
        if late:
            per_layer.append((name, statistics.median(late)))
    if not per_layer or len(steps) < MIN_SAMPLES:
        return []
    level = statistics.median(v for _, v in per_layer)
    if UPDATE_LOW <= level <= UPDATE_HIGH:
        return []
    high = level > UPDATE_HIGH
    rule = "update_ratio_high" if high else "update_ratio_low"
    layers = tuple(n for n, v in per_layer if (v > UPDATE_HIGH if high else v < UPDATE_LOW))
    message = (
        f"Each step changes the weights by {_fmt(level)} of their size (median over layers, "
        f"later half of the run); about 1e-3 is healthy. The learning rate looks too "
        f"{'high' if high else 'low'}."
    )
    numbers = {"median_update_ratio": level, **dict(per_layer)}
    first = steps[len(steps) // 2] if steps else None
    return [Finding(rule, "warning", message, layers, first, numbers, REMEDIES[rule])]


def loss_plateau(d: RunData) -> list[Finding]:
    """The training loss barely moved over the run."""
    rows = [(s, v) for s, v in d.series("train/loss") if _finite(v)]
    if len(rows) < MIN_LOSS_POINTS:
        return []
    k = max(2, len(rows) // 10)
    start = statistics.median(v for _, v in rows[:k])  # type: ignore[type-var]
    end = statistics.median(v for _, v in rows[-k:])  # type: ignore[type-var]
    if start <= 0 or end < (1 - PLATEAU_DROP) * start:
        return []
    message = (
        f"The training loss has not fallen: {_fmt(start)} at the start, {_fmt(end)} at the "
        f"end (step {rows[-1][0]}). The network is not learning."
    )
    numbers = {"start_loss": start, "end_loss": end, "relative_drop": 1 - end / start}
    rule = "loss_plateau"
    return [Finding(rule, "warning", message, (), rows[0][0], numbers, REMEDIES[rule])]


def divergence(d: RunData) -> list[Finding]:
    """Non-finite loss or statistics, or a run stopped as diverged."""
    events = [(s, e) for s, _, _, e in d.reader.events("nonfinite")]
    bad_loss = [s for s, v in d.series("train/loss") if v is None or not math.isfinite(v)]
    if not events and not bad_loss and d.status != "diverged":
        return []
    layer_events = [(s, e) for s, e in events if e.get("layer")]
    steps = [s for s, _ in events] + bad_loss
    first = min(steps) if steps else d.meta.get("step")
    if layer_events:
        s, e = layer_events[0]
        where = e.get("where", "values")
        message = (
            f"Training diverged: non-finite {where} first appeared at step {s} in layer "
            f"{e['layer']} (the first in depth order)."
        )
        layers: tuple[str, ...] = (str(e["layer"]),)
    else:
        message = f"Training diverged: the loss became non-finite at step {first}."
        layers = ()
    numbers = {"nonfinite_events": float(len(events)), "nonfinite_losses": float(len(bad_loss))}
    rule = "divergence"
    return [Finding(rule, "error", message, layers, first, numbers, REMEDIES[rule])]


def overfitting(d: RunData) -> list[Finding]:
    """Validation loss rising while the training loss keeps falling."""
    val = [(s, v) for s, v in d.series("val/loss") if _finite(v)]
    if len(val) < MIN_EVALS:
        return []
    smooth = [
        (val[i][0], statistics.median(v for _, v in val[max(0, i - 1) : i + 2]))  # type: ignore[type-var]
        for i in range(len(val))
    ]
    best_step, best = min(smooth, key=lambda sv: sv[1])
    end = smooth[-1][1]
    if best <= 0 or end < (1 + OVERFIT_RISE) * best or best_step >= smooth[-2][0]:
        return []
    train = [(s, v) for s, v in d.series("train/loss") if _finite(v)]
    at_best = [v for s, v in train if s <= best_step]
    after = [v for s, v in train if s > best_step]
    if not at_best or not after or statistics.median(after[-3:]) >= at_best[-1]:  # type: ignore[type-var, operator]
        return []
    message = (
        f"Overfitting: the validation loss rose from {_fmt(best)} (step {best_step}) to "
        f"{_fmt(end)} ({end / best - 1:.0%} higher) while the training loss kept falling."
    )
    numbers = {"best_val_loss": best, "end_val_loss": end, "rise": end / best - 1}
    rule = "overfitting"
    return [Finding(rule, "warning", message, (), best_step, numbers, REMEDIES[rule])]


RULES: tuple[Callable[[RunData], list[Finding]], ...] = (
    divergence,
    depth_ratio,
    exploding_norm,
    dead_relu,
    saturated,
    update_ratio,
    loss_plateau,
    overfitting,
)


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


if __name__ == "__main__":
    raise SystemExit(main())
