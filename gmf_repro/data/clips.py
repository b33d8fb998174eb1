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
import sys
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from ..errors import UserError
from .cache import CacheReader, ClipRef
from .clip_base import MEDIA_MODALITIES, AVClipDataModule, ClipDataset
from .csv_rows import read_csv_rows
from .splits import check_fractions, empty_split_message, stratified_split, train_classes

SPLIT_NAMES = ("train", "val", "test")


class ClipRow(NamedTuple):
    line: int
    path: str
    label: str
    split: str | None


def read_clip_list(path: Path) -> list[ClipRow]:
    """Rows ``(line, path, label, split or None)``; an optional header line ``path,label[,split]`` is skipped."""
    rows: list[ClipRow] = []
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
        rows.append(ClipRow(lineno, r[0], r[1], split))
    if not rows:
        raise UserError(f"{path} lists no clips; write one 'path,label[,split]' row per clip")
    return rows


def drop_repeats(rows: list[ClipRow], path: Path, root: Path) -> tuple[list[ClipRow], list[tuple[int, int]]]:
    """The rows without repeats of an earlier row, and ``(line, line it repeats)`` per dropped row.

    Two rows name the same clip when their paths lead to the same file name under ``root`` (``a.mp4`` and
    ``./a.mp4``). A repeat with the same label and split adds nothing and is dropped (the caller counts it);
    one with another label or split is an error naming both lines: which one is right is the user's to say.
    Labels and paths are not printed (they may be private)."""
    first: dict[str, ClipRow] = {}
    kept, repeats = [], []
    for row in rows:
        where = os.path.normpath(root / os.path.expanduser(row.path))
        seen = first.setdefault(where, row)
        if seen is row:
            kept.append(row)
        elif (seen.label, seen.split) == (row.label, row.split):
            repeats.append((row.line, seen.line))
        else:
            other = "label" if seen.label != row.label else "split"
            raise UserError(f"{path}:{row.line}: lists the clip of line {seen.line} again with another {other}; "
                            f"keep one row per clip (delete the wrong one)")
    return kept, repeats


class ClipsDataModule(AVClipDataModule):
    """Audio-video classification over a user's clip list; classes = the sorted train label strings."""

    name = "clips"

    def __init__(self, root: str, modalities: Sequence[str] = MEDIA_MODALITIES, *, csv_file: str = "clips.csv",
                 test_fraction: float = 0.2, val_fraction: float = 0.0, seed: int = 1, **kw) -> None:
        super().__init__(root, modalities, **kw)
        self.csv_path = self.root / os.path.expanduser(csv_file)
        if not self.csv_path.is_file():
            raise UserError(f"{self.csv_path} not found; write a CSV 'path,label[,split]' there or set data.csv_file=")
        rows, repeats = drop_repeats(read_clip_list(self.csv_path), self.csv_path, self.root)
        self.repeated_rows = repeats  # (line, line it repeats) per dropped row
        if repeats:
            named = ", ".join(f"line {a} repeats line {b}" for a, b in repeats[:3]) + (", ..." * (len(repeats) > 3))
            print(f"warning: {self.csv_path}: {len(repeats)} repeated row(s) dropped ({named}); delete them from "
                  f"the file to silence this", file=sys.stderr)
        given = [s for *_, s in rows]
        if any(s is None for s in given) and any(s is not None for s in given):
            raise UserError(f"{self.csv_path}: some rows have a split and others do not; give every row one "
                            f"or none (then data.test_fraction splits them)")
        labels = np.array([r.label for r in rows])
        test_fraction, val_fraction = check_fractions(test_fraction, val_fraction)
        if given[0] is None:
            splits = stratified_split(labels, int(seed), test_fraction, val_fraction)
            for name, fraction in (("test", test_fraction), ("val", val_fraction)):
                self._check_split(splits, labels, name, fraction)
        else:
            splits = np.array(given)
            if val_fraction > 0:
                if (splits == "val").any():
                    raise UserError(f"{self.csv_path} has val rows and data.val_fraction={val_fraction}; "
                                    f"use one: data.val_fraction=0 or drop the val rows")
                train = np.flatnonzero(splits == "train")
                carved = stratified_split(labels[train], int(seed), 0.0, val_fraction)
                splits[train[carved == "val"]] = "val"
                self._check_split(splits, labels[train], "val", val_fraction)
        if not (splits == "test").any():
            raise UserError(f"{self.csv_path}: no test clip; mark some rows 'test' or set data.test_fraction")
        by_split = {str(s): labels[splits == s] for s in np.unique(splits)}
        self.classes = train_classes(by_split, dict.fromkeys(SPLIT_NAMES, str(self.csv_path)), "clips")
        self.num_classes = len(self.classes)
        index = {c: i for i, c in enumerate(self.classes)}
        self.lines = {r.path: r.line for r in rows}  # a clip's key -> its line in the list file
        self.clips = [ClipRef(key=r.path, path=str(self.root / os.path.expanduser(r.path)), label=index[r.label],
                              split=str(s)) for r, s in zip(rows, splits)]
        self.has_val = bool((splits == "val").any())
        self.val_set: ClipDataset | None = None

    def _check_split(self, splits: np.ndarray, labels: np.ndarray, name: str, fraction: float) -> None:
        """A split asked for (fraction > 0) that ``stratified_split`` had to leave empty (too few of ``labels``,
        the clips it was drawn from)."""
        if fraction > 0 and not (splits == name).any():
            raise UserError(f"{self.csv_path}: {empty_split_message(labels, name, fraction)}")

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
            for key, y in zip(reader.keys, reader.labels):
                if want.get(key) != (int(y), split):
                    now = (f"{self.csv_path}:{self.lines[key]} puts it in {want[key][1]} as class {want[key][0]}"
                           if key in want else f"{self.csv_path} does not list it")
                    raise UserError(f"cache {self.cache_dir} holds a clip in {split} as class {int(y)}, but {now} "
                                    f"(with this data.seed / data.*_fraction); set data.cache_dir to a new folder "
                                    f"or delete that one")

    def val_dataloader(self):
        if not self.has_val:
            return []
        self.setup()
        return self._loader(self.val_set, False, self.eval_batch_size)
