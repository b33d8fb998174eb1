"""results.json, the one file per run that the report reads (schema in docs/architecture.md), and the run folder
it lives in: one run per folder, a resume only with the setting that made the checkpoint."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from .atomic import atomic_write
from .errors import RunFolderError


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as JSON through a temporary file and a rename (atomic.py): a reader never sees half a file."""
    path = Path(path)
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    return path


@contextmanager
def claim_run_folder(out_dir: Path, cfg: DictConfig | None = None) -> Iterator[Path]:
    """Hold ``out_dir`` for one run: a second run in the same folder is refused instead of overwriting it.

    The lock is an ``fcntl.flock`` on ``out_dir/.lock`` (released by the OS if the process dies); under
    it, ``check_run_folder(out_dir, cfg)`` (``cfg``: the run's config; None claims the folder for a run
    that neither resumes nor checks a setting). Only rank 0 claims: under DDP the other ranks share its folder.
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
            raise in_use(given, lock.read()) from None
        except OSError as err:  # a file system without locks (some NFS mounts): the results.json check remains
            print(f"warning: cannot lock run folder {given.resolve()} ({err}); a second run started in it "
                  f"while this one runs would not be noticed", file=sys.stderr)
        check_run_folder(given.resolve(), cfg)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield given  # leaving the with-block closes the file, which releases the lock


def in_use(out_dir: Path, holder: str) -> RunFolderError:
    return RunFolderError(f"run folder {Path(out_dir).resolve()} is in use by another run (pid "
                          f"{holder.strip() or '?'}); give this run its own hydra.run.dir=<folder>")


def lock_holder(out_dir: Path) -> str | None:
    """The pid written in ``out_dir/.lock`` while a run holds the folder; None when no run holds it.

    Probes the lock without creating anything, so ``RunFolderGuard`` can refuse a running run's folder
    before Hydra or the logger writes into it.
    """
    import fcntl

    try:
        fd = os.open(Path(out_dir) / ".lock", os.O_RDONLY)
    except OSError:  # no lock file (or none readable): no run holds the folder
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
    except OSError:  # a file system without locks: run() warns about it
        return None
    finally:
        os.close(fd)  # releases the probe's lock too
    return None


def check_writable(folder: Path, what: str = "run folder", key: str = "hydra.run.dir") -> None:
    """Refuse a folder this process cannot create or write, before anything is written or trained."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise RunFolderError(f"cannot write the {what} {folder} ({err.strerror or err}); give this run a writable "
                             f"{key}=<folder>") from None


