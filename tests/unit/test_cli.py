"""Command line: exit codes, --json output, one-line errors, nothing half-recorded."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tui_trainer.cli import app
from tui_trainer.store import list_runs

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_presets_json():
    r = invoke("presets", "--json")
    assert r.exit_code == 0
    names = {p["name"] for p in json.loads(r.stdout)}
    assert {"xor-perceptron", "xor-mlp", "digits-mlp"} <= names


def test_show_resolves_variant_and_set():
    r = invoke("show", "xor-mlp", "--variant", "hidden-2", "--set", "optim.lr=0.25", "--json")
    assert r.exit_code == 0
    cfg = json.loads(r.stdout)
    assert cfg["model"]["width"] == 2 and cfg["optim"]["lr"] == 0.25


def test_run_json_and_runs(runs_dir):
    r = invoke(
        "run", "xor-mlp", "--set", "train.max_steps=50", "--json", "--runs-dir", str(runs_dir)
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    for key in ("run_id", "run_dir", "status", "steps", "steps_per_s", "final"):
        assert key in doc
    assert doc["status"] == "finished" and doc["steps"] == 50
    assert "train/loss" in doc["final"] and "val/acc" in doc["final"]
    assert not [k for k in doc["final"] if not k.startswith(("train/", "val/", "test/"))]
    assert doc["best"]["val/acc"] == 1.0 and "step" in doc["best"]
    r = invoke("runs", "--json", "--runs-dir", str(runs_dir))
    runs = json.loads(r.stdout)
    assert runs[0]["run_id"] == doc["run_id"] and runs[0]["status"] == "finished"


def test_final_holds_headline_and_expect_metrics():
    from tui_trainer.cli.headless import headline
    from tui_trainer.config import find_preset

    values = {
        "train/loss": 0.1,
        "val/acc": 0.9,
        "gap/acc": 0.05,
        "features/filter_change": 0.2,
        "grad_norm/fc.weight": 1.0,
        "grad/total_norm": 2.0,
        "perf/steps_per_s": 300.0,
    }
    cfg = find_preset("dropout").resolve()  # an [expect] check reads gap/acc
    assert headline(values, cfg) == {"train/loss": 0.1, "val/acc": 0.9, "gap/acc": 0.05}
    plain = find_preset("xor-mlp").resolve()
    assert headline(values, plain) == {"train/loss": 0.1, "val/acc": 0.9}


def test_run_all_variants_prints_a_list(runs_dir):
    r = invoke("run", "xor-mlp", "--all", "--set", "train.max_steps=20", "--json")
    assert r.exit_code == 0, r.output
    docs = json.loads(r.stdout)
    assert [d["variant"] for d in docs] == ["hidden-4", "hidden-2"]


def test_plain_progress_lines_when_not_a_terminal(runs_dir):
    r = invoke("run", "xor-mlp", "--set", "train.max_steps=30")
    assert r.exit_code == 0
    assert "step 30/30" in r.stdout and "finished" in r.stdout


def test_diverged_run_exits_1(runs_dir):
    r = invoke(
        "run",
        "xor-mlp",
        "--set",
        'model.activation="relu"',
        "--set",
        "optim.lr=1e30",
        "--set",
        "train.log_every=1",
        "--json",
    )
    assert r.exit_code == 1
    assert json.loads(r.stdout)["status"] == "diverged"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "xor-mpl"], "unknown preset 'xor-mpl'; did you mean xor-mlp"),
        (["run", "xor-mlp", "--set", "optim.lrr=1"], "unknown key 'optim.lrr'"),
        (["run", "xor-mlp", "--set", "optim.lr=-1"], "optim.lr: expected a number > 0"),
        (["run", "xor-mlp", "--set", "optim.lr=0"], "optim.lr: expected a number > 0"),
        (["run", "xor-mlp", "--set", 'model.activation="swish"'], "model.activation"),
        (["run", "xor-mlp", "--set", 'data.name="imagenet"'], "data.name"),
        (["run", "xor-mlp", "--set", "model.width=10000000"], "model.width"),
        (["run", "xor-mlp", "--set", "data.batch_size=0"], "data.batch_size"),
        (["run", "xor-mlp", "--set", "train.epochs=two"], "train.epochs: expected an integer"),
        (["run", "xor-mlp", "--variant", "hidden-9"], "unknown variant 'hidden-9'"),
        (
            ["run", "xor-mlp", "--set", 'data.name="mnist"', "--set", 'data.dir="/nonexistent"'],
            "/nonexistent",
        ),
        (["run", "xor-mlp", "--device", "tpu"], "train.device"),
        (["show", "nope.toml"], "nope.toml"),
        (["stream", "no-such-run"], "not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(runs_dir, args, expected):
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in r.output
    assert not [x for x in list_runs(runs_dir) if x.status in ("created", "running")]


def test_unwritable_runs_dir_is_exit_2(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("")
    r = invoke("run", "xor-mlp", "--runs-dir", str(f), "--set", "train.max_steps=5")
    assert r.exit_code == 2 and "cannot write" in r.stderr


def test_stream_and_stop(runs_dir):
    r = invoke("run", "xor-mlp", "--set", "train.max_steps=20", "--quiet")
    assert r.exit_code == 0
    r = invoke("stream", "latest")
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert {"scalar", "layer_stats", "event"} <= {x["type"] for x in recs}
    r = invoke("stop", "latest")  # a run that is not live: bad input
    assert r.exit_code == 2 and "finished, not running" in r.stderr


def test_doctor():
    r = invoke("doctor")
    assert r.exit_code == 0 and "torch" in r.stdout and "cuda" in r.stdout


def test_export_csv_round_trips_the_store(runs_dir, tmp_path):
    import csv

    from tui_trainer.store import RunReader, resolve_run

    assert invoke("run", "xor-mlp", "--set", "train.max_steps=20", "--quiet").exit_code == 0
    out = tmp_path / "export"
    r = invoke("export", "latest", "--format", "csv", "--out", str(out))
    assert r.exit_code == 0, r.output
    reader = RunReader(resolve_run("latest"))
    rows = list(csv.DictReader(open(out / "scalars.csv")))
    assert [float(x["value"]) for x in rows if x["name"] == "train/loss"] == [
        v for _, v in reader.series("train/loss")
    ]
    stats = list(csv.DictReader(open(out / "layer_stats.csv")))
    assert {s["layer_name"] for s in stats} == {"blocks.0", "head"}
    assert json.loads((out / "meta.json").read_text())["status"] == "finished"
    r = invoke("export", "latest", "--format", "parquet", "--out", str(out))
    assert r.exit_code == 2 and "expected csv or tensorboard" in r.stderr


def test_resume_finishes_a_stopped_run(runs_dir):
    from tests.unit.test_trainer import new_store
    from tui_trainer.config import find_preset
    from tui_trainer.engine.trainer import Trainer

    cfg = find_preset("xor-mlp").resolve(None, ["train.max_steps=60", "train.log_every=1"])
    store = new_store(runs_dir, cfg)
    trainer = Trainer(cfg)
    log = trainer._after_step

    def stop_at_25(*a, **k):
        log(*a, **k)
        if trainer.step >= 25:
            trainer.stop_requested = "test"

    trainer._after_step = stop_at_25  # type: ignore[method-assign]
    assert trainer.run(store).status == "stopped"
    store.close()
    r = invoke("resume", store.run_dir.name, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["status"] == "finished" and doc["steps"] == 60
    r = invoke("resume", store.run_dir.name)  # nothing left to do: it finishes at once
    assert r.exit_code == 0
    r = invoke("resume", "no-such-run")
    assert r.exit_code == 2


def test_resume_from_a_damaged_checkpoint_is_one_line_and_loses_nothing(runs_dir):
    from tests.unit.test_trainer import new_store
    from tui_trainer.config import find_preset
    from tui_trainer.engine.trainer import Trainer
    from tui_trainer.store import RunReader

    cfg = find_preset("xor-mlp").resolve(None, ["train.max_steps=30", "train.log_every=1"])
    store = new_store(runs_dir, cfg)
    Trainer(cfg).run(store)
    store.close()
    last = store.run_dir / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:200])  # a torn copy, a full disk, a bad sync
    with RunReader(store.run_dir) as reader:
        before = (reader.meta()["status"], reader.series("train/loss"))
    r = invoke("resume", store.run_dir.name)
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "damaged checkpoint" in r.stderr, r.stderr
    assert str(last) in r.stderr
    with RunReader(store.run_dir) as reader:
        assert (reader.meta()["status"], reader.series("train/loss")) == before


def _refuse(name):
    raise ValueError(f"bare {name}: not JSON")


def test_json_output_is_strict_even_for_a_diverged_run(runs_dir):
    r = invoke("run", "xor-mlp", "--set", "optim.lr=1e30", "--set", "train.max_steps=200",
               "--json")  # fmt: skip
    assert r.exit_code == 1, r.output  # diverged
    doc = json.loads(r.stdout, parse_constant=_refuse)
    assert doc["status"] == "diverged"
    assert all(v is None or isinstance(v, float | int | str) for v in doc["final"].values())
    listed = invoke("runs", "--json")
    json.loads(listed.stdout, parse_constant=_refuse)


def test_print_json_writes_non_finite_values_as_strings(capsys):
    from tui_trainer.cli.root import print_json

    print_json({"loss": float("nan"), "xs": [float("inf"), -float("inf"), 1.5], "n": {"v": 2}})
    doc = json.loads(capsys.readouterr().out, parse_constant=_refuse)
    assert doc == {"loss": "nan", "xs": ["inf", "-inf", 1.5], "n": {"v": 2}}
