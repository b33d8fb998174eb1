"""Scaling out goes through Lightning DDP and Hydra's submitit launcher."""
import json

import pytest
import torch
from conftest import TINY, cli

from gmf_repro.config import compose


def test_ddp_trainer_config():
    cfg = compose(["trainer=ddp", "trainer.devices=4"])
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.devices == 4
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "16-mixed"
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"


def test_submitit_slurm_launcher_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[slurm]'")
    cfg = compose(["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
                   "hydra.launcher.gpus_per_node=1", "hydra.launcher.timeout_min=240", "fuser=gmf"],
                  return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1 and launcher.timeout_min == 240


def test_ddp_on_two_cpu_processes(tmp_path):
    """Lightning DDP with two CPU processes: batches are split, test metrics synced, one results.json."""
    run_dir = tmp_path / "run"
    proc = cli(
        "gmf_repro", *TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
        "trainer.precision=32-true", "trainer.sync_batchnorm=false", "trainer.max_epochs=2",
        "data.n_train=1000", "data.n_test=500", f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the summary line comes from rank 0 alone
    assert proc.stdout.count("gmf | avsynth |") == 1, proc.stdout[-2000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "ok" and results["metrics"]["AV"]["acc"] > 0.3
    # 1000 samples at batch 64 = 16 batches, 8 per process and epoch: 2 epochs = 16 optimizer steps per rank
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 16
