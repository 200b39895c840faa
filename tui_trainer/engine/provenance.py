"""Provides provenance: the versions a run was trained with, recorded in its metadata.

Python, torch, CUDA and cuDNN (when torch was built with them), the platform and
tui-trainer itself: what the overview pane shows and what a person needs to repeat a run
elsewhere. Never raises: a figure that cannot be had is left out.
"""

from __future__ import annotations

import platform
from typing import Any

import torch

__all__ = ["provenance"]


def provenance() -> dict[str, Any]:
    """``torch_version`` (as before) and ``versions``: python, torch, cuda, cudnn, ..."""
    from tui_trainer import __version__

    versions: dict[str, str] = {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "tui-trainer": __version__,
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
    }
    cuda = getattr(torch.version, "cuda", None)
    if cuda:
        versions["cuda"] = str(cuda)
    try:
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    except Exception:  # noqa: BLE001 (a broken CUDA install must not stop a run)
        cudnn = None
    if cudnn:
        versions["cudnn"] = str(cudnn)
    if torch.cuda.is_available():
        try:
            versions["gpu"] = torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001
            pass
    return {"torch_version": str(torch.__version__), "versions": versions}
