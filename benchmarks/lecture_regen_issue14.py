"""Rebuild docs/lecture.md with lecture_doc.render: earlier measurements read back from the
current page's own tables (verbatim), the presets given on argv dropped from them, then the
new verify JSON files' checks added; presets read from this worktree's presets/."""

import difflib
import json
import re
import sys
from pathlib import Path

from tui_trainer.cli.lecture_doc import render
from tui_trainer.config.files import load_preset_file

page = Path("docs/lecture.md").read_text()
drop = set(sys.argv[1].split(","))
new_files = sys.argv[2:]
old, preset = [], None


def split(row):
    return [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


claim = 0
for line in page.splitlines():
    m = re.match(r"## (\d+)\. ", line)
    if m:
        claim = int(m.group(1))
    m = re.match(r"### `([^`]+)`", line)
    if m:
        preset = m.group(1)
    if line.startswith("| ") and not line.startswith("| check |") and preset:
        cells = split(line)
        if len(cells) == 4:
            old.append(
                {
                    "preset": preset,
                    "claim": claim,
                    "check": cells[0],
                    "measured": cells[1],
                    "expected": cells[2],
                    "passed": cells[3] == "pass",
                }
            )
checks = [c for c in old if c["preset"] not in drop]
for f in new_files:
    checks += json.loads(Path(f).read_text())["checks"]
presets = [load_preset_file(f, f.stem) for f in sorted(Path("presets").glob("*.toml"))]
machine = (
    "a 2-core CPU, 1 torch thread (OMP_NUM_THREADS=1), seeds 0-2 (xor-perceptron 0-4, "
    "xor-mlp 0-9; relu-vs-tanh and degradation 100-104)"
)
command = (
    "OMP_NUM_THREADS=1 tui-trainer verify --seeds 3 --json (augmentation, digits-mlp and "
    "pretraining-2006 re-run after a change; relu-vs-tanh and degradation re-run after "
    "issue 14 on seeds 100-104: verify of the preset with train.seed = 100, --seeds 5)"
)
out = render(checks, presets, machine, command)
Path("docs/lecture.md").write_text(out)
print("".join(difflib.unified_diff(page.splitlines(True), out.splitlines(True), n=0))[:6000])
