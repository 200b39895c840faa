"""RunFollower: reads a recorded store incrementally into a snapshot; sees crashes."""

from __future__ import annotations

import json
import threading

import pytest

from tui_trainer.store import RunStore
from tui_trainer.tui.follow import RunFollower
from tui_trainer.tui.overlay import metric_lines

from .conftest import LAYERS, stat_row


def test_snapshot_of_a_recorded_run(recorded_run):
    follower = RunFollower(recorded_run)
    follower.poll()
    snap = follower.snapshot()
    assert snap.status == "finished"
    assert snap.label == "vanishing/sigmoid"
    assert snap.step == 300 and snap.total_steps == 300
    assert snap.eta_s is None and not snap.live
    assert [layer["name"] for layer in snap.layers] == [name for name, *_ in LAYERS]
    loss = snap.curves["train/loss"]
    assert max(loss.highs) == 9.0  # the spike at step 150
    assert "val/acc" in snap.curves and "grad/total_norm" in snap.curves
    assert snap.heat is not None and snap.heat.stat == "grad_norm"
    first, last = snap.heat.rows[0], snap.heat.rows[-1]
    assert first[-1] is not None and last[-1] is not None and first[-1] < last[-1] - 4
    assert snap.latest_step == 300 and len(snap.latest) == len(LAYERS)
    assert len(snap.sparks["act_std"][0]) == 24
    assert snap.steps_per_s == 500.0
    assert any(kind == "checkpoint" for _, kind, _ in snap.events)


def test_follower_tails_new_rows_and_switches_statistic(live_run):
    follower = RunFollower(live_run)
    follower.poll()
    before = follower.snapshot()
    assert before.status == "running" and before.live
    assert before.eta_s is not None and before.eta_s > 0
    store = RunStore(live_run)
    store.scalars(400, {"train/loss": 0.01})
    store.layer_stats(400, [stat_row(400, i, len(LAYERS)) for i in range(len(LAYERS))])
    store.flush()
    follower.poll()
    after = follower.snapshot()
    assert after.step == 400 and after.version > before.version
    assert after.curves["train/loss"].last == 0.01
    follower.request("sat_frac")
    snap = follower.snapshot()
    assert snap.heat is not None and snap.heat.stat == "sat_frac" and not snap.heat.log
    store.set_status("crashed", 400, error="RuntimeError: boom", log="line 1\nline 2")
    store.close()
    follower.poll()
    snap = follower.snapshot()
    assert snap.status == "crashed" and snap.error == "RuntimeError: boom"
    assert snap.log_tail.endswith("line 2")


def test_a_dead_process_shows_as_crashed(tmp_path):
    from .conftest import write_run

    run = write_run(tmp_path / "runs", status="running", pid=999_999_999, run_id="dead")
    follower = RunFollower(run)
    assert follower.snapshot().status == "crashed"


def test_run_posts_snapshots_until_cancelled(recorded_run):
    follower = RunFollower(recorded_run)
    posted = []
    stop = threading.Event()

    def post(snap):
        posted.append(snap)
        stop.set()

    follower.run(post, stop.is_set, poll_s=0.01, post_s=0.0)
    assert posted and posted[0].step == 300


def test_diagnose_runs_in_a_subprocess(recorded_run):
    from tui_trainer.tui.findings import run_diagnose

    found, error = run_diagnose(recorded_run)
    assert error == "" and isinstance(found, list)
    assert all({"rule", "severity", "message"} <= set(f) for f in found)
    found, error = run_diagnose(recorded_run, module="tui_trainer.no_such_module")
    assert found == [] and error == "findings unavailable (no tui_trainer.no_such_module)"
    found, error = run_diagnose(recorded_run.parent / "nope")
    assert found == [] and error.startswith("diagnose failed:")


@pytest.mark.parametrize(
    ("task", "title"),
    [("classify", "accuracy"), ("reconstruct", "reconstruction error"), (None, "metric")],
)
def test_second_chart_title_before_any_rows_comes_from_the_recorded_task(tmp_path, task, title):
    """No 'learning rate' title that flips to 'accuracy' when the first rows come."""
    store = RunStore.create(tmp_path, "p", "", json.dumps({"preset": "p"}), "", run_id="r")
    if task is not None:
        store.set_meta(task=task)  # what the trainer records before its first step
    store.close()
    follower = RunFollower(tmp_path / "r")
    follower.poll()
    snap = follower.snapshot()
    follower.reader.close()
    assert not snap.curves
    assert metric_lines([snap])[0] == title


