"""Tests for the [expect] schema (tui_trainer.config.expect) and verify's evaluation of checks.

Runs are written directly with RunStore, so every check type is shown to pass on numbers
that satisfy it and to fail on numbers that do not: a check that cannot fail is a defect.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tui_trainer.cli.verify import evaluate, plan
from tui_trainer.config import ConfigError, load_preset_file
from tui_trainer.config.expect import ExpectError, RunView, measure, parse_expect
from tui_trainer.store import RunReader, RunStore

CHECK = {"text": "t", "metric": "val/acc", "op": ">=", "value": 0.9}


def _preset(tmp_path: Path, checks: str, variants: str = "") -> Path:
    path = tmp_path / "p.toml"
    path.write_text(
        'claim = 3\n[data]\nname = "xor"\n[model]\nkind = "mlp"\n'
        f"{variants}\n{checks}\n",
        encoding="utf-8",
    )
    return path


def _run(root: Path, scalars: dict[str, list[tuple[int, float]]], **meta: object) -> str:
    store = RunStore.create(root, "p", "", "{}", "")
    for name, rows in scalars.items():
        for step, value in rows:
            store.scalars(step, {name: value})
    store.set_meta(**{"status": "finished", **meta})
    store.close()
    return str(store.run_dir)


# --- schema ------------------------------------------------------------------------------


def test_parse_expect_reads_a_check_per_variant() -> None:
    checks = parse_expect({"checks": [dict(CHECK, variant=["a", "b"])]}, "f.toml")
    assert [c.left.variant for c in checks] == ["a", "b"]
    assert checks[0].text == "t [a]"
    assert checks[0].expected(1) == ">= 0.9"


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (dict(CHECK, colour="red"), "expect.checks[0].colour: unknown key"),
        ({k: v for k, v in CHECK.items() if k != "op"}, "expect.checks[0].op: missing"),
        (dict(CHECK, op="~"), "expect.checks[0].op: expected one of"),
        (dict(CHECK, than="b"), "exactly one of value"),
        ({k: v for k, v in CHECK.items() if k != "value"}, "exactly one of value"),
        (dict(CHECK, at="last"), "expect.checks[0].at: expected one of"),
        (dict(CHECK, at="reach"), "expect.checks[0].target: expected a number"),
        (dict(CHECK, target=1.0), "target: only used with"),
        (dict(CHECK, at="reach", target=1, target_op=">"), "target_op: expected"),
        (dict(CHECK, at="reach", target=1, unit="hours"), "unit: expected steps or epochs"),
        (dict(CHECK, seeds=3, min_pass=4), "min_pass: expected an integer in [1, 3]"),
        (dict(CHECK, factor=2.0), "factor: only used with than"),
        (dict(CHECK, value="high"), "value: expected a number"),
        (dict(CHECK, metric="layer_stats/grad_norm"), "expected layer_stats/<column>/"),
        (
            {**{k: v for k, v in CHECK.items() if k != "value"}, "than": {"variant": "a", "x": 1}},
            "expect.checks[0].than.x: unknown key",
        ),
    ],
)
def test_parse_expect_refuses_bad_checks_naming_file_and_key(check: dict, message: str) -> None:
    with pytest.raises(ExpectError, match="^f.toml: ") as info:
        parse_expect({"checks": [check]}, "f.toml")
    assert message in str(info.value)


def test_unknown_expect_key_is_refused() -> None:
    with pytest.raises(ExpectError, match=r"f.toml: expect.check: unknown key"):
        parse_expect({"check": []}, "f.toml")


def test_a_preset_file_with_a_bad_check_fails_to_load(tmp_path: Path) -> None:
    path = _preset(tmp_path, '[[expect.checks]]\ntext = "t"\nmetric = "val/acc"\nop = ">"\n')
    with pytest.raises(ConfigError, match=r"p.toml: expect.checks\[0\]: expected exactly one"):
        load_preset_file(path)


def test_plan_refuses_a_check_on_a_variant_the_preset_lacks(tmp_path: Path) -> None:
    path = _preset(
        tmp_path,
        '[[expect.checks]]\ntext = "t"\nvariant = "c"\nmetric = "val/acc"\nop = ">"\nvalue = 0\n',
        '[[variants]]\nname = "a"\n[[variants]]\nname = "b"\n',
    )
    with pytest.raises(ConfigError, match="names variant 'c'; expected one of a, b"):
        plan([str(path)], 1)


def test_plan_seeds_and_variants(tmp_path: Path) -> None:
    path = _preset(
        tmp_path,
        '[[expect.checks]]\ntext = "t"\nvariant = "b"\nmetric = "val/acc"\nop = ">"\n'
        'value = 0\nseeds = 4\nmin_pass = 3\n',
        '[train]\nseed = 7\n[[variants]]\nname = "a"\n[[variants]]\nname = "b"\n',
    )
    (item,) = plan([str(path)], 2)
    assert item.variants == ["b"]  # only what the checks read is trained
    assert item.seeds == [7, 8, 9, 10]  # at least the check's 4 seeds
    (item,) = plan([str(path)], 8)
    assert item.seeds == list(range(7, 15))
    assert item.checks[0].expected(8) == "> 0 (>= 6 of 8 seeds)"  # 3 of 4, in proportion
    with pytest.raises(ValueError, match="--seeds"):
        plan([str(path)], 0)


def test_every_builtin_preset_has_checks_on_its_own_variants() -> None:
    from tui_trainer.config import all_presets

    presets = all_presets()
    names = {p.name for p in presets}
    assert names >= {
        "mcculloch-pitts", "perceptron-gates", "xor-perceptron", "xor-mlp", "lenet-1989",
        "pretraining-2006", "autoencoder-vs-pca", "relu-vs-tanh", "augmentation", "dropout",
        "batchnorm", "degradation", "features",
    }
    for p in presets:
        cfg = p.resolve()
        if not cfg.expect:
            continue
        (item,) = plan([str(p.path)], 1)
        assert item.checks and item.variants, p.name
        assert cfg.title and cfg.claim and cfg.description and cfg.look_at, p.name


# --- measuring -----------------------------------------------------------------------------


def test_measure_final_max_min_step_and_reach(tmp_path: Path) -> None:
    from tui_trainer.config.expect import Ref

    rows = [(10, 0.5), (20, 0.9), (30, 0.8)]
    run = _run(tmp_path, {"val/acc": rows}, batches_per_epoch=5)
    with RunReader(run) as r:
        view = RunView(r)
        assert measure(view, Ref("", "val/acc")) == 0.8
        assert measure(view, Ref("", "val/acc", "max")) == 0.9
        assert measure(view, Ref("", "val/acc", "min")) == 0.5
        assert measure(view, Ref("", "val/acc", 25)) == 0.9
        assert measure(view, Ref("", "val/acc", 5)) is None
        assert measure(view, Ref("", "val/acc", "reach", 0.85)) == 20
        assert measure(view, Ref("", "val/acc", "reach", 0.85, unit="epochs")) == 4
        assert measure(view, Ref("", "val/acc", "reach", 0.6, "<=")) == 10
        assert measure(view, Ref("", "val/acc", "reach", 0.95)) == math.inf
        assert measure(view, Ref("", "val/loss")) is None


def test_measure_layer_stats(tmp_path: Path) -> None:
    from tui_trainer.config.expect import Ref
    from tui_trainer.store import STAT_COLUMNS

    store = RunStore.create(tmp_path, "p", "", "{}", "")
    store.set_layers([("l0", "linear", "relu", 1), ("l1", "linear", "relu", 1)])
    row = lambda g: [g] + [None] * (len(STAT_COLUMNS) - 1)  # noqa: E731
    store.layer_stats(10, [row(1e-6), row(1.0)])
    store.layer_stats(20, [row(2.0), row(4.0)])
    store.close()
    with RunReader(store.run_dir) as r:
        view = RunView(r)
        assert measure(view, Ref("", "layer_stats/grad_norm/first_over_last", 10)) == 1e-6
        assert measure(view, Ref("", "layer_stats/grad_norm/first_over_last")) == 0.5
        assert measure(view, Ref("", "layer_stats/grad_norm/mean")) == 3.0
        assert measure(view, Ref("", "layer_stats/grad_norm/l1", "min")) == 1.0


# --- each check type passes on good numbers and fails on bad ones --------------------------


def _evaluate(
    tmp_path: Path, checks: str, runs: dict[tuple[str, int], dict], variants: str = "",
    status: str = "finished",
):
    path = _preset(tmp_path, checks, variants)
    seeds = max(s for _, s in runs) + 1
    (item,) = plan([str(path)], seeds)
    for key, scalars in runs.items():
        item.runs[key] = _run(tmp_path / "runs", scalars, batches_per_epoch=4, status=status)
    return evaluate(item)


BOUND = '[[expect.checks]]\ntext = "t"\nmetric = "val/acc"\nop = ">="\nvalue = 0.9\n'


@pytest.mark.parametrize(("final", "passed"), [(0.95, True), (0.85, False)])
def test_bound_check(tmp_path: Path, final: float, passed: bool) -> None:
    (r,) = _evaluate(tmp_path, BOUND, {("", 0): {"val/acc": [(1, 0.99), (2, final)]}})
    assert r.passed is passed
    assert r.measured == f"{final:.4g}" and r.expected == ">= 0.9"
    assert r.claim == 3 and r.preset == "p"


@pytest.mark.parametrize(("peak", "passed"), [(0.75, True), (1.0, False)])
def test_max_check(tmp_path: Path, peak: float, passed: bool) -> None:
    check = BOUND.replace('op = ">="', 'at = "max"\nop = "<="').replace("0.9", "0.75")
    (r,) = _evaluate(tmp_path, check, {("", 0): {"val/acc": [(1, peak), (2, 0.5)]}})
    assert r.passed is passed


@pytest.mark.parametrize(("rows", "passed"), [([(4, 0.5), (8, 1.0)], True),
                                               ([(4, 0.5), (96, 1.0)], False),
                                               ([(4, 0.5), (8, 0.75)], False)])
def test_reach_check_in_epochs(tmp_path: Path, rows: list, passed: bool) -> None:
    check = (
        '[[expect.checks]]\ntext = "t"\nmetric = "val/acc"\nat = "reach"\ntarget = 1.0\n'
        'unit = "epochs"\nop = "<="\nvalue = 20\n'
    )
    (r,) = _evaluate(tmp_path, check, {("", 0): {"val/acc": rows}})
    assert r.passed is passed
    assert r.expected == "<= 20 epochs"


@pytest.mark.parametrize(("a", "b", "passed"), [(0.1, 0.5, True), (0.5, 0.1, False),
                                                (0.3, 0.3, False)])
def test_variant_comparison(tmp_path: Path, a: float, b: float, passed: bool) -> None:
    check = (
        '[[expect.checks]]\ntext = "t"\nvariant = "a"\nmetric = "train/loss"\nop = "<"\n'
        'than = "b"\n'
    )
    variants = '[[variants]]\nname = "a"\n[[variants]]\nname = "b"\n'
    (r,) = _evaluate(
        tmp_path, check,
        {("a", 0): {"train/loss": [(5, a)]}, ("b", 0): {"train/loss": [(5, b)]}}, variants,
    )
    assert r.passed is passed
    assert r.measured == f"a {a:.4g} vs b {b:.4g}" and r.expected == "< b"


@pytest.mark.parametrize(("relu", "tanh", "passed"), [(30, 60, True), (30, 40, False),
                                                      (None, None, False), (30, None, True)])
def test_steps_ratio_comparison(tmp_path: Path, relu, tanh, passed: bool) -> None:
    """tanh's steps to a target >= 1.5 x relu's; never reaching counts as infinitely many,
    and two runs that never reach it show nothing."""
    check = (
        '[[expect.checks]]\ntext = "t"\nvariant = "tanh"\nmetric = "train/acc"\nat = "reach"\n'
        'target = 0.9\nop = ">="\nfactor = 1.5\nthan = "relu"\n'
    )
    variants = '[[variants]]\nname = "relu"\n[[variants]]\nname = "tanh"\n'

    def rows(step):
        return [(10, 0.5)] + ([(step, 0.95)] if step else [(100, 0.6)])

    (r,) = _evaluate(
        tmp_path, check,
        {("relu", 0): {"train/acc": rows(relu)}, ("tanh", 0): {"train/acc": rows(tanh)}},
        variants,
    )
    assert r.passed is passed
    assert r.expected == ">= 1.5 x relu"


@pytest.mark.parametrize(("ae", "pca", "passed"), [(0.01, 0.02, True), (0.03, 0.02, False)])
def test_metric_comparison_within_a_run(
    tmp_path: Path, ae: float, pca: float, passed: bool
) -> None:
    check = (
        '[[expect.checks]]\ntext = "t"\nmetric = "val/recon_mse"\nop = "<"\n'
        'than = { metric = "val/pca_mse" }\n'
    )
    (r,) = _evaluate(
        tmp_path, check, {("", 0): {"val/recon_mse": [(9, ae)], "val/pca_mse": [(9, pca)]}}
    )
    assert r.passed is passed
    assert "vs val/pca_mse" in r.measured


@pytest.mark.parametrize(
    ("finals", "passed"), [([1, 1, 0.75, 1], True), ([1, 0.75, 0.75, 1], False)]
)
def test_k_of_n_seeds(tmp_path: Path, finals: list[float], passed: bool) -> None:
    check = BOUND.replace("value = 0.9", "value = 1.0\nseeds = 4\nmin_pass = 3")
    runs = {("", s): {"val/acc": [(1, v)]} for s, v in enumerate(finals)}
    (r,) = _evaluate(tmp_path, check, runs)
    assert r.passed is passed
    assert r.expected == ">= 1 (>= 3 of 4 seeds)"
    assert r.measured.startswith(f"{sum(v == 1 for v in finals)}/4 seeds pass")


@pytest.mark.parametrize(("finals", "passed"), [([0.7, 0.75], True), ([0.7, 1.0], False)])
def test_every_seed(tmp_path: Path, finals: list[float], passed: bool) -> None:
    check = BOUND.replace('">="', '"<="').replace("0.9", "0.75")
    runs = {("", s): {"val/acc": [(1, v)]} for s, v in enumerate(finals)}
    (r,) = _evaluate(tmp_path, check, runs)
    assert r.passed is passed
    assert r.expected == "<= 0.75 (every seed)"


def test_a_diverged_run_fails_whatever_it_recorded(tmp_path: Path) -> None:
    (r,) = _evaluate(tmp_path, BOUND, {("", 0): {"val/acc": [(1, 0.99)]}}, status="diverged")
    assert not r.passed and r.measured == "n/a (run diverged)"


def test_a_run_without_the_metric_fails(tmp_path: Path) -> None:
    (r,) = _evaluate(tmp_path, BOUND, {("", 0): {"train/loss": [(1, 0.1)]}})
    assert not r.passed and r.measured == "n/a"


# --- the command ---------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tui_trainer", "verify", *args],
        capture_output=True, text=True, cwd=cwd, timeout=120,
    )


def test_verify_cli_exit_codes_and_json(tmp_path: Path) -> None:
    """0 when the checks hold, 1 when one fails, 2 on bad input; --json is one document."""
    presets = tmp_path / "presets"
    presets.mkdir()
    base = (
        'claim = 1\n[data]\nname = "gates"\ngate = "and"\nbatch_size = 4\n'
        '[model]\nkind = "threshold"\nweights = [1.0, 1.0]\n[train]\nepochs = 0\n'
        '[probe]\nevery = 0\n'
        '[[expect.checks]]\ntext = "AND"\nmetric = "val/acc"\nop = "=="\nvalue = 1.0\n'
    )
    (presets / "gate-ok.toml").write_text(base.replace("[train]", "threshold = 2.0\n[train]"))
    (presets / "gate-bad.toml").write_text(base.replace("[train]", "threshold = 1.0\n[train]"))
    runs = tmp_path / "runs"
    common = ["--presets-dir", str(presets), "--runs-dir", str(runs)]

    ok = _cli("gate-ok", "--json", *common, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert list(doc) == ["checks"]
    (row,) = doc["checks"]
    assert set(row) == {"preset", "claim", "check", "measured", "expected", "passed"}
    assert row == {"preset": "gate-ok", "claim": 1, "check": "AND", "measured": "1",
                   "expected": "== 1", "passed": True}

    bad = _cli("gate-bad", "--json", *common, cwd=tmp_path)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["checks"][0]["passed"] is False

    table = _cli("gate-ok", "gate-bad", *common, cwd=tmp_path)
    assert table.returncode == 1
    assert "gate-ok" in table.stdout and "FAIL" in table.stdout and "pass" in table.stdout

    for args in (["no-such-preset"], ["gate-ok", "--seeds", "0"]):
        err = _cli(*args, *common, cwd=tmp_path)
        assert err.returncode == 2, err.stdout
        assert err.stderr.startswith("error: ") and "Traceback" not in err.stderr
        assert len(err.stderr.strip().splitlines()) == 1


def test_verify_module_imports_without_torch() -> None:
    code = (
        "import sys, tui_trainer.cli.verify, tui_trainer.config.expect; "
        "bad = [m for m in ('torch', 'textual') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# --- docs/lecture.md --------------------------------------------------------------------------


def test_lecture_doc_is_generated_from_verify_json(tmp_path: Path) -> None:
    from tui_trainer.cli.lecture_doc import CLAIMS, main

    checks = [
        {"preset": "xor-mlp", "claim": 4, "check": "learns | XOR", "measured": "10/10",
         "expected": "== 1", "passed": True},
        {"preset": "xor-perceptron", "claim": 3, "check": "never above 75%",
         "measured": "1", "expected": "<= 0.75", "passed": False},
    ]
    src = tmp_path / "verify.json"
    src.write_text(json.dumps({"checks": checks}))
    out = tmp_path / "docs" / "lecture.md"
    assert main([str(src), "--out", str(out), "--machine", "a test CPU"]) == 0
    page = out.read_text()
    assert len(CLAIMS) == 12
    for number in range(1, 13):
        assert f"\n## {number}. " in page
    assert "Measured: 1 of 2 checks passed on a test CPU." in page
    assert "| learns \\| XOR | 10/10 | == 1 | pass |" in page
    assert "| never above 75% | 1 | <= 0.75 | **fail** |" in page
    assert "### `xor-mlp`: A multi-layer perceptron learns XOR" in page
    assert "**What to look at in the app:**" in page
    assert "*Not measured in this verify run.*" in page  # e.g. lenet-1989
    assert "-paper`" not in page  # the GPU companions are not lecture entries

    rerun = tmp_path / "rerun.json"
    rerun.write_text(json.dumps({"checks": [dict(checks[1], measured="0.5", passed=True)]}))
    assert main([str(src), str(rerun), "--out", str(out)]) == 0
    page = out.read_text()
    assert "Measured: 2 of 2 checks passed." in page  # the rerun replaced xor-perceptron's row
    assert "| never above 75% | 0.5 | <= 0.75 | pass |" in page

    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert main([str(bad)]) == 2


def test_paper_companions_resolve_and_build_at_the_papers_sizes() -> None:
    """Each `<name>-paper` preset has its CPU preset's claim and variants, is left out of a
    plain `verify`, and builds its model for MNIST/CIFAR-10 shapes (no data needed)."""
    import torch

    from tui_trainer.config import all_presets
    from tui_trainer.engine.models import build_model, count_parameters

    presets = {p.name: p for p in all_presets()}
    paper = {n: p for n, p in presets.items() if p.resolve().scale == "paper"}
    assert set(paper) >= {
        "lenet-1989-paper", "features-paper", "pretraining-2006-paper",
        "autoencoder-vs-pca-paper", "relu-vs-tanh-paper", "augmentation-paper",
        "dropout-paper", "batchnorm-paper", "degradation-paper",
    }
    assert not {i.preset.name for i in plan([], 1)} & set(paper)
    shapes = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
    for name, p in paper.items():
        cpu = presets[name.removesuffix("-paper")]
        assert p.resolve().claim == cpu.resolve().claim, name
        assert p.variant_names == cpu.variant_names or name == "autoencoder-vs-pca-paper"
        (item,) = plan([name], 1)
        assert item.checks, name
        for v in p.variant_names or [None]:
            cfg = p.resolve(v)
            assert cfg.data.name in shapes and cfg.data.dir, name
            c, h, w = shapes[cfg.data.name]
            if cfg.data.size:
                h = w = cfg.data.size
            with torch.device("meta"):
                model = build_model(cfg.model, (c, h, w), 10)
            assert count_parameters(model) > 0
    with torch.device("meta"):
        resnet56 = build_model(presets["degradation-paper"].resolve("resnet-56").model,
                               (3, 32, 32), 10)
    assert count_parameters(resnet56) == pytest.approx(0.85e6, rel=0.02)  # He et al.: 0.85M
