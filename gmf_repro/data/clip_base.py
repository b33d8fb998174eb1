"""What VGGSound and FakeAVCeleb share: clip lists -> decode-once cache -> batches of uint8/int16.

Batches leave the loader as the cache's compact dtypes (uint8 frames, int16 waveform: less to
copy to the GPU) and become the paper's input tensors on the device in ``transform``:
frames -> float in [0, 1] (the paper feeds frames "directly ... without any preprocess"; we only
scale), waveform -> float -> the dataset's spectrogram. ``input_shapes`` are those device shapes.
Every loader, the test loader included, yields these raw batches, so a missing-modality condition
replaces the waveform and frames before the spectrogram and the scaling (data/contract.py).
"""
from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gmf_repro.data import audio as audio_mod
from gmf_repro.data.cache import SPLITS, CacheReader, ClipRef, build_cache, list_digest, ready_manifest
from gmf_repro.data.contract import MultimodalDataModule
from gmf_repro.data.media import ClipError, MediaSpec, decode_clip
from gmf_repro.data.shards import ShardError
from gmf_repro.errors import UserError

MEDIA_MODALITIES = ("audio", "video")


class ClipDataset(Dataset):
    """Items ``{modality: raw tensor, "label", "index"}`` from the cache (or, for benchmarks, from the mp4s).

    ``labels``: batch key -> one int per item, in the source's order (``"label"`` and any per-stream
    ``label_<kind>``, e.g. FakeAVCeleb's); default: the cache's (or clip list's) ``label`` alone."""

    def __init__(self, source: CacheReader | Sequence[ClipRef], modalities: Sequence[str],
                 spec: MediaSpec | None = None, labels: Mapping[str, np.ndarray] | None = None) -> None:
        self.source, self.modalities, self.spec = source, list(modalities), spec
        if not isinstance(source, CacheReader) and spec is None:
            raise ValueError("decoding on the fly needs a MediaSpec")
        self.labels = dict(labels) if labels is not None else None

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        if isinstance(self.source, CacheReader):
            label = int(self.source.labels[i])
            video = self.source.video(i) if "video" in self.modalities else None
            wave = self.source.audio(i) if "audio" in self.modalities else None
        else:  # on-the-fly decode: the slow path scripts/bench_data.py compares against
            ref = self.source[i]
            label = ref.label
            try:
                video, wave = decode_clip(ref.path, self.spec, need_audio="audio" in self.modalities,
                                          need_video="video" in self.modalities)
            except ClipError:
                video = np.zeros(self.spec.video_shape(), np.uint8)
                wave = np.zeros(self.spec.audio_shape(), np.int16)
        item = {"label": torch.tensor(label, dtype=torch.int64), "index": torch.tensor(i, dtype=torch.int64)}
        for key, values in (self.labels or {}).items():
            item[key] = torch.tensor(int(values[i]), dtype=torch.int64)
        if "video" in self.modalities:
            item["video"] = torch.from_numpy(video)
        if "audio" in self.modalities:
            item["audio"] = torch.from_numpy(wave)
        return item


