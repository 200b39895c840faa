"""Provides the configuration layer: presets on disk become a frozen, validated RunConfig.

``schema`` (RunConfig and its parts), ``strict`` (the strict TOML-to-dataclass machinery,
ConfigError), ``files`` (preset files, variants, ``--set``, writing TOML back), ``expect``
(the ``[expect]`` checks a preset states) and ``presets`` (finding presets by name).
Standard library only; nothing else in the project parses TOML.
"""

from __future__ import annotations

from tui_trainer.config.files import (
    PresetFile,
    apply_overrides,
    config_to_toml,
    load_preset_file,
    parse_set,
)
from tui_trainer.config.presets import all_presets, builtin_dir, find_preset, preset_dirs
from tui_trainer.config.schema import (
    CheckpointConfig,
    DataConfig,
    ModelConfig,
    OptimConfig,
    ProbeConfig,
    RunConfig,
    TrainConfig,
)
from tui_trainer.config.strict import ConfigError

__all__ = [
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "PresetFile",
    "ProbeConfig",
    "RunConfig",
    "TrainConfig",
    "all_presets",
    "apply_overrides",
    "builtin_dir",
    "config_to_toml",
    "find_preset",
    "load_preset_file",
    "parse_set",
    "preset_dirs",
]
