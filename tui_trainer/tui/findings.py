"""Provides run_diagnose: a run's findings from ``python -m tui_trainer.diagnose RUN_DIR``.

diagnose reads a run's whole record; on a long run that is hundreds of megabytes and
seconds of CPU. In a child process that memory is given back when it exits and the
work never holds the app's interpreter lock, so the dashboard stays flat and responsive;
it runs at a lower priority than the app and the training.
Findings come back as the plain dicts of ``Finding.to_dict()``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["DIAGNOSE_MODULE", "run_diagnose"]

DIAGNOSE_MODULE = "tui_trainer.diagnose"
TIMEOUT_S = 120.0


def run_diagnose(
    run_dir: Path, module: str = DIAGNOSE_MODULE, timeout: float = TIMEOUT_S
) -> tuple[list[dict[str, Any]], str]:
    """(findings, error): error is one line when there are no findings to show."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        done = subprocess.run(
            [sys.executable, "-m", module, "--nice", str(run_dir)],  # diagnose.main
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [], f"diagnose took over {timeout:.0f} s"
    except OSError as exc:
        return [], f"diagnose could not start: {exc}"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        if any("No module named" in line and module in line for line in lines):
            return [], f"findings unavailable (no {module})"
        return [], f"diagnose failed: {lines[-1] if lines else done.returncode}"
    try:
        found = json.loads(done.stdout)
    except json.JSONDecodeError:
        return [], "diagnose failed: unreadable output"
    return [f for f in found if isinstance(f, dict)], ""
