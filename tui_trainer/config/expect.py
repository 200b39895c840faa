"""Provides the ``[expect]`` schema of a preset and the evaluation of its checks on runs.

A check compares one number measured on a run, the *left* side, with a bound or with the
same kind of number from another variant or metric, the *right* side::

    [[expect.checks]]
    text = "Rosenblatt's rule reaches 100% within 20 epochs"   # the table's "check" column
    variant = ["and", "or", "nand"]  # the run(s) measured; a list gives one check each
    metric = "val/acc"               # a scalar, or layer_stats/<column>/<how> (see RunView)
    at = "reach"                     # final (default) | max | min | reach | an integer step
    target = 1.0                     # at = "reach": first step where metric target_op target
    target_op = ">="                 # ... ">=" (default) or "<="; never reached counts as inf
    unit = "epochs"                  # at = "reach": "steps" (default) or "epochs"
    op = "<="                        # <, <=, >, >=, ==
    value = 20                       # a bound; or instead:
    than = "random-init"             # another variant, or a table {variant, metric, at, target}
    factor = 1.0                     # right side = factor * than's number (default 1)
    seeds = 1                        # run at least this many seeds
    min_pass = 1                     # of which at least this many must pass (default: all)

With more seeds than ``seeds`` (``verify --seeds N``), ``min_pass`` scales in proportion.
Standard library only: ``tui_trainer.config`` validates ``[expect]`` with ``parse_expect``.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tui_trainer.config.strict import ConfigError

__all__ = [
    "Check",
    "ExpectError",
    "Ref",
    "RunView",
    "bind_variants",
    "measure",
    "parse_expect",
    "required_passes",
]

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}
ATS = ("final", "max", "min", "reach")
LAYER_PREFIX = "layer_stats/"
LAYER_REDUCTIONS = ("first_over_last", "mean")
CHECK_KEYS = (
    "text", "variant", "metric", "at", "target", "target_op", "unit", "op", "value", "than",
    "factor", "seeds", "min_pass",
)
REF_KEYS = ("variant", "metric", "at", "target", "target_op")


class ExpectError(ConfigError):
    """An ``[expect]`` table is invalid; one line naming the file and the key."""


@dataclass(frozen=True)
class Ref:
    """What one side of a check measures: a metric of a variant's run, reduced by ``at``."""

    variant: str
    metric: str
    at: str | int = "final"
    target: float | None = None
    target_op: str = ">="
    unit: str = "steps"

    def describe(self) -> str:
        if self.at == "reach":
            what = f"{self.unit} to {self.metric} {self.target_op} {_num(self.target)}"
        elif isinstance(self.at, int):
            what = f"{self.metric} at step {self.at}"
        else:
            what = f"{self.at} {self.metric}"
        return what


