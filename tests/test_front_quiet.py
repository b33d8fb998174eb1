"""A quiet run: a summary line per job, one progress display for the tests, no config tree unless asked, no
W&B or Lightning chatter; checkpoints: last.ckpt alone, the best epoch too only with a validation split."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import cli

from gmf_repro.run import run


def test_a_small_single_run_prints_at_most_40_lines(tmp_path):
    proc = cli("gmf_repro", "fuser=demo/gmf", "trainer.max_epochs=1", "logger=csv", "progress=none", "threads=1",
               f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    out = (proc.stdout + proc.stderr).splitlines()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(out) <= 40, "\n".join(out)
    assert out[-1].startswith("gmf | avsynth | seed 1 | AV acc") and out[-1].endswith("on 1 CPU thread")
    for noise in ("── ", "Total length of", "GPU available: False", "wandb:", "Trainer.fit` stopped", "Testing"):
        assert not any(noise in line for line in out), noise


def test_one_progress_over_every_condition_in_process(cfg_factory, capsys):
    run(cfg_factory("fuser=concat", "trainer.max_epochs=1", "progress=rich", "data.n_train=200", "data.n_test=100",
                    "eval.conditions=[AV,A,V]"))
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" batches")[0] for line in out if line.startswith("Testing")] == ["Testing AV, A, V: 6/6"]


def test_only_last_checkpoint_without_a_validation_split(cfg_factory):
    results = run(cfg_factory("fuser=concat", "trainer.max_epochs=2", "data.n_train=200", "data.n_test=100",
                              "checkpoint=default"))
    assert sorted(p.name for p in (Path(results["output_dir"]) / "checkpoints").iterdir()) == ["last.ckpt"]


def test_the_best_epoch_too_with_a_validation_split(cfg_factory, tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    np.savez(tmp_path / "d.npz", a=rng.normal(size=(300, 8)).astype("float32") + y[:, None],
             b=rng.normal(size=(300, 4)).astype("float32"), label=y)
    results = run(cfg_factory("data=features", f"data.path={tmp_path / 'd.npz'}", "data.val_fraction=0.2",
                              "fuser=concat", "trainer.max_epochs=2", "checkpoint=default", "threads=1",
                              "logger=none", "progress=none", "eval.latency_repeats=3", tiny=False))
    names = sorted(p.name for p in (Path(results["output_dir"]) / "checkpoints").iterdir())
    assert names[-1] == "last.ckpt" and len(names) == 2 and names[0].startswith("best-epoch=")


def test_a_clip_datamodule_reports_its_data_once(monkeypatch, capsys):
    from gmf_repro.data.clip_base import AVClipDataModule

    calls = []

    def ensure(self):
        calls.append(1)
        self.manifest = {"summary": "kept 37 of 40 clips"}
        print(f"clips: {self.manifest['summary']}")

    class Clips(AVClipDataModule):
        def list_clips(self):
            return []

    monkeypatch.setattr(Clips, "ensure_cache", ensure)
    dm = Clips.__new__(Clips)
    dm.manifest = None
    for _ in range(4):  # Lightning: before fit and before each condition's test
        dm.prepare_data()
    assert len(calls) == 1 and capsys.readouterr().out.count("kept 37 of 40") == 1


def test_the_wandb_logger_is_silent_and_passes_no_anonymous_argument(tmp_path):
    from gmf_repro.config import compose
    from gmf_repro.loggers import WandbLogger
    from gmf_repro.utils import build

    logger = WandbLogger(project="p", offline=True, save_dir=str(tmp_path))
    assert logger._wandb_init["settings"].silent is True and "anonymous" not in logger._wandb_init
    loud = WandbLogger(project="p", offline=True, save_dir=str(tmp_path), silent=False)
    assert "settings" not in loud._wandb_init
    cfg = compose(["logger=wandb", f"paths.output_dir={tmp_path}"], return_hydra_config=True)
    from gmf_repro.config import with_hydra_config

    with with_hydra_config(cfg):
        built = build(cfg.logger)
    assert built._wandb_init["settings"].silent is True  # conf/logger/wandb.yaml's silent: true
