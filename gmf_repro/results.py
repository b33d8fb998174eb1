"""results.json: the one file per run that the report reads (schema in docs/architecture.md)."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from .errors import RunFolderError


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> Path:
    """Write a temporary file in the same folder, fsync it, then rename: a reader never sees half a file.

    The file gets the usual permissions (0644 under the common umask 022), unlike ``mkstemp``'s 0600, so
    a colleague or a report job can read it; the temporary file is removed when anything fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: without it a crash can bring back the old file (or none)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


@contextmanager
def claim_run_folder(out_dir: Path, resume: bool = False, last: Path | None = None) -> Iterator[Path]:
    """Hold ``out_dir`` for one run: a second run in the same folder is refused instead of overwriting it.

    The lock is an ``fcntl.flock`` on ``out_dir/.lock`` (released by the OS if the process dies). A
    folder that already holds a ``results.json`` is refused unless ``resume`` is set, and ``resume``
    needs the checkpoint ``last`` (``last_checkpoint(cfg)``). Only rank 0 claims: under DDP the other
    ranks share its folder.
    """
    import fcntl

    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    given = Path(out_dir)
    given.mkdir(parents=True, exist_ok=True)
    if getattr(rank_zero_only, "rank", 0) != 0:
        yield given
        return
    with open(given / ".lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            raise RunFolderError(
                f"run folder {given.resolve()} is in use by another run (pid {holder}); give this run its own "
                f"hydra.run.dir=<folder>"
            ) from None
        except OSError as err:  # a file system without locks (some NFS mounts): the results.json check remains
            print(f"warning: cannot lock run folder {given.resolve()} ({err}); a second run started in it "
                  f"while this one runs would not be noticed", file=sys.stderr)
        check_run_folder(given.resolve(), resume, last)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield given  # leaving the with-block closes the file, which releases the lock


def last_checkpoint(cfg: DictConfig, output_dir: Path | str | None = None) -> Path | None:
    """What ``resume=true`` continues from: ``<checkpoint.dirpath>/last.ckpt`` (conf/checkpoint/default.yaml).

    The path comes from the checkpoint callback's own config, so the callback writes where resume reads.
    None when the run has no checkpoint callback or no fixed folder for it. ``output_dir`` stands in for
    ``paths.output_dir`` before Hydra has set it (``RunFolderGuard``).
    """
    node = cfg.get("checkpoint")
    if not isinstance(node, DictConfig) or not node:
        return None
    if output_dir is not None:
        cfg = cfg.copy()
        with open_dict(cfg), read_write(cfg):
            cfg.paths.output_dir = str(output_dir)
    dirpath = cfg.checkpoint.get("dirpath")
    return None if dirpath is None else Path(str(dirpath)) / "last.ckpt"


def check_run_folder(out_dir: Path, resume: bool, last: Path | None) -> None:
    """Refuse a folder with a finished (or failed) run in it unless resuming; refuse to resume from nothing.

    ``last``: the checkpoint resume reads (``last_checkpoint(cfg)``), None when the run writes none."""
    if resume and last is None:
        raise RunFolderError(
            "resume=true but this run writes no last.ckpt to continue from (checkpoint=none, or a null "
            "checkpoint.dirpath); set checkpoint=default, or drop resume=true to start from scratch"
        )
    if resume and not last.exists():
        raise RunFolderError(
            f"resume=true but there is no checkpoint to resume from ({last} does not exist): give the "
            f"interrupted run's folder as hydra.run.dir=<folder>, or drop resume=true to start from scratch"
        )
    if not resume and (out_dir / "results.json").exists():
        raise RunFolderError(
            f"run folder {out_dir} already holds a run's results.json; give this run its own "
            f"hydra.run.dir=<folder>, or set resume=true to continue that run"
        )


# the logger's run labels (conf/logger/*.yaml): interpolations of other keys, so no setting of their own
RUN_LABELS = ("name", "group", "tags")


def _settings(cfg: DictConfig) -> dict:
    """The unresolved config without output paths, checkpointing and the logger's run labels.

    Which checkpoints a run keeps, and where, changes none of its results (test metrics are the final
    model's, or ``eval.select``'s)."""
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("paths", None)
    container.pop("checkpoint", None)
    # what the run is called and where the report shows it: neither changes what is trained
    container.pop("labels", None)
    container.pop("report", None)
    if isinstance(container.get("logger"), dict):
        container["logger"] = {k: v for k, v in container["logger"].items() if k not in RUN_LABELS}
    return container


def config_digest(cfg: DictConfig) -> str:
    """Hash of the job's settings, without output paths, so identical jobs share a digest."""
    container = _settings(cfg)
    return hashlib.sha256(json.dumps(container, sort_keys=True, default=str).encode()).hexdigest()[:16]


def setting_digest(cfg: DictConfig) -> str:
    """Hash of the job's settings without ``seed`` (and output paths): seed repeats of one setting share it.

    The report averages only runs with the same setting digest, so runs that differ in anything else
    (epochs, sizes, data) are never mixed. ``data.seed: ${seed}`` stays the unresolved interpolation.
    """
    container = _settings(cfg)
    container.pop("seed", None)
    return hashlib.sha256(json.dumps(container, sort_keys=True, default=str).encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for pkg in ("gmf_repro", "torch", "torchvision", "torchaudio", "pytorch-lightning", "torchmetrics", "hydra-core"):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            found[pkg] = "not installed"
    return found


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"metrics": {"AV": {"acc": 1}}}`` -> ``{"metrics/AV/acc": 1}`` (W&B summary keys)."""
    flat: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(flatten(v, key + "/"))
        else:
            flat[key] = v
    return flat
