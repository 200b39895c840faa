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
