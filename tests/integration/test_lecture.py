"""The lecture's claims, checked by training the built-in presets (``tui-trainer verify``).

Cheap presets run in the suite; the costly ones carry ``slow`` (``.ci/run`` skips them;
run them with ``pytest -m slow`` or ``tui-trainer verify``). The records the app draws
(truth tables, features, pre-training, the PCA baseline) are checked on the same runs.
"""

from __future__ import annotations

import json
import math

import pytest

from tui_trainer.cli.verify import evaluate, plan, train_plan
from tui_trainer.store import RunReader

CHEAP = ["mcculloch-pitts", "perceptron-gates", "xor-perceptron", "xor-mlp", "digits-mlp",
         "lenet-1989", "features", "pretraining-2006", "autoencoder-vs-pca", "batchnorm",
         "augmentation", "dropout"]
COSTLY = ["degradation", "relu-vs-tanh"]  # ~5 and ~2 minutes
# Checks that hold on some seeds and not others at the CPU budget (see the preset's
# description): verify still runs and reports them; the suite does not assert them.
SEED_DEPENDENT: dict[str, tuple[str, ...]] = {}
# Claims that do not reproduce at CPU scale (see the preset's description): the check stays
# as the lecture states it, and the test fails loudly if that ever changes.
NOT_REPRODUCED: list[str] = []


class _Quiet:
    is_terminal = False

    def print(self, *args: object, **kwargs: object) -> None:
        pass


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    """verify's results and plan of a preset, trained once for the whole module."""
    runs_dir = tmp_path_factory.mktemp("runs")
    done: dict[str, tuple[list, object]] = {}

    def get(name: str) -> tuple[list, object]:
        if name not in done:
            (item,) = plan([name], 1)
            train_plan(item, str(runs_dir), _Quiet())
            done[name] = (evaluate(item), item)
        return done[name]

    return get


def _assert_claim(results: list) -> None:
    failed = [r for r in results if not r.passed]
    assert results and not failed, [(r.check, r.measured, r.expected) for r in failed]


@pytest.mark.parametrize("name", CHEAP)
def test_cheap_claim_holds(name: str, verified) -> None:
    results, _ = verified(name)
    _assert_claim(results)


@pytest.mark.slow
@pytest.mark.parametrize("name", COSTLY)
def test_costly_claim_holds(name: str, verified) -> None:
    results, _ = verified(name)
    skip = SEED_DEPENDENT.get(name, ())
    _assert_claim([r for r in results if not any(text in r.check for text in skip)])


@pytest.mark.slow
@pytest.mark.parametrize("name", NOT_REPRODUCED)
@pytest.mark.xfail(strict=True, reason="does not reproduce at CPU scale; see the preset")
def test_claim_not_reproduced_on_cpu(name: str, verified) -> None:
    results, _ = verified(name)
    _assert_claim(results)


# --- what the app draws ---------------------------------------------------------------------


def test_mcculloch_pitts_records_unit_and_truth_table(verified) -> None:
    _, item = verified("mcculloch-pitts")
    with RunReader(item.runs[("and", 0)]) as r:
        ((step, _, _, table),) = r.events("truth_table")
    assert step == 0
    assert table == {
        "unit": "threshold", "weights": [1.0, 1.0], "threshold": 2.0, "rule": ">=",
        "inputs": [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]],
        "target": [0, 0, 0, 1], "output": [0, 0, 0, 1], "correct": 4, "total": 4,
    }


def test_features_records_filters_and_class_means(verified) -> None:
    _, item = verified("features")
    with RunReader(item.runs[("", 0)]) as r:
        events = r.events("features")
        change = r.series("features/filter_change")
    first, last = events[0][3], events[-1][3]
    assert events[0][0] == 0 and len(events) >= 2
    assert first["filter_change"] == 0.0 and last["filter_change"] > 0.5
    assert [len(first["filters"]), len(first["filters"][0]), len(first["filters"][0][0]),
            len(first["filters"][0][0][0])] == [12, 1, 5, 5]
    assert first["classes"] == [str(i) for i in range(10)]
    assert first["layer"] == "h1" and first["hidden_layer"] == "h3"
    maps = last["maps_by_class"]
    assert [len(maps), len(maps[0]), len(maps[0][0]), len(maps[0][0][0])] == [10, 12, 8, 8]
    assert [len(last["hidden_by_class"]), len(last["hidden_by_class"][0])] == [10, 30]
    assert change[-1][1] == pytest.approx(last["filter_change"])
    json.dumps(last)  # plain JSON


def test_pretraining_is_recorded_before_step_0(verified) -> None:
    _, item = verified("pretraining-2006")
    with RunReader(item.runs[("pretrained", 0)]) as r:
        events = [e[3] for e in r.events("pretrain")]
        names = [n for n in r.scalar_names() if n.startswith("pretrain/")]
        curve = r.series("pretrain/recon_mse/blocks.0")
    layers = [e for e in events if e["phase"] == "layer"]
    assert [e["name"] for e in layers] == [f"blocks.{i}" for i in range(6)]
    assert events[-1]["phase"] == "done" and events[-1]["layers"] == 6
    assert sorted(names) == [f"pretrain/recon_mse/blocks.{i}" for i in range(6)]
    assert curve[-1][1] < curve[0][1]  # the first layer learned to reconstruct the digits
    with RunReader(item.runs[("random-init", 0)]) as r:
        assert r.events("pretrain") == []


def test_autoencoder_records_pca_next_to_its_error(verified) -> None:
    _, item = verified("autoencoder-vs-pca")
    with RunReader(item.runs[("code-2", 0)]) as r:
        ae, pca = r.series("val/recon_mse"), r.series("val/pca_mse")
    assert [s for s, _ in ae] == [s for s, _ in pca]  # side by side, at every evaluation
    assert len({v for _, v in pca}) == 1 and math.isfinite(pca[0][1])
