"""Provides create_store: a watched run's directory, with its config as JSON and TOML.

``watch(config=...)`` takes a dict, a dataclass or an ``argparse.Namespace``; it is stored
in the run's metadata (the app shows it) and written to ``config.toml`` for people.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any

from tui_trainer.config.strict import toml_string
from tui_trainer.store import RunStore

__all__ = ["config_dict", "create_store", "to_toml"]


def config_dict(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, Mapping):
        return {str(k): v for k, v in config.items()}
    if hasattr(config, "__dict__") and not isinstance(config, type):
        return {k: v for k, v in vars(config).items() if not k.startswith("_")}
    raise TypeError(
        f"watch(config=...): expected a dict, a dataclass or a namespace, "
        f"got {type(config).__name__}"
    )


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if v != v else ("inf" if v > 0 else "-inf"))
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return toml_string(str(v))


def to_toml(values: Mapping[str, Any], header: str = "") -> str:
    """A small TOML writer: scalars, lists, nested tables; anything else as its str()."""
    lines = [f"# {line}" for line in header.splitlines()]
    tables: list[tuple[str, Mapping[str, Any]]] = []

    def key(k: str) -> str:
        return k if k.replace("_", "").replace("-", "").isalnum() else toml_string(k)

    def emit(prefix: str, table: Mapping[str, Any]) -> None:
        if prefix:
            lines.append(f"\n[{prefix}]")
        for k, v in table.items():
            if isinstance(v, Mapping):
                tables.append((f"{prefix}.{key(k)}" if prefix else key(k), v))
            else:
                lines.append(f"{key(k)} = {_toml_value(v)}")

    emit("", values)
    while tables:
        emit(*tables.pop(0))
    return "\n".join(lines) + "\n"


def create_store(runs_dir: str | os.PathLike[str] | None, name: str, config: Any) -> RunStore:
    cfg = config_dict(config)
    meta_config = {"title": name, **cfg}
    toml = to_toml(cfg, header=f"{name}: recorded by tui_trainer.watch from a script's own loop")
    return RunStore.create(runs_dir, name, "", json.dumps(meta_config, default=str), toml)
