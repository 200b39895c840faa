"""The stream a remote client rebuilds a run from: its opening, every record exactly once,
resuming after any line's cursor, thinning, follow to the end, bad input."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
from typer.testing import CliRunner

from tui_trainer.cli import app
from tui_trainer.store import RunReader, RunStore
from tui_trainer.store import stream as stream_module
from tui_trainer.store.schema import STAT_COLUMNS
from tui_trainer.store.stream import parse_cursor, write_stream


def _refuse(name):
    raise ValueError(f"bare {name} in a stream line")


def make_run(root, steps=300, layers=3, status="finished"):
    s = RunStore.create(root, "p", "v", json.dumps({"lr": 0.1}), "")
    s.set_meta(pid=None, device="cpu")
    s.set_layers([(f"l{i}", "linear", "relu", 10 + i) for i in range(layers)])
    s.set_status("running", 0)
    for step in range(1, steps + 1):
        s.scalars(step, {"train/loss": 1.0 / step, "train/acc": step / steps})
        s.layer_stats(step, [[float(step + i)] * len(STAT_COLUMNS) for i in range(layers)])
        if step % 50 == 0:
            s.event(step, "eval", {"val/loss": float("nan") if step == 100 else 0.5})
    if status:
        s.set_status(status, steps)
    s.close()
    return s.run_dir


def lines(run_dir, **kw):
    out = io.StringIO()
    with RunReader(run_dir) as r:
        write_stream(r, out, **kw)
    return [json.loads(x, parse_constant=_refuse) for x in out.getvalue().splitlines()]


def counts(run_dir):
    with RunReader(run_dir) as r:
        con = r._con  # noqa: SLF001 - the test compares with the tables themselves
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("scalars", "layer_stats", "events")}  # fmt: skip


def key(rec):
    """A record's identity, for comparing streams."""
    return json.dumps({k: v for k, v in rec.items() if k != "cursor"}, sort_keys=True)


def test_the_stream_opens_with_hello_meta_layers_and_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(stream_module, "BATCH", 64)  # many reads per table
    run = make_run(tmp_path)
    recs = lines(run)
    hello, meta, layers = recs[:3]
    assert hello["type"] == "hello" and hello["schema"] == 1 and hello["run_id"] == run.name
    assert meta["type"] == "meta" and meta["meta"]["config"] == {"lr": 0.1}
    assert meta["meta"]["status"] == "finished" and meta["meta"]["device"] == "cpu"
    assert [x["name"] for x in layers["layers"]] == ["l0", "l1", "l2"]
    assert [x["params"] for x in layers["layers"]] == [10, 11, 12]
    assert recs[-1]["type"] == "end" and recs[-1]["status"] == "finished"
    assert all("cursor" in r and "type" in r for r in recs)
    n = counts(run)
    by_type = {t: sum(r["type"] == t for r in recs) for t in ("scalar", "layer_stats", "event")}
    assert by_type == {"scalar": n["scalars"], "layer_stats": n["layer_stats"],
                       "event": n["events"]}  # fmt: skip
    assert [r["status"] for r in recs if r["type"] == "status"] == ["running", "finished"]
    (nan_eval,) = [r for r in recs if r["type"] == "event" and r["step"] == 100]
    assert nan_eval["data"] == {"val/loss": "nan"}


@pytest.mark.parametrize("cut", [5, 333, 900, 1250])
def test_resuming_after_any_line_loses_and_repeats_nothing(tmp_path, monkeypatch, cut):
    monkeypatch.setattr(stream_module, "BATCH", 100)
    run = make_run(tmp_path)
    full = lines(run)
    skip = ("hello", "meta", "layers", "end", "status")  # status repeats its event
    body = [r for r in full if r["type"] not in skip]
    cursor = full[cut]["cursor"]
    rest = lines(run, since=cursor)
    assert [r["type"] for r in rest[:3]] == ["hello", "meta", "layers"]
    resumed = [r for r in rest[3:] if r["type"] not in skip]
    before = [r for r in full[3 : cut + 1] if r["type"] not in skip]
    assert sorted(map(key, before + resumed)) == sorted(map(key, body))


def test_every_thins_scalars_and_rows_never_events_or_status(tmp_path):
    run = make_run(tmp_path, steps=100)
    full, thin = lines(run), lines(run, every=5)
    loss = [r["step"] for r in thin if r.get("name") == "train/loss"]
    assert loss == list(range(1, 101, 5))
    rows0 = [r["step"] for r in thin if r["type"] == "layer_stats" and r["layer"] == 0]
    assert rows0 == list(range(1, 101, 5))
    for kind in ("event", "status"):
        assert [key(r) for r in thin if r["type"] == kind] == [
            key(r) for r in full if r["type"] == kind
        ]


def test_follow_ends_with_the_run(tmp_path):
    s = RunStore.create(tmp_path, "p", "v", "{}", "")
    s.set_status("running", 0)  # no layers yet: a run names them once its model is built
    s.flush()

    def train():
        for step in range(1, 41):
            if step == 10:
                s.set_layers([("l0", "linear", "relu", 1)])
            s.scalars(step, {"train/loss": 1.0})
            s.flush()
            time.sleep(0.01)
        s.set_status("finished", 40)
        s.close()

    t = threading.Thread(target=train)
    out = io.StringIO()
    with RunReader(s.run_dir) as r:
        t.start()
        write_stream(r, out, follow=True, poll=0.02)
    t.join()
    recs = [json.loads(x) for x in out.getvalue().splitlines()]
    assert recs[-1] == {"type": "end", "status": "finished", "cursor": recs[-1]["cursor"]}
    assert [r["step"] for r in recs if r["type"] == "scalar"] == list(range(1, 41))
    layer_lines = [r["layers"] for r in recs if r["type"] == "layers"]
    assert layer_lines[0] == [] and [x["name"] for x in layer_lines[-1]] == ["l0"]


def test_bad_cursor_and_every_are_one_line_exit_2(tmp_path):
    run = make_run(tmp_path, steps=5)
    with pytest.raises(ValueError, match="--since"):
        parse_cursor("s1.l2")
    runner = CliRunner()
    for args in (["--since", "banana"], ["--every", "0"]):
        r = runner.invoke(app, ["stream", str(run), *args])
        assert r.exit_code == 2, r.output
        assert r.output.count("\n") == 1 and r.output.startswith("error: --")
