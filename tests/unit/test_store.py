"""Store: round trip, batching, cross-process tailing, control rows, listing, decimation."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from tui_trainer.store import (
    STAT_COLUMNS,
    RunReader,
    RunStore,
    StoreError,
    list_runs,
    resolve_run,
    send_control,
)


def make_store(runs_dir, preset="p", variant="v") -> RunStore:
    return RunStore.create(runs_dir, preset, variant, json.dumps({"a": 1}), "a = 1\n")


def test_round_trip(runs_dir):
    s = make_store(runs_dir)
    s.set_layers([("blocks.0", "linear", "relu", 10), ("head", "output", "identity", 5)])
    s.scalars(1, {"train/loss": 2.5, "train/acc": 0.5})
    s.scalar(2, "train/loss", float("nan"))
    row = [float(i) for i in range(len(STAT_COLUMNS))]
    row[STAT_COLUMNS.index("sat_frac")] = float("nan")
    s.layer_stats(1, [row, row])
    s.event(1, "eval", {"val/acc": 0.9})
    s.set_status("running", 1)
    s.close()

    r = RunReader(s.run_dir)
    meta = r.meta()
    assert meta["preset"] == "p" and meta["variant"] == "v" and meta["status"] == "running"
    assert meta["config"] == {"a": 1} and meta["schema_version"] == 1
    assert [lay["name"] for lay in r.layers()] == ["blocks.0", "head"]
    tail = r.tail()
    assert (1, "train/loss", 2.5) == tail.scalars[0][:3]
    assert tail.scalars[2][2] is None  # NaN is stored as NULL, not dropped silently
    assert len(tail.layer_stats) == 2
    stats = dict(zip(STAT_COLUMNS, tail.layer_stats[0][2:], strict=False))
    assert stats["grad_norm"] == 0.0 and stats["sat_frac"] is None
    kinds = [e[2] for e in tail.events]
    assert kinds == ["eval", "status"]
    assert not r.tail()  # cursors advanced: nothing new
    assert (s.run_dir / "config.toml").read_text() == "a = 1\n"
    con = sqlite3.connect(s.run_dir / "run.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_writes_are_batched(runs_dir, monkeypatch):
    s = make_store(runs_dir)
    r = RunReader(s.run_dir)
    s._last_flush = time.monotonic()  # a flush just happened
    s.scalar(1, "x", 1.0)
    assert not r.tail().scalars  # buffered, not yet visible
    s.flush()
    assert [v for _, _, v, _ in r.tail().scalars] == [1.0]
    s.close()


def test_status_change_flushes(runs_dir):
    s = make_store(runs_dir)
    r = RunReader(s.run_dir)
    s._last_flush = time.monotonic()
    s.scalar(3, "x", 1.0)
    s.set_status("paused", 3)
    assert r.tail().scalars and r.meta()["status"] == "paused"
    s.close()


WRITER = """
import sys, time
from tui_trainer.store import RunStore
s = RunStore(sys.argv[1])
for i in range(40):
    s.scalar(i, "train/loss", float(i))
    s.flush()
    time.sleep(0.02)