class AVClipDataModule(MultimodalDataModule, abc.ABC):
    """Base for audio-video clip datasets read through the decode-once cache.

    Subclasses implement ``list_clips`` (cheap: reads the dataset's list file) and set
    ``num_classes`` and ``classes`` before calling ``_finish_init``.
    """

    name = "clips"

    def __init__(self, root: str, modalities: Sequence[str] = MEDIA_MODALITIES, *, num_frames: int,
                 frame_size: Sequence[int], fps: float | None, sample_rate: int, audio_samples: int,
                 spectrogram: dict, frame_span_s: float | None = None, video_scale: str = "unit",
                 batch_size: int = 64, num_workers: int = 4,
                 eval_batch_size: int | None = None, cache_dir: str | None = None, build_cache: bool = True,
                 preprocess_workers: int | None = None, num_shards: int | None = None,
                 pin_memory: bool = True, show_progress: bool = True, feature_set: str | None = None) -> None:
        super().__init__()
        self.feature_set = feature_set
        self.prepare_data_per_node = False  # one process builds the cache, also on a shared file system
        self.root = Path(os.path.expanduser(str(root))) if root is not None else None
        if self.root is None or not self.root.is_dir():
            raise FileNotFoundError(f"data.root={root} is not a folder; point data.root= at the downloaded {self.name}")
        modalities = [modalities] if isinstance(modalities, str) else list(modalities)
        bad = [m for m in modalities if m not in MEDIA_MODALITIES]
        if bad or not modalities:
            raise UserError(f"data.modalities={modalities} names {bad or 'nothing'}; {self.name} has "
                            f"{list(MEDIA_MODALITIES)} (the labels come from the list file), e.g. "
                            f"data.modalities=[audio,video]")
        if video_scale not in ("unit", "raw"):
            raise UserError(f"data.video_scale={video_scale}; use 'unit' (frames / 255) or 'raw' (0..255 floats)")
        self.modalities = [m for m in MEDIA_MODALITIES if m in modalities]  # canonical order: audio, video
        self.spec = MediaSpec(num_frames=int(num_frames), frame_size=(int(frame_size[0]), int(frame_size[1])),
                              fps=None if fps is None else float(fps), sample_rate=int(sample_rate),
                              audio_samples=int(audio_samples),
                              span_s=None if frame_span_s is None else float(frame_span_s))
        self.spectrogram_cfg = dict(spectrogram)
        self.spectrogram = audio_mod.build_spectrogram(**self.spectrogram_cfg)
        self.video_scale = video_scale
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.pin_memory = pin_memory
        self._cache_dir = Path(os.path.expanduser(cache_dir)) if cache_dir else None
        self.build_cache_if_missing = build_cache
        self.preprocess_workers = preprocess_workers
        self.num_shards = num_shards
        self.show_progress = show_progress
        self.input_shapes: dict[str, tuple[int, ...]] = {}
        if "video" in self.modalities:
            self.input_shapes["video"] = self.spec.video_shape()
        if "audio" in self.modalities:
            self.input_shapes["audio"] = audio_mod.output_shape(self.spectrogram, self.spec.audio_samples)
        self.train_set: ClipDataset | None = None
        self.val_set: ClipDataset | None = None  # clips listed as val/validation: kept, not used by the protocol
        self.test_set: ClipDataset | None = None
        self.manifest: dict | None = None
        self._list_hash: str | None = None

    # -- what subclasses provide -------------------------------------------------------------
    @abc.abstractmethod
    def list_clips(self) -> list[ClipRef]:
        """Every listed clip in a fixed order (the shard order)."""

    def extra_meta(self) -> dict:
        return {"dataset": self.name}

    def item_labels(self, reader: CacheReader) -> dict[str, np.ndarray]:
        """Batch key -> label per cached item of ``reader`` (one split): ``label``, and ``label_<kind>`` for each
        of ``label_kinds``. Here the cache's label alone."""
        return {"label": reader.labels}

    # -- the cache ---------------------------------------------------------------------------
    @property
    def cache_tag(self) -> str:
        s = self.spec
        fps = "native" if s.fps is None else f"{s.fps:g}"
        size = f"{s.frame_size[0]}x{s.frame_size[1]}"
        span = "" if s.span_s is None else f"-span{s.span_s:g}"  # frames spread over span_s seconds
        return f"{self.name}-t{s.num_frames}-{size}-fps{fps}{span}-sr{s.sample_rate}-n{s.audio_samples}"

    @property
    def cache_dir(self) -> Path:
        """Default ``<root>/gmf_cache/<tag>``: the tag names every setting that changes the arrays."""
        return self._cache_dir or (self.root / "gmf_cache" / self.cache_tag)

    @property
    def feature_dir(self) -> Path:
        """Where the frozen-extractor feature store lives: next to the cache it was computed from; a named
        ``feature_set`` (one per extractor pair of Tables 4/7, e.g. ``mae``) has its own ``features_<name>``."""
        return self.cache_dir / (f"features_{self.feature_set}" if self.feature_set else "features")

    @property
    def clip_list_hash(self) -> str:
        """The hash of this list file's clips and the media settings, as the cache (and feature store) record it."""
        if self._list_hash is None:
            self._list_hash = list_digest(self.list_clips(), self.spec, self.root)
        return self._list_hash

    def ensure_cache(self) -> dict:
        """Build, resume or update the cache to the current clip list; print and return the manifest.

        A finished cache of the current list is read without taking locks (it may be read-only); with
        ``build_cache=false`` a missing, unfinished or stale cache is a one-line error instead."""
        clips = self.list_clips()
        self._list_hash = list_digest(clips, self.spec, self.root)
        try:
            self.manifest = ready_manifest(self.cache_dir, self._list_hash,
                                           f"run scripts/preprocess.py data={self.name} data.root={self.root} "
                                           f"(with the run's data settings) or set data.build_cache=true")
        except ShardError:
            raise  # damaged, not missing: named, not silently decoded again
        except UserError:
            if not self.build_cache_if_missing:
                raise
            workers = self.preprocess_workers or max(1, min(8, (os.cpu_count() or 1)))
            self.manifest = build_cache(clips, self.spec, self.cache_dir, num_shards=self.num_shards,
                                        workers=workers, extra_meta=self.extra_meta(),
                                        show_progress=self.show_progress, root=self.root)
            if self.manifest is None:
                raise RuntimeError(f"cache {self.cache_dir} still has unfinished shards; rerun to resume") from None
        print(f"{self.name}: {self.manifest['summary']} -> {self.cache_dir}")
        return self.manifest

    def prepare_data(self) -> None:
        if self.manifest is None:  # Lightning calls it before fit and before every test: build and report once
            self.ensure_cache()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.manifest is None:
            self.ensure_cache()
        reader = CacheReader(self.cache_dir, None, self.clip_list_hash)
        splits = [reader.split(s) for s in SPLITS]
        self.train_set, self.val_set, self.test_set = (ClipDataset(r, self.modalities, labels=self.item_labels(r))
                                                       for r in splits)
        for split, ds in (("train", self.train_set), ("test", self.test_set)):
            if len(ds) == 0:
                raise RuntimeError(f"{self.name}: no usable {split} clip in {self.cache_dir}; see its manifest.csv")

    # -- loaders -------------------------------------------------------------------------------
    def _loader(self, ds: Dataset, shuffle: bool, batch_size: int) -> DataLoader:
        # training drops a last partial batch: a batch of one breaks BatchNorm in the extractors
        drop_last = shuffle and len(ds) > batch_size
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          pin_memory=self.pin_memory and torch.cuda.is_available(),
                          persistent_workers=self.num_workers > 0, drop_last=drop_last)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self.train_set, True, self.batch_size)

    def val_dataloader(self) -> list:
        return []  # the paper reports test accuracy after a fixed schedule; no validation split

    def test_dataloader(self) -> DataLoader:
        """Raw batches like training's: the condition of a missing-modality test acts on the waveform and
        frames, then ``on_after_batch_transfer`` makes the inputs. Code that iterates this loader outside
        the Trainer (analyses) calls that hook itself (``data.contract.model_inputs``)."""
        self.setup()
        return self._loader(self.test_set, False, self.eval_batch_size)

    def _split_set(self, split: str) -> ClipDataset:
        self.setup()
        sets = {"train": self.train_set, "val": self.val_set, "test": self.test_set}
        if split not in sets:
            raise UserError(f"unknown split {split!r}; use one of {list(sets)}")
        return sets[split]

    def split_dataloader(self, split: str) -> DataLoader:
        """A non-shuffled loader over ``train``, ``val`` or ``test``, for feature export and probes."""
        return self._loader(self._split_set(split), False, self.eval_batch_size)

    def split_keys(self, split: str) -> list[str]:
        return list(self._split_set(split).source.keys)

    # -- on the device -------------------------------------------------------------------------
    def transform(self, batch: dict[str, Any]) -> dict[str, Any]:
        """uint8 frames -> float; int16 waveform -> the spectrogram of docs/paper.md §2, on the batch's device."""
        return to_model_inputs(batch, self.spectrogram, self.video_scale)


def to_model_inputs(batch: dict[str, Any], spectrogram: torch.nn.Module, video_scale: str) -> dict[str, Any]:
    """uint8 frames -> float ([0, 1] or 0..255); int16 waveform -> float in [-1, 1) -> spectrogram. Idempotent."""
    batch = dict(batch)
    if "video" in batch and batch["video"].dtype == torch.uint8:
        v = batch["video"].float()
        batch["video"] = v / 255.0 if video_scale == "unit" else v
    if "audio" in batch and batch["audio"].dtype == torch.int16:
        wave = batch["audio"].float() / 32768.0
        spectrogram.to(wave.device)
        batch["audio"] = spectrogram(wave)
    return batch

