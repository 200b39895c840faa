"""The small shared pieces: run labels, first lines of errors, the stream's records, control
rows, and an import graph without cycles."""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import pytest

from tui_trainer.config import find_preset
from tui_trainer.store import STAT_COLUMNS, RunReader, RunStore, send_control
from tui_trainer.store.stream import write_stream
from tui_trainer.text import first_line, run_label

PACKAGE = Path(__file__).resolve().parents[2] / "tui_trainer"


def _refuse(name: str) -> None:
    raise ValueError(f"not JSON: {name}")


def test_run_label_and_config_label_agree():
    assert run_label("xor-mlp", "") == "xor-mlp"
    assert run_label("xor-mlp", None) == "xor-mlp"
    assert run_label("vanishing-gradients", "relu") == "vanishing-gradients/relu"
    cfg = find_preset("vanishing-gradients").resolve("relu")
    assert cfg.label == run_label(cfg.preset, cfg.variant) == "vanishing-gradients/relu"


def test_first_line_of_errors():
    assert first_line(ValueError("bad key\nmore detail")) == "bad key"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(OSError("  \n")) == "OSError"
    assert first_line(KeyError("x"), with_type=True) == "KeyError: 'x'"
    assert first_line(RuntimeError("boom\nline 2"), with_type=True) == "RuntimeError: boom"


def test_stream_records_are_strict_json_and_keep_every_row(tmp_path):
    s = RunStore.create(tmp_path, "p", "v", json.dumps({}), "")
    s.set_layers([("a", "linear", "relu", 3)])
    s.scalars(1, {"train/loss": float("nan"), "train/acc": 0.5})
    s.scalars(2, {"train/loss": float("inf")})
    s.layer_stats(2, [[float("-inf")] + [1.0] * (len(STAT_COLUMNS) - 1)])
    s.event(2, "nonfinite", {"what": "train/loss", "value": float("nan"), "xs": [float("inf")]})
    s.flush()
    out = io.StringIO()
    with RunReader(s.run_dir) as r:
        write_stream(r, out)
    s.close()
    back = [json.loads(line, parse_constant=_refuse) for line in out.getvalue().splitlines()]
    loss = [b["value"] for b in back if b.get("name") == "train/loss"]
    assert loss == [None, "inf"]  # SQLite keeps a NaN as NULL; an infinity as itself
    (stats,) = [b for b in back if b["type"] == "layer_stats"]
    assert stats["grad_norm"] == "-inf" and stats["layer"] == 0
    (event,) = [b for b in back if b["type"] == "event" and b["kind"] == "nonfinite"]
    assert event["data"] == {"what": "train/loss", "value": "nan", "xs": ["inf"]}
    assert {b["type"] for b in back} == {"hello", "meta", "layers", "scalar", "layer_stats",
                                         "event", "end"}  # fmt: skip
    (acc,) = [b["value"] for b in back if b.get("name") == "train/acc"]
    assert acc == 0.5  # a finite value stays a number


def test_stream_command_delivers_more_rows_than_one_tail(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tui_trainer.cli import app
    from tui_trainer.store import stream as stream_module

    s = RunStore.create(tmp_path, "p", "v", json.dumps({}), "")
    for step in range(250):
        s.scalars(step, {"x": float(step)})
    s.set_status("finished", 250)
    s.close()
    monkeypatch.setattr(stream_module, "BATCH", 100)  # a small page: one read cannot hold all
    out = CliRunner().invoke(app, ["stream", str(s.run_dir)])
    assert out.exit_code == 0, out.output
    values = [r["value"] for r in map(json.loads, out.stdout.splitlines()) if r["type"] == "scalar"]
    assert values == [float(i) for i in range(250)]


def test_control_rows_are_written_by_any_process_and_checked(tmp_path):
    s = RunStore.create(tmp_path, "p", "v", json.dumps({}), "")
    first = send_control(s.run_dir, "pause")
    second = send_control(s.run_dir, "stop")
    assert second > first
    assert [c for _, c in s.pending_controls()][:1] == ["pause"]
    with pytest.raises(ValueError, match="explode"):
        send_control(s.run_dir, "explode")
    with pytest.raises(Exception, match="not a run directory"):
        send_control(tmp_path / "nowhere", "stop")
    s.close()


def _imports(path: Path) -> set[str]:
    """Modules of the package imported at the top of ``path`` (not inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("tui_trainer"):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("tui_trainer"))
    return out


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _deps_graph() -> dict[str, set[str]]:
    """Module -> modules it imports at import time, packages resolved to their modules."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps = set()
        for dep in _imports(path):
            while dep not in files and "." in dep:  # `from pkg.mod import name`
                dep = dep.rsplit(".", 1)[0]
            if dep in files and dep != name:
                deps.add(dep)
        graph[name] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            # a package's __init__ importing its own submodules is how packages work
            if node and dep.startswith(node + "."):
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if state.get(dep) is None:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return []


def test_the_import_graph_has_no_cycle():
    graph = _deps_graph()
    assert "tui_trainer.config.schema" in graph and "tui_trainer.runner.process" in graph
    assert _cycle(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []
