"""Provides FindingsPanel: what went wrong (a crash, a divergence) and diagnose's findings."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual.widgets import Static

from tui_trainer.tui.follow import RunSnapshot

__all__ = ["FindingsPanel"]

_SEVERITY = {"error": ("✗", "bold red"), "warning": ("!", "bold yellow"), "info": ("i", "cyan")}


class FindingsPanel(Static):
    """Problems of the selected run first, then findings, newest data at each refresh."""

    DEFAULT_CSS = """
    FindingsPanel { height: auto; }
    """

    def show(
        self, snap: RunSnapshot | None, findings: list[dict[str, Any]] | None, error: str = ""
    ) -> None:
        parts: list[RenderableType] = []
        if snap is not None and snap.status in ("crashed", "diverged"):
            text = Text(f"{snap.status}", "bold red")
            why = snap.error or snap.reason
            if why:
                text.append(f": {why}", "red")
            parts.append(text)
            if snap.log_tail:
                parts.append(Text("log tail:", "dim"))
                parts.append(Text("\n".join(snap.log_tail.splitlines()[-8:]), "dim"))
        if snap is not None:
            for step, kind, data in snap.events:
                if kind == "nonfinite" and data.get("layer"):
                    parts.append(
                        Text(f"non-finite values in {data['layer']} at step {step}", "red")
                    )
        if error:
            parts.append(Text(error, "dim"))
        elif findings is None:
            parts.append(Text("diagnosing…", "dim"))
        elif not findings:
            parts.append(Text("no findings: nothing looks wrong so far", "green"))
        for f in findings or []:
            icon, style = _SEVERITY.get(str(f.get("severity", "info")), ("?", ""))
            line = Text(f"{icon} ", style)
            line.append(str(f.get("rule", "")), "bold")
            line.append(f" {f.get('message', '')}")
            parts.append(line)
            if f.get("remedy"):
                parts.append(Text(f"  → {f['remedy']}", "dim"))
        self.update(Group(*parts))
