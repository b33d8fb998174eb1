"""Decode every clip once into fixed-shape, memory-mapped shards (docs/architecture.md).

Layout of a cache folder::

    meta.json                          media spec, shard count, clip count, clip-list hash, shapes/dtypes
    shard-00003-of-00040/video.u8      kept clips' frames, uint8 [n, T, H, W, 3], raw bytes
    shard-00003-of-00040/audio.i16     kept clips' waveform, int16 [n, S]
    shard-00003-of-00040/clips.csv     every clip of the shard: key, split, label, status, row, path, padded
    shard-00003-of-00040/DONE          written last, after an fsync: clip, kept and byte counts
    shard-00003-of-00040.lock          the shard's fcntl lock: one job builds a shard at a time
    manifest.csv, manifest.json        every clip with kept / drop reason, and the counts

Shards are contiguous slices of the clip list, so ``--shard i --num-shards n`` splits the work
over an array job; whichever job finishes last writes the manifest (or the first reader does).
A job builds a shard in its own ``<shard>.partial-<host>-<pid>`` folder and renames it into place.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from gmf_repro.data import shards as sh
from gmf_repro.data.media import DROP_REASONS, ClipError, MediaSpec, decode_clip
from gmf_repro.data.shards import KEPT, ShardError, ShardLock, read_done, shard_problem, write_durable
from gmf_repro.errors import UserError

SPLITS = ("train", "val", "test")
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test"}
CLIPS_PER_SHARD = 5000  # ~4 GB per VGGSound shard; a shard is the unit of resumption


@dataclass(frozen=True)
class ClipRef:
    """One listed clip: a stable ``key``, where it should be, and its label and split."""

    key: str
    path: str
    label: int
    split: str
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def canonical_split(name: str) -> str:
    """``val``/``validation`` (any case) -> ``val``, etc.; an unknown name is kept as written (and reported)."""
    return SPLIT_NAMES.get(name.strip().lower(), name.strip())


def shard_name(i: int, n: int) -> str:
    return f"shard-{i:05d}-of-{n:05d}"


def default_num_shards(n_clips: int) -> int:
    return max(1, math.ceil(n_clips / CLIPS_PER_SHARD))


def shard_slices(n_clips: int, num_shards: int) -> list[range]:
    """Contiguous, near-equal slices of the clip list."""
    bounds = np.linspace(0, n_clips, num_shards + 1).round().astype(int)
    return [range(int(bounds[i]), int(bounds[i + 1])) for i in range(num_shards)]


def list_digest(clips: Sequence[ClipRef], spec: MediaSpec, root: str | Path | None = None) -> str:
    """sha256 of the clip list (keys, labels, splits, paths relative to ``root``, extras) and the media spec.

    Stored in ``meta.json``; a run compares it with its own list, so an edited list file is never
    read through a cache (or a feature store) made from the old one."""
    h = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode())
    prefix = None if root is None else str(root).rstrip("/") + "/"
    lines = [f"{c.key}\t{_rel(c.path, prefix)}\t{c.label}\t{c.split}\t"
             f"{json.dumps(c.extra, sort_keys=True) if c.extra else ''}\n" for c in clips]
    h.update("".join(lines).encode())
    return h.hexdigest()


def _rel(path: str, prefix: str | None) -> str:
    """A clip path relative to the data root (``prefix``: the root and a slash): a moved root is the same list."""
    return path[len(prefix):] if prefix is not None and path.startswith(prefix) else path


def _prefix(root: str | Path | None) -> str | None:
    return None if root is None else str(root).rstrip("/") + "/"


def _meta(clips: Sequence[ClipRef], spec: MediaSpec, num_shards: int, extra: dict | None,
          root: str | Path | None) -> dict:
    return json.loads(json.dumps({
        "version": 2,
        "spec": asdict(spec),
        "num_shards": num_shards,
        "num_clips": len(clips),
        "root": None if root is None else str(root),
        "list_hash": list_digest(clips, spec, root),
        "video": {"dtype": "uint8", "shape": list(spec.video_shape())},
        "audio": {"dtype": "int16", "shape": list(spec.audio_shape())},
        "extra": extra or {},
    }))  # tuples -> lists, as read back from disk


def _item_bytes(meta: dict) -> tuple[int, int]:
    """Bytes of one clip's frames and of its waveform."""
    return int(np.prod(meta["video"]["shape"])), 2 * int(np.prod(meta["audio"]["shape"]))


def _read_meta(cache_dir: Path) -> dict | None:
    path = cache_dir / "meta.json"
    return json.loads(path.read_text()) if path.exists() else None


