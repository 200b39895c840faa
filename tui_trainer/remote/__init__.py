"""Provides remote work over plain SSH: the command lines (``ssh.py``) and the local mirror
of a remote run that the dashboard draws from (``mirror.py``).

Nothing listens on a port: every exchange is ``ssh HOST <remote tui-trainer> ...``, with the
user's own ssh (``$TUI_TRAINER_SSH``, default ``ssh``), config, keys and jump hosts. A
remote run is read with ``stream --follow`` into a local run directory (a mirror), so the
dashboard, diagnose and export work on it unchanged. Standard library only.
"""

from __future__ import annotations

from tui_trainer.remote.ssh import Remote, RemoteError

__all__ = ["Remote", "RemoteError"]
