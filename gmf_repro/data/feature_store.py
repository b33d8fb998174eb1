"""Frozen-extractor runs (docs/paper.md §3, kind 1): a feature store computed once from trained unimodal baselines.

After ``experiment=vggsound_unimodal modality=audio`` (and ``=video``), the ``FeatureExport``
callback (``gmf_repro/callbacks.py``) writes each modality's 512-d train and test features next to the media cache::

    <cache>/features/audio/{train,test}.npy   float32 [N, 512], memory-mapped when read
    <cache>/features/audio/{train,test}_labels.npy, {train,test}_keys.json, meta.json
    <cache>/features/audio/{train,test}_label_<kind>.npy   per-stream labels (FakeAVCeleb: clip, audio, video)

``data=vggsound_features`` (same ``data.root`` and media settings, so the same cache) reads it,
and ``experiment=vggsound_frozen`` trains any fuser on it. ``write_store`` and ``check_store`` are
the store's format; the callbacks that write it and probe the extractors are in ``gmf_repro/callbacks.py``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from gmf_repro.data.contract import LABEL_PREFIX
from gmf_repro.data.standardize import Standardizer
from gmf_repro.data.tensors import DeviceTensorLoader, TensorDataModule, TensorDictDataset, fits_on_device
from gmf_repro.errors import UserError


def write_store(feature_dir: Path, modality: str,
                splits: dict[str, tuple[np.ndarray, np.ndarray | Mapping[str, np.ndarray], Sequence[str]]],
                meta: dict) -> Path:
    """Write one modality's store (every split's features, labels and keys, and ``meta.json``) as one unit.

    A split's labels are one array (``label``), or batch key -> array: ``label`` goes to ``<split>_labels.npy``
    and each ``label_<kind>`` to ``<split>_label_<kind>.npy`` (``meta.json`` then lists the kinds).

    The files go to a private folder that replaces ``<feature_dir>/<modality>`` by a rename, so a reader
    sees the old store or the new one, never train features of one run next to test features of another."""
    feature_dir = Path(feature_dir)
    feature_dir.mkdir(parents=True, exist_ok=True)
    out = feature_dir / modality
    tmp = Path(tempfile.mkdtemp(dir=feature_dir, prefix=f".{modality}.partial-"))
    try:
        kinds: list[str] = []
        for split, (feats, labels, keys) in splits.items():
            labels = dict(labels) if isinstance(labels, Mapping) else {"label": labels}
            np.save(tmp / f"{split}.npy", feats.astype(np.float32))
            np.save(tmp / f"{split}_labels.npy", np.asarray(labels.pop("label")).astype(np.int64))
            for key, values in labels.items():
                np.save(tmp / f"{split}_{key}.npy", np.asarray(values).astype(np.int64))
            kinds = [k[len(LABEL_PREFIX):] for k in labels]
            (tmp / f"{split}_keys.json").write_text(json.dumps(list(keys)))
        (tmp / "meta.json").write_text(json.dumps({**meta, "label_kinds": kinds} if kinds else meta, indent=1))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)
        aside = feature_dir / f".{modality}.old-{os.getpid()}"
        if out.exists():
            os.replace(out, aside)
        os.replace(tmp, out)
        shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def check_store(feature_dir: Path, modalities: Sequence[str], list_hash: str, remake: str) -> None:
    """Refuse a feature store made from another clip list (edited labels, splits or clips) than the current one.

    ``remake``: the commands that write the store again, for the message."""
    for m in modalities:
        meta_path = Path(feature_dir) / m / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        if meta.get("clip_list_hash") != list_hash:
            why = "records no clip list" if "clip_list_hash" not in meta else "was made from another clip list"
            raise UserError(f"feature store {Path(feature_dir) / m} {why} (the list file's clips, labels or "
                            f"splits, or the media settings, changed since); make it again with {remake}")


class FeatureStoreDataModule(TensorDataModule):
    """Precomputed per-modality features of a media dataset, located from the media settings alone.

    ``standardize`` (default false, the paper's protocol): the fusers get the stored features as
    extracted, and an absent modality is an exact zero vector. True: each feature dimension is shifted
    and scaled by its train-split mean and std in ``on_after_batch_transfer``, after a missing-modality
    condition has replaced the raw vector, so an absent modality reads ``(0 - mean) / std``
    (evaluation/conditions.py); raw features with a large mean can make GMF's reconstruction loss
    diverge under SGD lr 0.01 (docs/decisions.md, "Frozen features as extracted"). ``train_mean``
    gives ``eval.missing=mean`` its fill.

    Labels: with per-stream labels (the media's ``label_kinds``, FakeAVCeleb's), ``label`` is the stored
    ``label_<label_by>`` of the media's own ``label_by`` (the fusers: the clip's), whatever the unimodal runs
    learned, and every ``label_<kind>`` rides along; ``store_meta`` holds each modality's ``meta.json`` (the
    protocol record reads what the unimodal runs learned from it).

    Every keyword besides the ones below is passed to ``media_target`` (e.g. the VGGSound datamodule),
    so ``data.root`` and the media settings (and ``preset=tiny``) find the same cache, and the
    store next to it. Samples are aligned across modalities by clip key.

    ``device_resident`` (default): the whole store is copied once to the training device and batches
    are indexed there (``DeviceTensorLoader``: same batches, same order); it falls back to the host
    loader when the store would take more than half of the free GPU memory.
    """

    def __init__(self, media_target: str, modalities: Sequence[str] = ("audio", "video"), batch_size: int = 64,
                 num_workers: int = 0, seed: int = 1, standardize: bool = False, device_resident: bool = True,
                 make_command: str = "python -m gmf_repro experiment=vggsound_unimodal", **media_kw: Any) -> None:
        super().__init__(batch_size, num_workers, seed)
        from hydra.utils import get_class

        media_kw.pop("build_cache", None)
        self.media = get_class(media_target)(modalities=list(modalities), build_cache=False, **media_kw)
        self.modalities = list(self.media.modalities)
        self.num_classes = self.media.num_classes
        self.feature_dir = Path(self.media.feature_dir)
        self.standardize = bool(standardize)
        self.device_resident = bool(device_resident)
        self.scaler = Standardizer()
        missing = [m for m in self.modalities if not (self.feature_dir / m / "test.npy").exists()
                   or not (self.feature_dir / m / "train.npy").exists()]
        if missing:
            suffix = f"_{media_kw['feature_set']}" if media_kw.get("feature_set") else ""  # conf/modality/<m>_<set>
            cmds = " and ".join(f"`{make_command} modality={m}{suffix} data.root={self.media.root}`" for m in missing)
            raise FileNotFoundError(f"no feature store for {missing} in {self.feature_dir}; make it with {cmds}")
        remake = " and ".join(f"`{make_command} modality={m} data.root={self.media.root}`" for m in self.modalities)
        check_store(self.feature_dir, self.modalities, self.media.clip_list_hash, remake)
        # the unimodal runs' record of each store (extractor, the labels it learned, BatchNorm recalibration)
        self.store_meta = {m: json.loads((self.feature_dir / m / "meta.json").read_text()) for m in self.modalities}
        # per-stream labels (FakeAVCeleb): ``label`` is the media's ``label_by`` kind, every kind rides along
        self.label_kinds, self.label_by = tuple(self.media.label_kinds), self.media.label_by
        kinds = set(self.label_kinds)
        lacking = [m for m in self.modalities if not kinds <= set(self.store_meta[m].get("label_kinds", []))]
        if lacking:
            raise UserError(f"feature store {self.feature_dir} has no per-stream labels "
                            f"({', '.join(self.label_kinds)}) for {lacking}: it was written before they were stored; "
                            f"make it again with {remake}")
        self.input_shapes = {m: tuple(np.load(self.feature_dir / m / "test.npy", mmap_mode="r").shape[1:])
                             for m in self.modalities}

    def _load(self, split: str) -> TensorDictDataset:
        tensors: dict[str, Tensor] = {}
        ref_keys = labels = None
        for m in self.modalities:
            d = self.feature_dir / m
            keys = json.loads((d / f"{split}_keys.json").read_text())
            feats = np.load(d / f"{split}.npy", mmap_mode="r")
            if ref_keys is None:
                labels = {"label": np.load(d / (f"{split}_{LABEL_PREFIX}{self.label_by}.npy" if self.label_by
                                                 else f"{split}_labels.npy")),
                          **{f"{LABEL_PREFIX}{k}": np.load(d / f"{split}_{LABEL_PREFIX}{k}.npy")
                             for k in self.label_kinds}}
                ref_keys = keys
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
        tensors.update({key: torch.from_numpy(values) for key, values in labels.items()})
        return TensorDictDataset(tensors)

    def describe_split(self, keys: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any] | None:
        """The media dataset's split make-up (e.g. FakeAVCeleb's per category and race) over the stored clips."""
        d = self.feature_dir / self.modalities[0]
        return self.media.describe_split({s: json.loads((d / f"{s}_keys.json").read_text()) for s in ("train", "test")})

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.test_set = self._load("train"), self._load("test")

    def loader(self, dataset: TensorDictDataset, shuffle: bool):
        """``device_resident``: the split on the training device (``DeviceTensorLoader``, the same batches)."""
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        if self.device_resident:
            if fits_on_device(dataset.tensors, device):
                shard = dict(rank=trainer.global_rank, world_size=trainer.world_size) if trainer and shuffle else {}
                return DeviceTensorLoader(dataset, self.batch_size, shuffle, self.seed, device, **shard)
            print(f"features: the store does not fit in half of {device}'s free memory; batches come from the host")
        return super().loader(dataset, shuffle)

    def train_mean(self, modality: str) -> Tensor:
        """The train-split mean of one modality's raw stored features (``eval.missing=mean``)."""
        self.setup()
        return self.scaler.mean(modality)

    def transform(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Standardise each modality with its train statistics, on the batch's device (``standardize=true``).

        Not idempotent: call it once per raw batch (Lightning does; so do the analyses that iterate loaders).
        """
        if not self.standardize:
            return batch
        self.setup()
        return self.scaler.apply(batch)
