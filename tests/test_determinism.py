"""Determinism that cannot crash on a GPU: the trainer warns where PyTorch has no deterministic kernel."""
import os
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

from gmf_repro.data.cache import pool_context
from gmf_repro.run import resolve_precision
from gmf_repro.utils import build

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def restore_flags():
    """The Trainer sets process-wide torch flags; put them back for the other tests."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.backends.cudnn.benchmark = saved[2]


@pytest.mark.parametrize("trainer", ["default", "cpu", "gpu", "ddp"])
def test_every_trainer_config_warns_instead_of_failing(cfg_factory, trainer):
    cfg = cfg_factory(f"trainer={trainer}")
    assert cfg.trainer.deterministic == "warn"


def test_trainer_receives_deterministic_warn_only(cfg_factory, restore_flags):
    cfg = cfg_factory("trainer=default")
    torch.use_deterministic_algorithms(False)
    build(cfg.trainer, precision=resolve_precision(cfg.trainer), logger=False, enable_progress_bar=False)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()  # deterministic: true would crash on CUDA
    assert torch.backends.cudnn.benchmark is False
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_package_import_sets_cublas_workspace_before_cuda():
    # cuBLAS reads it when CUDA starts: importing gmf_repro (which imports no torch) must be enough
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    code = "import os, sys, gmf_repro; print(os.environ['CUBLAS_WORKSPACE_CONFIG'], 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [":4096:8", "False"]


def test_cache_decodes_in_spawned_processes_once_cuda_started(monkeypatch):
    assert pool_context().get_start_method() == "fork"
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert pool_context().get_start_method() == "spawn"


@cuda
def test_adaptive_pool_backward_on_cuda_warns_and_runs(restore_flags):
    """ResNet-18 and R(2+1)D-18 end in adaptive average pooling: its CUDA backward has no deterministic kernel."""
    x = torch.randn(2, 8, 4, 7, 7, device="cuda", requires_grad=True)
    torch.use_deterministic_algorithms(True)
    with pytest.raises(RuntimeError):
        nn.AdaptiveAvgPool3d(1)(x).sum().backward()
    torch.use_deterministic_algorithms(True, warn_only=True)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        nn.AdaptiveAvgPool3d(1)(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@cuda
def test_trainable_run_on_cuda_with_16_mixed(cfg_factory):
    from gmf_repro.run import run

    cfg = cfg_factory(
        "experiment=vggsound_trainable", "data=avsynth", "fuser=gmf", "trainer=gpu", "trainer.precision=16-mixed",
        "trainer.max_epochs=2", "extractors.video.weights=null", "data.n_train=256", "data.n_test=128",
        "data.shapes={audio:[2,16,16],video:[4,16,16,3]}", "callbacks.probe.epochs=1")
    results = run(cfg)
    assert results["status"] == "ok"
    assert 0.0 <= results["metrics"]["AV"]["acc"] <= 1.0
