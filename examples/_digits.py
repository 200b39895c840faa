"""The examples' data: scikit-learn's bundled digits (8x8 images, 1,797 of them), scaled,
split 1,500 / 297; no download."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return x[:1500], y[:1500], x[1500:], y[1500:]


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    )  # fmt: skip


def leave_a_core() -> None:
    """Training beside the dashboard on a small machine: one core for the app."""
    import os

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
