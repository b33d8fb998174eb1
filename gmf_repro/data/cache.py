"""Decode every clip once into fixed-shape, memory-mapped shards (DESIGN.md, "Performance design").

Layout of a cache folder::

    meta.json                          media spec, shard count, clip count, array shapes/dtypes
    shard-00003-of-00040/video.u8      kept clips' frames, uint8 [n, T, H, W, 3], raw bytes
    shard-00003-of-00040/audio.i16     kept clips' waveform, int16 [n, S]
    shard-00003-of-00040/clips.csv     every clip of the shard: key, split, label, status, row
    shard-00003-of-00040/DONE          written last: a rerun skips shards that have it
    manifest.csv, manifest.json        every clip with kept / drop reason, and the counts

Shards are contiguous slices of the clip list, so ``--shard i --num-shards n`` splits the work
over an array job; whichever job finishes last writes the manifest (or the first reader does).
"""
from __future__ import annotations

import csv
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from gmf_repro.data.media import DROP_REASONS, ClipError, MediaSpec, decode_clip

KEPT = "kept"
CLIPS_PER_SHARD = 5000  # ~4 GB per VGGSound shard; a shard is the unit of resumption


@dataclass(frozen=True)
class ClipRef:
    """One listed clip: a stable ``key``, where it should be, and its label and split."""

    key: str
    path: str
    label: int
    split: str
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def shard_name(i: int, n: int) -> str:
    return f"shard-{i:05d}-of-{n:05d}"


def default_num_shards(n_clips: int) -> int:
    return max(1, math.ceil(n_clips / CLIPS_PER_SHARD))


def shard_slices(n_clips: int, num_shards: int) -> list[range]:
    """Contiguous, near-equal slices of the clip list."""
    bounds = np.linspace(0, n_clips, num_shards + 1).round().astype(int)
    return [range(int(bounds[i]), int(bounds[i + 1])) for i in range(num_shards)]


def _meta(clips: Sequence[ClipRef], spec: MediaSpec, num_shards: int, extra: dict | None) -> dict:
    return {
        "version": 1,
        "spec": asdict(spec),
        "num_shards": num_shards,
        "num_clips": len(clips),
        "video": {"dtype": "uint8", "shape": list(spec.video_shape())},
        "audio": {"dtype": "int16", "shape": list(spec.audio_shape())},
        "extra": extra or {},
    }


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _check_meta(cache_dir: Path, meta: dict) -> None:
    """Refuse to mix shards made with other settings: they would silently give wrong shapes."""
    path = cache_dir / "meta.json"
    meta = json.loads(json.dumps(meta))  # tuples -> lists, as read back from disk
    if path.exists():
        old = json.loads(path.read_text())
        keys = ("spec", "num_shards", "num_clips")
        if {k: old.get(k) for k in keys} != {k: meta[k] for k in keys}:
            raise RuntimeError(
                f"cache {cache_dir} was built with other settings (spec/shards/clip count differ); "
                f"delete it or set data.cache_dir to a new folder")
    else:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_json(path, meta)


def _decode(args: tuple[str, MediaSpec]) -> tuple[str, bytes, bytes]:
    path, spec = args
    try:
        video, audio = decode_clip(path, spec)
    except ClipError as exc:
        return exc.reason, b"", b""
    return KEPT, video.tobytes(), audio.tobytes()


def pool_context() -> mp.context.BaseContext:
    """fork (fast start) unless CUDA is already running in this process: a child forked after CUDA
    started cannot use it and can hang in the driver. Lightning picks the GPU before it calls
    ``prepare_data``, so a cache built inside a training run decodes in spawned processes."""
    torch = sys.modules.get("torch")
    cuda_started = torch is not None and torch.cuda.is_initialized()
    return mp.get_context("spawn" if cuda_started else "fork")


