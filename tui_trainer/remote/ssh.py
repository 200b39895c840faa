"""Provides Remote: ``ssh HOST <remote tui-trainer> ARGS`` built so that neither a host nor
a run name can inject an option or a shell command, and ssh's failures as one line.

The remote command is ``--remote-cmd``, else ``$TUI_TRAINER_REMOTE_CMD``, else
``tui-trainer``; it is a shell word list the user chose (``~/venv/bin/tui-trainer``,
``conda run -n x tui-trainer``). Every argument after it is quoted for the remote shell,
and ``--`` ends ssh's options before the host. The ssh command itself is
``$TUI_TRAINER_SSH`` (default ``ssh``; e.g. ``ssh -F ./ssh_config``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass

from tui_trainer.store import RunInfo

__all__ = ["NOT_FOUND_RC", "Remote", "RemoteError", "SSH_RC"]

SSH_RC = 255  # ssh's own failure: no route, refused key, unknown host
NOT_FOUND_RC = 127  # the remote shell found no such command
CONNECT_TIMEOUT_S = 10


class RemoteError(Exception):
    """A remote exchange failed; the message is one line naming what is wrong."""


@dataclass(frozen=True)
class Remote:
    """One box reached by ssh: ``host`` (any ssh destination: ``user@box``, a config alias),
    the remote tui-trainer command, and the runs directory on that side."""

    host: str
    remote_cmd: str | None = None
    runs_dir: str | None = None

    def __post_init__(self) -> None:
        host = self.host
        if not host or host.startswith("-") or any(c.isspace() for c in host):
            raise ValueError(f"--ssh: {host!r} is not a host (no leading '-', no spaces)")

    @property
    def command(self) -> str:
        return self.remote_cmd or os.environ.get("TUI_TRAINER_REMOTE_CMD") or "tui-trainer"

    def argv(self, *args: str, tty: bool = False, runs_dir: bool = True) -> list[str]:
        """The local argv that runs ``<remote tui-trainer> args [--runs-dir D]`` on the host."""
        ssh = shlex.split(os.environ.get("TUI_TRAINER_SSH") or "ssh")
        opts = ["-t"] if tty else ["-o", "BatchMode=yes"]
        opts += ["-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}"]
        words = list(args)
        if runs_dir and self.runs_dir:
            words += ["--runs-dir", self.runs_dir]
        remote = " ".join([self.command, *(shlex.quote(w) for w in words)])
        return [*ssh, *opts, "--", self.host, remote]

    def run(self, *args: str, timeout: float = 60.0) -> str:
        """Run a short remote command; its stdout, or RemoteError with one line."""
        try:
            proc = subprocess.run(
                self.argv(*args), capture_output=True, text=True, timeout=timeout,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except FileNotFoundError:
            raise RemoteError(f"ssh not found: set TUI_TRAINER_SSH ({self._ssh_name()})") from None
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{self.host}: no answer within {timeout:.0f} s") from None
        if proc.returncode != 0:
            raise RemoteError(self.failure(proc.returncode, proc.stderr))
        return proc.stdout

    def runs(self, timeout: float = 30.0) -> list[RunInfo]:
        """The box's runs, newest first (``runs --json`` there)."""
        try:
            items = json.loads(self.run("runs", "--json", timeout=timeout))
        except json.JSONDecodeError:
            message = f"{self.host}: `{self.command} runs --json` printed no JSON"
            raise RemoteError(message) from None
        if not isinstance(items, list):
            return []
        return [RunInfo.from_dict(d) for d in items if isinstance(d, dict) and "run_id" in d]

    def failure(self, rc: int, stderr: str) -> str:
        """What went wrong, in one line, from an exit status and the stderr of a remote call."""
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit status {rc}"
        cmd = shlex.split(self.command)[0] if self.command.strip() else self.command
        missing = rc == NOT_FOUND_RC or any(
            ("command not found" in ln or "No such file or directory" in ln) and cmd in ln
            for ln in lines
        )
        if missing:
            return (
                f"{self.host}: `{self.command}` is not found there (non-interactive ssh does "
                "not activate a virtual environment); pass --remote-cmd "
                "~/venv/bin/tui-trainer or set TUI_TRAINER_REMOTE_CMD"
            )
        if rc == SSH_RC:
            return f"ssh {self.host}: {last}"
        errors = [ln for ln in lines if ln.startswith("error:")]
        if errors:
            return f"{self.host}: {errors[-1].removeprefix('error:').strip()}"
        return f"{self.host}: `{self.command}` failed ({last})"

    def _ssh_name(self) -> str:
        return os.environ.get("TUI_TRAINER_SSH") or "ssh"
