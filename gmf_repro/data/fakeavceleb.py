"""FakeAVCeleb v1.2 (docs/paper.md §2, §7): real/fake detection over the four category folders and ``meta_data.csv``.

Each clip has a label per stream (docs/paper.md §2.7): its audio is fake in categories B and D, its video in
C and D, the clip when either is. ``data.label_by`` names the one a run learns (``label``); every batch also
carries all three as ``label_clip``, ``label_audio`` and ``label_video``: every test condition is scored against
each, and the feature store keeps them.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from gmf_repro.data.cache import CacheReader, ClipRef
from gmf_repro.data.clip_base import MEDIA_MODALITIES, AVClipDataModule
from gmf_repro.data.contract import LABEL_PREFIX
from gmf_repro.data.csv_rows import read_csv_rows

CATEGORIES = ("RealVideo-RealAudio", "RealVideo-FakeAudio", "FakeVideo-RealAudio", "FakeVideo-FakeAudio")
LETTERS = {"A": 0, "B": 1, "C": 2, "D": 3}
# category -> (audio fake, video fake): A real/real, B fake audio, C fake video, D both (docs/paper.md §2.7)
FAKE_STREAMS = {0: (0, 0), 1: (1, 0), 2: (0, 1), 3: (1, 1)}
LABEL_KINDS = ("clip", "audio", "video")


def stream_labels(category: int) -> dict[str, int]:
    """``{"clip", "audio", "video"}`` -> 0 real / 1 fake for a category (0-3); a clip is fake when either stream is."""
    audio, video = FAKE_STREAMS[category]
    return {"clip": int(audio or video), "audio": audio, "video": video}


class _Listed(NamedTuple):
    rel: str        # path relative to the root: the clip's key
    path: Path
    race: str       # the race folder (<category>/<race>/...), else meta_data.csv's race column
    identity: str   # the id##### folder
    row: int        # position in meta_data.csv


# How "sort each class" orders a category before its first 70% go to train (docs/paper.md §2; docs/data.md).
SORT_KEYS: dict[str, Callable[[_Listed], Any]] = {
    # the relative path: <race>/<gender>/id#####/<file>; whole race folders land in train or in test
    "path": lambda c: c.rel,
    # the identity folder, then the path: an identity's clips stay together (but at the cut); race folders mix
    "identity": lambda c: (c.identity, c.rel),
    # meta_data.csv's row order
    "meta": lambda c: c.row,
}


def _resolve(root: Path, folder: str, name: str) -> Path:
    """meta_data.csv's folder column starts with ``FakeAVCeleb/`` while the zip unpacks to ``FakeAVCeleb_v1.2/``:
    accept the folder as written, or with its first component dropped (relative to ``root``)."""
    folder_path = Path(folder.replace("\\", "/"))
    first = root / folder_path / name
    if first.exists() or len(folder_path.parts) < 2:
        return first
    return root.joinpath(*folder_path.parts[1:]) / name


class FakeAVCelebDataModule(AVClipDataModule):
    """Label 0 = real, 1 = fake, of the stream ``label_by`` names: ``clip`` (default; fake = any category but
    RealVideo-RealAudio), ``audio`` (fake = B, D) or ``video`` (fake = C, D). The cache keeps the clip label and
    the category (0-3) per clip, so one cache serves every ``label_by``.

    Split (docs/paper.md §2): sort each category's clips by ``sort_key`` (see ``SORT_KEYS``; default ``path``, the
    plain file-list sort), first ``floor(train_fraction * n)`` to train. ``describe_split`` gives the
    make-up of both splits per category and per race folder (printed at setup, stored in results.json).
    """

    name = "fakeavceleb"

    def __init__(self, root: str, modalities: Sequence[str] = MEDIA_MODALITIES, *, meta_file: str = "meta_data.csv",
                 train_fraction: float = 0.7, sort_key: str = "path", label_by: str = "clip", **kw) -> None:
        if label_by not in LABEL_KINDS:
            raise ValueError(f"data.label_by={label_by!r}; use one of {list(LABEL_KINDS)} (the stream whose "
                             f"real/fake label the run learns)")
        super().__init__(root, modalities, **kw)
        self.meta_path = self.root / meta_file
        if not self.meta_path.is_file():
            raise FileNotFoundError(f"{self.meta_path} not found; point data.root= at the FakeAVCeleb_v1.2 folder "
                                    f"(the one with meta_data.csv)")
        self.train_fraction = float(train_fraction)
        if sort_key not in SORT_KEYS:
            raise ValueError(f"data.sort_key={sort_key!r}; use one of {sorted(SORT_KEYS)}")
        self.sort_key = sort_key
        self.label_by = label_by
        self.label_kinds = LABEL_KINDS
        self.classes = ["real", "fake"]
        self.num_classes = 2

    def list_clips(self) -> list[ClipRef]:
        by_cat: dict[int, dict[str, _Listed]] = defaultdict(dict)
        (_, header), *rows = read_csv_rows(self.meta_path)
        cols = {h: i for i, h in enumerate(header)}
        for key in ("category", "path"):
            if key not in cols:
                raise ValueError(f"{self.meta_path}: column '{key}' missing; "
                                 f"expected FakeAVCeleb v1.2's meta_data.csv")
        folder_col = len(header) - 1  # the unnamed last column holds the folder
        for row, (_, r) in enumerate(rows):
            cat = LETTERS.get(r[cols["category"]].strip())
            if cat is None:
                raise ValueError(f"{self.meta_path}: unknown category {r[cols['category']]!r} (expected A-D)")
            path = _resolve(self.root, r[folder_col], r[cols["path"]])
            rel = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
            parts = Path(rel).parts
            race = parts[1] if len(parts) >= 5 else (r[cols["race"]] if "race" in cols else "?")
            identity = parts[-2] if len(parts) >= 2 else ""
            by_cat[cat].setdefault(rel, _Listed(rel, path, race, identity, row))
        clips = []
        for cat in sorted(by_cat):
            items = sorted(by_cat[cat].values(), key=SORT_KEYS[self.sort_key])
            n_train = int(self.train_fraction * len(items) + 1e-9)  # "first 70%": floor
            for j, c in enumerate(items):
                split = "train" if j < n_train else "test"
                clips.append(ClipRef(key=c.rel, path=str(c.path), label=stream_labels(cat)["clip"], split=split,
                                     extra={"category": cat, "race": c.race}))
        return clips

    def item_labels(self, reader: CacheReader) -> dict[str, np.ndarray]:
        """``label`` (the ``label_by`` stream's) and ``label_clip``, ``label_audio``, ``label_video`` per cached clip,
        from the category the cache keeps."""
        per_clip = [stream_labels(int(extra["category"])) for extra in reader.extra]
        kinds = {k: np.array([c[k] for c in per_clip], dtype=np.int64) for k in LABEL_KINDS}
        return {"label": kinds[self.label_by], **{f"{LABEL_PREFIX}{k}": v for k, v in kinds.items()}}

    def describe_split(self, keys: dict[str, Sequence[str]] | None = None) -> dict[str, Any]:
        """Clips per category and per race folder in each split: of the cache's kept clips, or of ``keys``
        (split -> clip keys, e.g. a feature store's)."""
        if keys is None:
            keys = {split: self.split_keys(split) for split in ("train", "test")}
        listed = {c.key: c for c in self.list_clips()}
        cats = sorted({c.extra["category"] for c in listed.values()})
        races = sorted({c.extra["race"] for c in listed.values()})
        out: dict[str, Any] = {"dataset": self.name, "sort_key": self.sort_key, "train_fraction": self.train_fraction}
        for split, split_keys in keys.items():
            clips = [listed[k] for k in split_keys if k in listed]
            n_cat = Counter(c.extra["category"] for c in clips)
            n_race = Counter(c.extra["race"] for c in clips)
            out[split] = {"clips": len(clips), "category": {CATEGORIES[i]: n_cat[i] for i in cats},
                          "race": {r: n_race[r] for r in races}}
        return out

    def setup(self, stage: str | None = None) -> None:
        first = self.train_set is None
        super().setup(stage)
        if first:
            print(split_line(self.describe_split()))


def split_line(summary: dict[str, Any]) -> str:
    """One line: the test set's make-up per category and per race folder."""
    test = summary["test"]
    cats = ", ".join(f"{k} {v}" for k, v in test["category"].items())
    races = ", ".join(f"{k} {v}" for k, v in test["race"].items())
    return (f"{summary['dataset']} split (sort key '{summary['sort_key']}', first {summary['train_fraction']:.0%} "
            f"of each category to train): test {test['clips']} clips; by category: {cats}; by race folder: {races}")
