"""RunSupervisor, without any UI: start a preset's variants, watch them end, stop them all."""

from __future__ import annotations

import pytest

from tui_trainer.config import ConfigError
from tui_trainer.runner import RunSupervisor
from tui_trainer.store import RunReader, list_runs

from .test_runner import wait_for


@pytest.fixture
def supervisor(runs_dir):
    """A RunSupervisor whose children are killed after the test, pass or fail."""
    sup = RunSupervisor(runs_dir)
    started = []
    real_start = sup.start

    def start(*args, **kwargs):
        processes = real_start(*args, **kwargs)
        started.extend(processes)
        return processes

    sup.start = start  # type: ignore[method-assign]
    yield sup
    for process in started:
        if process.alive():
            process.process.kill()
        process.process.wait()


def test_start_watch_and_stop_all(supervisor):
    sup = supervisor
    started = sup.start("xor-mlp", [None], ["train.max_steps=100000000"])
    (process,) = started
    assert sup.label(process.run_dir) == "xor-mlp/hidden-4" and sup.live() == [process]
    with RunReader(process.run_dir) as r:
        assert wait_for(lambda: r.meta().get("status") == "running")
    sup.stop_all()  # a stop row; the child checkpoints and exits
    code, error = sup.wait_for_end(process)
    assert (code, error) == (1, "")  # stopped: exit code 1, as `run`'s
    assert sup.live() == []
    with RunReader(process.run_dir) as r:
        assert r.status() == "stopped"
        assert [c for _, c, done in r.controls()] == ["stop"]
    assert (process.run_dir / "checkpoints" / "last.pt").is_file()
    sup.forget(process.run_dir)
    assert sup.processes == {}


def test_a_bad_override_starts_nothing(runs_dir, supervisor):
    sup = supervisor
    with pytest.raises(ConfigError, match="optim.lr"):
        sup.start("vanishing-gradients", ["relu", "sigmoid"], ["optim.lr=-1"])
    assert sup.processes == {} and list_runs(runs_dir) == []


def test_a_killed_child_is_seen_ending_and_marked_crashed(supervisor):
    sup = supervisor
    (process,) = sup.start("xor-mlp", [None], ["train.max_steps=100000000"])
    process.process.kill()
    code, error = sup.wait_for_end(process)
    assert code == -9 and error == ""
    with RunReader(process.run_dir) as r:
        assert r.status() == "crashed" and "signal 9" in r.meta().get("error", "") + str(
            r.events("status")
        )


def test_waiting_can_be_cancelled(supervisor):
    (process,) = supervisor.start("xor-mlp", [None], ["train.max_steps=100000000"])
    assert supervisor.wait_for_end(process, cancelled=lambda: True) == (None, "")


def test_start_refuses_missing_data_files_before_any_child(tmp_path):
    sup = RunSupervisor(tmp_path / "runs")
    sets = ['data.name="mnist"', f'data.dir="{tmp_path}/x"']
    with pytest.raises(ConfigError, match="data.dir: .* does not exist"):
        sup.start("digits-mlp", [None], sets)
    assert not sup.processes and not (tmp_path / "runs").exists()
