"""Provides the extra records lecture presets show beside the curves.

- ``PCABaseline``: principal components fitted on the training set, so an autoencoder's
  reconstruction error is shown next to PCA's at the same code size (``val/pca_mse``).
- ``features_record``: a LeNet's first-layer filters and its mean hidden activations per
  class (event ``features``), for the app to draw as half-block images.
- ``truth_table_record``: a single threshold unit's weights and its truth table
  (event ``truth_table``).

Every record is plain JSON (nested lists of floats, rounded) so the app reads it from the
store without torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = [
    "PCABaseline", "features_record", "has_features", "has_truth_table", "truth_table_record",
]

DIGITS = 5  # decimals kept in the JSON records
MAX_TABLE_ROWS = 16  # a truth table is recorded only for inputs this small
MAX_TABLE_INPUTS = 8


def _rounded(t: torch.Tensor) -> Any:
    return torch.round(t.detach().float().cpu(), decimals=DIGITS).tolist()


class PCABaseline:
    """PCA with ``k`` components fitted (centred) on ``x_train``; the MSE it reconstructs with.

    The error is the mean over every element, the same reduction as the autoencoder's
    ``F.mse_loss``, so ``val/pca_mse`` and ``val/recon_mse`` compare directly.
    """

    def __init__(self, x_train: torch.Tensor, k: int) -> None:
        x = x_train.detach().flatten(1).double()
        self.mean = x.mean(0, keepdim=True)
        # Right singular vectors of the centred data are the principal axes.
        _, _, vh = torch.linalg.svd(x - self.mean, full_matrices=False)
        self.k = min(k, vh.shape[0])
        self.components = vh[: self.k]  # (k, d)

    @torch.no_grad()
    def mse(self, x: torch.Tensor) -> float:
        x = x.detach().flatten(1).double().to(self.mean.device)
        z = (x - self.mean) @ self.components.t()
        recon = z @ self.components + self.mean
        return float((recon - x).square().mean())


def has_features(model: nn.Module) -> bool:
    return callable(getattr(model, "first_layer_filters", None)) and callable(
        getattr(model, "hidden_activations", None)
    )


@torch.no_grad()
def features_record(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    class_names: tuple[str, ...],
    initial_filters: torch.Tensor,
) -> dict[str, Any]:
    """The ``features`` event of a LeNet-style model, from a batch of labelled images.

    ``filters[map][channel][row][col]`` are the first layer's kernels; ``maps_by_class``
    ``[class][map][row][col]`` the mean first-layer feature map of each class;
    ``hidden_by_class[class][unit]`` the mean activation of the last hidden layer.
    """
    was_training = model.training
    model.eval()
    acts = model.hidden_activations(x)  # type: ignore[operator]
    model.train(was_training)
    filters = model.first_layer_filters()  # type: ignore[operator]
    change = (filters - initial_filters).norm() / initial_filters.norm().clamp_min(1e-12)
    first, last = next(iter(acts)), next(reversed(acts))
    maps_by_class, hidden_by_class = [], []
    for c in range(len(class_names)):
        mask = y == c
        if not bool(mask.any()):
            maps_by_class.append(_rounded(torch.zeros_like(acts[first][0])))
            hidden_by_class.append(_rounded(torch.zeros_like(acts[last][0])))
            continue
        maps_by_class.append(_rounded(acts[first][mask].mean(0)))
        hidden_by_class.append(_rounded(acts[last][mask].flatten(1).mean(0)))
    return {
        "layer": first,
        "hidden_layer": last,
        "filters": _rounded(filters),
        "filter_change": float(change),
        "classes": list(class_names),
        "maps_by_class": maps_by_class,
        "hidden_by_class": hidden_by_class,
    }


def has_truth_table(model: nn.Module, x: torch.Tensor) -> bool:
    unit = getattr(model, "unit", None)
    return (
        getattr(model, "task", "") == "perceptron"
        and isinstance(unit, nn.Linear)
        and 0 < len(x) <= MAX_TABLE_ROWS
        and x[0].numel() <= MAX_TABLE_INPUTS
    )


@torch.no_grad()
def truth_table_record(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """The ``truth_table`` event of a one-unit model on every row of a (small) input set.

    A McCulloch-Pitts unit (``threshold`` attribute) fires when w.x >= threshold; a trained
    perceptron when w.x + b > 0, i.e. w.x > -b.
    """
    unit: nn.Linear = model.unit  # type: ignore[assignment]
    hand_set = hasattr(model, "threshold")
    threshold = float(model.threshold) if hand_set else -float(unit.bias)  # type: ignore[arg-type]
    output = model.predict(x)  # type: ignore[operator]
    return {
        "unit": "threshold" if hand_set else "perceptron",
        "weights": _rounded(unit.weight.view(-1)),
        "threshold": round(threshold, DIGITS),
        "rule": ">=" if hand_set else ">",
        "inputs": x.flatten(1).cpu().tolist(),
        "target": y.cpu().tolist(),
        "output": output.cpu().tolist(),
        "correct": int((output.cpu() == y.cpu()).sum()),
        "total": len(y),
    }
