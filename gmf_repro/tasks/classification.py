"""Classification: extractors -> fuser -> linear head, cross-entropy + the fuser's losses (docs/paper.md §3, §4).

A fuser with a classifier of its own (``Fuser.num_classes`` set: UAVM, DrFuse) replaces the head
with its ``prediction``; its extra ``logits`` and ``label_losses`` join the loss (base.py), so no
fuser needs a special case here.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy

from ..data.contract import extra_labels
from ..errors import UserError
from ..models.fusion.base import Fuser, FusionOutput
from ..models.multimodal import MultimodalModel
from .base import MultimodalTask, fuser_loss_terms, join_terms


class ClassificationTask(MultimodalTask):
    """Knows nothing about a dataset: modalities come from the extractors' keys.

    Test metrics are logged as ``test/{condition}/{metric}``: accuracy, ``ce`` (the mean cross-entropy, in
    nats, of the evaluated prediction against the labels) and AUROC for binary tasks (FakeAVCeleb).
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
        super().__init__(MultimodalModel(extractors, fuser), num_classes, optimizer, scheduler, monitor)
        own = fuser.num_classes
        if own is not None and own != num_classes:
            raise UserError(
                f"fuser {type(fuser).__name__} predicts {own} classes but the data has {num_classes}; "
                f"set fuser.num_classes={num_classes}"
            )
        # a fuser with a classifier of its own predicts by itself: no head, no untrained parameters
        self.head = nn.Linear(fuser.out_dim, num_classes) if own is None else None
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_metrics = MetricCollection(self._test_metrics(num_classes))
        self.test_ce = MeanMetric()
        # kind -> the test metrics against the batches' ``label_<kind>`` (FakeAVCeleb's per-stream labels), made
        # when a test batch first carries that key
        self.stream_metrics = nn.ModuleDict()

    @staticmethod
    def _test_metrics(num_classes: int) -> dict[str, Any]:
        metrics: dict[str, Any] = {"acc": MulticlassAccuracy(num_classes, average="micro")}
        if num_classes == 2:
            metrics["auroc"] = BinaryAUROC()
        return metrics

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

        ``task``: cross-entropy of the head's logits (absent when the fuser predicts itself); then the
        fuser's own terms (``fuser_loss_terms``: its ``logits``, ``aux``, its ``label_losses``).
        """
        terms: dict[str, Tensor] = {}
        if out.prediction is None:
            terms["task"] = F.cross_entropy(self.predict(out).float(), labels)
        terms = join_terms(terms, fuser_loss_terms(out, labels), self.fuser)
        if not terms:
            raise RuntimeError(f"{type(self.fuser).__name__} predicts by itself but returned no loss to train on")
        return terms

    def observe_training(self, out: FusionOutput, batch: Mapping[str, Tensor],
                         terms: Mapping[str, Tensor]) -> dict[str, Tensor]:
        labels = batch["label"]
        logits = self.predict(out).detach()
        self.train_acc.update(logits, labels)
        return {"task_loss": terms["task"] if "task" in terms else F.cross_entropy(logits.float(), labels)}

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log("train/acc", self.train_acc.compute())
        self.train_acc.reset()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """With a validation split (``data.val_fraction``): ``val/acc`` and ``val/loss`` (cross-entropy of
        the evaluated prediction), every modality present; ``eval.select=best`` picks the epoch by ``val/acc``."""
        logits = self(batch).float()
        bs = len(batch["label"])
        self.val_acc(logits, batch["label"])
        self.log("val/loss", F.cross_entropy(logits, batch["label"]), on_step=False, on_epoch=True, batch_size=bs)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, batch_size=bs)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # a test condition was applied to the raw batch by the datamodule (evaluation/conditions.py)
        logits = self(batch).float()
        probs = logits.softmax(-1)
        _update(self.test_metrics, probs, batch["label"])
        self.test_ce.update(F.cross_entropy(logits, batch["label"], reduction="none"))
        for kind, labels in extra_labels(batch).items():
            if kind not in self.stream_metrics:
                self.stream_metrics[kind] = MetricCollection(self._test_metrics(self.num_classes),
                                                             postfix=f"_{kind}_label").to(self.device)
            _update(self.stream_metrics[kind], probs, labels)

    def on_test_epoch_end(self) -> None:
        """``test/<condition>/<metric>`` against ``label``; with per-stream labels also ``<metric>_<kind>_label``
        (``acc_audio_label``, ``auroc_video_label``, ...) against each ``label_<kind>``."""
        prefix = f"test/{self.condition or 'AV'}"
        metrics = {**self.test_metrics.compute(), "ce": self.test_ce.compute()}
        for stream in self.stream_metrics.values():
            metrics.update(stream.compute())
            stream.reset()
        self.log_dict({f"{prefix}/{k}": v for k, v in metrics.items()})
        self.test_metrics.reset()
        self.test_ce.reset()


def _update(metrics: MetricCollection, probs: Tensor, labels: Tensor) -> None:
    """Accuracy on the class probabilities, AUROC on the positive class's (binary tasks)."""
    for name, metric in metrics.items(keep_base=True):
        metric.update(probs[:, 1] if name == "auroc" else probs, labels)
