"""Safe shard files: per-shard locks, durable writes, the finished record and its verification.

Several jobs may build one cache at once (an array job, a Hydra multirun on a fresh root). A shard is
built only by the job holding its ``fcntl`` lock, in that job's own partial folder, and becomes
finished by one rename after every file (the ``DONE`` record last) has been fsynced. ``DONE`` holds the
shard's clip, kept and byte counts, so a reader notices a truncated or shortened shard and names it.
"""
from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

from gmf_repro.data.csv_rows import read_csv_rows
from gmf_repro.errors import UserError

KEPT = "kept"
CLIP_FIELDS = ["key", "split", "label", "status", "row", "path", "extra", "padded"]


class ShardError(UserError):
    """A finished shard whose files disagree with its ``DONE`` record."""


class ShardLock:
    """An exclusive POSIX (``fcntl.lockf``) lock on ``<cache>/<shard>.lock``; released when the job dies.

    POSIX record locks also work on NFS (through lockd), where array jobs on several hosts meet.
    """

    def __init__(self, path: Path) -> None:
        self.path, self.fd = Path(path), None

    def acquire(self, wait: bool) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by another job (EAGAIN / EACCES)
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = None

    def __enter__(self) -> ShardLock:
        self.acquire(wait=True)
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def job_tag() -> str:
    """``<host>-<pid>``: names this job's partial folder, so no job touches another's."""
    host = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


def remove_dead_partials(cache_dir: Path, name: str) -> None:
    """Delete partial folders of shard ``name`` left by dead jobs of this host (call with the shard's lock).

    Folders of other hosts are left alone: their jobs' liveness cannot be seen from here."""
    host = job_tag().rsplit("-", 1)[0]
    for p in cache_dir.glob(f"{name}.partial-*"):
        tag_host, _, pid = p.name.split(".partial-", 1)[1].rpartition("-")
        if tag_host != host or not pid.isdigit():
            continue
        if int(pid) == os.getpid() or not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a private temp file, fsync, rename, fsync the folder."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_clips_csv(path: Path, rows: list[dict]) -> None:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CLIP_FIELDS, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    write_durable(path, buf.getvalue())


def read_shard_clips(shard_dir: Path) -> list[dict]:
    """The shard's ``clips.csv`` (written by ``write_clips_csv``) as one dict per clip, keyed by its header."""
    (_, header), *rows = read_csv_rows(shard_dir / "clips.csv")
    return [dict(zip(header, fields)) for _, fields in rows]


def done_record(rows: list[dict], video_item: int, audio_item: int) -> dict:
    """What ``DONE`` holds: status counts, clip and kept counts, the expected byte size of each array file."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    kept = counts.get(KEPT, 0)
    return {"version": 2, "counts": counts, "clips": len(rows), "kept": kept,
            "video_bytes": kept * video_item, "audio_bytes": kept * audio_item}


def read_done(shard_dir: Path) -> dict | None:
    """The ``DONE`` record (a version-1 record held the status counts alone), or None if absent."""
    path = shard_dir / "DONE"
    if not path.exists():
        return None
    try:
        rec = json.loads(path.read_text())
    except (ValueError, OSError):
        return {"broken": True}
    if "clips" not in rec:  # version 1
        rec = {"counts": rec, "clips": sum(rec.values()), "kept": rec.get(KEPT, 0)}
    return rec


def shard_problem(shard_dir: Path, rec: dict, video_item: int, audio_item: int) -> tuple[str | None, list[dict]]:
    """(what is wrong with a finished shard or None, its clip rows): counts and sizes against ``DONE``."""
    if rec.get("broken"):
        return "its DONE record is unreadable", []
    try:
        rows = read_shard_clips(shard_dir)
    except (OSError, UserError, ValueError) as exc:
        return f"clips.csv is unreadable ({type(exc).__name__})", []
    if len(rows) != rec["clips"]:
        return f"clips.csv lists {len(rows)} clips, its DONE record says {rec['clips']}", rows
    try:
        kept_rows = sorted(int(r["row"]) for r in rows if r.get("status") == KEPT)
    except (TypeError, ValueError):
        return "clips.csv has a malformed row column", rows
    if kept_rows != list(range(rec["kept"])):
        return f"clips.csv marks {len(kept_rows)} clips kept, its DONE record says {rec['kept']}", rows
    for fname, item in (("video.u8", video_item), ("audio.i16", audio_item)):
        want = rec["kept"] * item
        path = shard_dir / fname
        have = path.stat().st_size if path.exists() else None
        if have != want:
            got = "is missing" if have is None else f"has {have} bytes"
            return f"{fname} {got}, its DONE record says {rec['kept']} clips = {want} bytes", rows
    return None, rows


def damaged_message(shard_dir: Path, index: int, problem: str) -> str:
    return (f"cache shard {index} ({shard_dir}) is damaged: {problem}; rebuild it with "
            f"`python scripts/preprocess.py <the run's data overrides> --rebuild-shard {index}`, "
            f"or delete that folder and rerun")
