"""Shared test set-up: one torch thread (this machine has 2 cores; more threads thrash)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A private runs directory, also set in the environment for the CLI."""
    d = tmp_path / "runs"
    monkeypatch.setenv("TUI_TRAINER_RUNS_DIR", str(d))
    return d
