"""Provides Discovery: the layers of any ``nn.Module``, in the order its forward runs them.

A preset's model lists its own layer units; a user's model does not, so ``watch`` finds
them: every module that holds parameters itself is a layer (a ``Linear``, a ``Conv2d``, a
norm, an embedding, attention's input projection, a block with a bare ``nn.Parameter``),
named by its path in the model (``encoder.layers.0.self_attn``). An activation module that
runs right after a layer (before the next layer) is where that layer's activation
statistics are read, and names its activation (dead ReLUs, saturated sigmoids).

The order is the order of execution of the first forward pass after ``watch`` (forward
pre-hooks on every module, removed after that pass); layers the pass never ran follow in
the model's own order. A module used twice in one forward keeps its first place, and its
statistics describe its last call of a sampled step.

Wrappers are looked through: ``DistributedDataParallel``/``DataParallel`` (``.module``)
and ``torch.compile``'s ``OptimizedModule`` (``._orig_mod``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from torch import nn

from tui_trainer.engine.layers import LayerUnit

__all__ = ["ACTIVATIONS", "Discovery", "match_layers", "unwrap"]

# Activation modules, by the name the probes use (dead fraction and saturation follow it).
ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.ReLU6: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
    nn.ELU: "elu",
    nn.Mish: "mish",
    nn.Softplus: "softplus",
}
WRAPPERS = ("DistributedDataParallel", "DataParallel", "FullyShardedDataParallel")


def unwrap(model: nn.Module) -> nn.Module:
    """The module a DDP or torch.compile wrapper trains."""
    while True:
        inner = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if isinstance(inner, nn.Module):
            model = inner
        elif type(model).__name__ in WRAPPERS and isinstance(
            getattr(model, "module", None), nn.Module
        ):
            model = model.module
        else:
            return model


def match_layers(model: nn.Module, patterns: str | Sequence[str] | None) -> list[str] | None:
    """The ``layers=`` patterns (names or globs) checked against the model's module names;
    raises ValueError naming the patterns that match nothing."""
    if patterns is None:
        return None
    pats = [patterns] if isinstance(patterns, str) else list(patterns)
    names = [n for n, _ in model.named_modules() if n]
    missing = [p for p in pats if not any(fnmatch.fnmatchcase(n, p) for n in names)]
    if missing or not pats:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise ValueError(
            f"watch(layers=...): {', '.join(map(repr, missing)) or 'no pattern'} "
            f"matches no module of the model (its modules: {shown or 'none'})"
        )
    return pats


def _label(path: str, kind: str) -> str:
    """A layer's name: its path in the model; a path of indices alone (``nn.Sequential``)
    gets its kind too, ``3:Linear``; the root is its class name."""
    if not path:
        return kind
    return f"{path}:{kind}" if path.replace(".", "").isdigit() else path


def _owns_parameters(module: nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


class Discovery:
    """Hooks every module for one forward pass and turns what ran into layer units."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modules = [(n, m) for n, m in model.named_modules(remove_duplicate=True)]
        self._order: dict[int, int] = {}  # id(module) -> position of its first call
        self._calls: dict[int, int] = {}  # id(module) -> calls in the pass
        self._handles = [m.register_forward_pre_hook(self._seen) for _, m in self.modules]

    def _seen(self, module: nn.Module, args: object) -> None:
        key = id(module)
        self._order.setdefault(key, len(self._order))
        self._calls[key] = self._calls.get(key, 0) + 1

    @property
    def ran(self) -> bool:
        """Whether a forward pass has run since the hooks went on."""
        return bool(self._order)

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _is_layer(self, module: nn.Module) -> bool:
        """Holds parameters itself; the model's root only when it has no children (a bare
        ``nn.Parameter`` of the root counts in the total gradient norm, in no layer)."""
        if not _owns_parameters(module):
            return False
        return module is not self.model or next(module.children(), None) is None

    def units(self, patterns: Sequence[str] | None = None) -> list[LayerUnit]:
        """Layer units in execution order (see the module docstring); ``patterns`` keep
        only the layers whose names match one of them."""
        self.close()
        position = {id(m): i for i, (_, m) in enumerate(self.modules)}
        never = len(self.modules)  # modules that did not run follow, in the model's order
        ordered = sorted(
            self.modules,
            key=lambda nm: (
                self._order.get(id(nm[1]), never),
                position[id(nm[1])],
            ),
        )
        units: list[LayerUnit] = []
        acts: dict[int, tuple[nn.Module, str]] = {}  # unit index -> its activation module
        current: int | None = None  # the unit an activation running now belongs to
        for name, module in ordered:
            if self._is_layer(module):
                current = None
                if patterns and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                    continue  # not watched: the activation after it is not the last unit's
                kind = type(module).__name__
                units.append(LayerUnit(_label(name, kind), module, None, "identity", kind))
                current = len(units) - 1
                continue
            act = ACTIVATIONS.get(type(module))
            # One activation module called after several layers cannot tell them apart:
            # those layers' statistics are read from their own outputs.
            once = self._calls.get(id(module)) == 1
            if act is not None and once and current is not None and current not in acts:
                acts[current] = (module, act)
        for i, (module, act) in acts.items():
            u = units[i]
            units[i] = LayerUnit(u.name, u.module, module, act, u.kind)
        return units
