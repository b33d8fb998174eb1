"""Your own clips (``data=clips``): a CSV ``path,label[,split]`` and a folder of audio-video files.

Read through the same decode-once cache, drop handling and manifest as VGGSound (data/clip_base.py,
data/cache.py), so the media settings and extractor configs of ``data=vggsound`` apply unchanged.
``path`` is relative to ``data.root`` (or absolute); ``label`` is any string; ``split`` is ``train``,
``val`` or ``test``. Without a split column, train / test (and val with ``data.val_fraction``) are
made from ``data.seed``, stratified by class (data/splits.py). A clip needs both an audio and a video
stream (the cache drops the others and counts them in its manifest).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserError
from .cache import CacheReader, ClipRef
from .clip_base import MEDIA_MODALITIES, AVClipDataModule, ClipDataset
from .csv_rows import read_csv_rows
from .splits import stratified_split

SPLIT_NAMES = ("train", "val", "test")


def read_clip_list(path: Path) -> list[tuple[str, str, str | None]]:
    """Rows ``(path, label, split or None)``; an optional header line ``path,label[,split]`` is skipped."""
    rows: list[tuple[str, str, str | None]] = []
    for lineno, fields in read_csv_rows(path):
        r = [c.strip() for c in fields]
        if lineno == 1 and [c.lower() for c in r[:2]] == ["path", "label"]:
            continue
        if len(r) not in (2, 3) or not r[0] or not r[1]:
            raise UserError(f"{path}:{lineno}: expected 'path,label[,split]', got {len(r)} fields; "
                            f"fix that row (quote a label that holds a comma)")
        split = r[2].lower() if len(r) == 3 and r[2] else None
        if split is not None and split not in SPLIT_NAMES:
            raise UserError(f"{path}:{lineno}: split '{r[2]}' is not one of {list(SPLIT_NAMES)}; fix that row")
        rows.append((r[0], r[1], split))
    if not rows:
        raise UserError(f"{path} lists no clips; write one 'path,label[,split]' row per clip")
    return rows


class ClipsDataModule(AVClipDataModule):
    """Audio-video classification over a user's clip list; classes = the sorted train label strings."""

    name = "clips"

    def __init__(self, root: str, modalities: Sequence[str] = MEDIA_MODALITIES, *, csv_file: str = "clips.csv",
                 test_fraction: float = 0.2, val_fraction: float = 0.0, seed: int = 1, **kw) -> None:
        super().__init__(root, modalities, **kw)
        self.csv_path = self.root / os.path.expanduser(csv_file)
        if not self.csv_path.is_file():
            raise UserError(f"{self.csv_path} not found; write a CSV 'path,label[,split]' there or set data.csv_file=")
        rows = read_clip_list(self.csv_path)
        given = [s for _, _, s in rows]
        if any(s is None for s in given) and any(s is not None for s in given):
            raise UserError(f"{self.csv_path}: some rows have a split and others do not; give every row one "
                            f"or none (then data.test_fraction splits them)")
        labels = np.array([label for _, label, _ in rows])
        if given[0] is None:
            splits = stratified_split(labels, int(seed), float(test_fraction), float(val_fraction))
        else:
            splits = np.array(given)
            if float(val_fraction) > 0:
                if (splits == "val").any():
                    raise UserError(f"{self.csv_path} has val rows and data.val_fraction={val_fraction}; "
                                    f"use one: data.val_fraction=0 or drop the val rows")
                train = np.flatnonzero(splits == "train")
                carved = stratified_split(labels[train], int(seed), 0.0, float(val_fraction))
                splits[train[carved == "val"]] = "val"
        if not (splits == "test").any():
            raise UserError(f"{self.csv_path}: no test clip; mark some rows 'test' or set data.test_fraction")
        self.classes = sorted(set(labels[splits == "train"].tolist()))
        unseen = sorted(set(labels.tolist()) - set(self.classes))
        if unseen:
            raise UserError(f"{self.csv_path}: labels {unseen[:5]} occur only outside train; give every class "
                            f"train clips or drop those rows")
        self.num_classes = len(self.classes)
        index = {c: i for i, c in enumerate(self.classes)}
        self.clips = [ClipRef(key=p, path=str(self.root / os.path.expanduser(p)), label=index[label], split=str(s))
                      for (p, label, _), s in zip(rows, splits)]
        self.has_val = bool((splits == "val").any())
        self.val_set: ClipDataset | None = None

    def list_clips(self) -> list[ClipRef]:
        return list(self.clips)

    def extra_meta(self) -> dict:
        return {"dataset": self.name, "classes": self.classes, "csv": str(self.csv_path)}

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        super().setup(stage)
        if self.has_val:
            self.val_set = ClipDataset(CacheReader(self.cache_dir, "val"), self.modalities)
        self._check_cache_matches_list()

    def _check_cache_matches_list(self) -> None:
        """The cache stores each clip's label and split as listed when it was built: refuse a cache whose
        clips are labelled or split otherwise than the CSV and ``data.seed`` / fractions say now."""
        want = {c.key: (c.label, c.split) for c in self.clips}
        for split, ds in (("train", self.train_set), ("val", self.val_set), ("test", self.test_set)):
            if ds is None:
                continue
            reader = ds.source
            if any(want.get(k) != (int(y), split) for k, y in zip(reader.keys, reader.labels)):
                raise UserError(f"cache {self.cache_dir} holds labels or splits other than {self.csv_path} with "
                                f"this data.seed / data.*_fraction; set data.cache_dir to a new folder or delete it")

    def val_dataloader(self):
        if not self.has_val:
            return []
        self.setup()
        return self._loader(self.val_set, False, self.eval_batch_size)