def _sync_meta(cache_dir: Path, meta: dict) -> dict | None:
    """Write ``meta.json``, or check it: other media settings or shard counts are refused (they would give
    wrong shapes); another clip list replaces the record (its shards are updated next). Returns the old meta."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with ShardLock(cache_dir / ".meta.lock"):
        old = _read_meta(cache_dir)
        if old is not None:
            if {k: old.get(k) for k in ("spec", "num_shards")} != {k: meta[k] for k in ("spec", "num_shards")}:
                raise UserError(f"cache {cache_dir} was built with other settings (media spec or shard count "
                                f"differ); delete it or set data.cache_dir to a new folder")
            if old.get("list_hash") == meta["list_hash"]:
                if old.get("root") != meta["root"]:  # the same list under a moved root: record where it is now
                    write_durable(cache_dir / "meta.json", json.dumps({**old, "root": meta["root"]}, indent=1,
                                                                      sort_keys=True))
                return old
            print(f"cache {cache_dir}: the clip list (keys, labels, splits or paths) changed since it was built "
                  f"({old.get('num_clips')} -> {meta['num_clips']} clips); updating the shards that differ",
                  file=sys.stderr)
            for name in ("manifest.json", "manifest.csv"):
                (cache_dir / name).unlink(missing_ok=True)
        write_durable(cache_dir / "meta.json", json.dumps(meta, indent=1, sort_keys=True))
        return old


def _decode(args: tuple[str, MediaSpec]) -> tuple[str, bytes, bytes, str]:
    path, spec = args
    info: dict = {}
    try:
        video, audio = decode_clip(path, spec, report=info)
    except ClipError as exc:
        return exc.reason, b"", b"", ""
    padded = "+".join(m for m in ("video", "audio") if info.get(f"{m}_padded"))
    return KEPT, video.tobytes(), audio.tobytes(), padded


def pool_context() -> mp.context.BaseContext:
    """fork (fast start) unless CUDA is already running in this process: a child forked after CUDA
    started cannot use it and can hang in the driver. Lightning picks the GPU before it calls
    ``prepare_data``, so a cache built inside a training run decodes in spawned processes."""
    torch = sys.modules.get("torch")
    cuda_started = torch is not None and torch.cuda.is_initialized()
    return mp.get_context("spawn" if cuda_started else "fork")


def _iter_decoded(jobs: list[tuple[str, MediaSpec]], workers: int) -> Iterator[tuple[str, bytes, bytes, str]]:
    if workers <= 1:
        yield from map(_decode, jobs)
        return
    with pool_context().Pool(workers) as pool:
        yield from pool.imap(_decode, jobs, chunksize=4)


def _listed_row(c: ClipRef) -> dict:
    return {"key": c.key, "split": c.split, "label": str(c.label), "path": c.path,
            "extra": json.dumps(c.extra, sort_keys=True)}


def _lock(cache_dir: Path, shard: int, num_shards: int) -> ShardLock:
    return ShardLock(cache_dir / f"{shard_name(shard, num_shards)}.lock")


def build_shard(clips: Sequence[ClipRef], spec: MediaSpec, cache_dir: Path, shard: int, num_shards: int,
                workers: int = 1, progress=None, *, force: bool = False, root: str | Path | None = None,
                old_root: str | Path | None = None) -> Counter:
    """Decode one shard under its lock (waiting for a job that holds it); returns its status counts."""
    with _lock(Path(cache_dir), shard, num_shards):
        return _build_locked(clips, spec, Path(cache_dir), shard, num_shards, workers, progress, force, root,
                             old_root)


def _build_locked(clips: Sequence[ClipRef], spec: MediaSpec, cache_dir: Path, shard: int, num_shards: int,
                  workers: int, progress, force: bool, root, old_root) -> Counter:
    """Keep a sound finished shard (rewriting its clips.csv if only labels/splits/paths moved); else decode it.

    Call with the shard's lock held."""
    name = shard_name(shard, num_shards)
    out = cache_dir / name
    sl = shard_slices(len(clips), num_shards)[shard]
    listed = [_listed_row(clips[i]) for i in sl]
    vitem, aitem = int(np.prod(spec.video_shape())), 2 * int(np.prod(spec.audio_shape()))
    rec = read_done(out)
    if rec is not None and not force:
        problem, rows = shard_problem(out, rec, vitem, aitem)
        if problem is None:
            now, before = _prefix(root), _prefix(old_root)
            rel_rows = [_rel(r["path"], before if before and r["path"].startswith(before) else now) for r in rows]
            if [(r["key"], rel) for r, rel in zip(rows, rel_rows)] == [(r["key"], _rel(r["path"], now))
                                                                        for r in listed]:
                changed = [r for r, new in zip(rows, listed) if any(r[k] != new[k] for k in new)]
                if changed:  # same clips, new labels/splits/paths: the arrays stay, clips.csv is rewritten
                    for r, new in zip(rows, listed):
                        r.update(new)
                    sh.write_clips_csv(out / "clips.csv", rows)
                    print(f"cache shard {shard}: labels/splits/paths of {len(changed)} clips updated", file=sys.stderr)
                if progress is not None:
                    progress(len(sl))
                return Counter(rec["counts"])
            problem = "its clips differ from the current clip list"
        print(f"cache shard {shard} ({out}): {problem}; rebuilding it", file=sys.stderr)
    sh.remove_dead_partials(cache_dir, name)
    tmp = cache_dir / f"{name}.partial-{sh.job_tag()}"  # this job's own folder
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    jobs = [(clips[i].path, spec) for i in sl]
    rows = []
    kept = 0
    with open(tmp / "video.u8", "wb") as fv, open(tmp / "audio.i16", "wb") as fa:
        for row, (status, vbytes, abytes, padded) in zip(listed, _iter_decoded(jobs, workers)):
            r = -1
            if status == KEPT:
                fv.write(vbytes)
                fa.write(abytes)
                r, kept = kept, kept + 1
            rows.append({**row, "status": status, "row": r, "padded": padded})
            if progress is not None:
                progress(1)
        for f in (fv, fa):
            f.flush()
            os.fsync(f.fileno())
    sh.write_clips_csv(tmp / "clips.csv", rows)
    record = sh.done_record(rows, vitem, aitem)
    write_durable(tmp / "DONE", json.dumps(record))  # last, after every other file is on disk
    aside = cache_dir / f"{name}.stale-{sh.job_tag()}"
    if out.exists():
        os.replace(out, aside)
    os.replace(tmp, out)
    sh.fsync_dir(cache_dir)
    shutil.rmtree(aside, ignore_errors=True)
    return Counter(record["counts"])


