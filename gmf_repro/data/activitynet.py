"""ActivityNet image-to-video retrieval features, as released with AP-IVR (paper Table 3; docs/paper.md §2, §7).

Expected files in ``root`` (Python 2 pickles of numpy arrays, read with ``encoding="latin1"``, as
the AP-IVR release reads them), for each split ``train`` and ``test``:

- ``{split}_v.pkl``: video features ``[N, 64, 4096]`` (64 temporal proposal features per video);
- ``{split}_i.pkl``: image features ``[N, 128]``;
- ``{split}_label.pkl``: activity labels ``[N]`` starting at 1 (stored here from 0).

Choices (docs/retrieval.md):
- ``pool``: how a video's 64 proposal features reach the model. ``mean`` (default for every
  one-vector fuser) and ``max`` pool them here into one ``[4096]`` vector; ``none`` keeps the bag
  ``[64, 4096]`` for methods that pool proposals themselves (AP-IVR's attention pooling). A kept bag
  costs N x 1 MiB of float32 per split in memory (``proposals * video_dim * 4`` bytes per video).
- scaling as AP-IVR: ``(x - mean) / (max - min)`` with scalar statistics of the training split
  (``normalize: apivr``; ``none`` to keep raw values). The video statistics are taken on the
  un-pooled features, as AP-IVR does. Batches hold the raw features; the scaling runs in
  ``transform`` on the device, after a missing-modality condition.
- the 128-128 and 4096-4096 settings are not made here: a learned ``LinearMap`` extractor maps one
  modality (``experiment=activitynet_128`` / ``activitynet_4096``).

The pickles are read with ``safe_pickle.load_array``: numpy arrays only, never code (docs/data.md, "ActivityNet").
A file converted once to ``.npz`` (``scripts/convert_activitynet.py``) is read instead of its pickle, which may
then be deleted. The small files (labels, image features) and a converted video file's header are read and
checked when the datamodule is built, so a wrong file or setting fails before the model is; a video pickle
(gigabytes) is read only in ``setup``.
"""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_write
from ..errors import UserError
from .safe_pickle import load_array, npz_twin
from .tensors import TensorDataModule, TensorDictDataset

HOW_TO_GET = (
    "get the ActivityNet feature pickles released with AP-IVR (Xu et al., AAAI 2020) "
    "and set data.root to their folder (docs/retrieval.md, 'Data')"
)


def _load_pickle(path: Path):
    return load_array(path)  # arrays, lists, numbers only: a pickle asking for anything else is refused, unrun


def _check_finite(x: np.ndarray, path: Path) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(x), -1).any(1))
        raise UserError(f"{path} holds {int(bad.sum())} NaN/inf values in {len(rows)} rows (first: row {rows[0]}); "
                        f"get the file again from its source")


def _stamp(path: Path) -> str:
    """Which file a pooled cache was made from: name, size and modification time (a replaced file differs)."""
    st = path.stat()
    return f"{path.name} ({st.st_size} bytes, modified {st.st_mtime_ns} ns)"


def npz_shape(path: Path) -> tuple[int, ...]:
    """The shape of the array ``x`` in a converted ``.npz``, from its header: nothing else is read."""
    try:
        with zipfile.ZipFile(path) as z, z.open("x.npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            return tuple(read(f)[0])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise UserError(f"{path} is not a readable conversion ({type(err).__name__}: {err}); delete it and convert "
                        f"again (scripts/convert_activitynet.py)") from None


