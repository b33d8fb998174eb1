"""Lightning callbacks that read a trained model's extractors after fitting (docs/paper.md §3).

``FeatureExport`` writes each modality's train/test features to the feature store that
``data/feature_store.py`` reads (``experiment=vggsound_unimodal`` → ``experiment=vggsound_frozen``).
``LinearProbe`` gives the trainable experiment's A(uni)/V(uni) columns: a linear classifier on one
jointly trained extractor's features, reported through ``MetricsCallback.extra_metrics``. Both take
features through ``MultimodalModel.encode``, the one path from a batch to features.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from .data.clip_base import AVClipDataModule
from .data.contract import LABEL_PREFIX, model_inputs
from .data.feature_store import write_store

if TYPE_CHECKING:
    from .models.multimodal import MultimodalModel


@torch.no_grad()
def extract_features(model: MultimodalModel, datamodule: Any, split: str, modality: str,
                     device: torch.device | str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(features float32 [N, D], labels) of ``model.encode`` for one modality and split, in the split's fixed
    order, eval mode. ``labels``: batch key -> int64 [N], ``label`` and any per-stream ``label_<kind>``."""
    was_training = model.training
    model.eval()
    feats: list[Tensor] = []
    labels: dict[str, list[Tensor]] = {}
    loader = datamodule.split_dataloader(split)
    keys = (modality, "label", *(f"{LABEL_PREFIX}{k}" for k in datamodule.label_kinds))
    try:
        for batch in loader:
            batch = model_inputs(datamodule, batch, device, keys=keys)
            feats.append(model.encode(batch, [modality])[modality].float().cpu())
            for key in keys[1:]:
                labels.setdefault(key, []).append(batch[key].cpu())
    finally:
        model.train(was_training)
    return torch.cat(feats).numpy(), {k: torch.cat(v).numpy() for k, v in labels.items()}


class FeatureExport(pl.Callback):
    """After the unimodal fit, write the trained extractor's train/test features to the store.

    ``modalities``: which extractors to export (default: every modality of the data).
    """

    def __init__(self, modalities: Sequence[str] | None = None) -> None:
        self.modalities = list(modalities) if modalities else None
        self.written: dict[str, str] = {}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank != 0:
            return
        dm = trainer.datamodule
        if not isinstance(dm, AVClipDataModule):  # embedded or stored data: no media cache to keep a store beside
            print(f"features: {type(dm).__name__} is not a media dataset, so it has no feature store; nothing exported")
            return
        # what the fusers' protocol record reads back from the store (gmf_repro/protocol.py): the labels this
        # extractor learned and whether its BatchNorm statistics were recomputed (bn_recalibration.py)
        records = {k: v for cb in trainer.callbacks if isinstance(cb, MetricsCallback)
                   for k, v in cb.extra_results().items()}
        bn = records.get("bn_recalibration") or {}
        for m in self.modalities or dm.modalities:
            extractor = pl_module.extractors[m]
            splits = {}
            for split in ("train", "test"):
                feats, labels = extract_features(pl_module.model, dm, split, m, pl_module.device)
                splits[split] = (feats, labels, dm.split_keys(split))
            meta = {"modality": m, "dim": int(feats.shape[1]), "extractor": type(extractor).__name__,
                    "clip_list_hash": dm.clip_list_hash, "label_by": dm.label_by,
                    "bn_recalibrated": bool(bn.get("done", False)),
                    "output_dir": str(trainer.default_root_dir), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            self.written[m] = str(write_store(dm.feature_dir, m, splits, meta))
            print(f"features: {m} train/test ({feats.shape[1]}-d) -> {self.written[m]}")



def _probe_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, num_classes: int,
                    epochs: int, lr: float, batch_size: int, seed: int) -> float:
    """Multinomial logistic regression on standardised features (Adam, mini-batches); test accuracy."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    g = torch.Generator(device="cpu").manual_seed(seed)
    head = nn.Linear(train_x.shape[1], num_classes).to(train_x.device)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(epochs):
        order = torch.randperm(len(train_x), generator=g).to(train_x.device)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = nn.functional.cross_entropy(head(train_x[idx]), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float((head(test_x).argmax(-1) == test_y).float().mean())


class MetricsCallback(pl.Callback):
    """A callback whose numbers join results.json: ``run()`` adds ``extra_metrics()`` to its ``metrics`` after the
    tests, and ``extra_results()`` to its top level."""

    def extra_metrics(self) -> dict[str, dict[str, float]]:
        """Blocks ``{name: {metric: value}}`` beside the conditions' (e.g. ``A(uni)``)."""
        return {}

    def extra_results(self) -> dict[str, Any]:
        """Top-level blocks of results.json (e.g. ``bn_recalibration``)."""
        return {}


class LinearProbe(MetricsCallback):
    """A(uni)/V(uni) of Table 2: a linear probe per modality on the jointly trained extractor's features."""

    def __init__(self, epochs: int = 20, lr: float = 1e-3, batch_size: int = 256, seed: int = 1) -> None:
        self.epochs, self.lr, self.batch_size, self.seed = epochs, lr, batch_size, seed
        self.metrics: dict[str, dict[str, float]] = {}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        dm = trainer.datamodule
        device = pl_module.device
        for m in dm.modalities:
            with torch.enable_grad():
                tr_x, tr_y = extract_features(pl_module.model, dm, "train", m, device)
                te_x, te_y = extract_features(pl_module.model, dm, "test", m, device)
                arrays = (tr_x, tr_y["label"], te_x, te_y["label"])
                acc = _probe_accuracy(*(torch.from_numpy(a).to(device) for a in arrays),
                                      num_classes=dm.num_classes, epochs=self.epochs, lr=self.lr,
                                      batch_size=self.batch_size, seed=self.seed)
            self.metrics[f"{dm.letters.get(m, m)}(uni)"] = {"acc": acc}

    def extra_metrics(self) -> dict[str, dict[str, float]]:
        return dict(self.metrics)