def last_checkpoint(cfg: DictConfig, output_dir: Path | str | None = None) -> Path | None:
    """What ``resume=true`` continues from: ``<checkpoint.dirpath>/last.ckpt`` (conf/checkpoint/default.yaml).

    The path comes from the checkpoint callback's own config, so the callback writes where resume reads.
    None when the run has no checkpoint callback or no fixed folder for it. ``output_dir`` stands in for
    ``paths.output_dir`` where Hydra has not set it.
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


def check_run_folder(out_dir: Path, cfg: DictConfig | None) -> None:
    """Refuse another run's folder: its results (unless resuming), its checkpoints (unless resuming them),
    and a resume from nothing, from a damaged checkpoint or with another setting than the one that made it.

    ``cfg``: the run's config (``resume``, its checkpoint node, its setting); None for a plain run.
    """
    resume = bool(cfg is not None and cfg.get("resume"))
    last = last_checkpoint(cfg) if cfg is not None else None
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
    if resume:
        check_same_setting(out_dir, last, cfg)
        return
    if (out_dir / "results.json").exists():
        raise RunFolderError(
            f"run folder {out_dir} already holds a run's results.json; give this run its own "
            f"hydra.run.dir=<folder>, or set resume=true to continue that run"
        )
    found = ([last] if last is not None and last.exists() else []) or sorted(out_dir.glob("checkpoints/**/*.ckpt"))
    if found:
        raise RunFolderError(
            f"run folder {out_dir} holds the checkpoints of a run that did not finish ({found[0]}{whose(found[0])}); "
            f"set resume=true to continue that run, or give this run its own hydra.run.dir=<folder>"
        )


def check_same_setting(out_dir: Path, last: Path, cfg: DictConfig) -> None:
    """``resume=true`` continues a run only with the setting that wrote ``last``: another seed, fuser or
    data would be recorded as a run that never was (results.json's seed and digests, the report's averages)."""
    recorded = (read_record(last) or {}).get("setting") or hydra_setting(out_dir)
    if recorded is None:
        print(f"warning: {last} records no setting (an older version wrote it); resuming without checking "
              f"that this run's settings are the ones it was trained with", file=sys.stderr)
        return
    changes = setting_changes(recorded, setting_record(cfg))
    if changes:
        first = changes[:6]
        more = f" (and {len(changes) - 6} more)" if len(changes) > 6 else ""
        was = " ".join(_described(key, old) for key, old, _ in first)
        now = " ".join(_described(key, new) for key, _, new in first)
        fix = " ".join(f"~{key}" if old == UNSET else f"{key}={shown(old)}" for key, old, _ in first)
        raise RunFolderError(
            f"resume=true continues {last} only with the settings that trained it: it was trained with {was}{more}, "
            f"this run has {now}; resume with {fix}, or give this run its own hydra.run.dir=<folder>"
        )


def _described(key: str, value: Any) -> str:
    return f"no {key}" if value == UNSET else f"{key}={shown(value)}"


def whose(checkpoint: Path) -> str:
    """``, gmf on avsynth, seed 1``: the run a checkpoint came from, when it says (and can be read)."""
    try:
        setting = (read_record(checkpoint) or {}).get("setting") or {}
    except RunFolderError:
        return ", unreadable"
    labels, values = setting.get("labels") or {}, setting.get("values") or {}
    if not labels:
        return ""
    return f", {labels.get('fuser')} on {labels.get('data')}, seed {values.get('seed')}"


# the logger's run labels (conf/logger/*.yaml): interpolations of other keys, so no setting of their own; and
# the W&B run id a resumed run continues (checkpointing.continued_logger)
RUN_LABELS = ("name", "group", "tags", "id")


def _settings(cfg: DictConfig) -> dict:
    """The unresolved config without output paths, checkpointing, ``resume`` and the logger's run labels.

    Which checkpoints a run keeps, and where, changes none of its results (test metrics are the final
    model's, or ``eval.select``'s)."""
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("paths", None)
    container.pop("checkpoint", None)
    # what the run is called and where the report shows it: neither changes what is trained
    container.pop("labels", None)
    container.pop("report", None)
    # continuing from a checkpoint trains the same model as not stopping (tests/test_resume.py)
    container.pop("resume", None)
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


def setting_record(cfg: DictConfig, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """What a checkpoint records of the setting that trained it (``checkpointing.RunRecord``).

    ``config_digest``, the run labels (fuser, data, task: what a user chose) and the settings themselves
    (unresolved, as plain data), so a resume with another setting is refused naming what differs.
    """
    if labels is None:
        try:
            labels = {key: str(cfg.labels[key]) for key in ("fuser", "data", "task")}
        except Exception:  # noqa: BLE001 - labels need Hydra's record of the choices; the values still say it
            labels = {}
    plain = json.loads(json.dumps(_settings(cfg), default=str))  # what torch.load(weights_only=True) reads back
    return {"config_digest": config_digest(cfg), "labels": dict(labels), "values": plain}


def hydra_setting(out_dir: Path) -> dict[str, Any] | None:
    """The setting recorded in a run folder's ``.hydra/config.yaml`` (a checkpoint of an older version
    records none); None without one."""
    path = Path(out_dir) / ".hydra" / "config.yaml"
    if not path.is_file():
        return None
    try:
        return setting_record(OmegaConf.load(path), labels={})
    except Exception:  # noqa: BLE001 - an unreadable record checks nothing
        return None


def setting_changes(recorded: dict[str, Any], current: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, recorded, current)`` for each setting that differs, as override keys: a changed choice by its
    group (``fuser``), then single settings (``seed``, ``trainer.max_epochs``); [] when the digests agree."""
    if recorded.get("config_digest") == current.get("config_digest"):
        return []
    was, now = recorded.get("labels") or {}, current.get("labels") or {}
    groups = [g for g in ("fuser", "data", "task") if g in was and g in now and was[g] != now[g]]
    changes = [(g, was[g], now[g]) for g in groups]
    old, new = dict(recorded.get("values") or {}), dict(current.get("values") or {})
    for g in groups:
        old.pop(g, None)
        new.pop(g, None)
    changes += _differences(old, new, "")
    return sorted(changes, key=lambda c: (c[0] not in groups, c[0] != "seed"))  # stable: groups, seed, the rest


UNSET = "<unset>"


def _differences(old: Any, new: Any, prefix: str) -> list[tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key, UNSET), new.get(key, UNSET), f"{prefix}{key}.")
        return out
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def shown(value: Any) -> str:
    """A value as an override writes it: ``gmf``, ``4``, ``null``, ``[64,64]``."""
    if isinstance(value, str):
        return value if "\n" not in value else json.dumps(value)
    return json.dumps(value, separators=(",", ":"))


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


# what checkpointing.RunRecord stores in a checkpoint's callback states, under its class name
RECORD_KEY = "RunRecord"


def unreadable(path: Any, detail: str) -> RunFolderError:
    return RunFolderError(
        f"checkpoint {path} cannot be read ({detail}): it is damaged (a write cut short) or not a checkpoint; "
        f"restore it from a copy, or start over without resume=true in a new hydra.run.dir=<folder>"
    )


def error_summary(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}{': ' + lines[0][:160] if lines else ''}"


def read_record(path: Path) -> dict[str, Any] | None:
    """The ``RunRecord`` (checkpointing.py) a checkpoint holds (None for a checkpoint without one); a one-line
    error when the file is not a readable checkpoint. Cheap for any size: the tensors are memory-mapped, never read."""
    import torch

    if not zipfile.is_zipfile(path):  # random bytes, or a file cut short before its zip directory
        raise unreadable(path, "not the zip archive torch.save writes")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - a damaged archive fails anywhere in the unpickler
        raise unreadable(path, error_summary(err)) from None
    if not isinstance(checkpoint, dict):
        raise unreadable(path, f"it holds a {type(checkpoint).__name__}, not a checkpoint's dict")
    state = (checkpoint.get("callbacks") or {}).get(RECORD_KEY)
    return dict(state) if isinstance(state, dict) else None
