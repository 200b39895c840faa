"""output.log of a headless run: what it prints reaches the terminal and the log."""

from __future__ import annotations

import io
import subprocess
import sys

from typer.testing import CliRunner

from tui_trainer.cli import app
from tui_trainer.cli.output_log import OutputLog, Tee, clean_line, tee_output
from tui_trainer.store import list_runs


def test_clean_line_drops_escapes_and_keeps_the_last_redraw():
    assert clean_line("\x1b[1mbold\x1b[0m plain") == "bold plain"
    assert clean_line("10%\r50%\r100%") == "100%"
    assert clean_line("\x1b[2K\rdone\r") == "done"


def test_tee_writes_through_and_logs_whole_lines(tmp_path):
    term = io.StringIO()
    log = OutputLog(tmp_path / "output.log")
    tee = Tee(term, log, "stdout")
    tee.write("one\ntw")
    assert (tmp_path / "output.log").read_text() == "one\n"  # flushed at once, whole lines
    tee.write("o\nthree")
    log.close()
    assert term.getvalue() == "one\ntwo\nthree"
    assert (tmp_path / "output.log").read_text() == "one\ntwo\nthree\n"
    tee.write("after close\n")  # a stream someone kept: the terminal still gets it
    assert term.getvalue().endswith("after close\n")


def test_tee_output_copies_prints_warnings_and_stderr(tmp_path):
    out, err = sys.stdout, sys.stderr
    with tee_output(tmp_path):
        print("hello from training")
        print("to stderr", file=sys.stderr)
    assert sys.stdout is out and sys.stderr is err
    code = (
        "import sys, warnings; from tui_trainer.cli.output_log import tee_output\n"
        f"with tee_output({str(tmp_path)!r}):\n"
        "    warnings.warn('careful', UserWarning, stacklevel=1)\n"
        "    raise SystemExit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "UserWarning: careful" in done.stderr  # the terminal keeps it
    text = (tmp_path / "output.log").read_text()
    assert "hello from training\n" in text
    assert "UserWarning: careful" in text
    assert "to stderr\n" in text


def test_a_headless_run_records_its_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    r = CliRunner().invoke(
        app, ["run", "xor-mlp", "--set", "train.max_steps=30", "--runs-dir", str(runs)]
    )
    assert r.exit_code == 0, r.output
    (info,) = list_runs(runs)
    log = (runs / info.run_id / "output.log").read_text()
    assert "finished after 30 steps" in log
    assert "step 30/30" in r.output  # the terminal still gets its progress lines