def _merged(starts, sums, counts, width):
    """Buckets (starts, per-bucket sums and counts) merged to ``width`` steps."""
    out: dict[int, list] = {}
    for start, sm, n in zip(starts, sums, counts, strict=True):
        b = out.setdefault(start - start % width, [[0.0] * len(sm), [0.0] * len(sm)])
        for i in range(len(sm)):
            b[0][i] += sm[i]
            b[1][i] += n[i]
    return out


@pytest.mark.parametrize("quick_rows", [50_000, 500])  # 500: a sampled first heatmap
def test_a_long_run_opens_in_bulk_with_the_same_history_as_reading_every_row(
    tmp_path, monkeypatch, quick_rows
):
    """Bulk open (roll-ups, SQL sums) holds what reading every row holds: the same minima
    and maxima per bucket (a spike survives), the same sums and counts, heatmap included,
    and the same last values and sparklines."""
    import math

    from tui_trainer.tui import follow as follow_mod

    store = RunStore.create(tmp_path, "long", "v", json.dumps({}), "")
    store.set_layers([(name, kind, act, params) for name, kind, act, params in LAYERS])
    n_layers = len(LAYERS)
    for step in range(1, 6001):
        loss = 3.0 / (1 + step / 500) + (step % 7) * 0.01 + (50.0 if step == 4321 else 0.0)
        store.scalars(step, {"train/loss": loss, "train/acc": step / 6000})
        if step == 777:
            store.scalars(step, {"train/loss": float("nan")})
        if step % 10 == 0:
            store.layer_stats(step, [stat_row(step, i, n_layers) for i in range(n_layers)])
    store.set_status("finished", 6000)
    store.close()
    monkeypatch.setattr(follow_mod, "OPEN_BULK_ROWS", 1000)
    monkeypatch.setattr(follow_mod, "QUICK_LAYER_ROWS", quick_rows)
    calls = []
    bulk = RunFollower(store.run_dir)
    real = bulk.reader.tail
    monkeypatch.setattr(bulk.reader, "tail", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert bulk.poll() and not calls  # the first poll opens in bulk, no row-by-row read
    first = bulk.snapshot()
    assert first.heat is not None and first.heat.steps[0] == 0 and first.step == 6000
    assert (bulk._refine is not None) == (quick_rows == 500)
    while bulk.poll():  # then the tail reads only the last samples (for the sparklines)
        pass
    rows = RunFollower(store.run_dir, bulk_open=False)
    while rows.poll():
        pass
    a, b = bulk.snapshot(), rows.snapshot()
    assert a.step == b.step == 6000 and a.last == b.last
    for name in ("train/loss", "train/acc"):
        sa, sb = bulk.curves[name], rows.curves[name]
        width = max(sa.width, sb.width)
        ma = _merged(sa.starts, [[x] for x in sa.sums], [[n] for n in sa.counts], width)
        mb = _merged(sb.starts, [[x] for x in sb.sums], [[n] for n in sb.counts], width)
        assert ma.keys() == mb.keys()
        for k in ma:
            assert ma[k][1] == mb[k][1] and math.isclose(ma[k][0][0], mb[k][0][0], rel_tol=1e-9)
        for series in (sa, sb):  # minima and maxima per merged bucket
            lows = {}
            for start, lo, hi in zip(series.starts, series.lows, series.highs, strict=True):
                cur = lows.setdefault(start - start % width, [lo, hi])
                cur[0], cur[1] = min(cur[0], lo), max(cur[1], hi)
            series.merged = lows
        assert sa.merged == sb.merged
        assert sa.last == sb.last
    assert max(bulk.curves["train/loss"].highs) > 50  # the spike at step 4321
    assert a.latest == b.latest and a.sparks == b.sparks and a.latest_step == b.latest_step
    ha, hb = bulk.history, rows.history
    width = max(ha.width, hb.width)
    ma = _merged(ha.starts, ha.sums, ha.counts, width)
    mb = _merged(hb.starts, hb.sums, hb.counts, width)
    assert ma.keys() == mb.keys()
    for k in ma:
        assert ma[k][1] == mb[k][1]  # counts
        assert all(
            math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
            for x, y in zip(*(m[k][0] for m in (ma, mb)), strict=True)
        )
