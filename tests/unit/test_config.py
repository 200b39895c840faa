"""Config: strict keys, types, ranges, overrides, variants, and the error messages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tui_trainer.config import (
    ConfigError,
    RunConfig,
    all_presets,
    config_to_toml,
    find_preset,
    load_preset_file,
    parse_set,
)

PRESET = """
title = "t"
[data]
name = "digits"
[model]
kind = "mlp"
depth = 3
[optim]
lr = 0.1
[[variants]]
name = "a"
model = { activation = "sigmoid" }
[[variants]]
name = "b"
default = true
optim = { lr = 0.5 }
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_default_variant_and_overrides(tmp_path):
    pf = load_preset_file(write(tmp_path, PRESET))
    assert pf.variant_names == ["a", "b"]
    cfg = pf.resolve()
    assert (cfg.variant, cfg.optim.lr, cfg.model.activation) == ("b", 0.5, "relu")
    cfg = pf.resolve("a", ["train.epochs=3", "probe.every=5", "optim.lr=0.01"])
    assert (cfg.variant, cfg.model.activation, cfg.train.epochs) == ("a", "sigmoid", 3)
    assert cfg.probe.every == 5 and cfg.optim.lr == 0.01
    assert cfg.model.depth == 3  # the base table survives a variant's partial table


def test_first_variant_is_default_without_flag(tmp_path):
    text = PRESET.replace("default = true\n", "")
    assert load_preset_file(write(tmp_path, text)).resolve().variant == "a"


def test_config_is_frozen(tmp_path):
    cfg = load_preset_file(write(tmp_path, PRESET)).resolve()
    with pytest.raises(AttributeError):
        cfg.optim.lr = 3.0  # type: ignore[misc]


def test_toml_round_trip(tmp_path):
    cfg = load_preset_file(write(tmp_path, PRESET)).resolve("a", ["train.seed=7"])
    again = load_preset_file(write(tmp_path, config_to_toml(cfg), "config.toml")).resolve()
    assert again == cfg


@pytest.mark.parametrize(
    "text, key, expected",
    [
        ("[optim]\nlrr = 1\n", "optim.lrr", "did you mean 'lr'"),
        ("[model]\nactivation = 'foo'\n", "model.activation", "'sigmoid'"),
        ("[train]\nepochs = 'x'\n", "train.epochs", "an integer"),
        ("[optim]\nlr = -1\n", "optim.lr", "> 0"),
        ("[optim]\nlr = 0\n", "optim.lr", "> 0"),
        ("[data]\nname = 'imagenet'\n", "data.name", "'digits'"),
        ("[model]\ndepth = 100000\n", "model.depth", "[0, 1000]"),
        ("[data]\nbatch_size = 0\n", "data.batch_size", "[1,"),
        ("[model]\ndepth = 1000\nwidth = 65536\n", "model", "too large"),
        ("bogus = 1\n", "bogus", "unknown key"),
        ("[data]\nname = 'mnist'\n", "data.dir", "directory"),
    ],
)
def test_errors_name_file_key_and_expectation(tmp_path, text, key, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_preset_file(path).resolve()
    msg = str(err.value)
    assert str(path) in msg and key in msg and expected in msg
    assert "\n" not in msg


def test_set_errors():
    pf_raw = {"data": {"name": "xor"}}
    with pytest.raises(ConfigError, match="unknown key 'optim.lrr'"):
        from tui_trainer.config import apply_overrides

        apply_overrides(pf_raw, ["optim.lrr=1"], "x")
    with pytest.raises(ConfigError, match="key=value"):
        parse_set("optim.lr")
    assert parse_set("optim.lr=0.01") == ("optim.lr", 0.01)
    assert parse_set("train.device=cpu") == ("train.device", "cpu")
    assert parse_set("model.hidden=[4, 2]") == ("model.hidden", [4, 2])


def test_set_wrong_type_is_reported(tmp_path):
    pf = load_preset_file(write(tmp_path, PRESET))
    with pytest.raises(ConfigError, match="train.epochs: expected an integer"):
        pf.resolve(None, ["train.epochs=abc"])


def test_unknown_variant(tmp_path):
    pf = load_preset_file(write(tmp_path, PRESET))
    with pytest.raises(ConfigError, match="unknown variant 'c'; expected one of a, b"):
        pf.resolve("c")


def test_bad_toml_and_bad_variant_table(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_preset_file(write(tmp_path, "x = = 1"))
    bad = PRESET + '\n[[variants]]\nname = "c"\nmodel = { colour = "red" }\n'
    with pytest.raises(ConfigError, match="model.colour: unknown key"):
        load_preset_file(write(tmp_path, bad))


def test_builtin_presets_load_and_unknown_preset_suggests():
    names = {p.name for p in all_presets()}
    assert {"xor-perceptron", "xor-mlp", "digits-mlp"} <= names
    for p in all_presets():
        assert isinstance(p.resolve(), RunConfig)
    with pytest.raises(ConfigError, match="did you mean xor-mlp"):
        find_preset("xor-mpl")


def test_presets_dir_and_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "mine"
    d.mkdir()
    write(d, PRESET, "my-exp.toml")
    assert find_preset("my-exp", d).name == "my-exp"
    assert find_preset(str(d / "my-exp.toml")).name == "my-exp"
    with pytest.raises(ConfigError, match="not a directory"):
        find_preset("my-exp", tmp_path / "nope")


@pytest.mark.parametrize("text", ["", "# nothing\n", "[train]\nepochs = 2\n"])
def test_a_preset_without_model_or_data_is_refused(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"neither \[model\] nor \[data\]") as err:
        load_preset_file(path)
    assert str(path) in str(err.value)


def test_a_preset_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes("[data]\nname = 'café'\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8") as err:
        load_preset_file(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("title", ["digits 🚀", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", 'quote " and \\ and \t tab', "é\u0301"])
def test_any_unicode_title_round_trips_through_config_toml(tmp_path, title):
    cfg = load_preset_file(write(tmp_path, PRESET)).resolve()
    cfg = dataclasses.replace(cfg, title=title, description=title)
    again = load_preset_file(write(tmp_path, config_to_toml(cfg), "config.toml")).resolve()
    assert again == cfg
