"""BatchNorm statistics in step with the final weights (docs/decisions.md, "BatchNorm statistics").

A BatchNorm layer normalises with the batch's own statistics in training and with running averages
(momentum 0.1) in eval mode. When the weights move faster than those averages follow (Adam at the paper's
FakeAVCeleb rate 0.005 on an unnormalised log-STFT, a few dozen steps), the stored statistics belong to
earlier weights, and eval mode (testing, and the frozen features the unimodal runs export) can collapse to
one class while train mode is right. ``BNRecalibration`` recomputes every trained BatchNorm layer's
statistics with the final weights, as ``torch.optim.swa_utils.update_bn`` does: one no-grad pass over the
training split, the datamodule's device transform applied as in training, the BatchNorm layers alone in
train mode (dropout and the rest stay in eval mode), cumulative averages (momentum ``None``).

When: in ``on_train_end``, which Lightning calls before any callback's ``on_fit_end``, so the feature export
and the linear probes (callbacks.py) read the recalibrated statistics whatever the callbacks' order; and
again at the start of a test when weights were loaded since (``eval.select=best`` loads another epoch's).
``extra_results()`` gives results.json its ``bn_recalibration`` block: whether it ran, over how many
batches, and the eval-vs-train-mode gap on one test batch before and after (mean total-variation distance
between the class probabilities of the two modes: 0 = the same predictions, 1 = disjoint).
"""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .callbacks import MetricsCallback
from .data.contract import model_inputs


def trained_batchnorms(module: nn.Module) -> list[_BatchNorm]:
    """BatchNorm layers with running statistics whose weights train (a frozen pretrained encoder keeps its own)."""
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats
            and m.running_mean is not None and (not m.affine or m.weight.requires_grad)]


@torch.no_grad()
def recalibrate(model: nn.Module, batches: Any, layers: list[_BatchNorm], max_batches: int | None = None) -> int:
    """Reset ``layers``' statistics and average them over ``batches`` (model inputs) with the current weights.

    Only ``layers`` run in train mode; the rest of ``model`` is in eval mode. Returns the batches used."""
    was_training = model.training
    momenta = [m.momentum for m in layers]
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
        m.train()
    n = 0
    try:
        for batch in batches:
            if max_batches is not None and n >= max_batches:
                break
            model(batch)
            n += 1
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.train(was_training)
    return n


@torch.no_grad()
def eval_train_gap(predict: Any, model: nn.Module, batch: Any, layers: list[_BatchNorm]) -> float | None:
    """Mean total-variation distance between the class probabilities of eval mode and of ``layers`` in train
    mode (batch statistics) on one batch; the stored statistics are left as they were."""
    was_training = model.training
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in layers]
    try:
        model.eval()
        p_eval = predict(batch).float().softmax(-1)
        for m in layers:
            m.train()
        p_train = predict(batch).float().softmax(-1)
    finally:
        for m, (mean, var, count) in zip(layers, saved):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(count)
        model.train(was_training)
    return round(float(0.5 * (p_eval - p_train).abs().sum(-1).mean()), 6)


class BNRecalibration(MetricsCallback):
    """After fitting (and after loading other weights), BatchNorm statistics recomputed with the final weights.

    ``enabled=false`` keeps the running averages of training (the gap before is still measured and recorded);
    ``max_batches``: at most this many training batches (null: the whole split, one pass)."""

    def __init__(self, enabled: bool = True, max_batches: int | None = None) -> None:
        if max_batches is not None and int(max_batches) < 1:
            raise ValueError(f"bn_recalibration max_batches={max_batches} must be at least 1, or null for the "
                             f"whole training split")
        self.enabled = bool(enabled)
        self.max_batches = None if max_batches is None else int(max_batches)
        self.record: dict[str, Any] = {"done": False, "reason": "not fitted"}
        self._stale = False
        self._hooked: set[int] = set()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if id(pl_module) not in self._hooked:  # weights loaded later (eval.select=best) make the statistics stale
            pl_module.register_load_state_dict_post_hook(lambda *_: setattr(self, "_stale", True))
            self._hooked.add(id(pl_module))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._run(trainer, pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._stale:
            self._run(trainer, pl_module)

    def _run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stale = False
        layers = trained_batchnorms(pl_module)
        datamodule = trainer.datamodule
        if not layers:
            self.record = {"done": False, "reason": "no trained BatchNorm layer", "layers": 0}
            return
        if datamodule is None:
            self.record = {"done": False, "reason": "no datamodule to read the training split from",
                           "layers": len(layers)}
            return
        device = pl_module.device

        def inputs(loader: Any) -> Any:
            return (model_inputs(datamodule, batch, device) for batch in loader)

        with trainer.precision_plugin.forward_context():
            probe = self._probe_batch(datamodule, device)
            gap = (lambda: eval_train_gap(pl_module, pl_module, probe, layers)) if probe is not None else (lambda: None)
            record: dict[str, Any] = {"done": False, "layers": len(layers), "eval_vs_train_gap_before": gap()}
            if not self.enabled:
                self.record = {**record, "reason": "off (callbacks.bn_recalibration.enabled=false)"}
                return
            record["batches"] = recalibrate(pl_module.model, inputs(datamodule.train_dataloader()), layers,
                                            self.max_batches)
            if trainer.world_size > 1:  # every rank passed over its own shard: one set of statistics for all
                for m in layers:
                    m.running_mean.copy_(trainer.strategy.reduce(m.running_mean, reduce_op="mean"))
                    m.running_var.copy_(trainer.strategy.reduce(m.running_var, reduce_op="mean"))
            record["eval_vs_train_gap_after"] = gap()
        self.record = {**record, "done": record["batches"] > 0}

    @staticmethod
    def _probe_batch(datamodule: Any, device: torch.device) -> dict[str, Tensor] | None:
        """The first test batch as the model sees it (no condition), for the gap; None if it has one sample."""
        batch = next(iter(datamodule.test_dataloader()), None)
        if batch is None or len(batch["label"]) < 2:
            return None
        return model_inputs(datamodule, batch, device)

    def extra_results(self) -> dict[str, Any]:
        """results.json's ``bn_recalibration`` block."""
        return {"bn_recalibration": dict(self.record)}
