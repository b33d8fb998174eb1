"""A run whose training loss is no longer finite stops with the fixes instead of testing a diverged model."""
from __future__ import annotations

from pathlib import Path

import pytest

from gmf_repro.errors import UserError
from gmf_repro.run import run


def test_a_diverged_run_stops_with_the_fixes(cfg_factory):
    cfg = cfg_factory("fuser=gmf", "data.dims=[16,16]", "data.n_train=256", "data.n_test=64", "trainer.max_epochs=3",
                      "task.optimizer.lr=1000", "checkpoint=none")
    with pytest.raises(UserError, match=r"train/loss is nan after epoch 0: .*data\.standardize=true.*optimizer\.lr"):
        run(cfg)
    assert not Path(cfg.paths.output_dir, "results.json").exists()  # nothing reads as a result


def test_a_healthy_run_is_untouched(cfg_factory):
    res = run(cfg_factory("fuser=gmf", "data.dims=[16,16]", "data.n_train=256", "data.n_test=64",
                          "trainer.max_epochs=2", "checkpoint=none"))
    assert res["status"] == "ok" and res["metrics"]["AV"]["acc"] > 0.2  # 10 classes: chance 0.1
