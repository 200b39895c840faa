"""Layering: the engine and store never load UI packages; faces never load torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def loaded_after_import(module: str) -> set[str]:
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {m.split(".")[0] for m in json.loads(out.stdout)}


@pytest.mark.parametrize(
    "module",
    [
        "tui_trainer.engine.trainer",
        "tui_trainer.engine.probes",
        "tui_trainer.store",
        "tui_trainer.config",
        "tui_trainer.runner",
        "tui_trainer.monitor",
        "tui_trainer.integrations",
    ],
)
def test_engine_and_store_load_no_ui(module):
    assert not {"textual", "typer", "rich"} & loaded_after_import(module)


@pytest.mark.parametrize(
    "module",
    ["tui_trainer.cli", "tui_trainer.store", "tui_trainer.diagnose", "tui_trainer.tui.app"],
)
def test_faces_do_not_load_torch(module):
    try:
        loaded = loaded_after_import(module)
    except subprocess.CalledProcessError as exc:  # a face not written yet fails loudly
        pytest.fail(f"import {module} failed: {exc.stderr[-300:]}")
    assert "torch" not in loaded


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom tui_trainer.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_the_wheel_ships_every_package():
    """pyproject lists packages by hand: a sub-package missing there works in an editable
    install and fails in `pip install .` (tui_trainer.remote once did: the app crashed)."""
    from pathlib import Path

    import tomllib

    root = Path(__file__).parents[2]
    listed = set(
        tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(root).parts)
        for p in (root / "tui_trainer").rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)