def _iter_decoded(jobs: list[tuple[str, MediaSpec]], workers: int) -> Iterator[tuple[str, bytes, bytes]]:
    if workers <= 1:
        yield from map(_decode, jobs)
        return
    with pool_context().Pool(workers) as pool:
        yield from pool.imap(_decode, jobs, chunksize=4)


def build_shard(clips: Sequence[ClipRef], spec: MediaSpec, cache_dir: Path, shard: int, num_shards: int,
                workers: int = 1, progress=None) -> Counter:
    """Decode one shard (skipped when its DONE marker exists); returns its status counts."""
    out = cache_dir / shard_name(shard, num_shards)
    if (out / "DONE").exists():
        return Counter(row["status"] for row in _read_clips_csv(out))
    if out.exists():  # an interrupted attempt: start the shard over
        shutil.rmtree(out)
    tmp = cache_dir / (shard_name(shard, num_shards) + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sl = shard_slices(len(clips), num_shards)[shard]
    jobs = [(clips[i].path, spec) for i in sl]
    counts: Counter = Counter()
    rows = []
    kept = 0
    with open(tmp / "video.u8", "wb") as fv, open(tmp / "audio.i16", "wb") as fa:
        for i, (status, vbytes, abytes) in zip(sl, _iter_decoded(jobs, workers)):
            c = clips[i]
            row = -1
            if status == KEPT:
                fv.write(vbytes)
                fa.write(abytes)
                row, kept = kept, kept + 1
            counts[status] += 1
            rows.append({"key": c.key, "split": c.split, "label": c.label, "status": status, "row": row,
                         "path": c.path, "extra": json.dumps(c.extra, sort_keys=True)})
            if progress is not None:
                progress()
    with open(tmp / "clips.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["key", "split", "label", "status", "row", "path", "extra"])
        w.writeheader()
        w.writerows(rows)
    (tmp / "DONE").write_text(json.dumps(dict(counts)))
    os.replace(tmp, out)
    return counts


def _read_clips_csv(shard_dir: Path) -> list[dict]:
    with open(shard_dir / "clips.csv", newline="") as f:
        return list(csv.DictReader(f))


def summary_line(counts: Counter | dict, total: int) -> str:
    """'kept N of M clips (K missing, J corrupt, I without audio, H without video)'."""
    words = {"missing": "missing", "corrupt": "corrupt", "no_audio": "without audio", "no_video": "without video"}
    parts = ", ".join(f"{counts.get(r, 0)} {words[r]}" for r in DROP_REASONS)
    return f"kept {counts.get(KEPT, 0)} of {total} clips ({parts})"


def finalize(cache_dir: Path) -> dict | None:
    """Write manifest.csv/json once every shard is done; returns the counts (None if shards are missing)."""
    meta = json.loads((cache_dir / "meta.json").read_text())
    n = meta["num_shards"]
    dirs = [cache_dir / shard_name(i, n) for i in range(n)]
    if not all((d / "DONE").exists() for d in dirs):
        return None
    manifest = cache_dir / "manifest.json"
    if manifest.exists():
        return json.loads(manifest.read_text())
    counts: Counter = Counter()
    by_split: dict[str, Counter] = {}
    tmp = cache_dir / f"manifest.csv.tmp{os.getpid()}"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "split", "label", "status", "path"])
        for d in dirs:
            for r in _read_clips_csv(d):
                counts[r["status"]] += 1
                by_split.setdefault(r["split"], Counter())[r["status"]] += 1
                w.writerow([r["key"], r["split"], r["label"], r["status"], r["path"]])
    os.replace(tmp, cache_dir / "manifest.csv")
    total = sum(counts.values())
    out = {"total": total, "counts": {k: counts.get(k, 0) for k in (KEPT, *DROP_REASONS)},
           "by_split": {s: dict(c) for s, c in sorted(by_split.items())}, "summary": summary_line(counts, total)}
    _write_json(manifest, out)
    return out


