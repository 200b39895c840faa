"""Benchmark: the metrics view (key ``a``) on a live run that logs 200 distinct scalars.

    python benchmarks/ui_metrics.py [--seconds 10] [--rate 500] [--names 200]

A synthetic writer (benchmarks/ui.py's) records --rate steps/s with 5 scalars a step and,
every 10 steps, 50 layers of statistics, 100 per-parameter gradient norms and --names
``metric/NNN`` scalars. ``tui-trainer attach`` shows it in a 120x40 pseudo-terminal:
CPU of the app over --seconds on the dashboard, then over --seconds with the metrics view
open; the time from ``a`` to the view's header, from ``]`` to the next page, from a filter
typed (``/metric/01*`` Enter) to its result; the lag of the view's newest step behind the
writer is not measured (the view re-reads its page every second by design).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ui  # noqa: E402  (the terminal and the writer of benchmarks/ui.py)

CODE = (
    "import sys; sys.path.insert(0, {bench!r}); import ui; "
    "ui.write_run({root!r}, 'm', {steps}, {rate}, 50, 10, extra_names={names})"
)


DRAWN = re.compile(rb"page 1/\d+ (?:\x1b\[[0-9;]*m)*\(/ filter")  # not "reading their curves"


def timed(term: ui.Term, keys: bytes, marker: bytes, timeout: float = 20.0) -> float:
    """Seconds from ``keys`` written to ``marker`` on the screen."""
    term.pump(0.05)
    term.buf.clear()
    t = time.perf_counter()
    term.send(keys)
    while marker not in term.buf:
        if time.perf_counter() - t > timeout:
            plain = re.sub(rb"\x1b\[[0-9;?<>=]*[a-zA-Z~]", b"", bytes(term.buf))
            head = re.findall(rb"metrics: [^\r\n]{0,80}", plain)[-3:]
            raise TimeoutError(f"{keys!r}: {marker!r} never appeared; headers seen: {head}")
        term.pump(0.002)
    return time.perf_counter() - t


def cpu_over(term: ui.Term, proc: psutil.Process, seconds: float) -> float:
    proc.cpu_percent(None)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        term.pump(0.01)
    return proc.cpu_percent(None)


def measure(root: str, seconds: float, rate: float, names: int, rounds: int) -> dict:
    code = CODE.format(
        bench=str(ui.ROOT / "benchmarks"),
        root=root,
        steps=int(rate * (4 * seconds + 60)),
        rate=rate,
        names=names,
    )
    writer = ui.subprocess.Popen(
        [sys.executable, "-c", code], env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    run_dir = Path(root) / "m"
    while not (run_dir / "run.db").exists():
        time.sleep(0.05)
    time.sleep(1.0)
    term = ui.Term([*ui.EXE, "attach", str(run_dir)])
    res: dict = {}
    try:
        term.wait_for(b"step ", 30)
        proc = psutil.Process(term.proc.pid)
        res["cpu_dashboard"] = cpu_over(term, proc, seconds)
        base = []  # the baseline: a dashboard key (m: smoothing, in the chart titles)
        for _ in range(rounds):
            base.append(timed(term, b"m", b"ema 0.6"))
            term.send(b"mmm")  # 0.9, 0.99, off
            term.pump(0.5)
        res["dashboard_key"] = base
        opens = []  # a, then back to the dashboard (its footer), again
        for _ in range(rounds - 1):
            opens.append(timed(term, b"a", b"scalars recorded"))
            term.pump(0.5)
            timed(term, b"\x1b", b"all metrics")
        sent = time.perf_counter() + 0.05  # the last open: also the time to its curves
        opens.append(timed(term, b"a", b"scalars recorded"))
        while not DRAWN.search(term.buf):  # the header once the page's curves are drawn
            term.pump(0.002)
        res["open"], res["curves"] = opens, time.perf_counter() - sent
        res["cpu_metrics"] = cpu_over(term, proc, seconds)
        res["rss"] = proc.memory_info().rss / 2**20
        pages = []
        for _ in range(rounds):
            pages.append(timed(term, b"]", b"page 2/"))
            pages.append(timed(term, b"[", b"page 1/"))
        res["page"] = pages
        res["filter"] = timed(term, b"/metric/01*\r", b"matching")  # typed at once
    finally:
        term.close()
        writer.kill()
        writer.wait()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--names", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ui-metrics-bench-")
    try:
        r = measure(tmp, args.seconds, args.rate, args.names, args.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
        f"python {platform.python_version()}; writer {args.rate:,.0f} steps/s, "
        f"{args.names} metric/* names every 10 steps"
    )
    w = 56
    print(f"{'measure':<{w}}{'value':>18}")
    print(f"{'app CPU, % of a core: dashboard':<{w}}{r['cpu_dashboard']:>18.0f}")
    print(f"{'app CPU, % of a core: metrics view open':<{w}}{r['cpu_metrics']:>18.0f}")
    base, opens = sorted(r["dashboard_key"]), sorted(r["open"])
    print(
        f"{'baseline: m on the dashboard -> title drawn, ms, median / max':<{w}}"
        f"{f'{1000 * statistics.median(base):.0f} / {1000 * base[-1]:.0f}':>18}"
    )
    print(
        f"{'a -> metrics view drawn, ms, median / max':<{w}}"
        f"{f'{1000 * statistics.median(opens):.0f} / {1000 * opens[-1]:.0f}':>18}"
    )
    ratio = statistics.median(opens) / statistics.median(base)
    print(f"{'  ratio to the baseline key (medians)':<{w}}{ratio:>18.2f}")
    curves = "a -> the first page of curves drawn, ms (last open)"
    print(f"{curves:<{w}}{1000 * r['curves']:>18.0f}")
    page = sorted(r["page"])
    print(
        f"{'] or [ -> page drawn, ms, median / max':<{w}}"
        f"{f'{1000 * statistics.median(page):.0f} / {1000 * page[-1]:.0f}':>18}"
    )
    print(f"{'filter typed + Enter -> result drawn, ms':<{w}}{1000 * r['filter']:>18.0f}")
    print(f"{'app RSS, MiB (metrics view open)':<{w}}{r['rss']:>18.0f}")


if __name__ == "__main__":
    main()