def write_cache(clips: Sequence[ClipRef], spec: MediaSpec, cache_dir: str | Path,
                chunks: Iterable[tuple[np.ndarray, np.ndarray]], *, root: str | Path | None = None,
                extra_meta: dict | None = None) -> dict:
    """A finished one-shard cache of clips that need no decoding (generated data): every clip kept, in list order.

    ``chunks`` yields (frames uint8 [k, T, H, W, 3], waveforms int16 [k, S]) of the spec's shapes, k clips at a
    time, ``len(clips)`` in all. The shard gets its DONE record and the cache its meta.json and manifest, as
    ``build_cache`` writes them, so readers check it the same way. Returns the manifest."""
    cache_dir = Path(cache_dir)
    out = cache_dir / shard_name(0, 1)
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(out / "video.u8", "wb") as fv, open(out / "audio.i16", "wb") as fa:
        for video, audio in chunks:
            fv.write(np.ascontiguousarray(video, dtype=np.uint8).tobytes())
            fa.write(np.ascontiguousarray(audio, dtype=np.int16).tobytes())
            n += len(video)
    if n != len(clips):
        raise ValueError(f"write_cache got arrays of {n} clips for a list of {len(clips)}")
    rows = [{**_listed_row(c), "status": KEPT, "row": i, "padded": ""} for i, c in enumerate(clips)]
    sh.write_clips_csv(out / "clips.csv", rows)
    vitem, aitem = int(np.prod(spec.video_shape())), 2 * int(np.prod(spec.audio_shape()))
    write_durable(out / "DONE", json.dumps(sh.done_record(rows, vitem, aitem)))
    write_durable(cache_dir / "meta.json", json.dumps(_meta(clips, spec, 1, extra_meta, root)))
    return finalize(cache_dir)


def kept_clips_line(counts: Counter | dict, total: int) -> str:
    """'kept N of M clips (K missing, J corrupt, I without audio, H without video)'."""
    words = {"missing": "missing", "corrupt": "corrupt", "no_audio": "without audio", "no_video": "without video"}
    parts = ", ".join(f"{counts.get(r, 0)} {words[r]}" for r in DROP_REASONS)
    return f"kept {counts.get(KEPT, 0)} of {total} clips ({parts})"


