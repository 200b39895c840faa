"""Provides the ``doctor`` report: what this machine offers tui-trainer."""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import sys

__all__ = ["report"]


def report() -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [
        ("python", sys.version.split()[0]),
        ("platform", platform.platform()),
        ("cpu cores", str(os.cpu_count())),
        ("sqlite", sqlite3.sqlite_version),
    ]
    try:
        import torch
    except ImportError as exc:  # pragma: no cover
        rows.append(("torch", f"not importable ({exc})"))
        return rows
    rows.append(("torch", f"{torch.__version__} ({torch.get_num_threads()} threads)"))
    cuda = torch.cuda.is_available()
    rows.append(("cuda", f"yes, {torch.version.cuda}" if cuda else "no"))
    if cuda:
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            rows.append((f"gpu {i}", f"{props.name}, {props.total_memory / 2**30:.1f} GiB"))
    mps = getattr(torch.backends, "mps", None)
    rows.append(("mps", "yes" if mps is not None and mps.is_available() else "no"))
    try:
        import pynvml  # noqa: F401

        rows.append(("nvidia-ml-py", "installed (GPU utilisation in the app)"))
    except ImportError:
        rows.append(("nvidia-ml-py", "not installed (the app shows torch's memory only)"))
    size = shutil.get_terminal_size((0, 0))
    rows.append(("terminal", f"{size.columns}x{size.lines}, TERM={os.environ.get('TERM', '')}"))
    rows.append(("colour", "off (NO_COLOR)" if os.environ.get("NO_COLOR") else
                 os.environ.get("COLORTERM", "") or "256/16 (no COLORTERM)"))
    return rows
