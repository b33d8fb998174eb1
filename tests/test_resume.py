"""A run killed mid-training and resumed with resume=true ends with the metrics of an uninterrupted run."""
import pytest
import pytorch_lightning as pl
from omegaconf import open_dict

from gmf_repro.run import run


class Interrupt(pl.Callback):
    """Stands in for a killed job: fails at the start of a given epoch, after earlier checkpoints."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"killed at epoch {self.epoch}")


class RecordEpochs(pl.Callback):
    """Writes every epoch the trainer starts, so the test can see where a resumed run began."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        with open(self.path, "a") as f:
            f.write(f"{trainer.current_epoch}\n")


def test_resume_matches_uninterrupted_run(cfg_factory, tmp_path):
    settings = ("fuser=gmf", "trainer.max_epochs=4", "data.n_train=600", "data.n_test=300")
    whole = run(cfg_factory(*settings, name="whole"))

    cfg = cfg_factory(*settings, name="killed")
    with open_dict(cfg):
        cfg.callbacks = {"interrupt": {"_target_": "test_resume.Interrupt", "epoch": 2}}
    with pytest.raises(RuntimeError, match="killed at epoch 2"):
        run(cfg)
    cfg = cfg_factory(*settings, "resume=true", name="killed")
    with open_dict(cfg):
        cfg.callbacks = {"record": {"_target_": "test_resume.RecordEpochs", "path": str(tmp_path / "epochs.txt")}}
    resumed = run(cfg)
    # it continued after the last finished epoch instead of starting again
    assert (tmp_path / "epochs.txt").read_text().split() == ["2", "3"]

    assert resumed["timings"]["epochs"] == whole["timings"]["epochs"] == 4
    assert resumed["metrics"] == whole["metrics"]
