"""Benchmark: the app as a person runs it, in a pseudo-terminal (120x40), against budgets.

    python benchmarks/ui.py [--seconds 15] [--rate 2000] [--layers 50] [--replay-steps 1000000]

1. First frame: ``tui-trainer`` (the preset picker) against a bare Textual app showing one
   line, from process start to the first frame on the terminal (median of 3).
2. Following a live run: a synthetic writer process records --rate steps/s into a store
   (5 scalars a step; every 10 steps 50 layers of statistics and 2 gradient norms per
   layer) while ``tui-trainer attach`` shows it. Lag = when a step appears in the status
   line minus when the writer recorded it (the writer's batched flush, ~0.25 s, included).
   CPU is the app process's, in % of one core; the baseline is ``tui-trainer stream
   --follow > /dev/null`` reading the same records without drawing anything.
3. Key presses while that run trains: ``g`` and ``m`` change a panel title; latency is from
   the key written to the terminal to the new title read back. Baseline: the same keys on
   a finished run (nothing to follow).
4. Memory: the app attached to a replay of --replay-steps steps (a loss value every step,
   50 layers of statistics every 100), RSS at the first frame and once every step has
   been read. Baseline: the same curves and statistics kept as plain Python lists.
5. Opening that finished run: seconds until its whole history (curves and heatmap) is in
   a snapshot, in-process. Baseline: reading every row (``bulk_open=False``); ours: the
   bulk open from the store's roll-ups and SQL sums, then the tail of recent samples.

``benchmarks/ui_metrics.py`` measures the metrics view (key ``a``) on a run logging 200
distinct scalar names, with this file's terminal and writer.

Budgets (DESIGN.md §8): first frame < 1.5 s; key < 100 ms while training; lag < 1 s at
2,000 steps/s; memory bounded whatever the run length.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import pty
import re
import select
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import psutil

from tui_trainer.store import STAT_COLUMNS, RunStore

ROOT = Path(__file__).resolve().parent.parent
EXE = [sys.executable, "-m", "tui_trainer"]
BARE_APP = (
    "from textual.app import App\nfrom textual.widgets import Static\n"
    "class Bare(App):\n    def compose(self):\n        yield Static('bare-first-frame')\n"
    "Bare().run()\n"
)


# -- a terminal ----------------------------------------------------------------------------
class Term:
    """A process in a pseudo-terminal whose output is read as it comes."""

    def __init__(self, argv: list[str], cols: int = 120, rows: int = 40) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor", OMP_NUM_THREADS="1")
        env.pop("NO_COLOR", None)
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.fd = master
        os.set_blocking(master, False)
        self.buf = bytearray()

    def pump(self, timeout: float) -> bytes:
        """Read what the app wrote within ``timeout`` seconds."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        got = bytearray()
        while ready:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            got += chunk
            ready, _, _ = select.select([self.fd], [], [], 0)
        self.buf += got
        if len(self.buf) > 1 << 20:
            del self.buf[: len(self.buf) - (1 << 16)]
        return bytes(got)

    def wait_for(self, marker: bytes, timeout: float = 30.0) -> float:
        """Seconds until ``marker`` appears in new output (from now)."""
        start = time.perf_counter()
        self.buf.clear()
        while marker not in self.buf:
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"{marker!r} did not appear in {timeout} s")
            self.pump(0.01)
        return time.perf_counter() - start

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        os.close(self.fd)


# -- a synthetic training process ------------------------------------------------------------
def layer_rows(step: int, layers: int) -> list[list[float]]:
    return [
        [10.0 ** (-(layers - 1 - i) / 8) * (1 + (step % 97) / 97)] * 6
        + [0.5, 0.2, 0.0, 1.0, 0.1, 0.0, 0.0]
        for i in range(layers)
    ]


