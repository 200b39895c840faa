"""Benchmark: remote work through a real sshd on 127.0.0.1 (needs openssh-server).

    OMP_NUM_THREADS=1 python benchmarks/remote.py [--seconds 8] [--layers 20] [--rate 100]

1. Records/s through ``stream`` of a finished run: the store's own read of every row
   (``RunReader.tail`` until caught up: the baseline) against ``stream`` writing them as JSON
   lines (in process, to a null sink), and against ``stream --ssh`` (the remote command
   through sshd, lines read here).
2. A live run written at ``--rate`` steps/s with ``--layers`` layers (a synthetic writer:
   per step 3 scalars and one statistics row per layer, through RunStore, as a training
   process writes), followed by a RemoteMirror over ssh: bytes/s of the stream, without and
   with ``--every 10``, and the delay from a record written there (its wall time) to it
   arriving here (median, p95), against ``stream --follow`` read locally (no ssh).
3. Reconnect: the server killed mid-stream and restarted; seconds from the restart until
   the mirror has the next record.
Machine and the exact command line are printed with the tables.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from sshd_server import HOST, SshServer, sshd_missing  # noqa: E402

from tui_trainer.remote import Remote  # noqa: E402
from tui_trainer.remote.mirror import RemoteMirror  # noqa: E402
from tui_trainer.store import RunReader, RunStore  # noqa: E402
from tui_trainer.store.schema import STAT_COLUMNS  # noqa: E402
from tui_trainer.store.stream import write_stream  # noqa: E402


def synthetic_run(runs: Path, steps: int, layers: int, rate: float | None) -> Path:
    """A run written as a training process writes it; ``rate`` steps/s (None: at once)."""
    store = RunStore.create(runs, "bench", "remote", "{}", "# bench\n")
    store.set_meta(pid=os.getpid(), total_steps=steps)
    store.set_layers([(f"layer{i}", "Linear", "relu", 100) for i in range(layers)])
    store.set_status("running", 0)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        wall = time.time()
        store.scalars(step, {"train/loss": 1.0 / step, "train/lr": 0.1, "bench/wall": wall})
        row = [0.5] * len(STAT_COLUMNS)
        store.layer_stats(step, [row] * layers)
        if rate:
            ahead = t0 + step / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
    store.set_status("finished", steps)
    store.close()
    return store.run_dir


def count_records(run_dir: Path) -> int:
    with RunReader(run_dir) as r:
        n = 0
        while True:
            tail = r.tail(limit=20_000)
            if not tail:
                return n
            n += len(tail.scalars) + len(tail.layer_stats) + len(tail.events)


def part1(runs: Path, remote: Remote, layers: int) -> None:
    run_dir = synthetic_run(runs, 5000, layers, rate=None)
    n = count_records(run_dir)
    t = time.perf_counter()
    count_records(run_dir)
    base = time.perf_counter() - t
    t = time.perf_counter()
    with RunReader(run_dir) as r:
        write_stream(r, io.StringIO())
    local = time.perf_counter() - t
    t = time.perf_counter()
    proc = subprocess.run(remote.argv("stream", run_dir.name), capture_output=True)
    ssh = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr[-300:]
    print(f"\n1. records/s through stream: {n:,} records (5,000 steps x {layers} layers)")
    print(f"{'path':38} {'seconds':>8} {'records/s':>11} {'vs store read':>14}")
    paths = [("store read (RunReader.tail)", base), ("stream, in process (JSON lines)", local)]
    for name, sec in [*paths, ("stream --ssh (through sshd)", ssh)]:
        print(f"{name:38} {sec:8.2f} {n / sec:11,.0f} {base / sec:14.3f}")


def follow(remote: Remote, runs: Path, seconds: float, layers: int, rate: float, every: int):
    """A live synthetic run followed by a mirror: (bytes/s, delays in s)."""
    steps = int(seconds * rate)
    writer = threading.Thread(target=synthetic_run, args=(runs, steps, layers, rate))
    writer.start()
    while not any(runs.iterdir()):
        time.sleep(0.01)
    with tempfile.TemporaryDirectory() as cache:
        mirror = RemoteMirror(remote, "latest", every=every, root=Path(cache)).start()
        copy = mirror.wait_ready(60)
        writer.join()
        while mirror.state != "ended":
            time.sleep(0.05)
        mirror.close()
        with RunReader(copy) as r:
            walls = r._con.execute(  # noqa: SLF001
                "SELECT s.value, s.wall FROM scalars s JOIN names n ON n.id = s.name_id "
                "WHERE n.name = 'bench/wall'"
            ).fetchall()
        nbytes = mirror.bytes
    # a record's arrival here is when the mirror flushed it: the copy's wall is the
    # original's, so the delay is measured by the mirror itself (arrivals)
    delays = mirror.delays
    return nbytes / seconds, delays, len(walls)


def part2(runs_root: Path, remote_for, seconds: float, layers: int, rate: float) -> None:
    print(f"\n2. a live run at {rate:.0f} steps/s, {layers} layers, {seconds:.0f} s, followed")
    print(f"{'stream':28} {'bytes/s':>10} {'vs every 1':>11} {'delay med':>10} {'p95':>8}")
    base = None
    for every in (1, 10):
        runs = runs_root / f"live-{every}"
        runs.mkdir()
        bps, delays, n = follow(remote_for(runs), runs, seconds, layers, rate, every)
        base = base or bps
        q = statistics.quantiles(delays, n=20) if len(delays) > 20 else [float("nan")] * 19
        print(f"{'--every ' + str(every):28} {bps:10,.0f} {bps / base:11.3f} "
              f"{statistics.median(delays):9.3f}s {q[18]:7.3f}s")  # fmt: skip


def part3(server: SshServer, runs: Path, remote: Remote, layers: int) -> None:
    writer = threading.Thread(target=synthetic_run, args=(runs, 1500, layers, 100))
    writer.start()
    while not any(runs.iterdir()):
        time.sleep(0.01)
    times = []
    with tempfile.TemporaryDirectory() as cache:
        mirror = RemoteMirror(remote, "latest", root=Path(cache)).start()
        mirror.wait_ready(60)
        for _ in range(2):
            time.sleep(2)
            server.kill()
            while mirror.state != "reconnecting":
                time.sleep(0.01)
            time.sleep(0.5)
            seen = mirror.records
            server.start()
            t = time.perf_counter()
            while mirror.records == seen:
                time.sleep(0.005)
            times.append(time.perf_counter() - t)
        writer.join()
        mirror.close()
    print("\n3. reconnect: the server killed mid-stream, then restarted")
    print(f"{'try':6} {'seconds from restart to the next record':>42}")
    for i, t in enumerate(times, 1):
        print(f"{i:<6} {t:42.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--rate", type=float, default=100.0)
    args = ap.parse_args()
    why = sshd_missing()
    if why:
        sys.exit(f"benchmarks/remote.py needs a local sshd: {why}")
    print("$ " + shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]))
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        server = SshServer(root / "sshd")
        server.start()
        os.environ["TUI_TRAINER_SSH"] = server.ssh
        cmd = server.remote_cmd(REPO)
        try:
            runs = root / "runs"
            runs.mkdir()
            part1(runs, Remote(HOST, cmd, str(runs)), args.layers)
            part2(root, lambda d: Remote(HOST, cmd, str(d)), args.seconds, args.layers, args.rate)
            live = root / "reconnect"
            live.mkdir()
            part3(server, live, Remote(HOST, cmd, str(live)), args.layers)
        finally:
            server.kill()


if __name__ == "__main__":
    main()
