"""Classification: extractors -> fuser -> linear head, cross-entropy + the fuser's losses (SPEC §3, §4).

A fuser with a classifier of its own (``Fuser.num_classes`` set: UAVM, DrFuse) replaces the head
with its ``prediction``; its extra ``logits`` and ``label_losses`` join the loss (base.py), so no
fuser needs a special case here.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy

from ..errors import UserError
from ..evaluation.conditions import ConditionHook
from ..models.fusion.base import Fuser, FusionOutput
from ..models.multimodal import HoldsModel, MultimodalModel
from .optim import configure_optimizers


class ClassificationTask(HoldsModel, ConditionHook, pl.LightningModule):
    """Knows nothing about a dataset: modalities come from the extractors' keys.

    ``condition`` (e.g. ``"A"``) is applied to every raw test batch before the datamodule's device
    transform (``ConditionHook``, evaluation/conditions.py); metrics are logged as
    ``test/{condition}/{metric}``: accuracy, and AUROC for binary tasks (FakeAVCeleb).
    With a validation split it logs ``val/acc`` and ``val/loss`` each epoch.
    Training logs the total ``train/loss`` and each term ``train/loss/<name>`` (``task``, ``aux``,
    the fuser's ``logits`` and ``label_losses`` names); ``train/task_loss`` is the cross-entropy of
    what the task evaluates (the head's or the fuser's prediction), comparable across fusers.
    """

    def __init__(
        self,
        extractors: Mapping[str, nn.Module],
        fuser: Fuser,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str = "train/loss",
    ) -> None:
        super().__init__()
        self.hold(MultimodalModel(extractors, fuser))
        self.modalities = self.model.modalities
        own = getattr(fuser, "num_classes", None)
        if own is not None and own != num_classes:
            raise UserError(
                f"fuser {type(fuser).__name__} predicts {own} classes but the data has {num_classes}; "
                f"set fuser.num_classes={num_classes}"
            )
        # a fuser with a classifier of its own predicts by itself: no head, no untrained parameters
        self.head = nn.Linear(fuser.out_dim, num_classes) if own is None else None
        self.num_classes = num_classes
        self.optimizer_factory, self.scheduler_factory, self.monitor = optimizer, scheduler, monitor
        self.condition: str | None = None
        self.missing = "zero"
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_metrics = MetricCollection(self._test_metrics(num_classes))

    @staticmethod
    def _test_metrics(num_classes: int) -> dict[str, Any]:
        metrics: dict[str, Any] = {"acc": MulticlassAccuracy(num_classes, average="micro")}
        if num_classes == 2:
            metrics["auroc"] = BinaryAUROC()
        return metrics

    def fuse(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        """``self.model(batch)``: extractors, then the fuser."""
        return self.model(batch)

    def predict(self, out: FusionOutput) -> Tensor:
        """Class logits the task evaluates: the fuser's own prediction, else the head on ``fused``."""
        if out.prediction is not None:
            return out.prediction
        if self.head is None:
            raise RuntimeError(f"{type(self.fuser).__name__} sets num_classes but returned no prediction")
        return self.head(out.fused)

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        return self.predict(self.fuse(batch))

    def loss_terms(self, out: FusionOutput, labels: Tensor) -> dict[str, Tensor]:
        """Every term of the training loss by name (the loss is their sum), computed in fp32.

        ``task``: cross-entropy of the head's logits (absent when the fuser predicts itself);
        one weighted cross-entropy per entry of ``out.logits``; ``aux``: the fuser's aux loss;
        one term per entry of ``out.label_losses``.
        """
        terms: dict[str, Tensor] = {}

        def add(name: str, value: Tensor) -> None:
            if name in terms:
                raise ValueError(f"{type(self.fuser).__name__} names two training losses '{name}'; rename one")
            terms[name] = value

        if out.prediction is None:
            add("task", F.cross_entropy(self.predict(out).float(), labels))
        for name, logits in out.logits.items():
            weight = out.logit_weights.get(name, 1.0)
            add(name, (weight * F.cross_entropy(logits.float(), labels, reduction="none")).mean())
        if out.aux_loss is not None:
            add("aux", out.aux_loss.float())
        for name, fn in out.label_losses.items():
            add(name, fn(labels).float())
        if not terms:
            raise RuntimeError(f"{type(self.fuser).__name__} predicts by itself but returned no loss to train on")
        return terms

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.fuse(batch)
        labels = batch["label"]
        logits = self.predict(out)
        terms = self.loss_terms(out, labels)
        loss = torch.stack(list(terms.values())).sum()
        self.train_acc(logits.detach(), labels)
        bs = len(labels)
        # per step for the plateau scheduler; averaged over DDP ranks so every rank takes the same LR decision
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=bs, sync_dist=True)
        task_loss = terms["task"] if "task" in terms else F.cross_entropy(logits.detach().float(), labels)
        self.log("train/task_loss", task_loss, on_step=False, on_epoch=True, batch_size=bs)
        for name, term in terms.items():
            self.log(f"train/loss/{name}", term, on_step=False, on_epoch=True, batch_size=bs)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=bs)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """With a validation split (``data.val_fraction``): ``val/acc`` and ``val/loss`` (cross-entropy of
        the evaluated prediction), every modality present; ``eval.select=best`` picks the epoch by ``val/acc``."""
        logits = self(batch).float()
        bs = len(batch["label"])
        self.val_acc(logits, batch["label"])
        self.log("val/loss", F.cross_entropy(logits, batch["label"]), on_step=False, on_epoch=True, batch_size=bs)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, batch_size=bs)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # the condition was applied to the raw batch in on_before_batch_transfer (ConditionHook)
        logits = self(batch).float()
        probs = logits.softmax(-1)
        for name, metric in self.test_metrics.items():
            metric.update(probs[:, 1] if name == "auroc" else probs, batch["label"])

    def on_test_epoch_end(self) -> None:
        prefix = f"test/{self.condition or 'AV'}"
        self.log_dict({f"{prefix}/{k}": v for k, v in self.test_metrics.compute().items()})
        self.test_metrics.reset()

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self.parameters(), self.optimizer_factory, self.scheduler_factory, self.monitor)
