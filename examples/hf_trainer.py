"""Watch a Hugging Face ``Trainer``: a small MLP on scikit-learn's digits, on the CPU in
seconds (no download: the model is a plain ``nn.Module`` that returns ``loss``).

    pip install 'tui-trainer[hf]'
    python examples/hf_trainer.py            # then: tui-trainer attach latest

One line: ``callbacks=[TuiTrainerCallback(...)]``. The Trainer's logged loss, learning rate
and gradient norm go to ``train/*`` (every ``logging_steps``), its evaluation to ``val/*``.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch
from _digits import digits, leave_a_core, mlp
from torch import nn
from transformers import Trainer, TrainingArguments

from tui_trainer.integrations.transformers import TuiTrainerCallback


class DigitsClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp()

    def forward(self, pixels, labels=None):
        logits = self.net(pixels)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return {"loss": loss, "logits": logits}


def accuracy(pred) -> dict[str, float]:
    return {"accuracy": float((np.argmax(pred.predictions, 1) == pred.label_ids).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--runs-dir", default=None, help="where runs go (default ./runs)")
    args = ap.parse_args()
    leave_a_core()
    torch.manual_seed(0)
    x, y, x_val, y_val = digits()
    train = [{"pixels": a, "labels": b} for a, b in zip(x, y, strict=True)]
    val = [{"pixels": a, "labels": b} for a, b in zip(x_val, y_val, strict=True)]
    with tempfile.TemporaryDirectory() as out:  # the Trainer's own output (checkpoints)
        targs = TrainingArguments(
            output_dir=out,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=64,
            learning_rate=3e-3,
            logging_steps=10,
            eval_strategy="epoch",
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=not torch.cuda.is_available(),
        )
        watch = TuiTrainerCallback("digits-hf", runs_dir=args.runs_dir)  # <- tui-trainer
        trainer = Trainer(
            model=DigitsClassifier(),
            args=targs,
            train_dataset=train,
            eval_dataset=val,
            compute_metrics=accuracy,
            callbacks=[watch],
        )
        trainer.train()
    mon = watch.monitor
    print(f"{mon.status}: {mon.run_dir}")
    print(f"watch it with: tui-trainer attach {mon.run_id}  |  tui-trainer diagnose {mon.run_id}")


if __name__ == "__main__":
    main()
