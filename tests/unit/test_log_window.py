"""LogWindow: the training loss and accuracy of a log window, reduced in folds."""

from __future__ import annotations

import torch

from tui_trainer.engine import runtime
from tui_trainer.engine.objective import Objective
from tui_trainer.engine.runtime import FOLD_STEPS, LogWindow


def test_the_window_sums_equal_the_per_step_sums_across_folds_and_batch_sizes(monkeypatch):
    obj = Objective(torch.nn.Linear(3, 4), 4)
    gen = torch.Generator().manual_seed(0)
    window = LogWindow.start(torch.device("cpu"), 0)
    loss_ref, correct_ref, seen = 0.0, 0, 0
    for step in range(2 * FOLD_STEPS + 5):  # two folds and a remainder
        n = 7 if step % 9 == 8 else 16  # an epoch's short last batch, now and then
        out = torch.randn(n, 4, generator=gen)
        y = torch.randint(0, 4, (n,), generator=gen)
        loss = torch.nn.functional.cross_entropy(out, y)
        window.add(loss, out, None, y, obj)
        loss_ref += loss.item() * n
        correct_ref += int((out.argmax(1) == y).sum())
        seen += n
    loss_sum, correct_sum = window.sums()
    assert window.seen == seen and int(correct_sum) == correct_ref
    assert abs(loss_sum.item() - loss_ref) <= 1e-5 * loss_ref
    window.reset(100)
    assert window.sums()[0].item() == 0 and window.seen == 0

    monkeypatch.setattr(runtime, "FOLD_BYTES", 3 * 16 * 4 * 4)  # outputs of 3 steps
    out = torch.zeros(16, 4)
    for _ in range(3):
        window.add(torch.tensor(1.0), out, None, torch.zeros(16, dtype=torch.long), obj)
    assert window._outs == [] and int(window.correct_sum) == 48  # folded by size
