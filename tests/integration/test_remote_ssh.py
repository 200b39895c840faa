"""Remote work against a real OpenSSH server on 127.0.0.1 (keys and configs in a temporary
directory): runs --ssh, stream --ssh, the mirror that attach --ssh draws from (with the
server killed and restarted mid-stream), controls travelling back, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sshd_server import HOST, SshServer, sshd_missing  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sshd_missing() is not None, reason=str(sshd_missing()))


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    server = SshServer(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.kill()


def cli(box, *args, timeout=120):
    """``python -m tui_trainer ARGS`` here, with ssh reaching the test server."""
    return subprocess.run(
        [sys.executable, "-m", "tui_trainer", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env={**box.env, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


def remote_args(box, runs_dir):
    return ["--ssh", HOST, "--remote-cmd", box.remote_cmd(REPO), "--runs-dir", str(runs_dir)]


@pytest.fixture(scope="module")
def finished_run(box, tmp_path_factory):
    runs = tmp_path_factory.mktemp("remote-runs")
    r = cli(box, "run", "xor-mlp", "--set", "train.max_steps=60", "--runs-dir", str(runs), "--json")
    assert r.returncode == 0, r.stderr
    return runs, json.loads(r.stdout)["run_id"]


def test_runs_over_ssh_lists_the_remote_box(box, finished_run):
    runs, run_id = finished_run
    local = cli(box, "runs", "--json", "--runs-dir", str(runs))
    remote = cli(box, "runs", "--json", *remote_args(box, runs))
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    table = cli(box, "runs", *remote_args(box, runs))
    assert f"on {HOST}" in table.stdout and run_id[:12] in table.stdout


def test_stream_over_ssh_is_the_remote_stream(box, finished_run):
    runs, run_id = finished_run
    local = cli(box, "stream", run_id, "--runs-dir", str(runs))
    remote = cli(box, "stream", run_id, *remote_args(box, runs))
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout and remote.stdout.count("\n") > 10


def test_a_remote_without_tui_trainer_is_one_line_with_the_fix(box, tmp_path):
    r = cli(box, "runs", "--ssh", HOST)  # tui-trainer is not on a non-interactive PATH
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "--remote-cmd" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_host_and_unknown_run_are_one_line(box, finished_run):
    runs, _ = finished_run
    r = cli(box, "runs", "--ssh", "tt-nowhere.invalid")
    assert r.returncode == 2 and r.stderr.startswith("error: ssh tt-nowhere.invalid:"), r.stderr
    assert r.stderr.count("\n") == 1
    r = cli(box, "stream", "no-such-run", *remote_args(box, runs))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"error: {HOST}:") and "Traceback" not in r.stderr


def test_hosts_and_run_names_cannot_inject(box, finished_run, tmp_path):
    runs, _ = finished_run
    pwned = tmp_path / "pwned"
    r = cli(box, "runs", "--ssh", f"-oProxyCommand=touch {pwned}")
    assert r.returncode == 2 and "not a host" in r.stderr, r.stderr
    r = cli(box, "stream", f"x; touch {pwned}", *remote_args(box, runs))
    assert r.returncode == 2, r.stderr
    r = cli(box, "attach", f"$(touch {pwned})", *remote_args(box, runs))
    assert r.returncode == 2, r.stderr
    assert not pwned.exists()
    assert not (Path.home() / "pwned").exists()
