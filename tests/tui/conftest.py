"""Recorded stores for the app tests: deterministic runs written with RunStore, no torch.

``recorded_run`` writes a finished 300-step run of a 6-layer sigmoid MLP whose gradients
vanish towards the input (layer i's gradient norm ~ 10**-(5-i)), with train and
validation curves, layer statistics every 10 steps and the usual events. Wall times are
fixed, so screenshots do not change from one run of the tests to the next.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import os
import time
from pathlib import Path

import pytest

from tui_trainer.store import STAT_COLUMNS, RunStore


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests (Pilot) in a fresh event loop; no asyncio plugin needed."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{n: pyfuncitem.funcargs[n] for n in names}))
    return True


T0 = 1_790_000_000.0  # a fixed wall clock for recorded runs
LAYERS = [
    ("blocks.0", "linear", "sigmoid", 2080),
    ("blocks.1", "linear", "sigmoid", 1056),
    ("blocks.2", "linear", "sigmoid", 1056),
    ("blocks.3", "linear", "sigmoid", 1056),
    ("blocks.4", "linear", "sigmoid", 1056),
    ("head", "output", "identity", 330),
]


def _config(preset: str, variant: str, steps: int) -> dict:
    return {
        "preset": preset,
        "variant": variant,
        "title": "Deep sigmoid nets: the vanishing gradient",
        "section": "Why it failed then",
        "claim": 6,
        "train": {"max_steps": steps, "device": "cpu"},
    }


def stat_row(step: int, layer: int, n_layers: int, scale: float = 1.0) -> list[float | None]:
    """One deterministic row of layer statistics (STAT_COLUMNS order)."""
    depth_from_out = n_layers - 1 - layer
    wobble = 1.0 + 0.3 * math.sin(step / 17.0 + layer)
    g = scale * 10.0 ** (-depth_from_out) * wobble * (1.0 + 2.0 * math.exp(-step / 80.0))
    values = {
        "grad_norm": g,
        "weight_grad_norm": g * 0.9,
        "bias_grad_norm": g * 0.1,
        "weight_norm": 3.0 + 0.01 * step,
        "update_ratio": 1e-3 * g / (g + 1e-3),
        "out_grad_norm": g * 2.0,
        "act_mean": 0.5 + 0.1 * math.sin(step / 30.0),
        "act_std": 0.2 / (1 + layer) + 0.01 * math.cos(step / 20.0),
        "act_min": 0.01,
        "act_max": 0.99,
        "dead_frac": None,
        "sat_frac": min(1.0, 0.05 * layer + step / 3000.0),
        "nonfinite": 0.0,
    }
    return [values[c] for c in STAT_COLUMNS]


def write_run(
    runs_dir: Path,
    *,
    preset: str = "vanishing",
    variant: str = "sigmoid",
    steps: int = 300,
    status: str = "finished",
    pid: int | None = None,
    run_id: str | None = None,
    loss_scale: float = 1.0,
    events: bool = True,
) -> Path:
    """Write a recorded run and return its directory."""
    cfg = _config(preset, variant, steps)
    store = RunStore.create(
        runs_dir, preset, variant, json.dumps(cfg), "", run_id=run_id or f"rec-{preset}-{variant}"
    )
    store.set_layers(LAYERS)
    store.set_meta(
        pid=pid if pid is not None else 999_999_999,
        device="cpu",
        device_name="cpu",
        started=T0,
        created=T0,
        total_steps=steps if status != "running" else steps * 4,
        batches_per_epoch=50,
        probe_every=10,
        task="classify",
    )
    store.set_status("running", 0)
    for step in range(1, steps + 1):
        wall = T0 + step * 0.01
        if step % 5 == 0:
            loss = loss_scale * (2.3 * math.exp(-step / 90.0) + 0.08) * (1 + 0.05 * math.sin(step))
            acc = 1.0 - 0.9 * math.exp(-step / 70.0)
            store.scalars(
                step,
                {
                    "train/loss": loss,
                    "train/acc": acc,
                    "train/lr": 0.1,
                    "train/epoch": step / 50,
                    "perf/steps_per_s": 500.0,
                },
                wall=wall,
            )
        if step == 150:  # one spike: decimation must keep it
            store.scalars(step, {"train/loss": 9.0}, wall=wall)
        if step % 10 == 0:
            store.layer_stats(step, [stat_row(step, i, len(LAYERS)) for i in range(len(LAYERS))])
            store.scalars(step, {"grad/total_norm": 0.5 + 0.1 * math.sin(step)}, wall=wall)
        if step % 50 == 0:
            val = {"val/loss": loss_scale * (2.4 * math.exp(-step / 100.0) + 0.1),
                   "val/acc": 1.0 - 0.95 * math.exp(-step / 80.0)}
            store.scalars(step, val, wall=wall)
            if events:
                store.event(step, "eval", val)
    if events:
        store.event(steps, "checkpoint", {"path": "last.pt"})
    store.set_meta(step=steps, best={"val/acc": 0.95, "step": steps})
    if status != "running":
        store.set_status(status, steps, reason="" if status == "finished" else "stop requested")
        store.set_meta(ended=T0 + steps * 0.01 + 0.5)
    store.close()
    return runs_dir / (run_id or f"rec-{preset}-{variant}")


@pytest.fixture
def recorded_run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "runs")


@pytest.fixture
def live_run(tmp_path: Path) -> Path:
    """A run whose recorded status is running and whose pid (this test) is alive."""
    return write_run(tmp_path / "runs", status="running", pid=os.getpid(), run_id="rec-live")


FINDINGS = [
    {
        "rule": "vanishing_gradient",
        "severity": "warning",
        "message": "blocks.0 gets 1e-5 of head's gradient",
        "layers": ["blocks.0"],
        "first_step": 10,
        "numbers": {},
        "remedy": "use ReLU, batch norm or residual connections",
    }
]


@pytest.fixture
def fake_diagnose(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Fixed findings (diagnose is another issue's module: its wording may change)."""
    monkeypatch.setattr(
        "tui_trainer.tui.screens.dashboard.run_diagnose", lambda run_dir: (list(FINDINGS), "")
    )
    return FINDINGS


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Times shown by the app are the same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