def _notes(padded: Counter, unknown: Counter) -> str:
    """The manifest's remarks after the counts: clips padded to length, split names no loader reads."""
    text = ""
    if padded:
        text += (f"; {padded['any']} kept clips padded to length ({padded['video']} video, "
                 f"{padded['audio']} audio)")
    if unknown:
        names = ", ".join(f"{name!r}: {n}" for name, n in sorted(unknown.items()))
        text += (f"; {sum(unknown.values())} clips have a split name that is not {'/'.join(SPLITS)} and are not "
                 f"used ({names}); fix the list file's split column")
    return text


def finalize(cache_dir: Path) -> dict | None:
    """Write manifest.csv/json once every shard is done; returns the manifest (None if shards are missing).

    Every shard is checked against its DONE record first; a damaged one raises ``ShardError``."""
    cache_dir = Path(cache_dir)
    meta = _read_meta(cache_dir)
    n = meta["num_shards"]
    dirs = [cache_dir / shard_name(i, n) for i in range(n)]
    records = [read_done(d) for d in dirs]
    if any(rec is None for rec in records):
        return None
    manifest = cache_dir / "manifest.json"
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if old.get("list_hash") == meta.get("list_hash"):
            return old
    vitem, aitem = _item_bytes(meta)
    counts: Counter = Counter()
    padded: Counter = Counter()
    unknown: Counter = Counter()
    by_split: dict[str, Counter] = {}
    lines = [["key", "split", "label", "status", "path", "padded"]]
    for i, (d, rec) in enumerate(zip(dirs, records)):
        problem, rows = shard_problem(d, rec, vitem, aitem)
        if problem is not None:
            raise ShardError(sh.damaged_message(d, i, problem))
        for r in rows:
            counts[r["status"]] += 1
            by_split.setdefault(r["split"], Counter())[r["status"]] += 1
            if r["split"] not in SPLITS:
                unknown[r["split"]] += 1
            if r["status"] == KEPT and r.get("padded"):
                padded.update(["any", *r["padded"].split("+")])
            lines.append([r["key"], r["split"], r["label"], r["status"], r["path"], r.get("padded", "")])
    buf = io.StringIO()
    csv.writer(buf).writerows(lines)
    write_durable(cache_dir / "manifest.csv", buf.getvalue())
    total = sum(counts.values())
    out = {"total": total, "counts": {k: counts.get(k, 0) for k in (KEPT, *DROP_REASONS)},
           "by_split": {s: dict(c) for s, c in sorted(by_split.items())},
           "padded": {k: padded.get(k, 0) for k in ("any", "video", "audio")},
           "unknown_splits": dict(sorted(unknown.items())), "list_hash": meta.get("list_hash"),
           "summary": kept_clips_line(counts, total) + _notes(padded, unknown)}
    write_durable(manifest, json.dumps(out, indent=1, sort_keys=True))
    return out


def ready_manifest(cache_dir: str | Path, list_hash: str, fix: str) -> dict:
    """The manifest of a finished cache made from the clip list ``list_hash``; else a one-line error + ``fix``."""
    cache_dir = Path(cache_dir)
    meta = _read_meta(cache_dir)
    if meta is None:
        raise UserError(f"no cache at {cache_dir}; {fix}")
    if meta.get("list_hash") != list_hash:
        raise UserError(f"cache {cache_dir} was made from another clip list (the list file's clips, labels or "
                        f"splits changed since); {fix}")
    manifest = finalize(cache_dir)
    if manifest is None:
        raise UserError(f"cache {cache_dir} has unfinished shards; {fix}")
    return manifest


