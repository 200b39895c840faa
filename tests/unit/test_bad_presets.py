"""Bad input never trains, never leaves a run behind and never prints a traceback.

``tests/data/bad_presets/`` holds hand-written broken preset files (EXPECTED.json: the
part of the key each one's message must name); ``run`` must refuse each with exit 2 and
one line. Then Hypothesis throws arbitrary config dictionaries and ``--set`` strings at
the same doors: either the config is accepted whole or it is refused with one line.
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tui_trainer.cli import app
from tui_trainer.config import ConfigError, RunConfig, apply_overrides, parse_set

CORPUS = Path(__file__).parents[1] / "data" / "bad_presets"
EXPECTED: dict[str, str] = json.loads((CORPUS / "EXPECTED.json").read_text())
runner = CliRunner()


def test_the_corpus_is_complete():
    files = {p.name for p in CORPUS.iterdir()} - {"EXPECTED.json"}
    assert files == set(EXPECTED) and len(files) >= 40


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_bad_preset_is_one_line_exit_2_and_no_run(name, tmp_path):
    runs = tmp_path / "runs"
    r = runner.invoke(app, ["run", str(CORPUS / name), "--runs-dir", str(runs), "--quiet"])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code == 2, (r.exit_code, r.output)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in r.output, err
    assert EXPECTED[name] in err, err
    assert not runs.exists() or not any(runs.iterdir()), list(runs.iterdir())


def test_verify_and_show_refuse_the_same_way(tmp_path):
    for cmd in (["show"], ["verify"]):
        r = runner.invoke(app, [*cmd, str(CORPUS / "unknown-activation.toml")])
        assert r.exit_code == 2 and "model.activation" in r.stderr, r.output
        assert len(r.stderr.strip().splitlines()) == 1
    r = runner.invoke(
        app, ["verify", str(CORPUS / "expect-unknown-variant.toml"), "--runs-dir", str(tmp_path)]
    )
    assert r.exit_code == 2 and "zzz" in r.stderr and not any(tmp_path.iterdir())


# --- fuzz -------------------------------------------------------------------------------
KEYS = {
    "data": ["name", "batch_size", "val_fraction", "size", "n", "noise", "dir", "augment"],
    "model": ["kind", "depth", "width", "activation", "init", "dropout", "hidden", "factory"],
    "optim": ["name", "lr", "momentum", "weight_decay", "betas", "schedule", "gamma"],
    "train": ["epochs", "max_steps", "seed", "device", "log_every", "grad_clip", "precision"],
    "probe": ["every", "stats", "on_nonfinite", "budget"],
    "checkpoint": ["every", "every_seconds", "keep_best"],
}
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["relu", "xor", "mlp", "adam", "auto", "cpu", "bf16", "digits", "nan"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
sections = st.sampled_from(sorted(KEYS)).flatmap(
    lambda sec: st.tuples(
        st.just(sec),
        st.dictionaries(st.sampled_from(KEYS[sec]) | st.text(max_size=8), values, max_size=4),
    )
)
configs = st.one_of(
    st.lists(sections, max_size=4).map(dict),
    st.dictionaries(st.text(max_size=8), values, max_size=4),
    values,
)


def _refused_in_one_line(exc: ConfigError) -> None:
    text = str(exc)
    assert text and "\n" not in text.strip() and "Traceback" not in text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_any_config_dictionary_is_accepted_whole_or_refused_in_one_line(raw):
    try:
        cfg = RunConfig.from_dict(raw, "<fuzz>")
    except ConfigError as exc:
        _refused_in_one_line(exc)
        return
    # accepted: every number in it is finite, and it survives its own round trip
    assert RunConfig.from_dict(cfg.to_dict(), "<again>") == cfg
    assert all(math.isfinite(v) for v in _numbers(cfg.to_dict()))


def _numbers(d):
    if isinstance(d, dict):
        for v in d.values():
            yield from _numbers(v)
    elif isinstance(d, list | tuple):
        for v in d:
            yield from _numbers(v)
    elif isinstance(d, float):
        yield d


set_strings = st.one_of(
    st.text(max_size=30),
    st.tuples(
        st.sampled_from([k for sec, ks in KEYS.items() for k in (f"{sec}.{x}" for x in ks)])
        | st.text(alphabet=string.ascii_letters + "._", max_size=15),
        st.sampled_from(["=", "==", ":", "= ", ""]),
        st.text(max_size=15)
        | st.sampled_from(["nan", "inf", "-1", "1e400", "[1,2", '"x', "{a=1}"]),
    ).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(set_strings, min_size=1, max_size=3))
def test_any_set_string_is_applied_or_refused_in_one_line(sets):
    raw = {"data": {"name": "xor", "batch_size": 4}, "model": {"kind": "mlp"}}
    try:
        for item in sets:
            parse_set(item)
        apply_overrides(raw, sets, "<fuzz>")
        RunConfig.from_dict(raw, "<fuzz>")
    except ConfigError as exc:
        _refused_in_one_line(exc)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(set_strings, min_size=1, max_size=2))
def test_the_cli_refuses_any_bad_set_with_exit_2_and_no_run(tmp_path_factory, sets):
    runs = tmp_path_factory.mktemp("runs")
    args = [x for s in sets for x in ("--set", s)]
    r = runner.invoke(app, ["show", "xor-mlp", *args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    if r.exit_code == 0:
        return  # a valid override: nothing to refuse
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.output
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["run", "xor-mlp", "--runs-dir", str(runs), "--quiet", *args])
    assert r.exit_code == 2 and not any(runs.iterdir())