s.set_status("finished", 40)
s.close()
"""


def test_reader_tails_a_writer_in_another_process(runs_dir):
    s = make_store(runs_dir)
    s.close()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(s.run_dir)])
    r = RunReader(s.run_dir)
    seen: list[float] = []
    polls_with_rows = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = r.tail().scalars
        if rows:
            polls_with_rows += 1
            seen.extend(v for _, _, v, _ in rows)
        if r.meta().get("status") == "finished" and not rows:
            break
        time.sleep(0.05)
    proc.wait(10)
    assert seen == [float(i) for i in range(40)]
    assert polls_with_rows > 1  # rows arrived while the writer was still writing


def test_control_rows(runs_dir):
    s = make_store(runs_dir)
    r = RunReader(s.run_dir)
    send_control(r.run_dir, "pause")
    send_control(r.run_dir, "stop")
    assert s.pending_controls()[0][1] == "pause"
    assert s.pending_controls() == []  # each request is handed out once
    assert [c[2] for c in r.controls()] == [True, True]
    with pytest.raises(ValueError):
        send_control(r.run_dir, "explode")
    s.close()


def test_curve_keeps_spikes(runs_dir):
    s = make_store(runs_dir)
    n = 100_000
    for i in range(n):
        s.scalars(i, {"train/loss": 1.0 if i != 77_777 else 50.0, "b": i % 10}, wall=0.0)
    s.flush()
    r = RunReader(s.run_dir)
    cols = r.curve("train/loss", columns=200)
    assert 190 <= len(cols) <= 201
    assert max(c[2] for c in cols) == 50.0  # the spike survives decimation
    assert min(c[1] for c in cols) == 1.0
    assert cols[0][0] == 0
    # means and extremes agree with a direct computation over the raw points
    b = r.curve("b", columns=100)
    assert all(c[1] == 0 and c[2] == 9 for c in b)
    assert sum(c[3] for c in b) / len(b) == pytest.approx(4.5, abs=0.05)
    short = r.curve("train/loss", columns=100_000)  # more columns than blocks allow: raw
    assert len(short) == n
    s.close()


def test_rollups_continue_after_reopen(runs_dir):
    s = make_store(runs_dir)
    for i in range(1000):  # 15 full roll-ups of 64, then 40 values in a partial one
        s.scalar(i, "x", 1e9 if i == 990 else float(i))
    s.close()
    s = RunStore(s.run_dir)  # a resumed run reopens the store
    for i in range(1000, 200_000):
        s.scalar(i, "x", float(i))
    s.close()
    cols = RunReader(s.run_dir).curve("x", columns=50)
    assert cols[0][1] == 0.0 and cols[-1][2] == 199_999.0
    assert max(c[2] for c in cols) == 1e9  # the partial roll-up was carried over


def test_list_and_resolve_runs(runs_dir):
    a = make_store(runs_dir, "alpha")
    a.set_status("finished", 0)
    a.close()
    time.sleep(0.01)
    b = make_store(runs_dir, "beta")
    b.set_meta(pid=999_999_999)
    b.set_status("running", 0)
    b.close()
    runs = list_runs(runs_dir)
    assert [r.preset for r in runs] == ["beta", "alpha"]
    assert runs[0].status == "crashed"  # its process is gone
    assert resolve_run("latest", runs_dir) == b.run_dir
    assert resolve_run(a.run_dir.name, runs_dir) == a.run_dir
    assert resolve_run(str(a.run_dir)) == a.run_dir
    with pytest.raises(StoreError, match="not a run id"):
        resolve_run("../../etc", runs_dir)
    with pytest.raises(StoreError, match="not found"):
        resolve_run("nope", runs_dir)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_runs_dir(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    with pytest.raises(StoreError, match="cannot write"):
        make_store(d)


def test_runs_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StoreError, match="cannot write"):
        make_store(f)


def test_nan_meta_is_json(runs_dir):
    s = make_store(runs_dir)
    s.set_meta(best={"val/loss": 1.0}, rate=math.inf)
    assert RunReader(s.run_dir).meta()["rate"] == "inf"
    s.close()


def test_tail_can_skip_names_by_prefix(runs_dir):
    s = make_store(runs_dir)
    r = RunReader(s.run_dir)
    s.scalars(1, {"grad_norm/a.weight": 1.0, "train/loss": 2.0})
    s.flush()
    assert [n for _, n, _, _ in r.tail(skip_prefixes=("grad_norm/",)).scalars] == ["train/loss"]
    s.scalars(2, {"grad_norm/b.weight": 1.0})  # a name that appears later is skipped too
    s.flush()
    assert not r.tail(skip_prefixes=("grad_norm/",)).scalars
    s.scalars(3, {"train/loss": 1.5})
    s.flush()
    assert [(st, n) for st, n, _, _ in r.tail(skip_prefixes=("grad_norm/",)).scalars] == [
        (3, "train/loss")
    ]
    assert len(RunReader(s.run_dir).tail().scalars) == 4  # nothing was dropped from the store
    s.close()


def test_run_store_is_the_trainers_recorder(runs_dir):
    from tui_trainer.engine.recorder import Recorder

    s = make_store(runs_dir)
    assert isinstance(s, Recorder)
    s.close()


def test_a_run_has_one_writer_at_a_time(runs_dir):
    """Two resumes of one run at once would write into one store: the second is refused,
    in this process or another, and the claim ends with the writer (close, or its death)."""
    s = make_store(runs_dir)
    with pytest.raises(StoreError, match=f"pid {os.getpid()}"):
        RunStore(s.run_dir)
    holder = subprocess.run(  # another process, while this one holds the run
        [sys.executable, "-c", "import sys; from tui_trainer.store import RunStore; "
         "RunStore(sys.argv[1])", str(s.run_dir)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert holder.returncode != 0 and "writes this run" in holder.stderr
    s.set_status("stopped", 0)
    s.close()
    again = RunStore(s.run_dir)  # released by close
    again.close()
    from typer.testing import CliRunner

    from tui_trainer.cli import app

    code = "import sys, time; from tui_trainer.store import RunStore; s = RunStore(sys.argv[1]); "
    code += "print('held', flush=True); time.sleep(30)"
    p = subprocess.Popen([sys.executable, "-c", code, str(s.run_dir)], stdout=subprocess.PIPE,
                         text=True)  # fmt: skip
    try:
        assert p.stdout.readline().strip() == "held"
        (s.run_dir / "checkpoints" / "last.pt").write_bytes(b"")  # refused before it is read
        r = CliRunner().invoke(app, ["resume", str(s.run_dir)])
        assert r.exit_code == 2 and "writes this run" in r.output, r.output
    finally:
        p.kill()
        p.wait()
    RunStore(s.run_dir).close()  # the holder died: its claim went with it


def test_a_damaged_or_newer_store_is_one_line(runs_dir):
    from typer.testing import CliRunner

    from tui_trainer.cli import app

    s = make_store(runs_dir)
    s.set_meta(schema_version=99)
    s.close()
    with pytest.raises(StoreError, match="newer tui-trainer.*schema 99"):
        RunReader(s.run_dir)
    bad = runs_dir / "20261203-000000-x-y-aaaa"
    bad.mkdir()
    (bad / "run.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a tui-trainer store"):
        RunReader(bad)
    for args in (["stream", str(bad)], ["diagnose", str(bad)], ["export", str(bad), "--out",
                 str(runs_dir / "out")], ["stream", str(s.run_dir)]):  # fmt: skip
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert r.output.count("\n") == 1 and r.output.startswith("error: "), r.output
    listed = CliRunner().invoke(app, ["runs", "--json", "--runs-dir", str(runs_dir)])
    assert listed.exit_code == 0  # one damaged run does not break the list


def test_a_reader_never_creates_a_store(tmp_path):
    from tui_trainer.store.schema import connect

    with pytest.raises(sqlite3.OperationalError):
        connect(tmp_path / "run.db", create=False)
    assert not (tmp_path / "run.db").exists()


def test_delete_run_while_it_is_listed_leaves_nothing(runs_dir):
    """A lister racing a deletion must not recreate ``run.db`` in the half-removed run."""
    import threading

    from tui_trainer.store.runs import delete_run

    done = threading.Event()

    def list_forever():
        while not done.is_set():
            list_runs(runs_dir)

    lister = threading.Thread(target=list_forever)
    lister.start()
    try:
        for _ in range(15):
            store = make_store(runs_dir)
            store.scalar(1, "loss", 1.0)
            store.close()
            delete_run(store.run_dir)
            assert not store.run_dir.exists()
    finally:
        done.set()
        lister.join()
    assert list(runs_dir.iterdir()) == [] and list_runs(runs_dir) == []
    with pytest.raises(StoreError, match="not a run directory"):
        delete_run(runs_dir / "nope")


def test_noted_metadata_waits_for_the_next_batch_and_never_overwrites_a_newer_value(runs_dir):
    s = make_store(runs_dir)
    s.auto_flush = False
    s.note_meta(step=10, best={"val/acc": 0.5, "step": 10})
    r = RunReader(s.run_dir)
    assert "best" not in r.meta()  # not written yet: it waits for the batch
    s.flush()
    assert r.meta()["best"] == {"val/acc": 0.5, "step": 10} and r.meta()["step"] == 10
    s.note_meta(step=20)
    s.set_meta(step=30)  # written at once, and the noted step=20 is dropped
    s.flush()
    assert r.meta()["step"] == 30
    s.close()


def test_a_recorder_without_note_meta_writes_noted_metadata_at_once():
    from tui_trainer.engine.recorder import note_meta

    class Sink:
        def __init__(self):
            self.meta = {}

        def set_meta(self, **values):
            self.meta.update(values)

    sink = Sink()
    note_meta(sink, step=4, best={"val/acc": 0.5})
    assert sink.meta == {"step": 4, "best": {"val/acc": 0.5}}
