"""Provides preset discovery: built-in presets, then ./presets, then --presets-dir, or a path."""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path

from tui_trainer.config.files import PresetFile, load_preset_file
from tui_trainer.config.strict import ConfigError

__all__ = ["all_presets", "builtin_dir", "find_preset", "preset_dirs"]


def builtin_dir() -> Path:
    """The presets shipped with the package: the wheel maps the top-level presets/ folder
    to the package ``tui_trainer.builtin_presets``; a bare checkout reads presets/ itself."""
    try:
        spec = importlib.util.find_spec("tui_trainer.builtin_presets")
    except ImportError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "presets"


def preset_dirs(presets_dir: str | Path | None = None) -> list[Path]:
    dirs = [builtin_dir(), Path("presets")]
    if presets_dir:
        d = Path(presets_dir)
        if not d.is_dir():
            raise ConfigError(f"--presets-dir {d}: not a directory")
        dirs.append(d)
    seen: set[Path] = set()
    out = []
    for d in dirs:
        r = d.resolve()
        if r not in seen and d.is_dir():
            seen.add(r)
            out.append(d)
    return out


def _files(presets_dir: str | Path | None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in preset_dirs(presets_dir):
        for f in sorted(d.glob("*.toml")):
            found.setdefault(f.stem, f)
    return found


def find_preset(ref: str, presets_dir: str | Path | None = None) -> PresetFile:
    """A preset by name, or by the path of a .toml file (e.g. a run's config.toml)."""
    p = Path(ref)
    if ref.endswith(".toml") or p.is_file():
        if not p.is_file():
            raise ConfigError(f"{ref}: no such preset file")
        return load_preset_file(p)
    files = _files(presets_dir)
    if ref in files:
        return load_preset_file(files[ref], ref)
    close = difflib.get_close_matches(ref, list(files), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `tui-trainer presets`"
    raise ConfigError(f"unknown preset {ref!r}{hint}")


def all_presets(presets_dir: str | Path | None = None) -> list[PresetFile]:
    return [load_preset_file(f, name) for name, f in _files(presets_dir).items()]
