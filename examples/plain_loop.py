"""Watch your own training loop: an MLP on scikit-learn's digits, on the CPU in seconds.

    python examples/plain_loop.py            # then, in a second terminal or over SSH:
    tui-trainer attach latest                # curves, gradients, activations, findings

The three lines are marked ``# <- tui-trainer``; the rest is an ordinary PyTorch loop.
"""

from __future__ import annotations

import argparse

import torch
from _digits import digits, leave_a_core, mlp
from torch import nn

import tui_trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--runs-dir", default=None, help="where runs go (default ./runs)")
    args = ap.parse_args()
    leave_a_core()
    torch.manual_seed(0)
    x, y, x_val, y_val = digits()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    steps = args.epochs * ((len(x) + 63) // 64)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    mon = tui_trainer.watch(  # <- tui-trainer
        model, name="digits-own-loop", optimizer=opt, runs_dir=args.runs_dir,
        config={"lr": 0.05, "momentum": 0.9, "epochs": args.epochs}, total_steps=steps,
    )  # fmt: skip
    print(f"recording to {mon.run_dir}; watch it with: tui-trainer attach {mon.run_id}")
    with mon:  # an exception marks the run crashed, Ctrl-C stopped
        for epoch in range(args.epochs):
            for idx in torch.randperm(len(x)).split(64):
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                mon.step(loss=loss, lr=sched.get_last_lr()[0])  # <- tui-trainer
                if mon.checkpoint_requested:  # the app's `c`
                    torch.save(model.state_dict(), mon.run_dir / "checkpoints" / "last.pt")
                    mon.event("checkpoint", {"path": "last.pt"})
            with torch.no_grad():
                logits = model(x_val)
                val_loss = nn.functional.cross_entropy(logits, y_val).item()
                acc = (logits.argmax(1) == y_val).float().mean().item()
            mon.eval({"loss": val_loss, "acc": acc})  # drawn dotted, like a preset's
            print(f"epoch {epoch + 1:>3}  val loss {val_loss:.3f}  val acc {acc:.3f}")
            if mon.should_stop:  # `tui-trainer stop`, or the app's stop
                break
    print(f"{mon.status}: {mon.run_dir}")
    print(f"look at it with: tui-trainer attach {mon.run_id}  |  tui-trainer diagnose {mon.run_id}")


if __name__ == "__main__":
    main()