def build_cache(clips: Sequence[ClipRef], spec: MediaSpec, cache_dir: str | Path, *, num_shards: int | None = None,
                shards: Sequence[int] | None = None, workers: int = 1, extra_meta: dict | None = None,
                show_progress: bool = True, rebuild: Sequence[int] = (), root: str | Path | None = None) -> dict | None:
    """Decode ``clips`` into ``cache_dir`` (all shards, or only ``shards``); resumable, safe to run as many jobs.

    Finished shards are verified and kept (or relabelled when only the list's labels/splits changed); a
    shard another job holds is done last, after waiting for its lock. ``rebuild``: shards decoded again
    whatever their state. Returns the manifest once every shard is done, else None."""
    cache_dir = Path(cache_dir)
    if not clips:
        raise UserError("no clips listed: check data.root and the dataset's list file")
    old = _read_meta(cache_dir)
    if num_shards is None and old is not None and old.get("spec") == json.loads(json.dumps(asdict(spec))):
        num_shards = old["num_shards"]  # keep the layout: a changed list then rebuilds only the shards that differ
    num_shards = num_shards or default_num_shards(len(clips))
    todo = list(range(num_shards)) if shards is None else list(shards)
    for s in [*todo, *rebuild]:
        if not 0 <= s < num_shards:
            raise UserError(f"shard {s} is outside 0..{num_shards - 1} (--num-shards {num_shards})")
    todo += [s for s in rebuild if s not in todo]
    old = _sync_meta(cache_dir, _meta(clips, spec, num_shards, extra_meta, root))
    old_root = old.get("root") if old is not None else None
    slices = shard_slices(len(clips), num_shards)

    def run(advance) -> None:
        waiting = []
        for s in todo:
            lock = _lock(cache_dir, s, num_shards)
            if not lock.acquire(wait=False):
                waiting.append(s)  # another job builds it: do the others first
                continue
            try:
                _build_locked(clips, spec, cache_dir, s, num_shards, workers, advance, s in rebuild, root, old_root)
            finally:
                lock.release()
        for s in waiting:
            print(f"cache shard {s}: another job is building it; waiting for it", file=sys.stderr)
            build_shard(clips, spec, cache_dir, s, num_shards, workers, advance, force=False, root=root,
                        old_root=old_root)

    unchanged = old is not None and old.get("list_hash") == _read_meta(cache_dir)["list_hash"]
    pending = [s for s in todo if s in rebuild or read_done(cache_dir / shard_name(s, num_shards)) is None]
    if show_progress and (pending or not unchanged):  # no bar for a cache that is only verified
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("decoding clips"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
            task = bar.add_task("decode", total=sum(len(slices[s]) for s in todo))
            run(lambda k: bar.advance(task, k))
    else:
        run(None)
    return finalize(cache_dir)


class CacheReader:
    """Random access to the kept clips of one split; opens the memory maps lazily in each process.

    Every shard is checked against its DONE record when the reader opens (sizes, clip and kept
    counts), and ``list_hash`` (when given) against the cache's: a damaged or stale cache is a
    one-line error naming the shard or the list, never a failure inside a loader worker."""

    def __init__(self, cache_dir: str | Path, split: str | None = None, list_hash: str | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.meta = json.loads((self.cache_dir / "meta.json").read_text())
        if list_hash is not None and self.meta.get("list_hash") != list_hash:
            raise UserError(f"cache {self.cache_dir} was made from another clip list (the list file changed "
                            f"since); rerun scripts/preprocess.py with the run's data settings to update it")
        n = self.meta["num_shards"]
        self.shard_dirs = [self.cache_dir / shard_name(i, n) for i in range(n)]
        records = [read_done(d) for d in self.shard_dirs]
        missing = [d.name for d, rec in zip(self.shard_dirs, records) if rec is None]
        if missing:
            raise UserError(f"cache {self.cache_dir} is incomplete ({len(missing)} shards missing, "
                            f"e.g. {missing[0]}); "
                            f"run scripts/preprocess.py for them or rerun to resume")
        self.video_shape = tuple(self.meta["video"]["shape"])
        self.audio_shape = tuple(self.meta["audio"]["shape"])
        vitem, aitem = _item_bytes(self.meta)
        self.shard_sizes: list[int] = []
        items = []
        for s, (d, rec) in enumerate(zip(self.shard_dirs, records)):
            problem, rows = shard_problem(d, rec, vitem, aitem)
            if problem is not None:
                raise ShardError(sh.damaged_message(d, s, problem))
            kept = [r for r in rows if r["status"] == KEPT]
            self.shard_sizes.append(len(kept))
            items += [(s, int(r["row"]), r) for r in kept if split is None or r["split"] == split]
        self.locations = np.array([(s, r) for s, r, _ in items], dtype=np.int64).reshape(-1, 2)
        self.labels = np.array([int(r["label"]) for _, _, r in items], dtype=np.int64)
        self.keys = [r["key"] for _, _, r in items]
        self.extra = [json.loads(r["extra"]) for _, _, r in items]
        self.splits = [r["split"] for _, _, r in items]
        self._maps: dict[int, tuple[np.memmap, np.memmap]] | None = None

    def split(self, name: str) -> CacheReader:
        """The clips of split ``name`` only, sharing this reader's verified shards (no second check)."""
        idx = np.array([i for i, s in enumerate(self.splits) if s == name], dtype=np.int64)
        view = copy.copy(self)
        view.locations = self.locations[idx].reshape(-1, 2)
        view.labels = self.labels[idx]
        view.keys = [self.keys[i] for i in idx]
        view.extra = [self.extra[i] for i in idx]
        view.splits = [name] * len(idx)
        view._maps = None
        return view

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