class ActivityNetDataModule(TensorDataModule):
    """Image queries (``image``) and video gallery (``video``) with activity labels; test = gallery and queries."""

    modalities = ["image", "video"]

    def __init__(
        self,
        root: str,
        image_dim: int = 128,
        video_dim: int = 4096,
        num_classes: int = 200,
        pool: str = "mean",
        proposals: int = 64,
        normalize: str = "apivr",
        train_split: str = "train",
        test_split: str = "test",
        label_offset: int = 1,
        cache_dir: str | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 1,
    ) -> None:
        super().__init__(batch_size, num_workers, seed)
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise UserError(f"ActivityNet features not found: folder {self.root} does not exist; {HOW_TO_GET}")
        if pool not in ("mean", "max", "none"):
            raise UserError(f"data.pool must be 'mean', 'max' or 'none' (keep the {proposals} proposals), got '{pool}'")
        if normalize not in ("apivr", "none"):
            raise UserError(f"data.normalize must be 'apivr' or 'none', got '{normalize}'")
        self.modalities = ["image", "video"]
        self.proposals = int(proposals)
        video_shape = (self.proposals, int(video_dim)) if pool == "none" else (int(video_dim),)
        self.input_shapes = {"image": (int(image_dim),), "video": video_shape}
        self.num_classes = int(num_classes)
        self.pool, self.normalize, self.label_offset = pool, normalize, label_offset
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.scaling: dict[str, tuple[float, float]] = {}  # modality -> (mean, max - min) of the train split
        self.splits = {"train": train_split, "test": test_split}
        self.files = {(split, kind): self._find(split, kind) for split in self.splits.values()
                      for kind in ("v", "i", "label")}
        # the small files (labels, images) are read and checked now, the videos' shapes where a header gives them
        # cheaply (a converted .npz): a wrong file fails before the model is built, not inside trainer.fit
        self._small = {split: self._read_small(split) for split in self.splits.values()}

    # -- files ----------------------------------------------------------------------------------
    def _find(self, split: str, kind: str) -> Path | None:
        """The file to read for ``{split}_{kind}``: its converted ``.npz`` (data/safe_pickle.py), else the pickle;
        None for a video already pooled into ``cache_dir``. Missing or unreadable: a one-line error."""
        pkl = self.root / f"{split}_{kind}.pkl"
        twin = npz_twin(pkl)
        path = twin if twin.is_file() else pkl if pkl.is_file() else None
        if path is None:
            if kind == "v" and self._pooled_cache(split) is not None and self._pooled_cache(split).is_file():
                return None
            raise UserError(f"ActivityNet feature file missing: {pkl} (or its conversion {twin.name}); {HOW_TO_GET}")
        try:
            with open(path, "rb"):
                pass
        except OSError as err:
            raise UserError(f"cannot read {path}: {err.strerror or err}; give the user running this read access "
                            f"(e.g. chmod u+r)") from None
        return path

    def _pooled_cache(self, split: str) -> Path | None:
        return self.cache_dir / f"{split}_v_{self.pool}.npz" if self.cache_dir and self.pool != "none" else None

    def _read_small(self, split: str) -> dict[str, np.ndarray]:
        """Labels (from 0) and image features of one split, checked, and the video file's shape when cheap."""
        label_path, image_path = self.files[(split, "label")], self.files[(split, "i")]
        raw = np.asarray(_load_pickle(self.root / f"{split}_label.pkl"))
        if raw.dtype.kind not in "iuf" or not (raw.ndim == 1 or (raw.ndim == 2 and raw.shape[1] == 1)):
            raise UserError(f"{label_path} holds {raw.dtype} values of shape {raw.shape}; expected one integer "
                            f"activity label per video, shape [N]")
        labels = raw.reshape(-1)
        if raw.dtype.kind == "f" and not (np.isfinite(labels).all() and (labels == np.round(labels)).all()):
            raise UserError(f"{label_path} holds labels that are not whole numbers (or NaN); expected integer "
                            f"activity labels")
        labels = labels.astype(np.int64) - self.label_offset
        if len(labels) == 0:
            raise UserError(f"{label_path} holds no labels; get the file again from its source")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise UserError(
                f"ActivityNet labels of split '{split}' span {labels.min() + self.label_offset}.."
                f"{labels.max() + self.label_offset} (stored minus data.label_offset={self.label_offset}), "
                f"outside 0..{self.num_classes - 1}; set data.num_classes / data.label_offset"
            )
        image = np.asarray(_load_pickle(self.root / f"{split}_i.pkl"))
        if image.dtype.kind not in "iuf":
            raise UserError(f"{image_path} holds {image.dtype} values; expected float image features [N, "
                            f"{self.input_shapes['image'][0]}]")
        image = image.astype(np.float32, copy=False)
        if tuple(image.shape[1:]) != tuple(self.input_shapes["image"]):
            raise UserError(f"ActivityNet image features of split '{split}' have shape {tuple(image.shape)}, "
                            f"expected [N, {self.input_shapes['image'][0]}]; set data.image_dim to match")
        _check_finite(image, image_path)
        n = {"image": len(image), "label": len(labels)}
        video = self.files[(split, "v")]
        if video is not None and video.suffix == ".npz":
            n["video"] = self._check_video_shape(npz_shape(video), video)[0]
        if len(set(n.values())) != 1:
            raise UserError(f"ActivityNet split '{split}' has different numbers of rows per file: {n}; get the files "
                            f"again from their source")
        return {"image": image, "label": labels}

    def _check_video_shape(self, shape: tuple[int, ...], path: Path) -> tuple[int, ...]:
        """The video array's shape against ``data.proposals`` / ``data.video_dim`` / ``data.pool``."""
        dim = self.input_shapes["video"][-1]
        if len(shape) not in (2, 3):
            raise UserError(f"{path} has shape {shape}; expected [N, {self.proposals}, {dim}] or [N, {dim}]")
        if len(shape) == 3 and shape[1] != self.proposals:
            raise UserError(f"{path} holds {shape[1]} proposals per video, expected "
                            f"data.proposals={self.proposals}; set data.proposals to match")
        if self.pool == "none" and len(shape) != 3:
            raise UserError(f"{path} has shape {shape}: no proposals to keep for data.pool=none; "
                            f"use data.pool=mean with already pooled features")
        if shape[-1] != dim:
            raise UserError(f"ActivityNet video features in {path} have shape {shape}, expected "
                            f"[N, {', '.join(map(str, self.input_shapes['video']))}]; set data.video_dim to match")
        return shape

    # -- loading -------------------------------------------------------------------------------
    def _pooled_video(self, split: str) -> tuple[np.ndarray, dict[str, float]]:
        """Video features pooled over the proposals (or the bag itself for ``pool: none``), with the
        mean, min and max of the un-pooled values."""
        cached, source = self._pooled_cache(split), self.files[(split, "v")]
        stamp = _stamp(source) if source is not None else None
        if cached is not None and cached.is_file():
            try:
                with np.load(cached, allow_pickle=False) as z:
                    made_from = str(z["source"]) if "source" in z.files else "an unrecorded file"
                    if stamp is None or made_from == stamp:  # the source deleted after pooling: the cache is all
                        return z["x"], {k: float(z[k]) for k in ("mean", "lo", "hi")}
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
                raise UserError(f"{cached} is not a readable pooled-video cache ({type(err).__name__}); delete it "
                                f"(the next run writes it again from {split}_v)") from None
            print(f"{cached}: pooled from {made_from}, not from {stamp}; pooling {source.name} again", file=sys.stderr)
        path = self.root / f"{split}_v.pkl"
        raw = np.asarray(_load_pickle(path))
        if raw.dtype.kind not in "iuf":
            raise UserError(f"{self.files[(split, 'v')]} holds {raw.dtype} values; expected float video features")
        self._check_video_shape(raw.shape, self.files[(split, "v")])
        stats = {"mean": float(raw.mean(dtype=np.float64)), "lo": float(raw.min()), "hi": float(raw.max())}
        if not all(np.isfinite(v) for v in stats.values()):
            _check_finite(raw, self.files[(split, "v")])
        if self.pool == "none":
            x = raw.astype(np.float32, copy=False)  # the bag itself; no copy when the pickle is float32
        elif raw.ndim == 3:
            pool = np.mean if self.pool == "mean" else np.max
            x = np.concatenate([pool(raw[i : i + 256].astype(np.float32), axis=1) for i in range(0, len(raw), 256)])
        else:
            x = raw.astype(np.float32)
        del raw
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(cached) as f:  # whole or not at all: a killed run leaves no half cache to read
                np.savez(f, x=x, source=np.array(stamp), **stats)
        return x, stats

    def _load_split(self, split: str) -> dict[str, np.ndarray | float]:
        video, v_stats = self._pooled_video(split)
        image, labels = self._small[split]["image"], self._small[split]["label"]
        if len(video) != len(labels):
            n = {"video": len(video), "image": len(image), "label": len(labels)}
            raise UserError(f"ActivityNet split '{split}' has different numbers of rows per file: {n}; get the files "
                            f"again from their source")
        if tuple(video.shape[1:]) != tuple(self.input_shapes["video"]):  # a pooled cache made with other settings
            raise UserError(f"ActivityNet video features of split '{split}' have shape {tuple(video.shape)}, expected "
                            f"[N, {', '.join(map(str, self.input_shapes['video']))}]; set data.video_dim to match")
        return {"image": image, "video": video, "label": labels, "v_stats": v_stats}

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train, test = self._load_split(self.splits["train"]), self._load_split(self.splits["test"])
        if self.normalize == "apivr":  # applied on the device (transform), after a condition
            i_mean = float(train["image"].mean())
            i_range = float(train["image"].max() - train["image"].min()) or 1.0
            v_mean = train["v_stats"]["mean"]
            v_range = (train["v_stats"]["hi"] - train["v_stats"]["lo"]) or 1.0
            self.scaling = {"image": (i_mean, i_range), "video": (v_mean, v_range)}
        self.train_set, self.test_set = (
            TensorDictDataset({k: torch.from_numpy(np.ascontiguousarray(s[k])) for k in ("image", "video", "label")})
            for s in (train, test)
        )

    def transform(self, batch: dict) -> dict:
        """AP-IVR's ``(x - mean) / (max - min)`` on the device, so a missing-modality condition acts on the
        raw features first (data/contract.py). Not idempotent: once per raw batch."""
        if not self.scaling:
            return batch
        batch = dict(batch)
        for m, (mean, scale) in self.scaling.items():
            if m in batch:
                batch[m] = (batch[m] - mean) / scale
        return batch
