"""Remote work against a real OpenSSH server on 127.0.0.1 (keys and configs in a temporary
directory): runs --ssh, stream --ssh, the mirror that attach --ssh draws from (with the
server killed and restarted mid-stream), controls travelling back, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
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


# -- a live run followed through the server --------------------------------------------------

WRITER = """
import sys, time, torch
from torch import nn
import tui_trainer
torch.set_num_threads(1)
steps = int(sys.argv[2])
model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
x = torch.randn(64, 8); y = (x[:, 0] > 0).long()
mon = tui_trainer.watch(model, name="remote-live", every=1, log_every=2, runs_dir=sys.argv[1],
                        total_steps=steps)
print(mon.run_id, flush=True)
for i in range(steps):
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
    mon.step(loss=loss)
    if i % 50 == 0:
        mon.eval({"loss": loss.item()})
    if mon.should_stop:
        break
    time.sleep(0.01)
mon.finish()
"""


@pytest.fixture
def live_run(tmp_path):
    """A real training process (tui_trainer.watch, ~100 steps/s) that the test watches."""
    runs = tmp_path / "live-runs"

    def start(steps: int):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(runs), str(steps)], stdout=subprocess.PIPE,
            text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        started.append(proc)
        return runs, proc.stdout.readline().strip(), proc

    started: list[subprocess.Popen] = []
    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def wait_until(predicate, timeout=60.0, what=""):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def rows(run_dir):
    """Every record of a run, comparable across copies (walls included)."""
    from tui_trainer.store import RunReader

    with RunReader(run_dir) as r:
        con = r._con  # noqa: SLF001 - the test compares the tables themselves
        scalars = con.execute(
            "SELECT s.step, n.name, s.value, s.wall FROM scalars s JOIN names n ON n.id = s.name_id"
            " ORDER BY s.id"
        ).fetchall()
        stats = con.execute("SELECT * FROM layer_stats ORDER BY id").fetchall()
        events = con.execute("SELECT step, wall, kind, data FROM events ORDER BY id").fetchall()
        layers = r.layers()
        status = r.status()
    return scalars, [s[1:] for s in stats], events, layers, status


def test_the_mirror_catches_up_after_the_server_dies_mid_stream(
    box, live_run, tmp_path, monkeypatch
):
    from tui_trainer.remote import Remote
    from tui_trainer.remote.mirror import RemoteMirror

    runs, run_id, proc = live_run(600)
    monkeypatch.setenv("TUI_TRAINER_SSH", box.ssh)
    try:
        remote = Remote(HOST, box.remote_cmd(REPO), str(runs))
        mirror = RemoteMirror(remote, "latest", root=tmp_path / "cache").start()
        copy = mirror.wait_ready(timeout=60)
        assert copy.name == run_id
        wait_until(lambda: mirror.records > 50, what="records before the drop")
        box.kill()  # the server and the session: a dropped connection
        wait_until(lambda: mirror.state == "reconnecting", what="reconnecting")
        from tui_trainer.store import RunReader

        with RunReader(copy) as r:
            assert r.meta()["mirror"]["state"] == "reconnecting"  # what the dashboard shows
        time.sleep(1.0)  # the run trains on meanwhile
        box.start()
        wait_until(lambda: mirror.state == "ended", timeout=120, what="the end of the run")
        assert mirror.connects >= 2
        mirror.close()
    finally:
        if box.proc is None:
            box.start()
    proc.wait(timeout=60)
    original, copied = rows(runs / run_id), rows(copy)
    assert copied[4] == original[4] == "finished"
    assert copied[3] == original[3]  # layers
    assert copied[0] == original[0] and len(original[0]) > 100  # scalars: none lost or repeated
    assert copied[1] == original[1] and len(original[1]) > 100  # layer statistics
    assert copied[2] == original[2]  # events


def test_attach_over_ssh_draws_here_and_controls_travel_back(box, live_run, tmp_path, monkeypatch):
    import asyncio

    from tui_trainer.remote import Remote
    from tui_trainer.remote.mirror import RemoteMirror
    from tui_trainer.store import RunReader
    from tui_trainer.tui.app import TrainerApp
    from tui_trainer.tui.screens.confirm import ConfirmScreen
    from tui_trainer.tui.widgets.status_line import StatusLine

    from ..tui.conftest import dashboard_ready, wait_for

    runs, run_id, proc = live_run(100_000)
    monkeypatch.setenv("TUI_TRAINER_SSH", box.ssh)
    remote = Remote(HOST, box.remote_cmd(REPO), str(runs))
    mirror = RemoteMirror(remote, run_id, root=tmp_path / "cache").start()
    copy = mirror.wait_ready(timeout=60)

    def status():
        with RunReader(runs / run_id) as r:
            return r.status()

    async def drive():
        app = TrainerApp(runs_dir=str(mirror.root), attach=copy)
        async with app.run_test(size=(120, 40)) as pilot:
            await dashboard_ready(pilot, findings=False)
            line = str(app.screen.query_one(StatusLine).render())
            assert f"on {HOST}" in line, line
            await pilot.press("space")  # pause: over ssh, to the training process
            await wait_for(pilot, lambda: status() == "paused", timeout=30)
            await wait_for(pilot, lambda: app.screen.current.status == "paused", timeout=30)
            await pilot.press("space")
            await wait_for(pilot, lambda: status() == "running", timeout=30)
            await pilot.press("s")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await wait_for(pilot, lambda: status() == "stopped", timeout=30)

    try:
        asyncio.run(drive())
    finally:
        mirror.close()
    proc.wait(timeout=30)


def test_the_runs_screen_lists_and_opens_runs_of_another_box(box, finished_run, monkeypatch):
    import asyncio

    from tui_trainer.tui.app import TrainerApp
    from tui_trainer.tui.screens.dashboard import DashboardScreen
    from tui_trainer.tui.screens.runs import RunsScreen

    from ..tui.conftest import wait_for

    runs, run_id = finished_run
    monkeypatch.setenv("TUI_TRAINER_SSH", box.ssh)
    monkeypatch.setenv("TUI_TRAINER_CACHE", str(runs.parent / "cache"))
    local = runs.parent / "local-runs"  # nothing here: every row is the box's
    local.mkdir(exist_ok=True)

    async def drive():
        app = TrainerApp(str(local), hosts=[HOST], remote_cmd=box.remote_cmd(REPO))
        from tui_trainer.remote import Remote

        app.boxes.remotes = [Remote(HOST, box.remote_cmd(REPO), str(runs))]
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
            screen = app.screen
            await wait_for(pilot, lambda: f"{HOST}:{run_id}" in screen.runs, timeout=30)
            assert screen.hosts[f"{HOST}:{run_id}"] == HOST
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), timeout=60)
            await wait_for(pilot, lambda: app.screen.current is not None, timeout=30)
            await wait_for(pilot, lambda: app.screen.current.remote == "ended", timeout=30)
            snap = app.screen.current
            assert snap.run_id == run_id and snap.status == "finished"
            assert snap.remote_host == HOST and snap.curves  # the remote run, drawn here

    asyncio.run(drive())
