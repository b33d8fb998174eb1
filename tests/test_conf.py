"""Tests generated from the config tree: a new fuser or experiment yaml is tested the moment it exists."""
from __future__ import annotations

import pytest
import torch

from gmf_repro.config import compose, group_options
from gmf_repro.run import build_fuser


@pytest.mark.parametrize("name", group_options("fuser"))  # every yaml in conf/fuser/ and conf/fuser/demo/
def test_every_fuser_config_builds_and_fuses(name: str) -> None:
    """Composes, builds at its configured size (on the meta device: no memory, no time) and fuses a batch."""
    cfg = compose([f"fuser={name}"])
    with torch.device("meta"):
        fuser = build_fuser(cfg, {"audio": 64, "video": 64}, num_classes=5)
        out = fuser({"audio": torch.randn(2, 64), "video": torch.randn(2, 64)})
    assert tuple(out.fused.shape) == (2, fuser.out_dim)


@pytest.mark.parametrize("name", group_options("experiment"))
def test_every_experiment_config_composes(name: str) -> None:
    """Each experiment composes, names itself and leaves no stale ``experiment:`` key (that name is the group's)."""
    cfg = compose([f"experiment={name}"], return_hydra_config=True)
    assert "experiment" not in cfg
    assert cfg.experiment_name != "default"
    assert cfg.hydra.runtime.choices.experiment == name


def test_g_fusers_compose_their_backend() -> None:
    """G-MBT / G-Perceiver take the back-end's own config (and its demo size), not a copy of it."""
    for g, backend in (("g_mbt", "mbt"), ("g_perceiver", "perceiver")):
        for prefix in ("", "demo/"):
            composed = compose([f"fuser={prefix}{g}"]).fuser.backend
            assert composed == compose([f"fuser={prefix}{backend}"]).fuser


@pytest.mark.parametrize("name", group_options("fuser/demo"))  # every demo-size fuser: small enough to run
def test_every_demo_fuser_trains_on_unequal_dims(name: str) -> None:
    """Real forward and backward on a CPU batch: fused is finite and each modality's input gets a gradient."""
    torch.manual_seed(0)
    cfg = compose([f"fuser=demo/{name}"])
    fuser = build_fuser(cfg, {"audio": 24, "video": 40}, num_classes=5).train()
    feats = {"audio": torch.randn(4, 24, requires_grad=True), "video": torch.randn(4, 40, requires_grad=True)}
    out = fuser(feats)
    assert out.fused.shape == (4, fuser.out_dim) and torch.isfinite(out.fused).all()
    loss = out.fused.pow(2).mean() + (out.aux_loss if out.aux_loss is not None else 0.0)
    loss = loss + sum(logits.pow(2).mean() for logits in out.logits.values())
    loss.backward()
    for m, x in feats.items():
        assert x.grad is not None and x.grad.abs().sum() > 0, f"{name}: no gradient reaches {m}"