@dataclass(frozen=True)
class Check:
    text: str
    left: Ref
    op: str
    value: float | None = None
    right: Ref | None = None
    factor: float = 1.0
    seeds: int = 1
    min_pass: int = 1

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants whose runs this check reads."""
        out = [self.left.variant]
        if self.right is not None and self.right.variant not in out:
            out.append(self.right.variant)
        return tuple(out)

    def expected(self, n_seeds: int) -> str:
        if self.right is None:
            unit = f" {self.left.unit}" if self.left.at == "reach" else ""
            text = f"{self.op} {_num(self.value)}{unit}"
        else:
            scale = "" if self.factor == 1 else f"{_num(self.factor)} x "
            other = []
            if self.right.variant != self.left.variant:
                other.append(self.right.variant)
            if (self.right.metric, self.right.at, self.right.target) != (
                self.left.metric, self.left.at, self.left.target
            ):
                other.append(self.right.describe())
            text = f"{self.op} {scale}{' '.join(other) or 'itself'}"
        need = required_passes(self, n_seeds)
        if n_seeds > 1:
            text += " (every seed)" if need == n_seeds else f" (>= {need} of {n_seeds} seeds)"
        return text


def required_passes(check: Check, n_seeds: int) -> int:
    """Seeds that must pass among ``n_seeds``: ``min_pass`` of ``seeds``, in proportion."""
    return max(1, math.ceil(check.min_pass * n_seeds / check.seeds - 1e-9))


# --- parsing ------------------------------------------------------------------------------


def parse_expect(raw: Any, source: str = "<preset>") -> list[Check]:
    """The checks of an ``[expect]`` table; raises ExpectError naming the file and key."""
    if not isinstance(raw, dict):
        raise ExpectError(f"{source}: expect: expected a table")
    for k in raw:
        if k != "checks":
            raise ExpectError(f"{source}: expect.{k}: unknown key; expected checks")
    items = raw.get("checks", [])
    if not isinstance(items, list) or not all(isinstance(c, dict) for c in items):
        raise ExpectError(f"{source}: expect.checks: expected an array of tables [[expect.checks]]")
    checks: list[Check] = []
    for i, item in enumerate(items):
        checks.extend(_parse_check(item, f"{source}: expect.checks[{i}]"))
    return checks


def _parse_check(raw: dict[str, Any], where: str) -> list[Check]:
    for k in raw:
        if k not in CHECK_KEYS:
            raise ExpectError(f"{where}.{k}: unknown key; expected one of {', '.join(CHECK_KEYS)}")
    text = _get(raw, "text", str, where)
    if not text:
        raise ExpectError(f"{where}.text: expected a non-empty string")
    variants = raw.get("variant", "")
    if isinstance(variants, str):
        variants = [variants]
    if not isinstance(variants, list) or not variants or not all(
        isinstance(v, str) for v in variants
    ):
        raise ExpectError(f"{where}.variant: expected a string or an array of strings")
    op = _get(raw, "op", str, where)
    if op not in OPS:
        raise ExpectError(f"{where}.op: expected one of {', '.join(OPS)}, got {op!r}")
    has_value, has_than = "value" in raw, "than" in raw
    if has_value == has_than:
        raise ExpectError(f"{where}: expected exactly one of value (a bound) or than (a reference)")
    value = float(_get(raw, "value", (int, float), where)) if has_value else None
    factor = float(_get(raw, "factor", (int, float), where, 1.0))
    if "factor" in raw and not has_than:
        raise ExpectError(f"{where}.factor: only used with than")
    if not factor > 0:
        raise ExpectError(f"{where}.factor: expected a number > 0, got {factor!r}")
    seeds = _get(raw, "seeds", int, where, 1)
    if seeds < 1:
        raise ExpectError(f"{where}.seeds: expected an integer >= 1, got {seeds!r}")
    min_pass = _get(raw, "min_pass", int, where, seeds)
    if not 1 <= min_pass <= seeds:
        raise ExpectError(
            f"{where}.min_pass: expected an integer in [1, {seeds}], got {min_pass!r}"
        )
    out = []
    for variant in variants:
        left = _parse_ref(raw, variant, None, where)
        right = None
        if has_than:
            than = raw["than"]
            if isinstance(than, str):
                than = {"variant": than}
            if not isinstance(than, dict):
                raise ExpectError(f"{where}.than: expected a variant name or a table")
            for k in than:
                if k not in REF_KEYS:
                    raise ExpectError(
                        f"{where}.than.{k}: unknown key; expected one of {', '.join(REF_KEYS)}"
                    )
            right = _parse_ref(than, than.get("variant", variant), left, where + ".than")
        label = text if len(variants) == 1 else f"{text} [{variant}]"
        out.append(Check(label, left, op, value, right, factor, seeds, min_pass))
    return out


def _parse_ref(raw: dict[str, Any], variant: Any, base: Ref | None, where: str) -> Ref:
    if not isinstance(variant, str):
        raise ExpectError(f"{where}.variant: expected a string")
    metric = _get(raw, "metric", str, where, base.metric if base else None)
    if not metric:
        raise ExpectError(f"{where}.metric: expected a metric name such as val/acc")
    if metric.startswith(LAYER_PREFIX) and len(metric.split("/")) != 3:
        raise ExpectError(
            f"{where}.metric: expected layer_stats/<column>/<first_over_last|mean|layer name>, "
            f"got {metric!r}"
        )
    at = raw.get("at", base.at if base else "final")
    if not (isinstance(at, str) and at in ATS) and not (
        isinstance(at, int) and not isinstance(at, bool) and at >= 0
    ):
        raise ExpectError(
            f"{where}.at: expected one of {', '.join(ATS)} or a step >= 0, got {at!r}"
        )
    target = raw.get("target", base.target if base else None)
    if at == "reach":
        if not isinstance(target, (int, float)) or isinstance(target, bool):
            raise ExpectError(f'{where}.target: expected a number with at = "reach"')
        target = float(target)
    elif "target" in raw:
        raise ExpectError(f'{where}.target: only used with at = "reach"')
    target_op = _get(raw, "target_op", str, where, base.target_op if base else ">=")
    if target_op not in (">=", "<="):
        raise ExpectError(f"{where}.target_op: expected >= or <=, got {target_op!r}")
    unit = _get(raw, "unit", str, where, base.unit if base else "steps")
    if unit not in ("steps", "epochs"):
        raise ExpectError(f"{where}.unit: expected steps or epochs, got {unit!r}")
    return Ref(variant, metric, at, target, target_op, unit)


def _get(raw: dict[str, Any], key: str, tp: Any, where: str, default: Any = ...) -> Any:
    if key not in raw:
        if default is ...:
            raise ExpectError(f"{where}.{key}: missing")
        return default
    v = raw[key]
    if isinstance(v, bool) or not isinstance(v, tp):
        names = {str: "a string", int: "an integer", (int, float): "a number"}
        raise ExpectError(f"{where}.{key}: expected {names.get(tp, tp)}, got {v!r}")
    return v


# --- measuring ----------------------------------------------------------------------------


class RunView:
    """The numbers of one finished run that checks read, from its ``RunReader``."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.meta = reader.meta()
        self._cache: dict[str, list[tuple[int, float]]] = {}

    def series(self, metric: str) -> list[tuple[int, float]]:
        if metric not in self._cache:
            if metric.startswith(LAYER_PREFIX):
                rows = self._layer_series(metric)
            else:
                rows = [(s, v) for s, v in self.reader.series(metric) if v is not None]
            self._cache[metric] = rows
        return self._cache[metric]

    def _layer_series(self, metric: str) -> list[tuple[int, float]]:
        _, column, how = metric.split("/")
        steps, matrix = self.reader.layer_stat_matrix(column)
        names = [layer["name"] for layer in self.reader.layers()]
        out = []
        for j, step in enumerate(steps):
            col = [row[j] for row in matrix]
            if how == "first_over_last":
                a, b = col[0], col[-1]
                if a is None or b is None:
                    continue
                out.append((step, a / b if b else math.inf))
            elif how == "mean":
                vals = [v for v in col if v is not None]
                if vals:
                    out.append((step, sum(vals) / len(vals)))
            elif how in names and col[names.index(how)] is not None:
                out.append((step, col[names.index(how)]))
        return out


