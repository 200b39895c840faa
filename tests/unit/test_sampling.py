"""ProbeSchedule: which steps are sampled, and how "auto" picks its interval (synthetic timings;
nothing here is timed)."""

from __future__ import annotations

import pytest
import torch

from tui_trainer.config import RunConfig, config_to_toml
from tui_trainer.engine.sampling import (
    AFTER_STEPS,
    CALIBRATION_EVERY,
    MAX_EVERY,
    MIN_PLAIN,
    MIN_SAMPLED,
    TARGET_SHARE,
    WARMUP_STEPS,
    ProbeSchedule,
    choose_every,
)
from tui_trainer.engine.trainer import Trainer
from tui_trainer.store import RunReader, RunStore


def overhead(every: int, t_plain: float, t_sampled: float) -> float:
    """Extra time per step, relative to the bare loop, when sampling every ``every`` steps."""
    return (t_sampled - t_plain) / (every * t_plain)


@pytest.mark.parametrize(
    "t_plain,t_sampled", [(0.010, 0.013), (0.020, 0.027), (0.5, 0.502), (0.001, 0.004), (1.0, 1.0)]
)
@pytest.mark.parametrize("budget", [0.03, 0.01, 0.1])
def test_choose_every_is_the_smallest_interval_within_budget(t_plain, t_sampled, budget):
    n = choose_every(t_plain, t_sampled, budget)
    target = TARGET_SHARE * budget
    assert 1 <= n <= MAX_EVERY
    assert overhead(n, t_plain, t_sampled) <= target + 1e-12
    if n > 1:
        assert overhead(n - 1, t_plain, t_sampled) > target


def test_choose_every_limits():
    assert choose_every(0.01, 0.005, 0.03) == 1  # a sample cheaper than a step: every step
    assert choose_every(0.001, 10.0, 0.03) == MAX_EVERY
    assert choose_every(0.0, 0.0, 0.03) == 1


def test_fixed_interval_samples_every_n_steps():
    s = ProbeSchedule(5)
    assert [t for t in range(23) if s.due(t)] == [0, 5, 10, 15, 20]
    assert not ProbeSchedule(0).due(0)


def feed(s: ProbeSchedule, steps: range, t_plain: float, t_sampled: float) -> list[int]:
    sampled = []
    for t in steps:
        due = s.due(t)
        if due:
            sampled.append(t)
        s.record(due, t_sampled if due else t_plain)
    return sampled


def test_auto_calibrates_then_keeps_overhead_in_budget():
    s = ProbeSchedule("auto", budget=0.03)
    assert s.every == CALIBRATION_EVERY and not s.calibrated
    steps = WARMUP_STEPS + CALIBRATION_EVERY * max(MIN_SAMPLED, MIN_PLAIN) + 10
    sampled = feed(s, range(steps), t_plain=0.010, t_sampled=0.016)
    assert sampled[:3] == [0, CALIBRATION_EVERY, 2 * CALIBRATION_EVERY]
    assert s.calibrated and s.changed
    assert s.every == choose_every(0.010, 0.016, 0.03)
    assert overhead(s.every, 0.010, 0.016) <= 0.03
    # then it samples at the chosen interval
    start = steps + s.every
    later = feed(s, range(start, start + 5 * s.every), 0.010, 0.016)
    assert all(b - a == s.every for a, b in zip(later, later[1:], strict=False))


def test_the_plain_steps_a_sample_slows_count_in_its_cost_and_not_as_plain_steps():
    s = ProbeSchedule("auto", budget=0.03)
    after = []  # the steps since the last sample, to slow the first AFTER_STEPS of them
    for t in range(400):
        due = s.due(t)
        after = [] if due else [*after, t]
        slowed = not due and len(after) <= AFTER_STEPS
        s.record(due, 0.016 if due else 0.0115 if slowed else 0.010)
    assert AFTER_STEPS == 2 and s.calibrated
    assert s.t_plain == 0.010 and s.t_extra == pytest.approx(0.006 + 2 * 0.0015)
    assert s.every == choose_every(0.010, 0.019, 0.03) > choose_every(0.010, 0.016, 0.03)


def test_auto_records_its_choice_even_when_it_equals_the_start():
    s = ProbeSchedule("auto", budget=0.5)
    t_sampled = 0.010 * (1 + TARGET_SHARE * 0.5 * CALIBRATION_EVERY)  # exactly the start
    feed(s, range(200), 0.010, t_sampled)
    assert s.calibrated and s.changed and s.every == CALIBRATION_EVERY


