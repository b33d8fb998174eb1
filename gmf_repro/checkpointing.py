"""Checkpoints that are whole or absent, that say which run made them, and that a resume reads safely.

``AtomicCheckpointIO`` (a Lightning ``CheckpointIO`` plugin) writes each checkpoint to a temporary name
and renames it (atomic.py): a full disk or a kill mid-write leaves no truncated file under a valid name,
and a checkpoint that cannot be read is named in one line. ``RunRecord`` (a Lightning callback) puts the
run's setting, its W&B run id and its training time so far into every checkpoint: ``resume=true`` is
refused with another setting (results.py ``check_same_setting``), continues the same W&B run
(``continued_logger``) and adds the earlier training time to ``timings.fit_s``. It also names a batch
size larger than the training set before the first step, and records the batch size used.
"""
from __future__ import annotations

import copy
import sys
import time
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import DictConfig, open_dict, read_write

from .atomic import atomic_write
from .errors import UserError
from .loggers import is_wandb
from .results import error_summary, last_checkpoint, read_record, setting_record, unreadable


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into a temporary file beside the checkpoint, fsync, rename; reads fail in one line."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's own transaction
            return super().save_checkpoint(checkpoint, path, storage_options)
        try:
            with atomic_write(path) as f:
                torch.save(checkpoint, f)
        except OSError as err:
            raise UserError(
                f"could not write checkpoint {path} ({err.strerror or err}); no partial file was left under that "
                f"name and the earlier checkpoints are whole: free space (or fix the folder), then continue "
                f"with resume=true"
            ) from None

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return super().load_checkpoint(path, *args, **kwargs)
        except FileNotFoundError:
            raise
        except Exception as err:  # noqa: BLE001 - a damaged file is named, not dumped as a traceback
            raise unreadable(path, error_summary(err)) from None


class RunCheckpoint(pl.callbacks.ModelCheckpoint):
    """conf/checkpoint/default.yaml: ``last.ckpt`` after every epoch (what ``resume=true`` continues), and the best
    epoch by ``monitor`` (``val/acc``) only where there is one to choose by: the data has a validation split and the
    task logs it. Without one (the paper's protocol) the run keeps ``last.ckpt`` alone, one file, not two.

    Last-only is Lightning's "latest epoch, top 1, no monitor" saved under the name ``last``: Lightning saves
    ``save_last`` only in an epoch where a top-k checkpoint was saved too, so ``save_top_k: 0`` would leave no
    ``last.ckpt`` to resume from until training ends."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        from pathlib import Path

        from pytorch_lightning.utilities.model_helpers import is_overridden

        validated = bool(getattr(trainer.datamodule, "has_val", False)) and is_overridden("validation_step", pl_module)
        if self.monitor is not None and not validated:
            self.monitor, self.save_top_k, self.save_last = None, 1, False
            self.filename = self.CHECKPOINT_NAME_LAST
            last = Path(str(self.dirpath)) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"
            if last.exists():  # a resumed run replaces it, never writes last-v1.ckpt beside it
                self.best_model_path = str(last)
        super().setup(trainer, pl_module, stage)


def continued_logger(cfg: DictConfig) -> DictConfig:
    """``cfg`` for the run's logger: with ``resume=true``, the W&B run id the checkpoint was written under, so
    the resumed run continues that W&B run instead of starting a second one with the same name."""
    last = last_checkpoint(cfg) if cfg.get("resume") else None
    run_id = (read_record(last) or {}).get("wandb_id") if last is not None and last.exists() else None
    if not run_id or not is_wandb(cfg.get("logger")):
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg), read_write(cfg):
        cfg.logger.id = str(run_id)
    return cfg


class RunRecord(pl.Callback):
    """What each checkpoint says about the run that wrote it (``state_dict``), and what the run used.

    ``fit_s_before``: training time of the runs this one resumes (0 for a fresh run); ``batch_size``: the
    training batch size used, at most the training set's size.
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.setting = setting_record(cfg)
        self.configured_batch = cfg.get("data", {}).get("batch_size")
        self.fit_s_before = 0.0
        self.wandb_id: str | None = None
        self.batch_size: int | None = None
        self._start: float | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()
        wandb = [lg for lg in trainer.loggers if isinstance(lg, pl.loggers.WandbLogger)]
        self.wandb_id = str(wandb[0].version) if wandb and wandb[0].version else None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        found = samples_and_batch(trainer.train_dataloader)
        if found is None:
            return
        n, batch = found
        self.batch_size = min(n, batch)
        if batch <= n:
            return
        if trainer.is_global_zero:
            key = "data.batch_size" if self.configured_batch == batch else "the training batch size"
            print(f"warning: {key}={batch} is larger than the training set ({n} samples): every epoch is one "
                  f"step on all {n}, and the run records batch size {n}; set {key} to at most {n}",
                  file=sys.stderr, flush=True)
        for logger in trainer.loggers:
            logger.log_hyperparams({"data/batch_size": n, "data/batch_size_configured": batch})

    def elapsed(self) -> float:
        """Training time so far, the resumed runs' included."""
        return self.fit_s_before + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def state_dict(self) -> dict[str, Any]:
        return {"setting": self.setting, "wandb_id": self.wandb_id, "fit_s": round(self.elapsed(), 3),
                "batch_size": self.batch_size}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.fit_s_before = float(state_dict.get("fit_s") or 0.0)
        # a resume with no epoch left to train measures no loader: the batch size is the one that trained
        self.batch_size = self.batch_size or state_dict.get("batch_size")


def samples_and_batch(loader: Any) -> tuple[int, int] | None:
    """(training samples, batch size) of a train loader, when it says; None otherwise (the check is skipped)."""
    sampler = getattr(loader, "sampler", None)
    n, batch = getattr(sampler, "n", None), getattr(sampler, "batch_size", None)  # data/tensors.EpochBatchSampler
    if isinstance(n, int) and isinstance(batch, int):
        return n, batch
    batch = getattr(loader, "batch_size", None) or getattr(getattr(loader, "batch_sampler", None), "batch_size", None)
    try:
        n = len(loader.dataset)
    except (AttributeError, TypeError):
        return None
    return (n, batch) if isinstance(batch, int) else None
