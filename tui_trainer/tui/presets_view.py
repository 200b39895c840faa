"""Provides the picker's view of presets: load them one file at a time (a broken user
preset is listed with its error instead of hiding the others), group them by lecture
section and order them by the lecture's claim."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tui_trainer.config import ConfigError, PresetFile, RunConfig, load_preset_file, preset_dirs

__all__ = ["PresetEntry", "describe", "load_entries", "sections"]


@dataclass(frozen=True)
class PresetEntry:
    """One preset file: loaded (preset and its default config) or broken (error)."""

    name: str
    path: Path
    preset: PresetFile | None = None
    config: RunConfig | None = None
    error: str = ""

    @property
    def section(self) -> str:
        return self.config.section if self.config and self.config.section else "Other presets"

    @property
    def claim(self) -> int:
        return self.config.claim if self.config else 0


def load_entries(presets_dir: str | Path | None = None) -> list[PresetEntry]:
    """Every preset (built-in, ./presets, --presets-dir; the first of a name wins)."""
    found: dict[str, Path] = {}
    for d in preset_dirs(presets_dir):
        for f in sorted(d.glob("*.toml")):
            found.setdefault(f.stem, f)
    entries = []
    for name, path in found.items():
        try:
            preset = load_preset_file(path, name)
            entries.append(PresetEntry(name, path, preset, preset.resolve()))
        except ConfigError as exc:
            entries.append(PresetEntry(name, path, error=str(exc)))
    return entries


def sections(entries: list[PresetEntry]) -> list[tuple[str, list[PresetEntry]]]:
    """Sections in the lecture's order (their smallest claim), presets by claim then name."""
    groups: dict[str, list[PresetEntry]] = {}
    for e in entries:
        groups.setdefault(e.section, []).append(e)
    for items in groups.values():
        items.sort(key=lambda e: (e.claim or 999, e.name))

    def order(item: tuple[str, list[PresetEntry]]) -> tuple[int, int, str]:
        name, items = item
        claims = [e.claim for e in items if e.claim]
        return (name == "Other presets", min(claims) if claims else 999, name)

    return sorted(groups.items(), key=order)


def describe(cfg: RunConfig) -> str:
    """One line: what the preset trains, on what, for how long."""
    m, o, t = cfg.model, cfg.optim, cfg.train
    if m.kind == "mlp":
        model = f"mlp {m.depth}x{m.width} {m.activation}"
        if m.norm != "none":
            model += f" +{m.norm}"
        if m.residual:
            model += " +residual"
    else:
        model = m.kind
    length = f"{t.max_steps} steps" if t.max_steps else f"{t.epochs} epochs"
    return (
        f"{cfg.data.name} · {model} · {o.name} lr={o.lr:g} · batch {cfg.data.batch_size}"
        f" · {length} · probe every {cfg.probe.every}"
    )
