"""docs/architecture.md's recipes, done for real on a copy of the package: a new fuser is one .py and one
.yaml (plus a demo size), a new dataset one datamodule and one .yaml, and nothing else is edited."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY

from gmf_repro.config import CONF_DIR

ROOT = CONF_DIR.parents[1]

NEW_FUSER = '''"""Mean of the modalities after a linear map each: the smallest learned fuser."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from .base import Fuser, FusionOutput


class MeanFuser(Fuser):
    def __init__(self, dims: Mapping[str, int], width: int = 32) -> None:
        super().__init__(dims)
        self.maps = nn.ModuleDict({m: nn.Linear(d, width) for m, d in self.dims.items()})
        self.out_dim = width

    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        self.check_inputs(feats)
        return FusionOutput(fused=torch.stack([self.maps[m](feats[m]) for m in self.modalities]).mean(0))
'''

NEW_DATA = '''"""Two modalities of random features whose class is the sign pattern of the first dimensions."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from .contract import MultimodalDataModule


class Blobs(MultimodalDataModule):
    def __init__(self, n: int = 600, dim: int = 12, num_classes: int = 4, batch_size: int = 50, seed: int = 0):
        super().__init__()
        self.modalities = ["text", "image"]
        self.input_shapes = {"text": (dim,), "image": (dim,)}
        self.num_classes = num_classes
        g = torch.Generator().manual_seed(seed)
        labels = torch.randint(0, num_classes, (n,), generator=g)
        centres = torch.randn(num_classes, dim, generator=g) * 2
        def noisy(y):
            return centres[y] + torch.randn(dim, generator=g)

        self.rows = [{"text": noisy(y), "image": noisy(y), "label": y, "index": torch.tensor(i)}
                     for i, y in enumerate(labels)]
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(self.rows[: len(self.rows) * 2 // 3], batch_size=self.batch_size, shuffle=True)

    def test_dataloader(self):
        return DataLoader(self.rows[len(self.rows) * 2 // 3 :], batch_size=self.batch_size)
'''


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package copied aside with the recipes' files added: the installed one stays untouched."""
    top = tmp_path_factory.mktemp("recipes")
    pkg = top / "gmf_repro"
    shutil.copytree(ROOT / "gmf_repro", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "models/fusion/mean_fuser.py").write_text(NEW_FUSER)
    (pkg / "conf/fuser/mean.yaml").write_text(
        "# Mean fuser: one linear map per modality, then the mean.\n"
        "_target_: gmf_repro.models.fusion.mean_fuser.MeanFuser\n_partial_: true\nwidth: 32\n")
    (pkg / "conf/fuser/demo/mean.yaml").write_text("defaults:\n  - /fuser/mean@_here_\n  - _self_\nwidth: 16\n")
    (pkg / "data/blobs.py").write_text(NEW_DATA)
    (pkg / "conf/data/blobs.yaml").write_text("_target_: gmf_repro.data.blobs.Blobs\nseed: ${seed}\n")
    shutil.copytree(ROOT / "tests", top / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    return top


def _py(copy: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(copy), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run([sys.executable, *args], cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_new_fuser_is_picked_up_by_complexity_demo_runs_and_tests(copy: Path) -> None:
    probe = _py(copy, "-c", "import json; from gmf_repro.complexity.cli import fuser_names; "
                            "from gmf_repro.config import compose; "
                            "c = compose(['experiment=demo'], return_hydra_config=True); "
                            "print(json.dumps([fuser_names('all'), str(c.hydra.sweeper.params.fuser)]))")
    assert probe.returncode == 0, probe.stderr[-2000:]
    listed, demo_sweep = json.loads(probe.stdout.strip().splitlines()[-1])
    assert "mean" in listed
    # the demo sweeps the group (a glob over conf/fuser/demo/), so demo/mean is one of its jobs
    assert "demo/mean" in demo_sweep.split(",") and len(demo_sweep.split(",")) == 11
    measured = _py(copy, "-m", "gmf_repro.complexity", "fuser=mean", "dims=[512,512]", "format=json")
    assert measured.returncode == 0, measured.stderr[-2000:]
    row = json.loads(measured.stdout.strip().splitlines()[-1])
    assert (row["fuser"], row["params"]) == ("mean", 2 * (512 * 32 + 32))
    run = _py(copy, "-m", "gmf_repro", "fuser=demo/mean", *TINY, "hydra.run.dir=out/mean")
    assert run.returncode == 0, run.stderr[-2000:]
    res = json.loads((copy / "out/mean/results.json").read_text())
    assert res["fuser"] == "mean" and res["complexity"]["params"] == 2 * (64 * 16 + 16)
    assert res["metrics"]["AV"]["acc"] > 0.5  # avsynth's 10 classes: chance 0.1
    tests = _py(copy, "-m", "pytest", "tests/test_conf.py", "tests/test_fusers.py", "-k", "mean",
                "-p", "no:cacheprovider", "-rA")
    assert tests.returncode == 0, tests.stdout[-2000:]
    # no test was edited: both yamls build and fuse, and the demo size goes through every behaviour test
    passed = {line.split(" ", 1)[1] for line in tests.stdout.splitlines() if line.startswith("PASSED")}
    assert passed == {
        "tests/test_conf.py::test_every_demo_fuser_trains_on_unequal_dims[mean]",
        "tests/test_conf.py::test_every_fuser_config_builds_and_fuses[demo/mean]",
        "tests/test_conf.py::test_every_fuser_config_builds_and_fuses[mean]",
        *(f"tests/test_fusers.py::test_forward_backward_unequal_dims[mean-{b}-{p}]"
          for b in (2, 64) for p in ("fp32", "bf16")),
        "tests/test_fusers.py::test_three_modalities[mean]",
        "tests/test_fusers.py::test_missing_modality_zeros[mean-audio]",
        "tests/test_fusers.py::test_missing_modality_zeros[mean-video]",
        "tests/test_fusers.py::test_tiny_fit_beats_chance[mean]",
    }


def test_a_new_dataset_is_one_datamodule_and_one_yaml(copy: Path) -> None:
    run = _py(copy, "-m", "gmf_repro", "data=blobs", "fuser=concat", *[o for o in TINY if not o.startswith("data.")],
              "hydra.run.dir=out/blobs")
    assert run.returncode == 0, run.stderr[-2000:]
    res = json.loads((copy / "out/blobs/results.json").read_text())
    # conditions from the data's own modalities (text, image -> T, I): every subset, largest first
    assert res["data"] == "blobs" and list(res["metrics"]) == ["TI", "T", "I"]
    assert res["metrics"]["TI"]["acc"] > 0.6  # 4 classes: chance 0.25
