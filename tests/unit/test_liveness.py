"""A run recorded as live is live only while the recorded process is: not after it exits,
not when its pid now names another process, not after a reboot. And a signal handler only
sets a flag: no signal tears a step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tui_trainer.engine.signals import stop_on_signals
from tui_trainer.store import effective_status
from tui_trainer.store.liveness import boot_id, process_identity, recorded_process_alive

linux = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")


def _meta(**identity):
    return {"status": "running", **identity}


def test_this_process_is_the_recorded_one():
    meta = _meta(**process_identity())
    assert recorded_process_alive(meta) is True
    assert effective_status(meta) == "running"


@linux
def test_a_pid_now_held_by_another_process_reads_crashed():
    # the pid exists, but started at another time: pid reuse after the trainer died
    identity = process_identity()
    meta = _meta(**{**identity, "pid_start": identity["pid_start"] + 1})
    assert recorded_process_alive(meta) is False
    assert effective_status(meta) == "crashed"
    assert effective_status({**meta, "status": "paused"}) == "crashed"
    assert effective_status({**meta, "status": "finished"}) == "finished"  # not live: as is


@linux
def test_a_run_from_before_a_reboot_reads_crashed():
    assert boot_id()
    meta = _meta(**{**process_identity(), "boot_id": "0" * 8 + "-dead-beef"})
    assert effective_status(meta) == "crashed"


def test_an_exited_process_reads_crashed_and_a_zombie_too():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    meta = _meta(**process_identity(child.pid))
    deadline = time.monotonic() + 30
    while recorded_process_alive(meta) and time.monotonic() < deadline:  # exits, unreaped
        time.sleep(0.01)
    assert effective_status(meta) == "crashed"  # a zombie (not reaped yet) is dead
    child.wait()
    assert effective_status(meta) == "crashed"


def test_another_host_cannot_tell():
    meta = _meta(**{**process_identity(), "host": "some-other-box"})
    assert recorded_process_alive(meta) is None
    assert effective_status(meta) == "running"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signals_only_set_the_stop_flag_and_never_raise(sig):
    class T:
        stop_requested = ""

    trainer = T()
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with stop_on_signals(trainer):
        for _ in range(3):  # a second and a third Ctrl+C: still only the flag
            os.kill(os.getpid(), sig)
            time.sleep(0.01)
        assert trainer.stop_requested == f"signal {signal.Signals(sig).name}"
    # the handlers are given back as they were (SIGINT is ignored under a job started with &)
    assert {s: signal.getsignal(s) for s in before} == before
