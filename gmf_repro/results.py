"""results.json: the one file per run that the report reads (schema in docs/architecture.md)."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> Path:
    """Write to a temporary file in the same folder, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)
    return path


def config_digest(cfg: DictConfig) -> str:
    """Hash of the job's settings, without output paths, so identical jobs share a digest."""
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("paths", None)
    return hashlib.sha256(json.dumps(container, sort_keys=True, default=str).encode()).hexdigest()[:16]


def setting_digest(cfg: DictConfig) -> str:
    """Hash of the job's settings without ``seed`` (and output paths): seed repeats of one setting share it.

    The report averages only runs with the same setting digest, so runs that differ in anything else
    (epochs, sizes, data) are never mixed. ``data.seed: ${seed}`` stays the unresolved interpolation.
    """
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("paths", None)
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
