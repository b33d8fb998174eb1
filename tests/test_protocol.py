"""Training protocol of SPEC §4 / paper Tables 5-6 and the media choices of issue items 9-12:
the plateau scheduler steps per iteration; FakeAVCeleb trains fusers on frozen unimodal features;
the FakeAVCeleb split's sort key and test make-up; VGGSound frames' orientation and time span."""
from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from gmf_repro.run import build_extractors
from gmf_repro.utils import build


# -- item 10: ReduceLROnPlateau stepped per iteration ------------------------------------------------------------

@pytest.mark.parametrize("task, patience, extra", [("classification", 1000, {}),
                                                   ("classification_adam", 50, {"min_lr": 1e-8}),
                                                   ("retrieval", 1000, {})])
def test_default_plateau_steps_per_iteration_on_the_batch_loss(cfg_factory, task, patience, extra):
    cfg = cfg_factory(f"task={task}")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    sched = build(cfg.task.scheduler)(opt)
    assert {k: sched[k] for k in ("interval", "frequency", "monitor")} == \
        {"interval": "step", "frequency": 1, "monitor": "train/loss_step"}
    plateau = sched["scheduler"]
    assert isinstance(plateau, torch.optim.lr_scheduler.ReduceLROnPlateau) and plateau.patience == patience
    assert plateau.min_lrs == [extra.get("min_lr", 0)]
    assert cfg.task.monitor == "train/loss"  # the checkpoint's epoch metric stays the epoch mean


@pytest.mark.parametrize("interval, monitor, drops", [("step", "train/loss_step", True),
                                                      ("epoch", "train/loss", False)])
def test_plateau_fires_within_one_epoch_only_when_stepped_per_iteration(cfg_factory, interval, monitor, drops):
    # an absolute threshold of 10 makes the loss a plateau for the scheduler: no batch after the first counts
    # as an improvement (what a constant loss gives)
    cfg = cfg_factory("fuser=concat", "data.n_train=320", "data.batch_size=32", "task.scheduler.patience=2",
                      "+task.scheduler.threshold=10", "+task.scheduler.threshold_mode=abs",
                      f"task.scheduler.interval={interval}", f"task.scheduler.monitor={monitor}")
    dm = build(cfg.data)
    extractors = build_extractors(cfg, dm)
    fuser = build(cfg.fuser)(dims={m: e.out_dim for m, e in extractors.items()})
    task = build(cfg.task, extractors=extractors, fuser=fuser, num_classes=dm.num_classes)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(task, datamodule=dm)  # 10 iterations
    assert trainer.lr_scheduler_configs[0].interval == interval
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    # per step: best at step 1, 3 bad steps > patience 2 -> x0.1 at step 4, again at step 7 and 10
    assert (lr == pytest.approx(1e-5)) if drops else (lr == 0.01), (lr, trainer.global_step)
