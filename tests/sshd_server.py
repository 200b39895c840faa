"""A real OpenSSH server on 127.0.0.1 for tests and benchmarks: host and user keys made in
a temporary directory, its own sshd_config and ssh_config; no system file is read or
touched (beyond /run/sshd, the privilege-separation directory sshd insists on)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
HOST = "tt-box"  # the alias the client config gives the server


def sshd_missing() -> str | None:
    """Why a real sshd cannot run here, or None."""
    if not os.path.exists(SSHD):
        return "openssh-server is not installed (apt-get install -y openssh-server)"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "the ssh client is not installed"
    if os.geteuid() != 0 and not os.path.isdir("/run/sshd"):
        return "sshd needs /run/sshd, which only root can make"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SshServer:
    """``start()``, ``kill()`` (the server and every session it serves), ``start()`` again
    on the same port; ``env`` makes ``ssh`` (and tui-trainer's ``--ssh``) reach it as
    ``tt-box``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.proc: subprocess.Popen[bytes] | None = None
        for name in ("host_key", "user_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)],
                check=True, capture_output=True,
            )  # fmt: skip
        shutil.copy(root / "user_key.pub", root / "authorized_keys")
        (root / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
            f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            f"PermitRootLogin prohibit-password\nAllowUsers {self.user}\nLogLevel ERROR\n"
            "MaxStartups 100\nMaxSessions 100\n"
        )
        (root / "ssh_config").write_text(
            f"Host {HOST}\n  HostName 127.0.0.1\n  Port {self.port}\n  User {self.user}\n"
            f"  IdentityFile {root / 'user_key'}\n  IdentitiesOnly yes\n"
            "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
            "  BatchMode yes\n"
        )
        for p in (root / "host_key", root / "user_key"):
            p.chmod(0o600)

    @property
    def ssh(self) -> str:
        return f"ssh -F {self.root / 'ssh_config'}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "TUI_TRAINER_SSH": self.ssh}

    def start(self, timeout: float = 15.0) -> None:
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.root / "sshd_config")],
            stdout=subprocess.DEVNULL, stderr=open(self.root / "sshd.log", "ab"),
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.root / 'sshd.log').read_text()[-500:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("sshd did not listen")

    def kill(self) -> None:
        """The listener and every session it forked (a dropped connection, not a logout)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        doomed = [proc.pid, *_descendants(proc.pid)]  # sessions call setsid: list them first
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=10)

    def remote_cmd(self, repo: Path) -> str:
        """tui-trainer on the remote side: this Python with the repository on its path."""
        return f"env PYTHONPATH={repo} OMP_NUM_THREADS=1 {sys.executable} -m tui_trainer"


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    out, frontier = [], [pid]
    while frontier:
        kids = [c for c, p in parents.items() if p in frontier]
        out += kids
        frontier = kids
    return out