PRESET_TOML = '''title = "{title}"
section = "{section}"
claim = {claim}
description = "A fixed preset for the app tests."
look_at = "the loss falls"

[data]
name = "xor"
batch_size = 4

[model]
kind = "mlp"
depth = 1
width = 4
activation = "tanh"

[train]
max_steps = 100
{variants}'''


@pytest.fixture
def presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The picker sees exactly three fixed presets (built-in ones change as others work)."""
    d = tmp_path / "presets"
    d.mkdir()
    variants = (
        '[[variants]]\nname = "wide"\n\n[[variants]]\nname = "narrow"\nmodel = { width = 2 }\n'
    )
    files = {
        "alpha-mlp": ("An MLP learns XOR", "A prehistory", 4, variants),
        "beta-gate": ("A gate", "A prehistory", 1, ""),
        "gamma-deep": ("A deep net", "Why it failed then", 6, ""),
    }
    for name, (title, section, claim, var) in files.items():
        (d / f"{name}.toml").write_text(
            PRESET_TOML.format(title=title, section=section, claim=claim, variants=var)
        )
    (d / "broken.toml").write_text("[model]\nkind = 'nope'\n")
    monkeypatch.chdir(tmp_path)  # paths on screen are relative: the same in every test run
    monkeypatch.setattr(
        "tui_trainer.tui.presets_view.preset_dirs", lambda presets_dir=None: [Path("presets")]
    )
    return d


async def wait_for(pilot, predicate, timeout: float = 10.0) -> None:
    """Let the app run until ``predicate()`` holds (workers post from threads)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {_app_state(pilot.app, predicate)}")
        await pilot.pause(0.05)


def _app_state(app, predicate) -> str:
    """What a timed-out wait was for, and where the app stood (a flaky run says why)."""
    try:
        what = inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        what = repr(predicate)
    screens = [type(s).__name__ for s in app.screen_stack]
    workers = [f"{w.name}:{w.state.name}" for w in app.workers]
    notes = [str(n.message) for n in app._notifications]
    return f"{what} | screens {screens} | workers {workers} | notifications {notes}"


async def dashboard_ready(pilot, runs: int = 1, findings: bool = True) -> None:
    """Wait until the dashboard has a snapshot of every run (and findings), then draw."""
    from tui_trainer.tui.screens.dashboard import DashboardScreen

    def ready() -> bool:
        screen = pilot.app.screen
        if not isinstance(screen, DashboardScreen) or len(screen.snaps) < runs:
            return False
        return not findings or screen.current_dir in screen.findings

    await wait_for(pilot, ready)
    screen = pilot.app.screen
    screen._dirty = True
    screen.redraw()
    await pilot.pause(0.1)
