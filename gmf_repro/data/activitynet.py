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
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .safe_pickle import load_array
from .tensors import TensorDataModule, TensorDictDataset

HOW_TO_GET = (
    "get the ActivityNet feature pickles released with AP-IVR (Xu et al., AAAI 2020) "
    "and set data.root to their folder (docs/retrieval.md, 'Data')"
)


def _load_pickle(path: Path):
    return load_array(path)  # arrays, lists, numbers only: a pickle asking for anything else is refused, unrun


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
        self.splits = {"train": train_split, "test": test_split}
        for split in self.splits.values():
            for kind in ("v", "i", "label"):
                path = self.root / f"{split}_{kind}.pkl"
                if not path.is_file():
                    raise UserError(f"ActivityNet feature file missing: {path}; {HOW_TO_GET}")
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

    # -- loading -------------------------------------------------------------------------------
    def _pooled_video(self, split: str) -> tuple[np.ndarray, dict[str, float]]:
        """Video features pooled over the proposals (or the bag itself for ``pool: none``), with the
        mean, min and max of the un-pooled values."""
        cached = self.cache_dir / f"{split}_v_{self.pool}.npz" if self.cache_dir and self.pool != "none" else None
        if cached is not None and cached.is_file():
            z = np.load(cached)
            return z["x"], {k: float(z[k]) for k in ("mean", "lo", "hi")}
        path = self.root / f"{split}_v.pkl"
        raw = np.asarray(_load_pickle(path))
        if raw.ndim not in (2, 3):
            raise UserError(f"{path} has shape {raw.shape}; expected [N, 64, 4096] or [N, 4096]")
        if raw.ndim == 3 and raw.shape[1] != self.proposals:
            raise UserError(f"{path} holds {raw.shape[1]} proposals per video, expected "
                            f"data.proposals={self.proposals}; set data.proposals to match")
        if self.pool == "none" and raw.ndim != 3:
            raise UserError(f"{path} has shape {raw.shape}: no proposals to keep for data.pool=none; "
                            f"use data.pool=mean with already pooled features")
        stats = {"mean": float(raw.mean(dtype=np.float64)), "lo": float(raw.min()), "hi": float(raw.max())}
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
            np.savez(cached, x=x, **stats)
        return x, stats

    def _load_split(self, split: str) -> dict[str, np.ndarray | float]:
        video, v_stats = self._pooled_video(split)
        image = np.asarray(_load_pickle(self.root / f"{split}_i.pkl"), dtype=np.float32)
        labels = np.asarray(_load_pickle(self.root / f"{split}_label.pkl")).reshape(-1).astype(np.int64)
        labels = labels - self.label_offset
        n = {"video": len(video), "image": len(image), "label": len(labels)}
        if len(set(n.values())) != 1:
            raise UserError(f"ActivityNet split '{split}' has different numbers of rows per file: {n}")
        for m, x in (("image", image), ("video", video)):
            if tuple(x.shape[1:]) != tuple(self.input_shapes[m]):
                raise UserError(
                    f"ActivityNet {m} features of split '{split}' have shape {tuple(x.shape)}, expected "
                    f"[N, {', '.join(map(str, self.input_shapes[m]))}]; set data.{m}_dim to match"
                )
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise UserError(
                f"ActivityNet labels of split '{split}' span {labels.min() + self.label_offset}.."
                f"{labels.max() + self.label_offset} (stored minus data.label_offset={self.label_offset}), "
                f"outside 0..{self.num_classes - 1}; set data.num_classes / data.label_offset"
            )
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