def write_run(
    root: str, run_id: str, steps: int, rate: float, layers: int, probe_every: int,
    grad_params: bool = True, extra_names: int = 0,
) -> None:
    """Record ``steps`` steps, paced to ``rate`` steps/s (0: as fast as possible)."""
    store = RunStore.create(root, "bench-ui", run_id, json.dumps({"title": "synthetic"}), "",
                            run_id=run_id)
    store.set_layers(
        [(f"blocks.{i}", "linear", "relu", 65_792) for i in range(layers - 1)]
        + [("head", "output", "identity", 2_570)]
    )
    store.set_meta(pid=os.getpid(), host=socket.gethostname(), device="cpu",
                   device_name="synthetic", started=time.time(), total_steps=steps,
                   batches_per_epoch=1000, probe_every=probe_every, task="classify")
    store.set_status("running", 0)
    names = [f"grad_norm/blocks.{i}.{p}" for i in range(layers) for p in ("weight", "bias")]
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        if rate:
            ahead = t0 + step / rate - time.perf_counter()
            if ahead > 0.002:
                time.sleep(ahead)
        loss = 2.0 / (1 + step / 5000) + (step % 13) * 0.001
        store.scalars(step, {"train/loss": loss, "train/acc": 1 - loss / 3, "train/lr": 0.1,
                             "train/epoch": step / 1000, "perf/steps_per_s": rate or 1e5})
        if step % probe_every == 0:
            store.layer_stats(step, layer_rows(step, layers))
            extra = {n: 0.01 for n in names} if grad_params else {}
            extra["grad/total_norm"] = 0.5
            for i in range(extra_names):  # a script's own names (benchmarks/ui_metrics.py)
                extra[f"metric/{i:03d}"] = (i + 1) / (1 + step / 1000)
            store.scalars(step, extra)
        if step % 1000 == 0:
            store.scalars(step, {"val/loss": loss * 1.1, "val/acc": 1 - loss / 2.8})
            store.event(step, "eval", {"val/loss": loss * 1.1})
    store.set_meta(step=steps, steps_per_s=steps / (time.perf_counter() - t0))
    store.set_status("finished", steps)
    store.close()


def spawn_writer(root: str, run_id: str, steps: int, rate: float, layers: int) -> subprocess.Popen:
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import ui; "
        f"ui.write_run({root!r}, {run_id!r}, {steps}, {rate}, {layers}, 10)"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def step_walls(run_dir: Path) -> dict[int, float]:
    """When the writer recorded each train/loss step (for the lag)."""
    con = sqlite3.connect(f"file:{run_dir / 'run.db'}?mode=ro", uri=True)
    rows = con.execute(
        "SELECT step, wall FROM scalars WHERE name_id = "
        "(SELECT id FROM names WHERE name = 'train/loss')"
    ).fetchall()
    con.close()
    return dict(rows)