def measure(view: RunView, ref: Ref) -> float | None:
    """The number ``ref`` names on one run; None when the run has no such record.

    ``reach`` gives the first step (or epoch) at which the metric met the target, and
    ``inf`` when it never did.
    """
    rows = view.series(ref.metric)
    if not rows:
        return None
    if ref.at == "final":
        return rows[-1][1]
    if ref.at == "max":
        return max(v for _, v in rows)
    if ref.at == "min":
        return min(v for _, v in rows)
    if ref.at == "reach":
        hit = OPS[ref.target_op]
        step = next((s for s, v in rows if hit(v, ref.target)), None)
        if step is None:
            return math.inf
        if ref.unit == "epochs":
            return step / max(int(view.meta.get("batches_per_epoch") or 1), 1)
        return float(step)
    before = [v for s, v in rows if s <= int(ref.at)]
    return before[-1] if before else None


def _num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "never"
    if v == int(v) and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.4g}"


def bind_variants(check: Check, variants: list[str], default: str, source: str) -> Check:
    """Map "" to the default variant and refuse variants the preset does not have."""
    sides = {}
    for side in ("left", "right"):
        ref = getattr(check, side)
        if ref is None:
            continue
        name = ref.variant or default
        if name and name not in variants:
            raise ExpectError(
                f"{source}: expect: check {check.text!r} names variant {name!r}; expected one "
                f"of {', '.join(variants) or '(none: the preset has no variants)'}"
            )
        sides[side] = dataclasses.replace(ref, variant=name)
    return dataclasses.replace(check, **sides)
