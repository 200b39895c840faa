"""Watch a PyTorch Lightning fit: an MLP on scikit-learn's digits, on the CPU in seconds.

    pip install 'tui-trainer[lightning]'
    python examples/lightning_loop.py        # then: tui-trainer attach latest

One line: ``callbacks=[TuiTrainerCallback(...)]``. What the module logs with ``self.log``
is recorded too (``train_acc`` -> ``train/acc``, ``val_acc`` -> ``val/acc``).
"""

from __future__ import annotations

import argparse

import torch
from _digits import digits, leave_a_core, mlp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

try:
    import lightning.pytorch as pl
except ImportError:
    import pytorch_lightning as pl

from tui_trainer.integrations.lightning import TuiTrainerCallback


class DigitsMLP(pl.LightningModule):
    def __init__(self, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()  # stored with the run, shown in the app
        self.net = mlp()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("train_acc", (logits.argmax(1) == y).float().mean())
        return nn.functional.cross_entropy(logits, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--runs-dir", default=None, help="where runs go (default ./runs)")
    args = ap.parse_args()
    leave_a_core()
    torch.manual_seed(0)
    x, y, x_val, y_val = digits()
    train = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(x_val, y_val), batch_size=len(x_val))
    watch = TuiTrainerCallback("digits-lightning", runs_dir=args.runs_dir)  # <- tui-trainer
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="auto",
        devices=1,
        callbacks=[watch],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(DigitsMLP(), train, val)
    mon = watch.monitor
    print(f"{mon.status}: {mon.run_dir}")
    print(f"watch it with: tui-trainer attach {mon.run_id}  |  tui-trainer diagnose {mon.run_id}")


if __name__ == "__main__":
    main()
