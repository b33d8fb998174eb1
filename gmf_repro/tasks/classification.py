"""Classification: extractors -> fuser -> linear head, cross-entropy + the fuser's aux loss (SPEC §3, §4)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy

from ..evaluation.conditions import apply_condition
from ..models.fusion.base import Fuser, FusionOutput
from .optim import configure_optimizers


class ClassificationTask(pl.LightningModule):
    """Knows nothing about a dataset: modalities come from the extractors' keys.

    ``condition`` (e.g. ``"A"``) is applied to every test batch; metrics are logged as
    ``test/{condition}/{metric}``: accuracy, and AUROC for binary tasks (FakeAVCeleb).
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
        self.extractors = nn.ModuleDict(dict(extractors))
        self.modalities = list(self.extractors)
        self.fuser = fuser
        self.head = nn.Linear(fuser.out_dim, num_classes)
        self.num_classes = num_classes
        self.optimizer_factory, self.scheduler_factory, self.monitor = optimizer, scheduler, monitor
        self.condition: str | None = None
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_metrics = MetricCollection(self._test_metrics(num_classes))

    @staticmethod
    def _test_metrics(num_classes: int) -> dict[str, Any]:
        metrics: dict[str, Any] = {"acc": MulticlassAccuracy(num_classes, average="micro")}
        if num_classes == 2:
            metrics["auroc"] = BinaryAUROC()
        return metrics

    def fuse(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        feats = {m: self.extractors[m](batch[m]) for m in self.modalities}
        return self.fuser(feats)

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        return self.head(self.fuse(batch).fused)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.fuse(batch)
        logits = self.head(out.fused)
        task_loss = F.cross_entropy(logits.float(), batch["label"])
        loss = task_loss if out.aux_loss is None else task_loss + out.aux_loss
        self.train_acc(logits.detach(), batch["label"])
        bs = len(batch["label"])
        # per step for the plateau scheduler; averaged over DDP ranks so every rank takes the same LR decision
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=bs, sync_dist=True)
        self.log("train/task_loss", task_loss, on_step=False, on_epoch=True, batch_size=bs)
        if out.aux_loss is not None:
            self.log("train/aux_loss", out.aux_loss, on_step=False, on_epoch=True, batch_size=bs)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=bs)
        return loss

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        batch = apply_condition(batch, self.condition, self.modalities)
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
