"""FakeAVCeleb v1.2 (SPEC §2, §7): real/fake detection over the four category folders and ``meta_data.csv``."""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from gmf_repro.data.cache import ClipRef
from gmf_repro.data.clips import MEDIA_MODALITIES, AVClipDataModule

CATEGORIES = ("RealVideo-RealAudio", "RealVideo-FakeAudio", "FakeVideo-RealAudio", "FakeVideo-FakeAudio")
LETTERS = {"A": 0, "B": 1, "C": 2, "D": 3}


def _resolve(root: Path, folder: str, name: str) -> Path:
    """meta_data.csv's folder column starts with ``FakeAVCeleb/`` while the zip unpacks to ``FakeAVCeleb_v1.2/``:
    accept the folder as written, or with its first component dropped (relative to ``root``)."""
    folder_path = Path(folder.replace("\\", "/"))
    first = root / folder_path / name
    if first.exists() or len(folder_path.parts) < 2:
        return first
    return root.joinpath(*folder_path.parts[1:]) / name


class FakeAVCelebDataModule(AVClipDataModule):
    """Label 0 = real (RealVideo-RealAudio), 1 = fake (any other category); the category (0-3) is kept per clip.

    Split (SPEC §2): sort each category's clips by path, first ``train_fraction`` to train.
    """

    name = "fakeavceleb"

    def __init__(self, root: str, modalities: Sequence[str] = MEDIA_MODALITIES, *, meta_file: str = "meta_data.csv",
                 train_fraction: float = 0.7, **kw) -> None:
        super().__init__(root, modalities, **kw)
        self.meta_path = self.root / meta_file
        if not self.meta_path.is_file():
            raise FileNotFoundError(f"{self.meta_path} not found; point data.root= at the FakeAVCeleb_v1.2 folder "
                                    f"(the one with meta_data.csv)")
        self.train_fraction = float(train_fraction)
        self.classes = ["real", "fake"]
        self.num_classes = 2

    def list_clips(self) -> list[ClipRef]:
        by_cat: dict[int, list[tuple[str, Path]]] = defaultdict(list)
        with open(self.meta_path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            cols = {h: i for i, h in enumerate(header)}
            for key in ("category", "path"):
                if key not in cols:
                    raise ValueError(f"{self.meta_path}: column '{key}' missing; "
                                     f"expected FakeAVCeleb v1.2's meta_data.csv")
            folder_col = len(header) - 1  # the unnamed last column holds the folder
            for r in reader:
                if not r:
                    continue
                cat = LETTERS.get(r[cols["category"]].strip())
                if cat is None:
                    raise ValueError(f"{self.meta_path}: unknown category {r[cols['category']]!r} (expected A-D)")
                path = _resolve(self.root, r[folder_col], r[cols["path"]])
                rel = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
                by_cat[cat].append((rel, path))
        clips = []
        for cat in sorted(by_cat):
            items = sorted(set(by_cat[cat]))
            n_train = int(self.train_fraction * len(items) + 1e-9)  # "first 70%": floor
            for j, (rel, path) in enumerate(items):
                split = "train" if j < n_train else "test"
                clips.append(ClipRef(key=rel, path=str(path), label=int(cat != 0), split=split,
                                     extra={"category": cat}))
        return clips