def build_cache(clips: Sequence[ClipRef], spec: MediaSpec, cache_dir: str | Path, *, num_shards: int | None = None,
                shards: Sequence[int] | None = None, workers: int = 1, extra_meta: dict | None = None,
                show_progress: bool = True) -> dict | None:
    """Decode ``clips`` into ``cache_dir`` (all shards, or only ``shards``); resumable.

    Returns the manifest once every shard is done, else None."""
    cache_dir = Path(cache_dir)
    if not clips:
        raise ValueError("no clips listed: check data.root and the dataset's list file")
    num_shards = num_shards or default_num_shards(len(clips))
    _check_meta(cache_dir, _meta(clips, spec, num_shards, extra_meta))
    todo = list(range(num_shards)) if shards is None else list(shards)
    for s in todo:
        if not 0 <= s < num_shards:
            raise ValueError(f"--shard {s} is outside 0..{num_shards - 1} (--num-shards {num_shards})")
    slices = shard_slices(len(clips), num_shards)
    pending = [s for s in todo if not (cache_dir / shard_name(s, num_shards) / "DONE").exists()]
    if show_progress and pending:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("decoding clips"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
            task = bar.add_task("decode", total=sum(len(slices[s]) for s in pending))
            for s in pending:
                build_shard(clips, spec, cache_dir, s, num_shards, workers, progress=lambda: bar.advance(task))
    else:
        for s in pending:
            build_shard(clips, spec, cache_dir, s, num_shards, workers)
    return finalize(cache_dir)


class CacheReader:
    """Random access to the kept clips of one split; opens the memory maps lazily in each process."""

    def __init__(self, cache_dir: str | Path, split: str | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.meta = json.loads((self.cache_dir / "meta.json").read_text())
        n = self.meta["num_shards"]
        self.shard_dirs = [self.cache_dir / shard_name(i, n) for i in range(n)]
        missing = [d.name for d in self.shard_dirs if not (d / "DONE").exists()]
        if missing:
            raise RuntimeError(f"cache {self.cache_dir} is incomplete ({len(missing)} shards missing, "
                               f"e.g. {missing[0]}); "
                               f"run scripts/preprocess.py for them or rerun to resume")
        self.video_shape = tuple(self.meta["video"]["shape"])
        self.audio_shape = tuple(self.meta["audio"]["shape"])
        self.shard_sizes: list[int] = []
        items = []
        for s, d in enumerate(self.shard_dirs):
            rows = _read_clips_csv(d)
            kept = [r for r in rows if r["status"] == KEPT]
            self.shard_sizes.append(len(kept))
            items += [(s, int(r["row"]), r) for r in kept if split is None or r["split"] == split]
        self.locations = np.array([(s, r) for s, r, _ in items], dtype=np.int64).reshape(-1, 2)
        self.labels = np.array([int(r["label"]) for _, _, r in items], dtype=np.int64)
        self.keys = [r["key"] for _, _, r in items]
        self.extra = [json.loads(r["extra"]) for _, _, r in items]
        self._maps: dict[int, tuple[np.memmap, np.memmap]] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"] = None  # never pickle the maps into loader workers: each worker reopens them
        return state

    def _open(self, s: int) -> tuple[np.memmap, np.memmap]:
        if self._maps is None:
            self._maps = {}
        if s not in self._maps:
            n, d = self.shard_sizes[s], self.shard_dirs[s]
            if n == 0:
                self._maps[s] = (np.zeros((0, *self.video_shape), np.uint8), np.zeros((0, *self.audio_shape), np.int16))
            else:
                self._maps[s] = (np.memmap(d / "video.u8", np.uint8, "r", shape=(n, *self.video_shape)),
                                 np.memmap(d / "audio.i16", np.int16, "r", shape=(n, *self.audio_shape)))
        return self._maps[s]

    def video(self, i: int) -> np.ndarray:
        s, r = self.locations[i]
        return np.array(self._open(int(s))[0][r])

    def audio(self, i: int) -> np.ndarray:
        s, r = self.locations[i]
        return np.array(self._open(int(s))[1][r])
