"""Provides the generator of ``docs/lecture.md`` from ``tui-trainer verify --json`` output.

    tui-trainer verify --json > verify.json
    python -m tui_trainer.cli.lecture_doc verify.json [more.json ...] --out docs/lecture.md \\
        --machine "a 2-core CPU, 1 torch thread"

With several files, a later file's results for a preset replace an earlier file's (e.g. a
full verify, then a re-run of one preset after changing it).

For each of the lecture's twelve claims: the slide's point in two sentences (below), then
each preset that demonstrates it (title, command, what to look at in the app, from the
preset file) and the measured result of its checks (from the verify output). Nothing
measured is typed by hand: a claim whose presets were not verified says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["CLAIMS", "main", "render"]

# (claim, source, the slide's point in two sentences), in the lecture's order.
CLAIMS: tuple[tuple[str, str, str], ...] = (
    ("A threshold neuron computes AND, OR, NOT", "McCulloch & Pitts 1943",
     "The first computational model of a neuron sums binary inputs and outputs 1 when the "
     "sum reaches a threshold. With the right weights and threshold such a unit is a logic "
     "gate: AND, OR or NOT."),
    ("A perceptron learns a linearly separable problem with a simple rule",
     "Rosenblatt 1958",
     "Rosenblatt's perceptron is a single neuron that solves a binary classification "
     "problem. Its weights are learned by a simple error-correcting rule, which provably "
     "converges when the classes can be separated by a line."),
    ("A perceptron cannot represent XOR", "Minsky & Papert 1969",
     "A perceptron can only represent linearly separable functions, and XOR is not one. "
     "No setting of its weights classifies all four XOR points, so learning never ends."),
    ("A multi-layer perceptron trained by back-propagation can", "Rumelhart, Hinton & "
     "Williams 1986",
     "Multi-layer perceptrons can in theory represent any function, and back-propagation "
     "trains them. One hidden layer is enough for XOR."),
    ("A convolutional net reads 16x16 handwritten digits", "LeCun et al. 1989",
     "A net of shared-weight feature detectors (12 maps of 8x8, then 12 of 4x4), 30 hidden "
     "units and 10 outputs reads 16x16 handwritten digits. It is trained end to end by "
     "back-propagation."),
    ("Deep nets were hard to train: the vanishing gradient problem", "(why it failed then)",
     "Back-propagated through many saturating layers, the gradient shrinks geometrically, "
     "so the first layers of a deep net barely learn. This, with too few labelled examples "
     "and slow computers, is why deep nets failed before 2006."),
    ("Greedy layer-wise pre-training fixes it, and a deep autoencoder beats PCA",
     "Hinton & Salakhutdinov 2006",
     "Training each layer first, without labels, to reconstruct its input gives a deep net "
     "initial weights from which gradient descent works: the first solution to the "
     "vanishing gradient problem. A deep autoencoder trained so learns low-dimensional "
     "codes that reconstruct the data better than PCA."),
    ("ReLU, data augmentation and dropout made AlexNet work", "Krizhevsky et al. 2012",
     "AlexNet, a deep convolutional net with 60M parameters, won ImageNet 2012 by a wide "
     "margin. It combined several tricks: ReLU units that train much faster than tanh, "
     "data augmentation and dropout against overfitting."),
    ("Dropout prevents overfitting", "Srivastava et al. 2014",
     "Randomly dropping units during training stops them from co-adapting, in effect "
     "training an ensemble of thinned networks. It significantly reduces overfitting."),
    ("Batch normalization accelerates training and allows higher learning rates",
     "Ioffe & Szegedy 2015",
     "Normalising each layer's inputs over the mini-batch fixes their distribution as the "
     "layers below change. The net then trains in fewer steps, tolerates higher learning "
     "rates and trains even with saturating nonlinearities."),
    ("A deeper plain net has higher training error; residual connections fix it",
     "He et al. 2016",
     "Stacking more layers on a plain net raises its training error (degradation), which "
     "is an optimisation problem, not overfitting. Residual connections, which let each "
     "block learn a change to the identity, make deeper nets train at least as well."),
    ("Deep nets learn hierarchical, distributed representations", "Zeiler & Fergus 2013; "
     "Zhou et al. 2015",
     "Each layer of a deep net transforms its input into a more abstract one: edges, "
     "textures, motifs, parts, objects. Concepts are represented by many units together, "
     "and each unit takes part in many concepts."),
)


def render(checks: list[dict[str, Any]], presets: list[Any], machine: str = "",
           command: str = "tui-trainer verify --json") -> str:
    """The markdown page: ``checks`` from verify's JSON, ``presets`` as PresetFile objects."""
    by_claim: dict[int, list[Any]] = {}
    for p in presets:
        cfg = p.resolve()
        if cfg.scale == "cpu" and cfg.claim:
            by_claim.setdefault(cfg.claim, []).append(p)
    rows: dict[str, list[dict[str, Any]]] = {}
    for c in checks:
        rows.setdefault(c["preset"], []).append(c)
    passed = sum(bool(c["passed"]) for c in checks)
    out = [
        "# The lecture, reproduced",
        "",
        "<!-- Generated by `python -m tui_trainer.cli.lecture_doc` from the output of "
        f"`{command}`: do not edit by hand. -->",
        "",
        "Each claim of the lecture (BBM406, Lecture 13, \"Introduction to Deep Learning\") "
        "is an experiment you can launch, watch and check. Run a preset with "
        "`tui-trainer run PRESET --all` (or pick it in the app), and check every claim "
        "with `tui-trainer verify`.",
        "",
        f"Measured: {passed} of {len(checks)} checks passed"
        + (f" on {machine}." if machine else "."),
        "",
    ]
    for number, (claim, source, point) in enumerate(CLAIMS, start=1):
        out += [f"## {number}. {claim}", "", f"*{source}.* {point}", ""]
        claim_presets = sorted(by_claim.get(number, []), key=lambda p: p.name)
        if not claim_presets:
            out += ["No preset demonstrates this claim yet.", ""]
        for p in claim_presets:
            cfg = p.resolve()
            variants = ", ".join(f"`{v}`" for v in p.variant_names)
            out += [
                f"### `{p.name}`: {cfg.title}",
                "",
                f"Run: `tui-trainer run {p.name}" + (" --all`" if p.variants else "`")
                + (f" (variants {variants})" if variants else ""),
                "",
                " ".join(cfg.description.split()),
                "",
                f"**What to look at in the app:** {cfg.look_at}",
                "",
            ]
            measured = rows.get(p.name)
            if not measured:
                out += ["*Not measured in this verify run.*", ""]
                continue
            out += ["| check | measured | expected | result |", "|---|---|---|---|"]
            for c in measured:
                cells = [c["check"], c["measured"], c["expected"],
                         "pass" if c["passed"] else "**fail**"]
                out.append("| " + " | ".join(_cell(x) for x in cells) + " |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    from tui_trainer.config import all_presets

    ap = argparse.ArgumentParser(prog="python -m tui_trainer.cli.lecture_doc", description=__doc__)
    ap.add_argument("verify_json", nargs="+",
                    help="output(s) of `tui-trainer verify --json` (- for stdin)")
    ap.add_argument("--out", help="write here instead of stdout (e.g. docs/lecture.md)")
    ap.add_argument("--machine", default="", help="where it was measured, e.g. a 2-core CPU")
    ap.add_argument("--command", default="tui-trainer verify --json",
                    help="the verify command line that produced the JSON")
    ap.add_argument("--presets-dir", default=None)
    args = ap.parse_args(argv)
    checks: list[dict[str, Any]] = []  # a later file's rows replace an earlier's, per preset
    for name in args.verify_json:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        doc = json.loads(text)
        if not isinstance(doc, dict) or not isinstance(doc.get("checks"), list):
            print(f"error: {name}: expected the JSON of `tui-trainer verify --json`",
                  file=sys.stderr)
            return 2
        newer = {c["preset"] for c in doc["checks"]}
        checks = [c for c in checks if c["preset"] not in newer] + doc["checks"]
    page = render(checks, all_presets(args.presets_dir), args.machine, args.command)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(page, encoding="utf-8")
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
