"""Provides the ``--ssh HOST`` side of ``runs``, ``stream`` and ``attach``: each is the
same command run on HOST through ``tui_trainer.remote``; ``attach`` draws the dashboard
here from a local copy of the remote stream. Failures are one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Any

from tui_trainer.cli.root import fail

__all__ = ["remote_attach", "remote_runs", "remote_stream"]


def _remote(host: str, remote_cmd: str | None, runs_dir: str | None) -> Any:
    from tui_trainer.remote import Remote

    return Remote(host, remote_cmd, runs_dir)  # ValueError for a host like "-oProxy..."


def remote_runs(host: str, remote_cmd: str | None, runs_dir: str | None) -> list[dict[str, Any]]:
    from tui_trainer.remote import RemoteError

    try:
        return [r.to_dict() for r in _remote(host, remote_cmd, runs_dir).runs(timeout=60)]
    except RemoteError as exc:
        raise fail(str(exc)) from None


def remote_stream(
    host: str,
    remote_cmd: str | None,
    runs_dir: str | None,
    run_ref: str,
    *,
    follow: bool = False,
    since: str | None = None,
    every: int = 1,
) -> int:
    """The remote ``stream``, its lines passed through to stdout; returns the exit status."""
    remote = _remote(host, remote_cmd, runs_dir)
    args = ["stream", run_ref, *(["--follow"] if follow else [])]
    args += [
        *(["--since", since] if since else []),
        *(["--every", str(every)] if every > 1 else []),
    ]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        try:
            rc = subprocess.run(
                remote.argv(*args), stdout=sys.stdout, stderr=err, stdin=subprocess.DEVNULL
            ).returncode
        except KeyboardInterrupt:
            return 130
        err.seek(0)
        stderr = err.read()
    if rc != 0:
        raise fail(remote.failure(rc, stderr))
    return 0


def remote_attach(
    host: str,
    remote_cmd: str | None,
    runs_dir: str | None,
    run_ref: str,
    *,
    remote_ui: bool = False,
    every: int = 1,
) -> None:
    """The dashboard here, fed by ``stream --follow`` over ssh (or, ``--remote-ui``, the
    whole app run there under ``ssh -t``)."""
    from tui_trainer.remote import RemoteError
    from tui_trainer.remote.mirror import RemoteMirror

    remote = _remote(host, remote_cmd, runs_dir)
    if remote_ui:
        argv = remote.argv("attach", run_ref, tty=True)
        os.execvp(argv[0], argv)
    mirror = RemoteMirror(remote, run_ref, every=every).start()
    try:
        run_dir = mirror.wait_ready()
    except RemoteError as exc:
        mirror.close()
        raise fail(str(exc)) from None
    from tui_trainer.tui.app import run_app

    try:
        run_app(runs_dir=str(mirror.root), attach=run_dir)
    finally:
        mirror.close()
