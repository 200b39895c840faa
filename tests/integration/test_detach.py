"""``run --detach``: a run that outlives its command, its terminal and a SIGHUP to them;
``pause`` and ``resume`` on it from other commands; one-line errors otherwise."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shlex
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tui_trainer.store import LIVE_STATUSES, RunReader, send_control

from .test_runner import wait_for

ROOT = Path(__file__).resolve().parents[2]
LONG = "train.max_steps=100000000"  # still training when each test stops it
DEADLINE = 120.0  # generous: two shared cores


def cli_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "tui_trainer", *args]


def cli_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_args(*args), capture_output=True, text=True, timeout=DEADLINE, env=cli_env()
    )


def step_of(run_dir: Path) -> int:
    with RunReader(run_dir) as r:
        return int(r.meta().get("step") or 0)


def status_of(run_dir: Path) -> str:
    with RunReader(run_dir) as r:
        return r.status()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # an orphan that init has not reaped yet counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


@pytest.fixture
def detached():
    """Run directories and pids of detached runs: stopped (or killed) after the test."""
    started: list[tuple[Path, int]] = []
    yield started
    for run_dir, pid in started:
        if status_of(run_dir) in LIVE_STATUSES:
            send_control(run_dir, "stop")
        if not wait_for(lambda pid=pid: not pid_alive(pid), timeout=60):
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda pid=pid: not pid_alive(pid), timeout=30)


def stop_and_wait(run_dir: Path, pid: int) -> None:
    r = cli("stop", run_dir.name, "--runs-dir", str(run_dir.parent))
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: status_of(run_dir) not in LIVE_STATUSES, DEADLINE)
    assert status_of(run_dir) == "stopped"
    assert wait_for(lambda: not pid_alive(pid), DEADLINE)


def take_terminal() -> None:
    """In the shell, after its setsid: make the pty on stdin its controlling terminal, and
    let a hangup end it as it ends a login shell (under `nohup` the test process and so
    the shell would inherit SIGHUP ignored: the shell then outlived the hangup)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def test_detached_run_survives_sighup_and_its_terminal_closing(runs_dir, tmp_path, detached):
    out, rc = tmp_path / "out.json", tmp_path / "rc"
    command = shlex.join(
        cli_args("run", "xor-mlp", "--detach", "--json", "--set", LONG, "--runs-dir", str(runs_dir))
    )
    script = f"{command} > {shlex.quote(str(out))}; echo $? > {shlex.quote(str(rc))}; sleep 600"
    master, slave = pty.openpty()
    shell = subprocess.Popen(
        ["sh", "-c", script], stdin=slave, stdout=slave, stderr=slave, env=cli_env(),
        start_new_session=True, preexec_fn=take_terminal,
    )  # fmt: skip
    os.close(slave)
    try:
        assert wait_for(lambda: rc.is_file() and rc.read_text().strip() != "", DEADLINE)
        (doc,) = json.loads(out.read_text())["runs"]
        run_dir, pid = Path(doc["run_dir"]), int(doc["pid"])
        detached.append((run_dir, pid))
        assert rc.read_text().strip() == "0"
        assert status_of(run_dir) in LIVE_STATUSES  # it returned while the run trains
        assert doc["run_id"] == run_dir.name and run_dir.parent == runs_dir
        assert os.getsid(pid) != os.getsid(shell.pid) and os.getpgid(pid) != shell.pid
        assert wait_for(lambda: status_of(run_dir) == "running" and step_of(run_dir) > 0,
                        DEADLINE)  # fmt: skip
        os.killpg(shell.pid, signal.SIGHUP)  # the terminal's hangup, to its whole group
    except BaseException:  # end the shell, so the failure is this one, not a wait's timeout
        os.killpg(shell.pid, signal.SIGKILL)
        raise
    finally:
        os.close(master)  # and the terminal itself goes away
        shell.wait(DEADLINE)
    assert shell.returncode == -signal.SIGHUP
    hung_up_at = step_of(run_dir)
    assert wait_for(lambda: step_of(run_dir) > hung_up_at + 50, DEADLINE)
    assert status_of(run_dir) == "running" and pid_alive(pid)
    with RunReader(run_dir) as r:
        assert r.meta()["pid"] == pid
    stop_and_wait(run_dir, pid)


def test_pause_and_resume_a_detached_run(runs_dir, detached):
    r = cli("run", "xor-mlp", "--detach", "--set", LONG, "--runs-dir", str(runs_dir))
    assert r.returncode == 0, r.stderr
    run_id = re.search(r"tui-trainer attach (\S+)", r.stdout).group(1)
    pid = int(re.search(r"\(pid (\d+)\)", r.stdout).group(1))
    run_dir = runs_dir / run_id
    detached.append((run_dir, pid))
    assert run_id in r.stdout.splitlines()[0]
    assert wait_for(lambda: status_of(run_dir) == "running" and step_of(run_dir) > 0, DEADLINE)

    not_paused = cli("resume", run_id, "--runs-dir", str(runs_dir))
    assert not_paused.returncode == 2 and len(not_paused.stderr.strip().splitlines()) == 1
    assert "not paused" in not_paused.stderr

    assert cli("pause", run_id, "--runs-dir", str(runs_dir)).returncode == 0
    assert wait_for(lambda: status_of(run_dir) == "paused", DEADLINE)
    paused_at = step_of(run_dir)
    with RunReader(run_dir) as reader:
        logged = len(reader.series("train/loss"))
        time.sleep(1.0)  # no step while paused
        assert len(reader.series("train/loss")) == logged
    assert step_of(run_dir) == paused_at and status_of(run_dir) == "paused"

    resumed = cli("resume", run_id, "--runs-dir", str(runs_dir), "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["run_id"] == run_id
    assert wait_for(lambda: status_of(run_dir) == "running", DEADLINE)
    assert wait_for(lambda: step_of(run_dir) > paused_at, DEADLINE)
    stop_and_wait(run_dir, pid)


def test_pause_of_a_finished_run_and_bad_detach_input_are_one_line(runs_dir):
    done = cli("run", "xor-mlp", "--set", "train.max_steps=20", "--quiet", "--json")
    assert done.returncode == 0, done.stderr
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    assert status_of(run_dir) == "finished"
    r = cli("pause", run_dir.name, "--runs-dir", str(runs_dir))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [f"error: run {run_dir.name} is finished, not running"]

    before = sorted(runs_dir.iterdir())
    for args in (("no-such-preset",), ("xor-mlp", "--set", "train.no_such_key=1")):
        r = cli("run", *args, "--detach", "--runs-dir", str(runs_dir))
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert sorted(runs_dir.iterdir()) == before  # nothing was launched
