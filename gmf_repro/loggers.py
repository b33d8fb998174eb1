"""The experiment logger of one run: it holds the resolved config from the start and is closed whatever happens.

W&B keeps one run per process open until ``wandb.finish``; a job that failed without finishing it
would hand its run to the next job of a sweep. ``experiment_logger`` finishes it in every case,
with exit code 1 and the error in the summary when the job failed.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from .results import config_digest, flatten


@contextmanager
def experiment_logger(cfg: DictConfig) -> Iterator[Any]:
    """The run's logger (or False), its config already logged; closed on the way out, failed or not."""
    logger = build_logger(cfg)
    try:
        if logger:
            log_config(logger, cfg)
        yield logger
    except BaseException as err:
        close_logger(logger, err)
        raise
    close_logger(logger)


def build_logger(cfg: DictConfig) -> Any:
    """``cfg.logger`` built as conf/logger/*.yaml gives it, run name, group and tags included."""
    if not cfg.logger or cfg.logger.get("_target_") is None:
        return False
    from .utils import build

    return build(cfg.logger)


def is_wandb(logger_cfg: DictConfig | None) -> bool:
    """Whether ``logger_cfg`` builds a W&B logger (Lightning's or a subclass), read from its ``_target_`` class.

    A target that cannot be imported is not W&B (Hydra logs why); building that logger fails with its own error.
    """
    from hydra.utils import get_class

    target = logger_cfg.get("_target_") if isinstance(logger_cfg, Mapping) else None
    if not target:
        return False
    try:
        return issubclass(get_class(str(target)), pl.loggers.WandbLogger)
    except (ImportError, ValueError):  # no such module or attribute, or not a class
        return False


def wandb_group(group: str | None, sweep_dir: str | None = None) -> str | None:
    """``group`` if set; else, in a multirun, the sweep folder's last two parts (``2026-01-01/12-00-00``)."""
    if group:
        return str(group)
    if sweep_dir is None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
            return None
        sweep_dir = HydraConfig.get().sweep.dir
    return "/".join(Path(str(sweep_dir)).parts[-2:])


def run_label(fuser: str) -> str:
    """This job's label: its fuser and the overrides of the fuser's own settings, ``gmf n=2 beta=0.5``
    (``naming.py``); the fuser alone outside a Hydra job."""
    from .naming import job_label

    return job_label(str(fuser), job_overrides())


def run_name(fuser: str, data: str, seed: object, style: str = "title") -> str:
    """The logger's run name (conf/logger/*.yaml): ``gmf n=2 | avsynth | seed 1``, the head of the job's summary
    line (W&B); ``style=folder``: ``gmf_n=2-avsynth-s1``, a folder name (the CSV logger's)."""
    label = run_label(fuser)
    if style == "folder":
        return f"{label.replace(' ', '_').replace('/', '-')}-{data}-s{seed}"
    return f"{label} | {data} | seed {seed}"


def run_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config flattened with ``/`` (``fuser/n``, ``task/optimizer/lr``), plus overrides and digest."""
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - e.g. ${hydra:...} outside a Hydra job: log what is written
        container = OmegaConf.to_container(cfg, resolve=False)
    return {**flatten(container), "overrides": job_overrides(), "config_digest": config_digest(cfg)}


def job_overrides() -> list[str]:
    """The command-line overrides of this Hydra job (``[]`` outside Hydra, e.g. a test's composed config)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def log_config(logger: Any, cfg: DictConfig) -> None:
    """Config into the logger before anything is built, so a job that fails early still shows what it was."""
    logger.log_hyperparams(run_config(cfg))
    if isinstance(logger, pl.loggers.WandbLogger):
        logger.experiment  # noqa: B018 - starts the W&B run now, not at fit
    else:
        logger.save()  # CSV: hparams.yaml now, not only once training starts


class WandbLogger(pl.loggers.WandbLogger):
    """Lightning's W&B logger with summaries defined for comparing runs (``define_metric``), and quiet.

    A test metric's summary is its final value; a training loss keeps its minimum and last value.
    Each name is defined exactly when first logged: a glob would compete with Lightning's own ``*``.
    ``silent`` (conf/logger/wandb.yaml; default true) keeps W&B's banner, its run history and summary at the end
    of each job and its sync hints off the terminal: the run folder's ``wandb/`` holds all of it. Lightning's
    ``anonymous`` argument is not passed on (W&B warns that it has no effect).
    """

    def __init__(self, *args: Any, silent: bool = True, **kwargs: Any) -> None:
        if silent and "settings" not in kwargs:
            import wandb

            kwargs["settings"] = wandb.Settings(silent=True)
        super().__init__(*args, **kwargs)
        self._wandb_init.pop("anonymous", None)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        defined = self.__dict__.setdefault("_gmf_defined", set())
        for key in metrics:
            if key.startswith(("train/", "test/")) and key not in defined:
                summary = "min,last" if key.startswith("train/") and "loss" in key else "last"
                self.experiment.define_metric(key, step_metric="trainer/global_step", summary=summary)
                defined.add(key)
        super().log_metrics(metrics, step)


def log_results(logger: Any, results: dict[str, Any]) -> None:
    """Mirror results.json in the W&B summary (``metrics/AV/acc``, ``complexity/params``, ...)."""
    if isinstance(logger, pl.loggers.WandbLogger):
        logger.experiment.summary.update(flatten({k: v for k, v in results.items() if k != "versions"}))


def close_logger(logger: Any, error: BaseException | None = None) -> None:
    """Finish the W&B run (exit code 1 and the error in its summary on a failure); flush any other logger."""
    if isinstance(logger, pl.loggers.WandbLogger):
        import wandb

        if wandb.run is not None:
            if error is not None:
                wandb.run.summary.update({"status": "failed", "error": f"{type(error).__name__}: {error}"})
            wandb.finish(exit_code=0 if error is None else 1)
    elif logger:
        logger.save()
