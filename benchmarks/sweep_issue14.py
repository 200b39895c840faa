"""Lean sweep harness for issue 14 (relu-vs-tanh, degradation): trains a preset variant with
the trainer's own data, model, optimizer, schedule, batches and log windows, but without
probes, evaluation or recording, and prints the numbers its checks read.

    python benchmarks/sweep_issue14.py PRESET VARIANT --seeds 0 1 2 [--set key=value ...]
        [--target 0.9]

Per run it prints one line: the steps at which the windowed train/acc first reaches each
target (the verify "reach" number), the last window's train/loss (the verify "final"
number), the wall time and the process CPU time (cpu_s: close to the
unloaded single-thread wall time on a shared machine). Confirm a setting with
``tui_trainer verify`` afterwards.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from tui_trainer.config.presets import find_preset
from tui_trainer.engine.batches import EpochBatches
from tui_trainer.engine.data import build_dataset, num_batches
from tui_trainer.engine.models import build_model
from tui_trainer.engine.optim import build_optimizer, build_schedule
from tui_trainer.engine.runtime import seed_everything


def train(cfg, targets):  # noqa: ANN001, ANN201
    torch.set_num_threads(1)
    seed_everything(cfg.train.seed)
    data = build_dataset(cfg.data)
    model = build_model(cfg.model, data.input_shape, data.num_classes)
    opt = build_optimizer(cfg.optim, model)
    bpe = num_batches(len(data.y_train), cfg.data.batch_size)
    total = cfg.train.max_steps or cfg.train.epochs * bpe
    sched = build_schedule(cfg.optim, opt, total)
    scheduled = cfg.optim.schedule != "constant" or cfg.optim.warmup_steps > 0
    batches = EpochBatches(
        data.x_train, data.y_train, cfg.data.batch_size, bpe, cfg.train.seed, cfg.data.augment
    )
    reach = {t: None for t in targets}
    loss_sum = correct = seen = 0.0
    curve = []
    t0, c0 = time.perf_counter(), time.process_time()
    model.train()
    for step in range(total):
        x, y = batches.batch(step)
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if scheduled:
            sched.step()
        loss_sum += loss.item() * len(y)
        correct += (out.argmax(1) == y).sum().item()
        seen += len(y)
        s = step + 1
        if s % cfg.train.log_every == 0 or s == total:
            lw, aw = loss_sum / seen, correct / seen
            curve.append((s, round(lw, 4), round(aw, 4)))
            for t in targets:
                if reach[t] is None and aw >= t:
                    reach[t] = s
            loss_sum = correct = seen = 0.0
            if lw != lw:
                break
    return {
        "reach": reach,
        "final_loss": curve[-1][1],
        "final_acc": curve[-1][2],
        "secs": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1),
        "steps": total,
        "epochs": total / bpe,
        "curve": curve,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("preset")
    ap.add_argument("variant")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--target", type=float, nargs="*", default=[0.9])
    ap.add_argument("--curve", action="store_true")
    a = ap.parse_args()
    p = find_preset(a.preset)
    for seed in a.seeds:
        cfg = p.resolve(a.variant, a.sets + [f"train.seed={seed}"])
        r = train(cfg, a.target)
        c = r.pop("curve")
        r.update(variant=a.variant, seed=seed, sets=a.sets)
        if a.curve:
            r["curve"] = c[:: max(1, len(c) // 12)] + [c[-1]]
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