def test_auto_adapts_with_hysteresis():
    s = ProbeSchedule("auto", budget=0.03)
    feed(s, range(200), 0.010, 0.016)
    first = s.every
    s.changed = False
    feed(s, range(200, 200 + 5 * first), 0.010, 0.0161)  # a hair slower: keep the interval
    assert s.every == first and not s.changed
    feed(s, range(10_000, 10_000 + 100 * first), 0.010, 0.030)  # samples got much dearer
    assert s.changed and s.every > 1.25 * first
    assert overhead(s.every, 0.010, s.t_plain + s.t_extra) <= 0.03 + 1e-9


def test_auto_follows_a_drifting_machine_within_budget():
    # The machine slows down twofold over the run; a sample always costs 3 ms extra.
    s = ProbeSchedule("auto", budget=0.03)
    worst = 0.0
    for t in range(4000):
        plain = 0.010 * (1 + t / 4000)
        due = s.due(t)
        s.record(due, plain + 0.003 if due else plain)
        if s.calibrated:
            worst = max(worst, overhead(s.every, plain, plain + 0.003))
    assert worst <= 0.03


def test_a_burst_of_load_does_not_move_the_interval():
    s = ProbeSchedule("auto", budget=0.03)
    feed(s, range(300), 0.010, 0.016)
    chosen = s.every
    burst = [0.030] * 10  # another process takes the core for ten plain steps
    t = 300
    for seconds in burst:
        due = s.due(t)
        s.record(due, seconds + (0.006 if due else 0.0))
        t += 1
    feed(s, range(t, t + 20 * chosen), 0.010, 0.016)
    assert s.every == chosen


def test_auto_ignores_warmup_and_histogram_steps():
    s = ProbeSchedule("auto", budget=0.03, histogram_every=3)
    device = torch.device("cpu")
    hist_steps = []
    for t in range(12):
        if s.due(t) and s.histogram:
            hist_steps.append(t)
        s.observe(True, 0.0, device)
    assert hist_steps == [0, 3, 6, 9]
    assert s._seen == 12 - len(hist_steps)  # histogram steps are never timed


def test_histogram_steps_are_sampled_even_between_samples():
    s = ProbeSchedule(10, histogram_every=4)
    marks = [(t, s.histogram) for t in range(13) if s.due(t)]
    assert marks == [(0, True), (4, True), (8, True), (10, False), (12, True)]


def test_restore_keeps_the_interval_and_samples_at_once():
    s = ProbeSchedule("auto")
    s.restore(37)
    assert s.calibrated and s.every == 37 and s.due(0) and not s.due(1)
    # timings start again from the restored interval
    feed(s, range(1, 400), 0.010, 0.010 * (1 + 37 * TARGET_SHARE * 0.03))
    assert s.every == 37


def test_trainer_records_the_interval_auto_chose(runs_dir):
    raw = {
        "preset": "test",
        "data": {"name": "digits", "batch_size": 16, "train_subset": 400},
        "model": {"kind": "mlp", "depth": 2, "width": 16},
        "train": {"max_steps": 120, "device": "cpu", "log_every": 20},
        "probe": {"every": "auto"},
    }
    cfg = RunConfig.from_dict(raw)
    store = RunStore.create(runs_dir, "test", "", cfg.to_json(), config_to_toml(cfg))
    Trainer(cfg).run(store)
    store.close()
    reader = RunReader(store.run_dir)
    events = reader.events("probe_interval")
    assert events, "auto must record the interval it chose"
    assert reader.meta()["probe_every"] == events[-1][3]["every"]
    steps, _ = reader.layer_stat_matrix("grad_norm")
    assert steps[:2] == [1, 1 + CALIBRATION_EVERY]  # calibration samples, then the choice


@pytest.mark.parametrize("every,hist", [(1, 0), (3, 0), (4, 5), ("auto", 0)])
def test_will_sample_foretells_due_without_changing_it(every, hist):
    s = ProbeSchedule(every, histogram_every=hist)
    seen = []
    for step in range(40):
        foretold = s.will_sample(step)
        assert s.will_sample(step) == foretold  # asking twice changes nothing
        seen.append(s.due(step))
        assert seen[-1] == foretold, step
    assert any(seen)
    if every != 1:
        assert not all(seen)


def test_a_short_interval_keeps_a_plain_step_per_interval_so_the_reference_follows():
    s = ProbeSchedule("auto", budget=0.03)
    feed(s, range(200), t_plain=0.010, t_sampled=0.0104)  # cheap samples: a short interval
    assert s.every == 2
    feed(s, range(200, 400), t_plain=0.001, t_sampled=0.005)  # a faster machine, dear samples
    fresh = ProbeSchedule("auto", budget=0.03)
    feed(fresh, range(200), t_plain=0.001, t_sampled=0.005)
    assert s.t_plain == 0.001 and s.every == fresh.every == choose_every(0.001, 0.005, 0.03)
