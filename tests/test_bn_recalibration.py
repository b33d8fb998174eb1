"""BatchNorm statistics in step with the final weights (gmf_repro/bn_recalibration.py).

The collapse, reproduced: a small conv net with BatchNorm, trained with the paper's FakeAVCeleb optimiser (Adam
0.005, betas (0.5, 0.9)) for 30 steps on inputs offset by -18 (the floor of a log-STFT, log 1e-8): in train mode
it separates the classes, in eval mode (running averages of earlier weights) it calls every test sample one class.
Recomputing the statistics with the final weights after fitting restores eval mode; it runs before the feature
export whatever the callbacks' order.
"""
from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from conftest import make_cfg
from omegaconf import open_dict
from torch import nn

from gmf_repro.bn_recalibration import BNRecalibration, recalibrate, trained_batchnorms
from gmf_repro.data.tensors import TensorDataModule, TensorDictDataset
from gmf_repro.run import run

OFFSET = -18.0


class OffsetImages(TensorDataModule):
    """Two classes of 12 x 12 one-channel images (brighter top or bottom half), offset far from zero."""

    modalities, input_shapes, num_classes = ["image"], {"image": (1, 12, 12)}, 2

    def __init__(self, n_train: int = 480, n_test: int = 256, batch_size: int = 16, seed: int = 1, **_: object) -> None:
        super().__init__(batch_size, seed=seed)
        g = torch.Generator().manual_seed(0)
        sets = {}
        for split, n in (("train", n_train), ("test", n_test)):
            y = torch.randint(0, 2, (n,), generator=g)
            x = torch.randn(n, 1, 12, 12, generator=g)
            x[:, :, :6] += 0.8 * (2 * y.view(-1, 1, 1, 1) - 1)
            sets[split] = TensorDictDataset({"image": x + OFFSET, "label": y})
        self.train_set, self.test_set = sets["train"], sets["test"]


class SmallConvNet(nn.Module):
    """Four conv + BatchNorm + ReLU layers of width 64, global average pool -> 64-d."""

    def __init__(self, input_shape: tuple[int, ...], width: int = 64) -> None:
        super().__init__()
        layers, c = [], int(input_shape[0])
        for d in range(4):
            layers += [nn.Conv2d(c, width, 3, padding=1, stride=2 if d in (1, 3) else 1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU()]
            c = width
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = width

    def forward(self, x):
        return self.net(x)


def collapse_cfg(tmp_path, enabled: bool):
    cfg = make_cfg(tmp_path, ["logger=none", "progress=none", "print_config=false", "trainer=cpu", "threads=1",
                              "checkpoint=none", "eval.latency_repeats=2", "eval.mutual_information=false",
                              "fuser=concat", "task=classification_adam", "+trainer.max_steps=30",
                              "eval.conditions=[I]", f"callbacks.bn_recalibration.enabled={enabled}"], tiny=False)
    with open_dict(cfg):
        cfg.data = {"_target_": "test_bn_recalibration.OffsetImages"}
        cfg.extractors = {"image": {"_target_": "test_bn_recalibration.SmallConvNet", "_partial_": True}}
    return cfg


@pytest.mark.parametrize("enabled", [False, True])
def test_eval_mode_collapse_and_the_fix_through_run(tmp_path, enabled):
    res = run(collapse_cfg(tmp_path, enabled))
    acc = res["metrics"]["I"]["acc"]
    bn = res["bn_recalibration"]
    assert bn["layers"] == 4 and bn["eval_vs_train_gap_before"] > 0.4  # eval and train mode disagree
    if not enabled:  # the running averages of training: every test sample one class, about half of them right
        assert bn["done"] is False and "enabled=false" in bn["reason"] and "eval_vs_train_gap_after" not in bn
        assert acc < 0.6  # (the ranking survives here, AUROC 1: one offset on every logit)
    else:  # one pass over the training split with the final weights: eval mode agrees with train mode
        assert bn["done"] is True and bn["batches"] == 30  # 480 training samples / batch 16
        assert bn["eval_vs_train_gap_after"] < 0.05
        assert acc > 0.95


def test_recalibration_matches_torchs_update_bn_and_skips_frozen_layers():
    torch.manual_seed(0)
    net = SmallConvNet((1, 12, 12))
    ref = SmallConvNet((1, 12, 12))
    ref.load_state_dict(net.state_dict())
    frozen = nn.BatchNorm2d(3)
    frozen.requires_grad_(False)
    assert trained_batchnorms(nn.Sequential(net, frozen)) == [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    batches = [torch.randn(8, 1, 12, 12) * 3 + 5 for _ in range(4)]
    net.train()
    assert recalibrate(net, batches, trained_batchnorms(net)) == 4 and net.training  # the mode is given back
    torch.optim.swa_utils.update_bn(batches, ref)
    for a, b in zip(trained_batchnorms(net), trained_batchnorms(ref)):
        torch.testing.assert_close(a.running_mean, b.running_mean)
        torch.testing.assert_close(a.running_var, b.running_var)
        assert a.momentum == 0.1  # restored after the cumulative pass
    assert recalibrate(net, batches, trained_batchnorms(net), max_batches=2) == 2
    with pytest.raises(ValueError, match="max_batches=0"):
        BNRecalibration(max_batches=0)


class RecordStats(pl.Callback):
    """Stands for the feature export: what the BatchNorm statistics are when fitting ends."""

    def on_fit_end(self, trainer, pl_module):
        self.seen = [m.running_var.clone() for m in trained_batchnorms(pl_module)]


@pytest.mark.parametrize("first", ["export", "recalibration"])
def test_the_export_reads_recalibrated_statistics_in_either_order(tmp_path, first):
    from gmf_repro.build import build_model

    cfg = collapse_cfg(tmp_path, True)
    datamodule = OffsetImages()
    task = build_model(cfg, datamodule)
    record, recal = RecordStats(), BNRecalibration()
    trainer = pl.Trainer(accelerator="cpu", max_steps=30, logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False,
                         callbacks=[record, recal] if first == "export" else [recal, record])
    trainer.fit(task, datamodule=datamodule)
    assert recal.record["done"]
    final = [m.running_var for m in trained_batchnorms(task)]
    assert all(torch.equal(a, b) for a, b in zip(record.seen, final))
    # loading other weights (eval.select=best) makes the statistics stale: the next test recomputes them
    state = {k: v.clone() for k, v in task.state_dict().items()}
    bn = trained_batchnorms(task)[0]
    state[next(k for k, b in task.named_buffers() if b is bn.running_var)] = torch.ones_like(bn.running_var)
    task.load_state_dict(state)
    assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    trainer.test(task, datamodule=datamodule, verbose=False)
    assert torch.allclose(bn.running_var, final[0])
