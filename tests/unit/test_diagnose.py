"""Findings: each rule fires on a short real run built to show it; none fires on healthy runs."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from tui_trainer import diagnose as dg
from tui_trainer.cli import app
from tui_trainer.config import config_to_toml, find_preset
from tui_trainer.diagnose import Finding, diagnose_reader, diagnose_run
from tui_trainer.store import STAT_COLUMNS, RunReader, RunStore

CPU = 'train.device="cpu"'
# name -> (preset, variant, overrides): each a run that shows one problem (or none)
RUNS = {
    "healthy": ("digits-mlp", None, []),
    "batchnorm": ("vanishing-gradients", "batchnorm", []),
    "sigmoid": ("vanishing-gradients", "sigmoid", ["train.epochs=4"]),
    "dead": ("digits-mlp", None, ["optim.lr=0.2", "train.epochs=5", "probe.every=5"]),
    "saturated": (
        "digits-mlp",
        None,
        ['model.activation="tanh"', 'model.init="xavier"', 'optim.name="sgd"', "optim.lr=3.0",
         "train.epochs=5", "probe.every=5"],
    ),
    "lr_high": ("digits-mlp", None, ['optim.name="sgd"', "optim.lr=1.0", "train.epochs=5",
                                     "probe.every=5"]),
    "lr_low": ("digits-mlp", None, ['optim.name="sgd"', "optim.lr=1e-5", "train.epochs=5",
                                    "probe.every=5"]),
    "exploding": ("digits-mlp", None, ['optim.name="sgd"', "optim.lr=20", "train.max_steps=40",
                                       "probe.every=1", "train.log_every=1"]),
    "diverged": ("digits-mlp", None, ['optim.name="sgd"', "optim.lr=100", "train.max_steps=40",
                                      "probe.every=1", "train.log_every=1"]),
    "overfit": ("digits-mlp", None, ["data.train_subset=100", "train.epochs=150",
                                     "optim.lr=0.01", "data.batch_size=20"]),
}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from tui_trainer.engine.trainer import Trainer  # torch only where a run is trained

    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, (preset, variant, sets) in RUNS.items():
        cfg = find_preset(preset).resolve(variant, [CPU, *sets])
        store = RunStore.create(root, cfg.preset, cfg.variant, cfg.to_json(), config_to_toml(cfg))
        Trainer(cfg).run(store)
        store.close()
        out[name] = store.run_dir
    return out


def rules(run_dir) -> dict[str, Finding]:
    return {f.rule: f for f in diagnose_run(run_dir)}


@pytest.mark.parametrize("name", ["healthy", "batchnorm"])
def test_no_rule_fires_on_a_healthy_run(runs, name):
    assert diagnose_run(runs[name]) == []


def test_vanishing_gradients_in_the_deep_sigmoid_net(runs):
    found = rules(runs["sigmoid"])
    f = found["vanishing_gradients"]
    assert f.severity == "warning" and f.first_step is not None
    assert f.layers[0] == "blocks.0" and "head" not in f.layers
    assert f.numbers["median_ratio"] < dg.VANISHING_RATIO and f.numbers["share_of_samples"] == 1
    assert "ReLU" in f.remedy and "residual" in f.remedy and "batch normalisation" in f.remedy
    assert "loss_plateau" in found  # it does not learn either
    assert "update_ratio_low" not in found  # a consequence of the vanishing, not the cause


def test_dead_relu_layers(runs):
    f = rules(runs["dead"])["dead_relu"]
    assert set(f.layers) <= {"blocks.0", "blocks.1"} and f.layers
    assert all(v >= dg.DEAD_FRAC for v in f.numbers.values())
    assert "vanishing_gradients" not in rules(runs["dead"])  # explained by the dead units


def test_saturated_tanh_layers(runs):
    f = rules(runs["saturated"])["saturated"]
    assert set(f.layers) == {"blocks.0", "blocks.1"}
    assert all(v >= dg.SATURATED_FRAC for v in f.numbers.values())


def test_learning_rate_too_high_and_too_low(runs):
    high = rules(runs["lr_high"])["update_ratio_high"]
    assert high.numbers["median_update_ratio"] > dg.UPDATE_HIGH and "Lower" in high.remedy
    low = rules(runs["lr_low"])
    assert low["update_ratio_low"].numbers["median_update_ratio"] < dg.UPDATE_LOW
    assert "Raise" in low["update_ratio_low"].remedy and "loss_plateau" in low


def test_exploding_gradients(runs):
    f = rules(runs["exploding"])["exploding_gradients"]
    assert f.numbers["growth"] >= dg.EXPLODING_GROWTH and f.first_step is not None
    assert f.layers and "learning rate" in f.remedy
    assert RunReader(runs["exploding"]).status() == "finished"  # it exploded, then recovered


def test_divergence_names_step_and_layer(runs):
    reader = RunReader(runs["diverged"])
    (event,) = [(s, d) for s, _, _, d in reader.events("nonfinite") if d.get("layer")]
    f = diagnose_reader(reader)[0]
    assert (f.rule, f.severity) == ("divergence", "error")
    assert f.first_step == event[0] and f.layers == (event[1]["layer"],)
    assert event[1]["layer"] in f.message and str(event[0]) in f.message


def test_overfitting(runs):
    f = rules(runs["overfit"])["overfitting"]
    assert f.numbers["rise"] >= dg.OVERFIT_RISE
    assert f.first_step is not None and "dropout" in f.remedy


def test_findings_serialise_as_strict_json(runs):
    for run_dir in runs.values():
        for f in diagnose_run(run_dir):
            doc = json.loads(json.dumps(f.to_dict(), allow_nan=False))
            assert set(doc) == {
                "rule", "severity", "message", "layers", "first_step", "numbers", "remedy"
            }  # fmt: skip


def test_cli_diagnose_json(runs, tmp_path):
    result = CliRunner().invoke(app, ["diagnose", str(runs["sigmoid"]), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert "vanishing_gradients" in {f["rule"] for f in doc}
    result = CliRunner().invoke(app, ["diagnose", str(runs["healthy"])])
    assert result.exit_code == 0 and "no findings" in result.output


# -- recorded stores: the edges of the rules, without training ---------------------------------
def recorded(tmp_path, grad_first, grad_last, activation="relu"):
    """A store with two layers whose grad_norm per sample is given."""
    store = RunStore.create(tmp_path, "synthetic", "", "{}", "")
    store.set_layers([("first", "linear", activation, 10), ("last", "output", "identity", 10)])
    nan = math.nan
    for step, (a, b) in enumerate(zip(grad_first, grad_last, strict=True)):
        row = [nan] * len(STAT_COLUMNS)
        rows = [list(row), list(row)]
        rows[0][0], rows[1][0] = a, b
        store.layer_stats(step * 10, rows)
    store.set_status("finished", 10 * len(grad_first))
    store.close()
    return store.run_dir


def test_an_empty_run_has_no_findings(tmp_path):
    store = RunStore.create(tmp_path, "synthetic", "", "{}", "")
    store.close()
    assert diagnose_run(store.run_dir) == []


def test_a_live_run_without_samples_yet_has_no_findings(tmp_path):
    store = RunStore.create(tmp_path, "synthetic", "", "{}", "")
    store.set_layers([("a", "linear", "relu", 10), ("b", "output", "identity", 10)])
    store.set_status("running", 0)
    store.flush()
    assert diagnose_run(store.run_dir) == []
    store.close()


def test_vanishing_must_be_sustained(tmp_path):
    brief = recorded(tmp_path, [1e-6, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0])
    assert diagnose_run(brief) == []
    sustained = recorded(tmp_path, [1e-6, 1e-6, 1.0, 1e-7], [1.0, 1.0, 1.0, 1.0])
    (f,) = diagnose_run(sustained)
    assert (f.rule, f.first_step, f.layers) == ("vanishing_gradients", 0, ("first",))


def test_exploding_by_depth(tmp_path):
    run = recorded(tmp_path, [1e4, 1e5, 1e6], [1.0, 1.0, 1.0])
    (f,) = diagnose_run(run)
    assert f.rule == "exploding_gradients" and f.numbers["median_ratio"] == pytest.approx(1e5)


@pytest.mark.slow
def test_vanishing_gradients_preset_shows_the_lecture_ratios(tmp_path):
    """The preset's store: sigmoid first/last gradient-norm ratio below 1e-5 at every sample;
    relu, batchnorm and residual within [1e-3, 1e3] at every sample (~25 s)."""
    from tui_trainer.engine.trainer import Trainer

    for variant in ("sigmoid", "relu", "batchnorm", "residual"):
        cfg = find_preset("vanishing-gradients").resolve(variant, [CPU])
        store = RunStore.create(tmp_path, cfg.preset, variant, cfg.to_json(), config_to_toml(cfg))
        Trainer(cfg).run(store)
        store.close()
        _, grad = RunReader(store.run_dir).layer_stat_matrix("grad_norm")
        ratios = [a / b for a, b in zip(grad[0], grad[-1], strict=True)]
        assert len(ratios) > 50
        if variant == "sigmoid":
            assert max(ratios) < 1e-5
        else:
            assert 1e-3 < min(ratios) and max(ratios) < 1e3, variant
