"""Stop a run whose training loss is no longer finite, instead of testing a diverged model.

A diverged model predicts one class, so its test numbers read as chance, not as a failure. It happens, for
example, when a fuser with a reconstruction loss (GMF) trains with the paper's SGD 0.01 on stored features
fed as extracted (``standardize: false``, the paper's protocol) whose mean is far from zero: measured on
pooled-ReLU-like features of mean 2.7 (docs/decisions.md, "Frozen features as extracted"). Checked once an
epoch, on the epoch's mean loss, so it costs no synchronisation per step.
"""
from __future__ import annotations

import math

import pytorch_lightning as pl

from .errors import UserError


class StopOnDivergence(pl.Callback):
    """Raise a one-line ``UserError`` naming the epoch and the fixes when ``monitor`` is nan or inf."""

    def __init__(self, monitor: str = "train/loss") -> None:
        self.monitor = monitor

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or math.isfinite(float(value)):
            return
        raise UserError(
            f"{self.monitor} is {float(value)} after epoch {trainer.current_epoch}: training diverged, so the test "
            f"numbers would be chance; the inputs may be too large for the learning rate: standardise stored "
            f"features with data.standardize=true (the paper feeds them as extracted) or lower task.optimizer.lr")
