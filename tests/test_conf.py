"""Tests generated from the config tree: a new fuser or experiment yaml is tested the moment it exists."""
from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from gmf_repro.build import build_fuser
from gmf_repro.config import compose, group_options
from gmf_repro.errors import UserError
from gmf_repro.loggers import build_logger, is_wandb
from gmf_repro.results import last_checkpoint
from gmf_repro.run import run
from gmf_repro.utils import build


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


def build_callbacks_and_logger(cfg: DictConfig) -> tuple[list, object, object, object]:
    """What ``run()`` hands the trainer from the config: the callbacks, progress bar, checkpoint and logger.

    The logger is only constructed (Lightning's W&B logger starts its run on first use, so nothing is written)."""
    callbacks = [build(c) for c in cfg.callbacks.values()]
    progress = build(cfg.progress) if cfg.progress else None
    checkpoint = build(cfg.checkpoint) if cfg.checkpoint else None
    return callbacks, progress, checkpoint, build_logger(cfg)


@pytest.mark.parametrize("name", group_options("experiment"))
def test_every_experiment_builds_lightning_callbacks_and_logger(name: str, tmp_path: Path) -> None:
    """Callbacks, progress bar, checkpoint and logger of each experiment are Lightning objects; the checkpoint
    goes to the run folder, where resume reads it. Nothing is trained, no data is read."""
    cfg = compose([f"experiment={name}"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
    callbacks, progress, checkpoint, logger = build_callbacks_and_logger(cfg)
    assert len(callbacks) == len(cfg.callbacks) and all(isinstance(c, pl.Callback) for c in callbacks)
    assert progress is None or isinstance(progress, pl.callbacks.ProgressBar)
    assert isinstance(checkpoint, pl.callbacks.ModelCheckpoint) and checkpoint.save_last
    # the best epoch by val/acc, which RunCheckpoint keeps only where the data has a validation split
    assert Path(checkpoint.dirpath) == tmp_path / "checkpoints" and checkpoint.monitor == "val/acc"
    assert last_checkpoint(cfg) == tmp_path / "checkpoints" / "last.ckpt"
    assert logger is False or isinstance(logger, pl.loggers.Logger)
    assert is_wandb(cfg.logger) == isinstance(logger, pl.loggers.WandbLogger)
    assert not any(tmp_path.iterdir())  # building them wrote nothing


@pytest.mark.parametrize("group, option", [(g, o) for g in ("progress", "checkpoint", "logger")
                                           for o in group_options(g)])
def test_every_progress_checkpoint_and_logger_option_builds(group: str, option: str, tmp_path: Path) -> None:
    cfg = compose([f"{group}={option}"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
    _, progress, checkpoint, logger = build_callbacks_and_logger(cfg)
    built = {"progress": progress, "checkpoint": checkpoint, "logger": logger}[group]
    kind = {"progress": pl.callbacks.ProgressBar, "checkpoint": pl.callbacks.ModelCheckpoint,
            "logger": pl.loggers.Logger}[group]
    assert isinstance(built, kind) if option != "none" else built in (None, False)
    if group == "checkpoint":
        assert last_checkpoint(cfg) == (None if option == "none" else Path(checkpoint.dirpath) / "last.ckpt")


def test_is_wandb_checks_the_target_class() -> None:
    """A subclass of Lightning's W&B logger counts whatever its name; anything else, importable or not, does not."""
    assert is_wandb(compose(["logger=wandb"]).logger) and not is_wandb(compose(["logger=csv"]).logger)
    assert not is_wandb(compose(["logger=none"]).logger) and not is_wandb(None)
    for target, expected in (("pytorch_lightning.loggers.WandbLogger", True), ("no.such.WandbLogger", False),
                             ("gmf_repro.loggers.is_wandb", False)):  # the last: a function, not a class
        assert is_wandb(OmegaConf.create({"_target_": target})) is expected, target


@pytest.mark.parametrize("yaml_line, message", [
    ("progress: false", "progress=false is a plain value, not one of the progress group's configs (none, rich, tqdm: "
                        "conf/progress/); choose one with `- override /progress: none` in an experiment's defaults "
                        "or progress=none on the command line"),
    ("checkpoint: none", "checkpoint='none' is a plain value"),
    ("logger: csv", "logger='csv' is a plain value, not one of the logger group's configs (csv, none, wandb: "
                    "conf/logger/); choose one with `- override /logger: csv`"),
    ("callbacks: {x: 3}", "callbacks.x=3 must be a callback config with a _target_, for example "
                          "callbacks.x={_target_: gmf_repro.callbacks.LinearProbe}; remove it with ~callbacks.x"),
    ("callbacks: {probe: {epochs: 3}}", "callbacks.probe={epochs: 3} must be a callback config with a _target_"),
    ("callbacks: null", "callbacks=null must be a mapping name -> callback config"),
])
def test_a_plain_value_in_place_of_a_callback_node_is_one_line_before_anything_runs(
        tmp_path: Path, yaml_line: str, message: str) -> None:
    """The mistake as it is made: an experiment file that sets a group's key instead of overriding the group."""
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "mine.yaml").write_text(f"# @package _global_\n{yaml_line}\n")
    cfg = compose([f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=mine"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.data._target_ = "no.such.DataModule"  # building it would fail with another error
    with pytest.raises(UserError) as err:
        run(cfg)
    assert str(err.value).startswith(message) and "\n" not in str(err.value), err.value
    assert not (tmp_path / "run").exists()


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
