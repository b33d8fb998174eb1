"""Shared test helpers: compose the real config tree with the Hydra compose API."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, open_dict

from gmf_repro.config import compose

# Small models gain little from a second thread and lose 10x when OpenMP threads spin against
# other processes: the suite runs single-threaded, in this process and in the CLI subprocesses.
torch.set_num_threads(1)
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

# Small, fast settings every end-to-end test starts from; tests add their own overrides.
TINY = [
    "threads=1",
    "logger=none",
    "progress=none",
    "print_config=false",
    "trainer=cpu",
    "trainer.max_epochs=4",
    "data.dims=[64,64]",
    "data.n_train=1500",
    "data.n_test=1000",
    "eval.latency_repeats=3",
    "eval.mutual_information=false",
]


def make_cfg(output_dir: Path | str, overrides: list[str] = (), tiny: bool = True) -> DictConfig:
    """The composed job config, with ``paths.output_dir`` pointing into the test's tmp dir."""
    cfg = compose([*(TINY if tiny else []), *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


@pytest.fixture
def cfg_factory(tmp_path):
    def factory(*overrides: str, name: str = "run", tiny: bool = True) -> DictConfig:
        return make_cfg(tmp_path / name, list(overrides), tiny=tiny)

    return factory


def cli(*args: str, cwd: Path | str | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """``python -m <args>`` as a user runs it, W&B offline, output captured."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)
