"""Provides PresetFile and load_preset_file: preset files, variants, ``--set`` and TOML out.

Nothing else in the project parses TOML. Variants and ``--set`` overrides are applied to
the raw tables before validation, so they are checked by exactly the same rules as the
file itself (``config.schema``).
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from tui_trainer.config.schema import RunConfig
from tui_trainer.config.strict import ConfigError, hints, suggest, toml_value

__all__ = ["PresetFile", "apply_overrides", "config_to_toml", "load_preset_file", "parse_set"]


@dataclass(frozen=True)
class PresetFile:
    """A preset as written: its base tables and its variants (name -> override tables)."""

    name: str
    path: Path
    base: dict[str, Any]
    variants: dict[str, dict[str, Any]]
    default_variant: str

    def resolve(self, variant: str | None = None, sets: list[str] | None = None) -> RunConfig:
        raw = copy.deepcopy(self.base)
        chosen = self.default_variant if variant is None else variant
        if chosen:
            if chosen not in self.variants:
                raise ConfigError(
                    f"{self.path}: unknown variant {chosen!r}; expected one of "
                    f"{', '.join(self.variants) or '(none)'}"
                )
            _deep_merge(raw, copy.deepcopy(self.variants[chosen]))
        # A resolved config.toml names its own preset and variant; a preset file does not.
        raw["preset"] = self.base.get("preset", self.name)
        raw["variant"] = chosen if self.variants else self.base.get("variant", "")
        apply_overrides(raw, sets or [], str(self.path))
        return RunConfig.from_dict(raw, str(self.path))

    @property
    def variant_names(self) -> list[str]:
        return list(self.variants)


def load_preset_file(path: Path, name: str | None = None) -> PresetFile:
    """Read and check a preset file; every variant is resolved once to catch errors early."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    variants_raw = raw.pop("variants", [])
    if not isinstance(variants_raw, list):
        raise ConfigError(f"{path}: variants: expected an array of tables [[variants]]")
    variants: dict[str, dict[str, Any]] = {}
    default = ""
    for i, v in enumerate(variants_raw):
        if not isinstance(v, dict) or not isinstance(v.get("name"), str) or not v["name"]:
            raise ConfigError(f"{path}: variants[{i}].name: expected a non-empty string")
        v = dict(v)
        vname = v.pop("name")
        if vname in variants:
            raise ConfigError(f"{path}: variants[{i}].name: duplicate variant {vname!r}")
        is_default = v.pop("default", False)
        if not isinstance(is_default, bool):
            raise ConfigError(f"{path}: variants.{vname}.default: expected true or false")
        if is_default:
            if default:
                raise ConfigError(f"{path}: variants.{vname}.default: two default variants")
            default = vname
        variants[vname] = v
    if variants and not default:
        default = next(iter(variants))
    preset = PresetFile(name or path.stem, path, raw, variants, default)
    for vname in variants or [""]:
        preset.resolve(vname or None)  # unknown keys and bad values first
    # a preset's checks name variants it has (a run's config.toml, one resolved variant
    # that says which, keeps its preset's checks as they were)
    if isinstance(raw.get("expect"), dict) and "variant" not in raw:
        from tui_trainer.config.expect import bind_variants, parse_expect

        for check in parse_expect(raw["expect"], str(path)):
            bind_variants(check, list(variants), default, str(path))
    if "model" not in raw and "data" not in raw:
        raise ConfigError(
            f"{path}: neither [model] nor [data]: an empty preset would train the defaults"
        )
    return preset


def parse_set(item: str) -> tuple[str, Any]:
    """Parse one ``key=value``; the value is read as TOML when it can be, else as a string."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected key=value (e.g. optim.lr=0.01)")
    key, _, text = item.partition("=")
    key = key.strip()
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key, value


def apply_overrides(raw: dict[str, Any], sets: list[str], source: str) -> None:
    """Apply ``--set`` items in place; keys must exist in RunConfig's schema."""
    for item in sets:
        key, value = parse_set(item)
        parts = key.split(".")
        cls: Any = RunConfig
        for i, part in enumerate(parts):
            names = {f.name: f for f in dataclasses.fields(cls)}
            if part not in names:
                raise ConfigError(
                    f"--set {key}: unknown key {'.'.join(parts[: i + 1])!r}{suggest(part, names)}"
                )
            ftype = hints(cls)[part]
            if i < len(parts) - 1:
                if not dataclasses.is_dataclass(ftype):
                    raise ConfigError(f"--set {key}: {'.'.join(parts[: i + 1])} has no sub-keys")
                cls = ftype
            elif dataclasses.is_dataclass(ftype):
                raise ConfigError(f"--set {key}: expected a key inside {key} (e.g. {key}.<name>)")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{source}: {part}: expected a table")
        node[parts[-1]] = value


def config_to_toml(cfg: RunConfig) -> str:
    """Write a resolved config as TOML that load_preset_file reads back to the same config."""
    d = cfg.to_dict()
    lines: list[str] = []
    tables = []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {toml_value(v)}")
    for k, v in tables:
        if not v:
            continue
        lines.append("")
        lines.append(f"[{k}]")
        for kk, vv in v.items():
            lines.append(f"{kk} = {toml_value(vv)}")
    return "\n".join(lines) + "\n"


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> None:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict) and k not in ("expect",):
            _deep_merge(base[k], v)
        else:
            base[k] = v
