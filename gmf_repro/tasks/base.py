"""What every task shares: the model it holds, the optimiser from config, and the fuser's loss terms.

A task (classification.py, retrieval.py) says how it trains (``loss_terms``) and how it tests; this base
owns the rest. The training loss is the sum of named terms, logged as ``train/loss`` every step (the
plateau scheduler steps on ``train/loss_step``) and each term as ``train/loss/<term>``, an epoch mean
accumulated on the device and logged once per epoch: a Lightning ``log`` call per term and step would
cost more than a small fuser's step on stored features.
"""
from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.fusion.base import Fuser, FusionOutput
from ..models.multimodal import MultimodalModel
from .optim import configure_optimizers


def fuser_loss_terms(out: FusionOutput, labels: Tensor, logit_weight: float = 1.0) -> dict[str, Tensor]:
    """The terms a fuser asks the task to train, by name, in fp32: a cross-entropy per entry of ``out.logits``
    (per-sample or scalar ``logit_weights``, times ``logit_weight``; none when it is 0), ``aux`` (the fuser's
    label-free loss) and one per entry of ``out.label_losses``."""
    terms: dict[str, Tensor] = {}
    if logit_weight:
        for name, logits in out.logits.items():
            weight = out.logit_weights.get(name, 1.0)
            ce = (weight * F.cross_entropy(logits.float(), labels, reduction="none")).mean()
            terms[name] = ce if logit_weight == 1.0 else logit_weight * ce
    if out.aux_loss is not None:
        terms["aux"] = out.aux_loss.float()
    for name, fn in out.label_losses.items():
        terms[name] = fn(labels).float()
    return terms


def join_terms(terms: dict[str, Tensor], more: Mapping[str, Tensor], fuser: Fuser) -> dict[str, Tensor]:
    """``terms`` with ``more`` added after them; a name in both is the fuser's mistake, named in one line."""
    for name, term in more.items():
        if name in terms:
            raise ValueError(f"{type(fuser).__name__} names two training losses '{name}'; rename one")
        terms[name] = term
    return terms


class MultimodalTask(pl.LightningModule, abc.ABC):
    """A LightningModule around one ``MultimodalModel``; subclasses define ``loss_terms`` and the test steps.

    ``condition`` names the test metrics (``test/{condition}/{metric}``); ``run.evaluate`` sets it for each
    ``trainer.test`` (the datamodule withholds the absent modalities: evaluation/conditions.py).
    """

    def __init__(self, model: MultimodalModel, num_classes: int,
                 optimizer: Callable[..., torch.optim.Optimizer] | None,
                 scheduler: Callable[..., Any] | None = None, monitor: str = "train/loss") -> None:
        super().__init__()
        self.model = model  # registered first: parameters in the order extractors, fuser, head
        self.modalities = model.modalities
        self.num_classes = num_classes
        self.optimizer_factory, self.scheduler_factory, self.monitor = optimizer, scheduler, monitor
        self.condition: str | None = None
        self._epoch_sums: dict[str, Tensor] = {}
        self._epoch_samples = 0

    @property
    def extractors(self) -> nn.ModuleDict:
        return self.model.extractors

    @property
    def fuser(self) -> Fuser:
        return self.model.fuser

    def fuse(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        """``self.model(batch)``: extractors, then the fuser."""
        return self.model(batch)

    @abc.abstractmethod
    def loss_terms(self, out: FusionOutput, labels: Tensor) -> dict[str, Tensor]:
        """Every term of the training loss by name; the loss is their sum."""

    def training_loss(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], FusionOutput]:
        """(loss, its terms, the fuser's output) of one batch: the training step without logging."""
        out = self.fuse(batch)
        terms = self.loss_terms(out, batch["label"])
        return torch.stack(list(terms.values())).sum(), terms, out

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor | None:
        loss, terms, out = self.training_loss(batch)
        bs = len(batch["label"])
        # per step for the plateau scheduler; averaged over DDP ranks so every rank takes the same LR decision
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=bs, sync_dist=True)
        means = {f"loss/{name}": term for name, term in terms.items()}
        self.add_to_epoch({**means, **self.observe_training(out, batch, terms)}, bs)
        return loss if loss.requires_grad else None  # nothing trainable (CLIP on features): no step

    def observe_training(self, out: FusionOutput, batch: Mapping[str, Tensor],
                         terms: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """A task's own per-step bookkeeping (classification: accuracy); returns more values whose epoch means
        are logged as ``train/<name>``."""
        return {}

    def add_to_epoch(self, values: Mapping[str, Tensor], batch_size: int) -> None:
        """One batch's values into this epoch's means (``train/<name>``), kept on the device: no host sync per step."""
        for name, value in values.items():
            value = value.detach().float() * batch_size
            self._epoch_sums[name] = self._epoch_sums[name] + value if name in self._epoch_sums else value
        self._epoch_samples += batch_size

    def on_train_epoch_end(self) -> None:
        if self._epoch_samples:
            for name, total in self._epoch_sums.items():
                self.log(f"train/{name}", total / self._epoch_samples, sync_dist=True)
        self._epoch_sums, self._epoch_samples = {}, 0

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self.parameters(), self.optimizer_factory, self.scheduler_factory, self.monitor)
