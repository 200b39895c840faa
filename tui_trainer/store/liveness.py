"""Provides whether a run recorded as live is still being trained: the process identity a
run records (host, boot, pid and the pid's start time) and the check a reader makes.

A pid alone is not an identity: after a reboot, or once the kernel hands the number to
another process, "the recorded pid exists" says nothing. A process is the one recorded when
the host and boot id match and the pid's start time (clock ticks since boot, from
``/proc/<pid>/stat``) is the one recorded. Where /proc is missing (not Linux) the check falls
back to the pid alone.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

__all__ = ["boot_id", "process_identity", "recorded_process_alive", "start_ticks"]

_PROC = Path("/proc")


def boot_id() -> str | None:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return int(fields[19])


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """What a run records of the process that trains it (this one by default)."""
    pid = os.getpid() if pid is None else pid
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "boot_id": boot_id(),
        "pid_start": start_ticks(pid),
    }


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists; its start time says whose
    except OSError:
        return False
    return True


def recorded_process_alive(meta: dict[str, Any]) -> bool | None:
    """True when the process ``meta`` records is running, False when it is certainly not
    (gone, a zombie, another process now holding its pid, or a reboot since), None when this
    machine cannot tell (the run was trained on another host)."""
    if meta.get("host") != socket.gethostname():
        return None
    pid = meta.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return None
    recorded_boot, here_boot = meta.get("boot_id"), boot_id()
    if recorded_boot and here_boot and recorded_boot != here_boot:
        return False  # rebooted since: no process of that boot survives
    if not _pid_exists(pid):
        return False
    fields = _stat_fields(pid)
    if fields is None:
        return True  # no /proc here: the pid is all there is to go on
    if fields and fields[0] == "Z":
        return False  # a zombie: it has exited, its parent has not reaped it yet
    recorded_start = meta.get("pid_start")
    if isinstance(recorded_start, int) and len(fields) >= 20:
        return int(fields[19]) == recorded_start
    return True
