"""Provides the diagnose rules: each reads a run's RunData and returns its Findings; RULES
lists them in the order they are asked (the first to see a problem says it)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

from tui_trainer.diagnose.model import (
    Finding,
    RunData,
    fmt_value,
    is_finite,
    late_values,
    name_list,
)
from tui_trainer.diagnose.thresholds import (
    DEAD_FRAC,
    EARLY,
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
    SUSTAINED,
    UPDATE_HIGH,
    UPDATE_LOW,
    VANISHING_RATIO,
)


def depth_ratio(d: RunData) -> list[Finding]:
    """Vanishing or exploding gradients by depth: first/last layer gradient-norm ratio."""
    steps, grad = d.matrix("grad_norm")
    if len(grad) < 2:  # one layer, or nothing sampled yet
        return []
    pairs = [
        (s, a / b)
        for s, a, b in zip(steps, grad[0], grad[-1], strict=True)
        if is_finite(a) and is_finite(b) and b > 0  # type: ignore[operator]
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
        last_med = statistics.median(v for v in grad[-1] if is_finite(v))  # type: ignore[type-var]
        layers = []
        for name, row in zip(d.names, grad, strict=False):
            vals = [v for v in row if is_finite(v)]
            if vals and bad(statistics.median(vals) / last_med):  # type: ignore[type-var]
                layers.append(name)
        vanish = rule == "vanishing_gradients"
        message = (
            f"Gradients {'vanish' if vanish else 'explode'} toward the input: the first layer's "
            f"gradient norm is {fmt_value(median)} times the last layer's (median of {len(ratios)} "
            f"samples; {'below' if vanish else 'above'} "
            f"{fmt_value(VANISHING_RATIO if vanish else EXPLODING_RATIO)} in {share:.0%} of them)."
            + (" The early layers barely learn." if vanish else "")
            + (f" Affected: {name_list(layers)}." if layers else "")
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
        f"Gradients explode: the total gradient norm reached {fmt_value(peak)} "
        f"at step {peak_step}, "
        f"{fmt_value(growth)} times its early level ({fmt_value(base)})."
        + (f" Largest in {name_list(layers)}." if layers else "")
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
        late = late_values(row)
        if act not in kinds or len(late) < max(1, MIN_SAMPLES // 2):
            continue
        level = statistics.median(late)
        if level >= limit:
            first = next(s for s, v in zip(steps, row, strict=True) if is_finite(v) and v >= limit)  # type: ignore[operator]
            hits.append((name, level, first))
    if not hits:
        return []
    worst = max(hits, key=lambda h: h[1])
    message = (
        f"{len(hits)} layer{'s' if len(hits) > 1 else ''} {what}: "
        f"{name_list([h[0] for h in hits])} "
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
        "mostly dead (units zero for every example): those units no longer learn",
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
        late = [v for v in late_values(row) if v >= 0]
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
        f"Each step changes the weights by {fmt_value(level)} of their size (median over layers, "
        f"later half of the run); about 1e-3 is healthy. The learning rate looks too "
        f"{'high' if high else 'low'}."
    )
    numbers = {"median_update_ratio": level, **dict(per_layer)}
    first = steps[len(steps) // 2] if steps else None
    return [Finding(rule, "warning", message, layers, first, numbers, REMEDIES[rule])]


def loss_plateau(d: RunData) -> list[Finding]:
    """The training loss barely moved over the run."""
    rows = [(s, v) for s, v in d.series("train/loss") if is_finite(v)]
    if len(rows) < MIN_LOSS_POINTS:
        return []
    k = max(2, len(rows) // 10)
    start = statistics.median(v for _, v in rows[:k])  # type: ignore[type-var]
    end = statistics.median(v for _, v in rows[-k:])  # type: ignore[type-var]
    if start <= 0 or end < (1 - PLATEAU_DROP) * start:
        return []
    message = (
        f"The training loss has not fallen: {fmt_value(start)} at the start, "
        f"{fmt_value(end)} at the "
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
    val = [(s, v) for s, v in d.series("val/loss") if is_finite(v)]
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
    train = [(s, v) for s, v in d.series("train/loss") if is_finite(v)]
    at_best = [v for s, v in train if s <= best_step]
    after = [v for s, v in train if s > best_step]
    if not at_best or not after or statistics.median(after[-3:]) >= at_best[-1]:  # type: ignore[type-var, operator]
        return []
    message = (
        f"Overfitting: the validation loss rose from {fmt_value(best)} (step {best_step}) to "
        f"{fmt_value(end)} ({end / best - 1:.0%} higher) while the training loss kept falling."
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
