"""VGGSound (docs/paper.md §2, §7): ``vggsound.csv`` + a folder of clips, read through the decode-once cache."""
from __future__ import annotations

import math
from typing import Sequence

from gmf_repro.data.cache import ClipRef, canonical_split
from gmf_repro.data.clip_base import MEDIA_MODALITIES, AVClipDataModule
from gmf_repro.data.csv_rows import read_csv_rows
from gmf_repro.errors import UserError


def read_vggsound_csv(path) -> list[tuple[str, int, str, str]]:
    """Rows (ytid, start seconds, label, split) of ``vggsound.csv``; the split name as in ``canonical_split``.

    The official file has no header; a first line whose start column is not a number is taken as one.
    Errors name ``file:line`` and never print the file's contents."""
    rows = []
    for lineno, r in read_csv_rows(path):
        if len(r) < 4:
            raise UserError(f"{path}:{lineno}: expected 4 fields 'ytid,start,label,split', got {len(r)}")
        ytid, start, label, split = r[0].strip(), r[1].strip(), ",".join(r[2:-1]).strip(), r[-1]
        try:
            start_s = float(start)
        except ValueError:
            start_s = math.nan
        if not math.isfinite(start_s):
            if lineno == 1 and not rows:
                continue  # a header line
            raise UserError(f"{path}:{lineno}: the start second (2nd field) is not a number") from None
        if start_s != int(start_s):
            raise UserError(f"{path}:{lineno}: the start second (2nd field) is not a whole number")
        if not ytid or not label:
            raise UserError(f"{path}:{lineno}: empty {'ytid' if not ytid else 'label'} field")
        rows.append((ytid, int(start_s), label, canonical_split(split)))
    return rows


class VGGSoundDataModule(AVClipDataModule):
    """Audio-video event classification over VGGSound's own train/test split; 309 classes (sorted label strings).

    ``filename_template`` names a clip inside ``clips_dir`` from ``ytid``, ``start``, ``end``
    (start + 10), ``split`` and ``label``; see docs/data.md for which download script gives which.
    """

    name = "vggsound"

    def __init__(self, root: str, modalities: Sequence[str] = MEDIA_MODALITIES, *, csv_file: str = "vggsound.csv",
                 clips_dir: str = "video", filename_template: str = "{ytid}_{start:06d}.mp4", **kw) -> None:
        super().__init__(root, modalities, **kw)
        self.csv_path = self.root / csv_file
        if not self.csv_path.is_file():
            raise FileNotFoundError(f"{self.csv_path} not found; put VGGSound's vggsound.csv there "
                                    f"or set data.csv_file=")
        self.clips_dir, self.filename_template = clips_dir, filename_template
        self.rows = read_vggsound_csv(self.csv_path)
        self.classes = sorted({r[2] for r in self.rows})
        self.num_classes = len(self.classes)

    def list_clips(self) -> list[ClipRef]:
        index = {c: i for i, c in enumerate(self.classes)}
        base = self.root / self.clips_dir
        clips = []
        for ytid, start, label, split in self.rows:
            try:
                name = self.filename_template.format(ytid=ytid, start=start, end=start + 10, split=split, label=label)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"data.filename_template={self.filename_template!r} cannot be filled ({exc}); "
                                 f"use the fields ytid, start, end, split, label") from exc
            clips.append(ClipRef(key=f"{ytid}_{start}", path=str(base / name), label=index[label], split=split))
        return clips

    def extra_meta(self) -> dict:
        return {"dataset": self.name, "classes": self.classes}
