"""Provides the diagnose rules' thresholds (with where each comes from), the remedies and the
rules' precedence: which finding is only a consequence of another."""

from __future__ import annotations

# -- thresholds, and where they come from -----------------------------------------------------
# First/last layer gradient-norm ratio. The lecture's 20-layer sigmoid MLP measures ~1e-16,
# tanh ~1e-5; ReLU+He, batch norm and residual nets stay within [1e-3, 1e3] (issue 3's band,
# checked by presets/vanishing-gradients.toml). Outside that band, sustained, is a finding.
VANISHING_RATIO = 1e-3
EXPLODING_RATIO = 1e3
SUSTAINED = 0.5  # ... in at least this share of the samples
MIN_SAMPLES = 3  # fewer samples than this: too little to call anything sustained
# Total gradient norm this many times its early level (the least of the first EARLY samples).
# A too-high learning rate on the digits MLP (SGD, lr 20) jumps 1.4 -> 3e8; healthy runs
# here only fall or wander within ~10x.
EXPLODING_GROWTH = 1e3
EARLY = 3
# Fraction of a ReLU layer's units that are zero for every example of the batch (dead: no
# gradient reaches them). Measured here (2026-12-03, `run digits-mlp --set
# 'optim.name="adam"' --set optim.lr=L --set probe.every=10`): healthy at lr 0.001, 0.04-0.07
# (blocks.0) and 0.15-0.18 (blocks.1); at lr 0.2 both layers sit at 1.0 for the whole run.
# Half the units dead is well outside healthy and well inside broken.
DEAD_FRAC = 0.5
# Fraction of sigmoid outputs < 0.01 or > 0.99 (tanh |y| > 0.99): over half means the slope
# is ~0 for most units (tanh with SGD at lr 3 on digits: 0.94-1.0; healthy nets: ~0).
SATURATED_FRAC = 0.5
# Update-to-weight ratio per step: the lecture's rule of thumb is ~1e-3 (Karpathy, CS231n).
# digits-mlp measures 6e-4-8e-4, sigmoid+batch norm 3e-3-7e-3; a learning rate 30x too high
# or 100x too low leaves the band.
UPDATE_HIGH = 3e-2
UPDATE_LOW = 1e-5
# Training loss over the last tenth of the run within 10% of the first tenth: it never got
# going (the 20-layer sigmoid MLP: 2.33 -> 2.31; every healthy preset falls by over 80%).
PLATEAU_DROP = 0.1
MIN_LOSS_POINTS = 8
# Validation loss (median of 3 evaluations) 20% above its minimum at the end while the
# training loss kept falling. digits-mlp's val loss wanders 7-8% above its minimum late in
# the run; 100 training examples at Adam lr 1e-2 end 22% above.
OVERFIT_RISE = 0.2
MIN_EVALS = 6

# A finding that is only a consequence of another is left out: dead ReLUs have zero gradient
# (not "vanishing"), and layers that do not get a gradient do not move ("lr too low").
EXPLAINED_BY = {
    "vanishing_gradients": {"dead_relu"},
    "update_ratio_low": {"dead_relu", "vanishing_gradients", "exploding_gradients", "divergence"},
}
RELU_LIKE = ("relu", "leaky_relu")
SATURATING = ("sigmoid", "tanh")
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

REMEDIES = {
    "vanishing_gradients": "Use ReLU with He initialisation instead of sigmoid/tanh, add batch "
    "normalisation, or add residual connections; initialise carefully (Xavier/He).",
    "exploding_gradients": "Lower the learning rate, clip the gradient norm (train.grad_clip), "
    "initialise carefully; batch normalisation and residual connections keep deep nets stable.",
    "dead_relu": "Lower the learning rate and use He initialisation; batch normalisation before "
    "the ReLU or a leaky ReLU keeps units alive.",
    "saturated": "Use ReLU, or Xavier initialisation and batch normalisation so pre-activations "
    "stay in the sigmoid's/tanh's linear range; lower the learning rate.",
    "update_ratio_high": "Lower the learning rate: updates should be about 1e-3 of the weights "
    "per step.",
    "update_ratio_low": "Raise the learning rate (updates of about 1e-3 of the weights per "
    "step); if only the early layers are slow, treat it as vanishing gradients.",
    "loss_plateau": "Check the learning rate (raise it if updates are tiny, lower it if the loss "
    "jumps), the initialisation and vanishing gradients; normalise the inputs.",
    "divergence": "Lower the learning rate, clip gradients (train.grad_clip), prefer bf16 to "
    "fp16 (or keep the GradScaler), and check the inputs for NaN.",
    "overfitting": "More data or augmentation, dropout, weight decay or a smaller model; or stop "
    "early: the best checkpoint is kept.",
}
