"""The --nproc launch without launching: torchrun's argv, who failed, what is refused; the
DDP pieces that need no process group (RankSlice, rank_device); --device and precision."""

from __future__ import annotations

import sys

import pytest
import torch
from typer.testing import CliRunner

from tui_trainer.cli import app
from tui_trainer.cli.distributed import world_line
from tui_trainer.config import find_preset
from tui_trainer.engine.batches import EpochBatches
from tui_trainer.engine.distributed import RankSlice, rank_device
from tui_trainer.runner.torchrun import Launch, failed_rank, torchrun_argv
from tui_trainer.store import list_runs

runner = CliRunner()

ROOT_CAUSE = """\
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
tui_trainer.runner.ddp FAILED
------------------------------------------------------------
Failures:
[1]:
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 7436)  (SIGTERM)
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 7437)
  traceback : Signal 9 (SIGKILL) received by PID 7437
============================================================"""


def test_torchrun_argv_standalone_and_two_nodes(tmp_path):
    argv = torchrun_argv(Launch(nproc=2), tmp_path)
    assert argv[:4] == [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    assert "--standalone" in argv and argv[-3:] == ["-m", "tui_trainer.runner.ddp", str(tmp_path)]
    argv = torchrun_argv(Launch(4, nnodes=2, node_rank=1, rdzv_endpoint="box0:29500"), tmp_path)
    assert "--standalone" not in argv
    assert {"--nnodes=2", "--node_rank=1", "--rdzv_backend=static"} <= set(argv)
    assert "--rdzv_endpoint=box0:29500" in argv


def test_failed_rank_from_the_launchers_report_and_from_a_worker():
    lines = ["rank 0 crashed: RuntimeError: Connection closed by peer", *ROOT_CAUSE.splitlines()]
    assert failed_rank(lines) == (1, "killed by SIGKILL")
    lines = ["rank 0 crashed: RuntimeError: peer", "rank 1 crashed: ValueError: bad"]
    assert failed_rank(lines) == (1, "ValueError: bad")
    assert failed_rank(["rank 0 crashed: OSError: disk"]) == (0, "OSError: disk")
    assert failed_rank(["nothing here"]) is None


@pytest.mark.parametrize(
    "launch, sets, expected",
    [
        (Launch(nproc=3), [], "data.batch_size 64: expected a multiple of the 3 processes"),
        (Launch(nproc=2, nnodes=2), [], "--rdzv-endpoint"),
        (Launch(nproc=2, nnodes=2, node_rank=2, rdzv_endpoint="h:1"), [], "--node-rank 2"),
        (Launch(nproc=2), ["train.pretrain_epochs=1"], "train.pretrain_epochs"),
    ],
)
def test_launch_refuses(launch, sets, expected):
    cfg = find_preset("digits-mlp").resolve(None, sets)
    with pytest.raises(ValueError, match=expected.replace(".", r"\.").replace("-", r"\-")):
        launch.validate(cfg)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--nproc", "3"], "expected a multiple of the 3 processes"),
        (["--nproc", "3", "--detach"], "expected a multiple of the 3 processes"),
        (["--nproc", "2", "--detach", "--nnodes", "2", "--rdzv-endpoint", "h:1"],
         "--detach and --nnodes > 1"),
        (["--set", 'train.precision="fp8"'], "train.precision: expected one of"),
        (["--device", "cuda:x"], "train.device: expected one of auto, cpu, cuda, cuda:N, mps"),
    ],
)
def test_bad_distributed_or_precision_input_is_one_line_exit_2(runs_dir, args, expected):
    r = runner.invoke(app, ["run", "digits-mlp", *args], catch_exceptions=False)
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert not list_runs(runs_dir)


def test_detach_with_nproc_takes_one_variant_at_a_time(runs_dir):
    args = ["run", "relu-vs-tanh", "--all", "--nproc", "2", "--detach"]
    r = runner.invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 2 and "one variant at a time" in r.stderr
    assert not list_runs(runs_dir)


def test_rank_slices_partition_the_global_batch():
    x, y = torch.arange(40.0).view(20, 2), torch.arange(20)
    batches = EpochBatches(x, y, batch_size=8, batches_per_epoch=3, seed=1)
    for step in range(3):
        whole = batches.batch(step)[1]
        parts = [RankSlice(batches, r, 2).batch(step)[1] for r in range(2)]
        assert torch.equal(torch.cat(parts), whole)


def test_rank_device():
    assert rank_device("cpu", 1) == "cpu"
    assert rank_device("cuda", 3) == "cuda:3" and rank_device("cuda:0", 1) == "cuda:1"
    assert rank_device("auto", 0) == ("cuda:0" if torch.cuda.is_available() else "cpu")


def test_world_line_states_global_batch_and_lr():
    line = world_line({"world_size": 2, "backend": "gloo", "global_batch": 64, "rank_batch": 32,
                       "lr": 0.002})  # fmt: skip
    assert line == "2 processes (gloo): global batch 64 (32 per process), lr 0.002"


def test_a_rank_killed_from_outside_is_named_even_when_a_peer_is_the_root_cause():
    """Its peer (rank 0) fails on the broken connection and may be seen first."""
    entry = "[{i}]:\n  time      : t\n  host      : h\n  rank      : {r} (local_rank: {r})\n"
    report = (
        "Failures:\n" + entry.format(i=1, r=1) + "  exitcode  : -9 (pid: 2)  (SIGKILL)\n"
        "Root Cause (first observed failure):\n" + entry.format(i=0, r=0)
        + "  exitcode  : 1 (pid: 1)\n"
    )  # fmt: skip
    assert failed_rank(report.splitlines()) == (1, "killed by SIGKILL")
    sigterm = report.replace("-9 (pid: 2)  (SIGKILL)", "-15 (pid: 2)  (SIGTERM)")
    assert failed_rank(sigterm.splitlines()) == (0, "exited with code 1")  # the launcher's