# -- measurements ----------------------------------------------------------------------------
def first_frame(argv: list[str], marker: bytes, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        term = Term(argv)
        try:
            term.wait_for(marker, 30)
            times.append(time.perf_counter() - term.t0)
        finally:
            term.close()
    return statistics.median(times)


STEP = re.compile(rb"step ([\d,]+)/")
KEY_MARKERS = [
    (b"g", b"flowing out"), (b"g", b"update / weight"), (b"g", b"activation std"),
    (b"g", b"dead fraction"), (b"g", b"saturated fraction"), (b"g", b"parameters"),
    (b"m", b"ema 0.6"), (b"m", b"ema 0.9)"), (b"m", b"ema 0.99"), (b"m", None),
]


def key_latencies(term: Term, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        for key, marker in KEY_MARKERS:
            term.pump(0.05)
            if marker is None:
                term.send(key)
                term.pump(0.2)
                continue
            term.buf.clear()
            t = time.perf_counter()
            term.send(key)
            while marker not in term.buf:
                if time.perf_counter() - t > 5:
                    raise TimeoutError(f"key {key!r}: {marker!r} never appeared")
                term.pump(0.002)
            out.append(time.perf_counter() - t)
    return out


def follow(root: str, seconds: float, rate: float, layers: int, rounds: int) -> dict:
    run_id = "live"
    writer = spawn_writer(root, run_id, int(rate * (seconds + 60)), rate, layers)
    run_dir = Path(root) / run_id
    while not (run_dir / "run.db").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    term = Term([*EXE, "attach", str(run_dir)])
    res: dict = {}
    try:
        term.wait_for(b"step ", 30)
        proc = psutil.Process(term.proc.pid)
        settle = time.perf_counter() + 1.0
        while time.perf_counter() < settle:  # keep reading: frames left in the terminal
            term.pump(0.01)  # would be stamped late (up to +1 s of false lag) or block the app
        res["rss_start"] = proc.memory_info().rss / 2**20
        proc.cpu_percent(None)
        seen: list[tuple[float, int]] = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            got = term.pump(0.01)
            now = time.time()
            seen += [(now, int(m.group(1).replace(b",", b""))) for m in STEP.finditer(got)]
        res["cpu"] = proc.cpu_percent(None)
        res["rss_end"] = proc.memory_info().rss / 2**20
        res["keys"] = key_latencies(term, rounds)
    finally:
        term.close()
    walls = step_walls(run_dir)
    lags = [t - walls[s] for t, s in seen if s in walls]
    res["lag_med"], res["lag_max"] = statistics.median(lags), max(lags)
    res["lag_p95"] = sorted(lags)[int(0.95 * (len(lags) - 1))]
    res["updates_per_s"] = len({t for t, _ in seen}) / seconds
    # the baseline reader: every record as JSON lines, drawn nowhere
    stream = subprocess.Popen([*EXE, "stream", str(run_dir), "--follow"],
                              stdout=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
    sp = psutil.Process(stream.pid)
    time.sleep(2.0)  # let it catch up with what was written before it started
    sp.cpu_percent(None)
    time.sleep(min(seconds, 10))
    res["stream_cpu"] = sp.cpu_percent(None)
    stream.kill()
    stream.wait()
    writer.kill()
    writer.wait()
    res["writer_rate"] = (len(walls) - 1) / max(1e-9, max(walls.values()) - min(walls.values()))
    return res


def replay(root: str, steps: int, layers: int) -> dict:
    t0 = time.perf_counter()
    write_run(root, "replay", steps, 0, layers, 100, grad_params=False)
    res: dict = {"write_s": time.perf_counter() - t0}
    run_dir = Path(root) / "replay"
    term = Term([*EXE, "attach", str(run_dir)])
    try:
        term.wait_for(b"step ", 60)
        proc = psutil.Process(term.proc.pid)
        res["rss_first"] = proc.memory_info().rss / 2**20
        t1 = time.perf_counter()
        # the status line says "reading…" until every row has been read
        done = re.compile(rf"step {steps:,}/{steps:,} 100%(.{{0,600}}?)synthetic".encode(), re.S)
        while not any(b"reading" not in m.group(1) for m in done.finditer(term.buf)):
            if time.perf_counter() - t1 > 600:
                raise TimeoutError("the replay was never read to the end")
            if len(term.buf) > 1 << 19:
                del term.buf[: len(term.buf) - 4096]
            term.pump(0.05)
        res["catch_up_s"] = time.perf_counter() - t1
        time.sleep(2.0)
        res["rss_after"] = proc.memory_info().rss / 2**20
        res["idle_keys"] = key_latencies(term, 2)
    finally:
        term.close()
    res["open_rows_s"], res["open_bulk_s"], res["open_exact_s"] = open_times(run_dir)
    code = (
        "import psutil, sys; from tui_trainer.store import RunReader\n"
        f"r = RunReader({str(run_dir)!r}); a = psutil.Process().memory_info().rss\n"
        "kept = [r.series(n) for n in ('train/loss', 'train/acc', 'perf/steps_per_s')]\n"
        f"kept += [r.layer_stat_matrix(c) for c in {list(STAT_COLUMNS[:6])!r}]\n"
        "print(psutil.Process().memory_info().rss / 2**20, a / 2**20)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    res["naive_rss"], res["naive_start"] = map(float, out.stdout.split())
    return res


def open_times(run_dir: Path) -> tuple[float, float, float]:
    """Seconds to a snapshot holding a finished run's whole history: reading every row;
    the bulk open's first snapshot (curves from the roll-ups, the heatmap from a sample of
    its rows: what the app draws first); the bulk open's last (the heatmap exact)."""
    from tui_trainer.tui.follow import RunFollower

    out = []
    for bulk in (False, True):
        t0 = time.perf_counter()
        follower = RunFollower(run_dir, bulk_open=bulk)
        first = None
        while follower.poll():
            snap = follower.snapshot()
            whole = snap.heat is not None and snap.curves["train/loss"].end == snap.step
            if first is None and whole and snap.step == follower.meta.get("total_steps"):
                first = time.perf_counter() - t0
        snap = follower.snapshot()
        out.append((first, time.perf_counter() - t0))
        assert snap.heat is not None and snap.curves["train/loss"].end == snap.step
        follower.reader.close()
    return out[0][1], out[1][0] or out[1][1], out[1][1]


def ms(values: list[float]) -> str:
    s = sorted(values)
    return f"{1000 * statistics.median(s):.0f} / {1000 * s[int(0.95 * (len(s) - 1))]:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--layers", type=int, default=50)
    ap.add_argument("--replay-steps", type=int, default=1_000_000)
    ap.add_argument("--key-rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ui-bench-")
    try:
        bare = first_frame([sys.executable, "-c", BARE_APP], b"bare-first-frame")
        ours = first_frame([*EXE, "--runs-dir", tmp], b"edit & train")
        live = follow(tmp, args.seconds, args.rate, args.layers, args.key_rounds)
        rep = replay(tmp, args.replay_steps, args.layers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"python {platform.python_version()}")
    w = 58
    print(f"{'measure':<{w}}{'baseline':>16}{'ours':>16}  budget")
    print(f"{'first frame, s (baseline: bare Textual app)':<{w}}{bare:>16.2f}{ours:>16.2f}  < 1.5")
    print(f"{f'writer achieved, steps/s ({args.layers} layers)':<{w}}{'':>16}"
          f"{live['writer_rate']:>16,.0f}  2,000")
    print(f"{'lag behind writer, s, median / p95 / max':<{w}}{'':>16}"
          f"{live['lag_med']:.2f} / {live['lag_p95']:.2f} / {live['lag_max']:.2f}".rjust(16)
          + "  < 1")
    print(f"{'status-line updates per second':<{w}}{'':>16}{live['updates_per_s']:>16.1f}  4-10")
    print(f"{'CPU, % of a core (baseline: stream --follow)':<{w}}{live['stream_cpu']:>16.0f}"
          f"{live['cpu']:>16.0f}")
    print(f"{'RSS while following, MiB, start -> end of window':<{w}}{'':>16}"
          f"{live['rss_start']:.0f} -> {live['rss_end']:.0f}".rjust(16))
    print(f"{'key press -> screen, ms, median / p95 (baseline: idle)':<{w}}"
          f"{ms(rep['idle_keys']):>16}{ms(live['keys']):>16}  < 100")
    print(f"{f'replay {args.replay_steps:,} steps: time to read all, s':<{w}}{'':>16}"
          f"{rep['catch_up_s']:>16.1f}")
    print(f"{'open the finished replay: whole history, s (baseline: every row)':<{w}}"
          f"{rep['open_rows_s']:>16.2f}{rep['open_bulk_s']:>16.2f}  < 1"
          f"  ({rep['open_rows_s'] / rep['open_bulk_s']:.0f}x)")
    print(f"{'  ... and its heatmap summed over every row, s':<{w}}{'':>16}"
          f"{rep['open_exact_s']:>16.2f}")
    print(f"{'replay: RSS, MiB, first frame -> all read (baseline: lists)':<{w}}"
          f"{rep['naive_start']:.0f} -> {rep['naive_rss']:.0f}".rjust(w + 16)
          + f"{rep['rss_first']:.0f} -> {rep['rss_after']:.0f}".rjust(16) + "  flat")


if __name__ == "__main__":
    main()
