"""Provides the curves a dashboard overlays: which scalars, in which colours, with which
legend, for one run or a group of runs (plain Python, no Textual)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tui_trainer.tui.follow import RunSnapshot
from tui_trainer.tui.plot import ChartSeries

__all__ = ["BASELINE", "LOSS_LINES", "RUN_COLORS", "Line", "metric_lines", "overlay", "run_labels"]

RUN_COLORS = ["#4ea1ff", "#ff9f43", "#2ecc71", "#e84393", "#f1c40f", "#a29bfe", "#00cec9"]
BASELINE = "grey62"  # a reference curve drawn the same for every run (PCA's error)


@dataclass(frozen=True)
class Line:
    """A scalar drawn in a chart: solid (train) or dotted (validation, baselines)."""

    name: str
    label: str
    dotted: bool = False
    color: str | None = None  # a fixed colour (a baseline); else the run's colour


LOSS_LINES = [Line("train/loss", "train"), Line("val/loss", "val", True)]


def metric_lines(snaps: list[RunSnapshot]) -> tuple[str, list[Line], bool]:
    """The second chart: its title, its lines, and whether a log scale suits it."""
    names = {n for s in snaps for n in s.curves}
    acc = [Line("train/acc", "train"), Line("val/acc", "val", True)]
    # before the first rows the runs' task says which chart is coming (no title flip)
    tasks = {s.task for s in snaps} if not names else set()
    if names & {"train/acc", "val/acc"} or tasks & {"classify", "perceptron"}:
        return "accuracy", acc, False
    if "val/recon_mse" in names or "reconstruct" in tasks:
        lines = [Line("val/recon_mse", "autoencoder"), Line("val/pca_mse", "PCA", True, BASELINE)]
        return "reconstruction error", lines, True
    if not names:
        return "metric", acc, False  # the task is not recorded yet: no guess
    if "grad/total_norm" in names:
        return "total gradient norm", [Line("grad/total_norm", "‖g‖")], True
    return "learning rate", [Line("train/lr", "lr")], True


def run_labels(run_dirs: list[Path], snaps: list[RunSnapshot | None]) -> list[str]:
    """Short names for the runs of a group: variants when they share a preset."""
    presets = {s.preset for s in snaps if s is not None}
    labels = []
    for d, s in zip(run_dirs, snaps, strict=True):
        if s is None:
            labels.append(d.name)
        elif len(presets) == 1 and len(run_dirs) > 1 and s.variant:
            labels.append(s.variant)
        else:
            labels.append(s.label)
    return labels if len(set(labels)) == len(labels) else [d.name for d in run_dirs]


def overlay(
    snaps: list[RunSnapshot | None], labels: list[str], selected: int, lines: list[Line]
) -> tuple[list[ChartSeries], dict[str, tuple[str, bool]]]:
    """The series of one chart (the selected run drawn last, on top) and its legend.

    One run: train in blue, validation dotted in orange. A group: one colour per run, the
    legend names the runs (in their order) and says once that dotted means validation.
    """
    single = len(snaps) == 1
    order = list(range(len(snaps)))
    order.append(order.pop(selected))
    series: list[ChartSeries] = []
    legend: dict[str, tuple[str, bool]] = {}
    if not single:
        for i, snap in enumerate(snaps):
            if snap is not None:
                legend[labels[i]] = (RUN_COLORS[i % len(RUN_COLORS)], False)
    for i in order:
        snap = snaps[i]
        if snap is None:
            continue
        run_color = RUN_COLORS[i % len(RUN_COLORS)]
        for k, line in enumerate(lines):
            if line.name not in snap.curves:
                continue
            color = line.color or (RUN_COLORS[k % 2] if single else run_color)
            series.append(ChartSeries(line.label, snap.curves[line.name], color, line.dotted))
            if single or line.color:
                legend[line.label] = (color, line.dotted)
            elif line.dotted:
                legend[line.label] = ("white", True)
    return series, legend
