"""Frozen-extractor runs (SPEC §3, kind 1): a feature store computed once from trained unimodal baselines.

After ``experiment=vggsound_unimodal modality=audio`` (and ``=video``), the ``FeatureExport``
callback writes each modality's 512-d train and test features next to the media cache::

    <cache>/features/audio/{train,test}.npy   float32 [N, 512], memory-mapped when read
    <cache>/features/audio/{train,test}_labels.npy, {train,test}_keys.json, meta.json

``data=vggsound_features`` (same ``data.root`` and media settings, so the same cache) reads it,
and ``experiment=vggsound_frozen`` trains any fuser on it. ``LinearProbe`` gives the trainable
experiment's A(uni)/V(uni) columns: a linear classifier on one jointly trained extractor's features.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from gmf_repro.data.standardize import Standardizer
from gmf_repro.data.tensors import TensorDictDataset, batch_loader

LETTER = {"audio": "A", "video": "V"}


@torch.no_grad()
def extract_features(extractor: nn.Module, datamodule: Any, split: str, modality: str,
                     device: torch.device | str) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 [N, D], labels int64 [N]) for one split, in the split's fixed order, eval mode."""
    was_training = extractor.training
    extractor.eval()
    feats, labels = [], []
    if hasattr(datamodule, "split_dataloader"):
        loader = datamodule.split_dataloader(split)
    else:  # any datamodule: its own loaders (a shuffled train order is fine, labels travel with the batch)
        loader = datamodule.train_dataloader() if split == "train" else datamodule.test_dataloader()
    try:
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items() if k in (modality, "label")}
            batch = datamodule.on_after_batch_transfer(batch, 0)  # the device-side spectrogram / frame scaling
            feats.append(extractor(batch[modality]).float().cpu())
            labels.append(batch["label"].cpu())
    finally:
        extractor.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def _save_array(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.stem + f".tmp{os.getpid()}.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


def write_store(feature_dir: Path, modality: str, split: str, feats: np.ndarray, labels: np.ndarray,
                keys: Sequence[str]) -> None:
    out = Path(feature_dir) / modality
    out.mkdir(parents=True, exist_ok=True)
    _save_array(out / f"{split}.npy", feats.astype(np.float32))
    _save_array(out / f"{split}_labels.npy", labels.astype(np.int64))
    (out / f"{split}_keys.json").write_text(json.dumps(list(keys)))


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
        if not hasattr(dm, "feature_dir"):
            raise TypeError(f"FeatureExport needs a media datamodule with a feature_dir, got {type(dm).__name__}")
        for m in self.modalities or dm.modalities:
            extractor = pl_module.extractors[m]
            for split in ("train", "test"):
                feats, labels = extract_features(extractor, dm, split, m, pl_module.device)
                write_store(dm.feature_dir, m, split, feats, labels, dm.split_keys(split))
            meta = {"modality": m, "dim": int(feats.shape[1]), "extractor": type(extractor).__name__,
                    "output_dir": str(trainer.default_root_dir), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            (Path(dm.feature_dir) / m / "meta.json").write_text(json.dumps(meta, indent=1))
            self.written[m] = str(Path(dm.feature_dir) / m)
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


class LinearProbe(pl.Callback):
    """A(uni)/V(uni) of Table 2: a linear probe per modality on the jointly trained extractor's features."""

    def __init__(self, epochs: int = 20, lr: float = 1e-3, batch_size: int = 256, seed: int = 1) -> None:
        self.epochs, self.lr, self.batch_size, self.seed = epochs, lr, batch_size, seed
        self.metrics: dict[str, dict[str, float]] = {}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        dm = trainer.datamodule
        device = pl_module.device
        for m in dm.modalities:
            with torch.enable_grad():
                tr_x, tr_y = extract_features(pl_module.extractors[m], dm, "train", m, device)
                te_x, te_y = extract_features(pl_module.extractors[m], dm, "test", m, device)
                acc = _probe_accuracy(*(torch.from_numpy(a).to(device) for a in (tr_x, tr_y, te_x, te_y)),
                                      num_classes=dm.num_classes, epochs=self.epochs, lr=self.lr,
                                      batch_size=self.batch_size, seed=self.seed)
            self.metrics[f"{LETTER.get(m, m)}(uni)"] = {"acc": acc}

    def extra_metrics(self) -> dict[str, dict[str, float]]:
        return dict(self.metrics)


class FeatureStoreDataModule(pl.LightningDataModule):
    """Precomputed per-modality features of a media dataset, located from the media settings alone.

    ``standardize`` (default): each feature dimension is shifted and scaled by its train-split mean
    and std. The paper is silent; raw pooled ReLU features (means ~2.5, peaks ~25 for video) make
    GMF's reconstruction loss diverge under the paper's SGD lr 0.01, and a linear head is unaffected.
    Batches leave the loader as the stored (raw) extractor outputs and are standardised in
    ``on_after_batch_transfer``, after a missing-modality condition has replaced the raw vector: an
    absent modality reads ``(0 - mean) / std``, the standardised image of the paper's zero vector
    (evaluation/conditions.py). ``train_mean`` gives ``eval.missing=mean`` its fill.

    Every keyword besides the ones below is passed to ``media_target`` (e.g. the VGGSound datamodule),
    so ``data.root`` and the media settings (and ``preset=tiny``) find the same cache, and the
    store next to it. Samples are aligned across modalities by clip key.
    """

    def __init__(self, media_target: str, modalities: Sequence[str] = ("audio", "video"), batch_size: int = 64,
                 num_workers: int = 0, seed: int = 1, standardize: bool = True,
                 make_command: str = "python -m gmf_repro experiment=vggsound_unimodal", **media_kw: Any) -> None:
        super().__init__()
        from hydra.utils import get_class

        media_kw.pop("build_cache", None)
        self.media = get_class(media_target)(modalities=list(modalities), build_cache=False, **media_kw)
        self.modalities = list(self.media.modalities)
        self.num_classes = self.media.num_classes
        self.task_type = "classification"
        self.feature_dir = Path(self.media.feature_dir)
        self.batch_size, self.num_workers, self.seed = int(batch_size), int(num_workers), int(seed)
        self.standardize = bool(standardize)
        self.scaler = Standardizer()
        missing = [m for m in self.modalities if not (self.feature_dir / m / "test.npy").exists()
                   or not (self.feature_dir / m / "train.npy").exists()]
        if missing:
            cmds = " and ".join(f"`{make_command} modality={m} data.root={self.media.root}`" for m in missing)
            raise FileNotFoundError(f"no feature store for {missing} in {self.feature_dir}; make it with {cmds}")
        self.input_shapes = {m: tuple(np.load(self.feature_dir / m / "test.npy", mmap_mode="r").shape[1:])
                             for m in self.modalities}
        self.train_set = self.test_set = None

    def _load(self, split: str) -> TensorDictDataset:
        tensors: dict[str, Tensor] = {}
        ref_keys = labels = None
        for m in self.modalities:
            d = self.feature_dir / m
            keys = json.loads((d / f"{split}_keys.json").read_text())
            feats = np.load(d / f"{split}.npy", mmap_mode="r")
            lab = np.load(d / f"{split}_labels.npy")
            if ref_keys is None:
                ref_keys, labels = keys, lab
                order = np.arange(len(keys))
            else:
                pos = {k: i for i, k in enumerate(keys)}
                if set(pos) != set(ref_keys):
                    raise RuntimeError(f"feature store {self.feature_dir}: {m} and {self.modalities[0]} {split} clips "
                                       f"differ; rerun both unimodal experiments on the same cache")
                order = np.array([pos[k] for k in ref_keys])
            x = torch.from_numpy(np.ascontiguousarray(feats[order], dtype=np.float32))
            if m not in self.scaler.stats:  # statistics of the train split (loaded first), used for both splits
                self.scaler.fit(m, x)
            tensors[m] = x  # raw: standardised on the device, after a missing-modality condition
        tensors["label"] = torch.from_numpy(labels)
        return TensorDictDataset(tensors)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.test_set = self._load("train"), self._load("test")

    def train_dataloader(self):
        self.setup()
        return batch_loader(self.train_set, self.batch_size, shuffle=True, num_workers=self.num_workers, seed=self.seed)

    def val_dataloader(self) -> list:
        return []

    def test_dataloader(self):
        self.setup()
        return batch_loader(self.test_set, self.batch_size, shuffle=False, num_workers=self.num_workers, seed=self.seed)

    def train_mean(self, modality: str) -> Tensor:
        """The train-split mean of one modality's raw stored features (``eval.missing=mean``)."""
        self.setup()
        return self.scaler.mean(modality)

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int = 0) -> dict[str, Any]:
        """Standardise each modality with its train statistics, on the batch's device (``standardize=true``).

        Not idempotent: call it once per raw batch (Lightning does; so do the analyses that iterate loaders).
        """
        if not self.standardize:
            return batch
        self.setup()
        return self.scaler.apply(batch)
