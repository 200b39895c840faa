"""Provides short number, duration and status formats shared by the screens and widgets."""

from __future__ import annotations

import math

__all__ = [
    "STATUS_ICON",
    "STATUS_STYLE",
    "fmt_duration",
    "fmt_mb",
    "fmt_num",
    "fmt_steps",
    "sparkline",
]

STATUS_ICON = {
    "created": "◌",
    "running": "●",
    "paused": "‖",
    "finished": "✓",
    "stopped": "■",
    "diverged": "✗",
    "crashed": "✗",
}
STATUS_STYLE = {
    "created": "dim",
    "running": "bold green",
    "paused": "bold yellow",
    "finished": "bold cyan",
    "stopped": "yellow",
    "diverged": "bold red",
    "crashed": "bold red",
}
SPARK = "▁▂▃▄▅▆▇█"


def fmt_num(v: float | None, digits: int = 3) -> str:
    """A compact number: 0.0123, 1.23e-05, 1.2e+03; '-' when missing."""
    if v is None:
        return "-"
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    a = abs(v)
    if 10 ** (digits - 1) <= a < 1e6:
        return f"{v:.0f}"  # 2270, not 2.27e+03
    if 1e-3 <= a < 1e4:
        return f"{v:.{digits}g}"
    return f"{v:.{max(digits - 2, 0)}e}".replace("e-0", "e-").replace("e+0", "e+")


def fmt_steps(n: int) -> str:
    """Step counts: 999, 12.3k, 1.00M."""
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.2f}M"


def fmt_duration(seconds: float | None) -> str:
    """0:07, 12:03, 3:04:05; '-' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_mb(mb: float | None) -> str:
    if mb is None:
        return "-"
    return f"{mb / 1024:.1f}G" if mb >= 1024 else f"{mb:.0f}M"


def sparkline(values: tuple[float | None, ...] | list[float | None], width: int = 12) -> str:
    """The last ``width`` values as block characters, scaled to their own range."""
    vals = [v for v in values[-width:]]
    nums = [v for v in vals if v is not None and math.isfinite(v)]
    if not nums:
        return ""
    lo, hi = min(nums), max(nums)
    span = hi - lo
    out = []
    for v in vals:
        if v is None or not math.isfinite(v):
            out.append(" ")
        elif span <= 1e-12 * max(abs(hi), 1.0):
            out.append(SPARK[3])
        else:
            out.append(SPARK[min(7, int((v - lo) / span * 7.999))])
    return "".join(out)
