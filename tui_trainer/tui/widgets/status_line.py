"""Provides StatusLine: step, epoch, speed, ETA, device and GPU of the selected run."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from tui_trainer.sysinfo import GpuStat, ProcessStat
from tui_trainer.tui.fmt import STATUS_ICON, STATUS_STYLE, fmt_duration, fmt_mb, fmt_num
from tui_trainer.tui.follow import RunSnapshot

__all__ = ["StatusLine", "status_note", "status_text"]

FINAL_NOTES = {  # a run's new status -> what the dashboard notifies, and how
    "finished": ("finished", "information"),
    "stopped": ("stopped", "warning"),
    "paused": ("paused", "information"),
    "diverged": ("diverged", "error"),
    "crashed": ("crashed", "error"),
}


def status_note(snap: RunSnapshot) -> tuple[str, str] | None:
    """The notification of a run that changed to ``snap.status``: (text, severity)."""
    note = FINAL_NOTES.get(snap.status)
    if note is None:
        return None
    text = f"{snap.label}: {note[0]}"
    if snap.status in ("crashed", "diverged") and (snap.error or snap.reason):
        text += f": {snap.error or snap.reason}"
    return text, note[1]


def status_text(
    snap: RunSnapshot,
    process: ProcessStat | None = None,
    gpus: list[GpuStat] | None = None,
    findings: int | None = None,
    now: float | None = None,
) -> Text:
    """One line; the most useful parts first, so a narrow terminal cuts the least useful."""
    now = time.time() if now is None else now
    text = Text()
    icon = STATUS_ICON.get(snap.status, "?")
    text.append(f"{icon} {snap.status}", STATUS_STYLE.get(snap.status, ""))
    if snap.remote:  # a run on another box, read over ssh
        text.append(f"  on {snap.remote_host or snap.host}", "cyan")
        if snap.remote in ("connecting", "reconnecting"):
            text.append(f"  {snap.remote}…", "bold yellow")
    total = f"/{snap.total_steps:,}" if snap.total_steps else ""
    pct = f" {100 * snap.step / snap.total_steps:.0f}%" if snap.total_steps else ""
    text.append(f"  step {snap.step:,}{total}{pct}", "bold")
    if snap.status == "created":  # the child is importing PyTorch, loading data, building
        text.append("  starting: loading PyTorch, the data and the model…", "italic dim")
    if snap.epoch is not None:
        text.append(f"  ep {snap.epoch:.1f}")
    if snap.steps_per_s:
        text.append(f"  {fmt_num(snap.steps_per_s)} st/s")
    if snap.status == "running":
        text.append(f"  ETA {fmt_duration(snap.eta_s)}")
    if snap.started:
        end = snap.ended if snap.ended and not snap.live else now
        text.append(f"  elapsed {fmt_duration(end - snap.started)}", "dim")
    if findings:
        text.append(f"  {findings} finding{'s' if findings > 1 else ''}", "bold yellow")
    if snap.catching_up:
        text.append("  reading…", "italic dim")
    device = snap.device_name or snap.device
    if device:
        text.append(f"  {device}", "cyan")
    mem = snap.last.get("sys/cuda_mem_alloc_mb")
    if mem is not None:
        text.append(f" mem {fmt_mb(mem)}", "cyan")
    for g in gpus or []:
        if snap.device.startswith("cuda"):
            idx = snap.device.partition(":")[2]
            if idx and idx.isdigit() and int(idx) != g.index:
                continue
        util = f"{g.util_pct:.0f}%" if g.util_pct is not None else "?"
        text.append(
            f"  GPU{g.index} {util} {fmt_mb(g.mem_used_mb)}/{fmt_mb(g.mem_total_mb)}", "cyan"
        )
        if g.temp_c is not None:
            text.append(f" {g.temp_c:.0f}°C", "cyan")
        if g.power_w is not None:
            text.append(f" {g.power_w:.0f} W", "cyan")
    if process is not None:
        text.append(f"  cpu {process.cpu_pct:.0f}% rss {fmt_mb(process.rss_mb)}", "dim")
    return text


class StatusLine(Static):
    """The selected run's one-line status."""

    DEFAULT_CSS = """
    StatusLine { height: 1; }
    """
