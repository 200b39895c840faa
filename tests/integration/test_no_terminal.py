"""``tui-trainer`` without a terminal: one line on stderr, the headless demo, run's exit code.

Piped (stdin and stdout not terminals), the app cannot draw: it used to write escape codes
and wait for keys forever. A real subprocess with pipes, under a timeout, checks it does not.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .test_detach import DEADLINE, cli_args, cli_env


def _piped(*args: str, runs_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_args(*args),
        capture_output=True,  # stdout and stderr: pipes
        input="",  # stdin: a pipe, closed at once
        text=True,
        env={**cli_env(), "TUI_TRAINER_RUNS_DIR": str(runs_dir)},
        timeout=DEADLINE,  # a hang fails the test instead of stalling the suite
    )


def test_piped_app_says_it_needs_a_terminal_and_runs_the_demo(tmp_path):
    done = _piped(runs_dir=tmp_path / "runs")
    first = done.stderr.splitlines()[0]
    assert "needs a terminal" in first and "tui-trainer run digits-mlp" in first
    assert done.returncode == 0, done.stderr  # run's code: 0 when the demo finished
    assert "\x1b[" not in done.stdout  # plain lines, no escape codes
    assert done.stdout.strip().splitlines()[-1].startswith("finished: ")
    assert len(list((tmp_path / "runs").iterdir())) == 1


def test_piped_app_exits_with_runs_code_when_the_demo_cannot_start(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    done = _piped("--runs-dir", str(blocked), runs_dir=blocked)
    assert "needs a terminal" in done.stderr.splitlines()[0]
    assert done.returncode == 2  # what `run digits-mlp` exits with there: bad input
    assert done.stderr.splitlines()[1].startswith("error: runs directory")
