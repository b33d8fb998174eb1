"""Generated data of a real dataset's shapes, so ``python -m gmf_repro.bench`` measures a card before any download.

``GeneratedClips`` is a media datamodule (the real one's settings, no list file, no mp4s) over a cache of
random uint8 frames and int16 waveforms (``write_generated_cache``); ``write_generated_features`` writes a
feature store with avsynth's class structure next to it, for the frozen-extractor experiments.
"""
from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .avsynth import AVSynthDataModule
from .cache import ClipRef, write_cache
from .clip_base import AVClipDataModule
from .feature_store import write_store


class GeneratedClips(AVClipDataModule):
    """A media datamodule over a generated cache: the settings of the real one, no list file, no mp4s."""

    name = "generated"

    def __init__(self, root: str, modalities: Sequence[str] = ("audio", "video"), *, num_classes: int,
                 n_train: int = 0, n_test: int = 0, **kw: Any) -> None:
        own = set(inspect.signature(AVClipDataModule.__init__).parameters)
        super().__init__(root, modalities, **{k: v for k, v in kw.items() if k in own})
        self.num_classes = int(num_classes)
        self.classes = [f"class{i:03d}" for i in range(self.num_classes)]
        self.n_train, self.n_test = int(n_train), int(n_test)

    def list_clips(self) -> list[ClipRef]:
        """The generated clips (no files): their list is what the cache's and the store's hash record."""
        return [ClipRef(key=f"g{i:07d}", path="", label=i % self.num_classes,
                        split="train" if i < self.n_train else "test") for i in range(self.n_train + self.n_test)]


def write_generated_cache(dm: GeneratedClips, seed: int = 0) -> None:
    """A one-shard cache of random uint8 frames and int16 waveforms in the cache format of data/cache.py
    (DONE record and clip-list hash included, so the reader's integrity checks pass)."""
    spec, clips = dm.spec, dm.list_clips()
    rng = np.random.default_rng(seed)

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(clips), 256):
            k = min(256, len(clips) - start)
            yield (rng.integers(0, 256, (k, *spec.video_shape()), dtype=np.uint8),
                   rng.integers(-8000, 8000, (k, *spec.audio_shape()), dtype=np.int16))

    write_cache(clips, spec, dm.cache_dir, chunks(), root=dm.root, extra_meta={"generated": True})


def write_generated_features(feature_dir: Path, modalities: list[str], dim: int, num_classes: int, n_train: int,
                             n_test: int, seed: int, list_hash: str) -> None:
    """A feature store with avsynth's class structure (learnable, so both paths' accuracies can be compared)."""
    synth = AVSynthDataModule(modalities=modalities, dims=[dim] * len(modalities), num_classes=num_classes,
                              n_train=n_train, n_test=n_test, seed=seed)
    synth.setup()
    splits = {"train": synth.train_set, "test": synth.test_set}
    offset = {"train": 0, "test": len(synth.train_set)}  # keys as GeneratedClips lists them
    for m in modalities:
        write_store(feature_dir, m, {split: (ds.tensors[m].numpy(), ds.tensors["label"].numpy(),
                                             [f"g{offset[split] + i:07d}" for i in range(len(ds))])
                                     for split, ds in splits.items()},
                    {"modality": m, "clip_list_hash": list_hash, "generated": True})
