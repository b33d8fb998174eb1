"""run(cfg): the whole job, top to bottom (docs/architecture.md)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from .build import build_model
from .callbacks import MetricsCallback
from .checkpointing import AtomicCheckpointIO, RunRecord, continued_logger
from .complexity import measure, paper_size
from .config import check_settings
from .data.contract import MultimodalData, check_datamodule
from .errors import UserError
from .evaluation.conditions import check_missing, resolve_conditions, under_condition
from .loggers import experiment_logger, log_results
from .protocol import protocol_record
from .report.specs import TABLE_NAMES
from .results import claim_run_folder, config_digest, last_checkpoint, setting_digest, versions, write_json_atomic
from .tasks.base import MultimodalTask
from .threads import set_threads
from .ui import conditions_progress, print_config_tree, run_summary_line, wants_config_tree
from .utils import build, labels_of, report_place


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train one fuser on one dataset, evaluate every missing-modality condition, write results.json.

    Settings are checked before anything is built; the run folder is this run's alone while it runs;
    the logger's run is closed whatever happens, so the next job of a sweep starts its own.
    """
    check_settings(cfg)
    check_report_place(cfg)
    with claim_run_folder(Path(cfg.paths.output_dir), cfg) as out_dir:
        with experiment_logger(continued_logger(cfg)) as logger:  # resume=true: the checkpoint's W&B run
            return train_and_test(cfg, out_dir, logger)


def train_and_test(cfg: DictConfig, out_dir: Path, logger: Any) -> dict[str, Any]:
    """The whole job, top to bottom (docs/architecture.md)."""
    if wants_config_tree(cfg.print_config):
        print_config_tree(cfg)
    set_threads(cfg.get("threads"))  # auto: half of the idle cores, 1 to 8 (threads.py); the summary line names it
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = check_datamodule(build(cfg.data))
    # checked before training, not after; `auto`: every subset of the data's modalities
    conditions = resolve_conditions(cfg.eval.conditions, datamodule.modalities, datamodule.letters)
    check_missing(cfg.eval.get("missing", "zero"), datamodule)
    task = build_model(cfg, datamodule)

    callbacks = [build(c) for c in cfg.callbacks.values()] + ([build(cfg.progress)] if cfg.progress else [])
    # conf/checkpoint/: <output_dir>/checkpoints (last.ckpt for resume=true), or none
    checkpoint = [build(cfg.checkpoint)] if cfg.checkpoint else []
    selector = build_selector(cfg.eval.get("select", "last"), datamodule, task, out_dir)
    # into every checkpoint: the setting, W&B run and training time (checkpointing.py); the batch size used
    record = RunRecord(cfg)
    all_callbacks = [*callbacks, *checkpoint, *([selector] if selector else []), record]
    trainer = build(
        cfg.trainer,
        precision=resolve_precision(cfg.trainer),
        logger=logger,
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],  # a checkpoint is whole or absent, never truncated under its name
        default_root_dir=str(out_dir),
        enable_progress_bar=bool(cfg.progress),
        # with checkpoint=none Lightning would otherwise add a checkpoint callback of its own
        enable_checkpointing=any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in all_callbacks),
    )
    last = last_checkpoint(cfg)
    start = time.perf_counter()
    trainer.fit(task, datamodule=datamodule, ckpt_path=str(last) if cfg.resume and last and last.exists() else None)
    fit_s = time.perf_counter() - start + record.fit_s_before  # with resume=true, the earlier runs' training too
    selection = select_model(task, selector, trainer)

    start = time.perf_counter()
    metrics = evaluate(trainer, task, datamodule, conditions, cfg.eval.get("missing", "zero"))
    for cb in callbacks:
        if isinstance(cb, MetricsCallback):
            metrics.update(cb.extra_metrics())
    test_s = time.perf_counter() - start
    if not trainer.is_global_zero:  # under DDP, rank 0 alone measures, writes and logs
        return {"status": "ok", "metrics": metrics, "rank": trainer.global_rank}

    results: dict[str, Any] = {
        **labels_of(cfg),
        "experiment": cfg.experiment_name,
        **report_place(cfg),
        "group": cfg.group,
        "tags": list(cfg.tags),
        "seed": int(cfg.seed),
        "batch_size": record.batch_size,  # what training used: at most the training set's size
        "dims": dict(task.fuser.dims),
        "status": "ok",
        "metrics": metrics,
        "selection": selection,
        "missing": cfg.eval.get("missing", "zero"),  # what an absent modality's raw input was (A/V columns)
        # each choice the paper states or we infer: ours, the paper's, the source (gmf_repro/protocol.py)
        "protocol": protocol_record(cfg, trainer, datamodule),
        "complexity": measure_complexity(cfg, task),
        "analysis": analyse(task, datamodule, cfg),
        "timings": {"fit_s": round(fit_s, 3), "test_s": round(test_s, 3), "epochs": trainer.current_epoch,
                    "cpu_threads": torch.get_num_threads()},
        "config_digest": config_digest(cfg),
        "setting_digest": setting_digest(cfg),  # the report groups seed repeats by it
        "versions": versions(),
        "output_dir": str(out_dir),
    }
    for cb in callbacks:  # blocks of their own, e.g. bn_recalibration (gmf_repro/bn_recalibration.py)
        if isinstance(cb, MetricsCallback):
            results.update(cb.extra_results())
    if (summary := datamodule.describe_split()) is not None:
        results["data_summary"] = summary  # e.g. FakeAVCeleb's train/test make-up per category and race folder
    write_json_atomic(out_dir / "results.json", results)
    log_results(logger, results)
    print(run_summary_line(results))
    return results


def check_report_place(cfg: DictConfig) -> None:
    """``report.table`` names one of the paper's tables (the report owns their names) or is null; checked
    before the run, not when the report cannot place it."""
    table = report_place(cfg)["table"]
    if table is not None and table not in TABLE_NAMES:
        raise UserError(f"report.table={table!r} is not a paper table: use one of {', '.join(TABLE_NAMES)}, "
                        f"or null for a run outside them")


def measure_complexity(cfg: DictConfig, task: MultimodalTask) -> dict[str, Any]:
    """The fuser's params, FLOPs and CPU latency (complexity/fusers.py), and ``paper_size``: params and FLOPs of
    its paper-size configuration at the same dims, which the report shows beside the paper's for a demo-size run."""
    own = measure(task.fuser, threads=cfg.eval.latency_threads, repeats=cfg.eval.latency_repeats,
                  latency=cfg.eval.complexity)
    return {**own, "paper_size": paper_size(labels_of(cfg)["fuser"], task.fuser.dims, cfg.fuser, own)}


def build_selector(select: str, datamodule: MultimodalData, task: MultimodalTask, out_dir: Path) -> Any:
    """``eval.select=best``: a checkpoint of the epoch with the highest ``val/acc``; ``last`` (default,
    the paper's protocol): none, the test metrics are the final model's. Val metrics are logged either way."""
    if select not in ("last", "best"):
        raise UserError(f"eval.select={select} is not one of [last, best]; last tests the final model, "
                        f"best the epoch with the highest val/acc")
    if select == "last":
        return None
    from pytorch_lightning.utilities.model_helpers import is_overridden

    if not datamodule.has_val:
        raise UserError(f"eval.select=best needs a validation split, which {type(datamodule).__name__} does not "
                        f"have; set data.val_fraction=0.1 (data=features or data=clips) or eval.select=last")
    if not is_overridden("validation_step", task):
        raise UserError(f"eval.select=best needs val/acc, which {type(task).__name__} does not log; "
                        f"use eval.select=last")
    return pl.callbacks.ModelCheckpoint(dirpath=out_dir / "checkpoints" / "best_val", filename="{epoch}",
                                        monitor="val/acc", mode="max", save_top_k=1, save_last=False)


def select_model(task: MultimodalTask, selector: Any, trainer: pl.Trainer) -> dict[str, Any]:
    """Load the selected epoch's weights into ``task`` (``eval.select=best``); what was selected, for results.json."""
    val_acc = trainer.callback_metrics.get("val/acc")
    if selector is None:
        return {"select": "last", "epoch": trainer.current_epoch - 1,
                "val_acc": None if val_acc is None else float(val_acc)}
    if not selector.best_model_path:
        raise RuntimeError("eval.select=best: no validation epoch ran, so there is no best model; "
                           "check trainer.check_val_every_n_epoch and trainer.limit_val_batches")
    ckpt = torch.load(selector.best_model_path, map_location=task.device, weights_only=True)
    task.load_state_dict(ckpt["state_dict"])
    return {"select": "best", "epoch": int(ckpt["epoch"]), "val_acc": float(selector.best_model_score),
            "checkpoint": str(selector.best_model_path)}


def resolve_precision(trainer_cfg: DictConfig) -> str:
    """'auto': the paper's mixed precision (16-mixed) on a GPU, full precision on the CPU."""
    precision = str(trainer_cfg.get("precision", "auto"))
    if precision != "auto":
        return precision
    gpu = torch.cuda.is_available() and trainer_cfg.get("accelerator", "auto") in ("auto", "gpu", "cuda")
    return "16-mixed" if gpu else "32-true"


def evaluate(trainer: pl.Trainer, task: MultimodalTask, datamodule: MultimodalData, conditions: list[str],
             missing: str = "zero") -> dict:
    """Test once per condition (e.g. AV, A, V); metrics come back as {condition: {metric: value}}.

    The datamodule withholds the condition's absent modalities from the raw batches (``missing``: what
    replaces them, evaluation/conditions.py); the task logs its metrics under the condition's name.
    """
    metrics: dict[str, dict[str, float]] = {}
    with conditions_progress(trainer, conditions):  # one progress display for all conditions (ui.py)
        for condition in conditions:
            task.condition = condition
            with under_condition(datamodule, condition, missing, task.fuser):
                logged = trainer.test(task, datamodule=datamodule, verbose=False)[0]
            prefix = f"test/{condition}/"
            metrics[condition] = {k[len(prefix):]: float(v) for k, v in logged.items() if k.startswith(prefix)}
    task.condition = None
    return metrics


def analyse(task: MultimodalTask, datamodule: MultimodalData, cfg: DictConfig) -> dict[str, Any]:
    """Mutual information between the fused parts on the test set (docs/paper.md §6, claim 4)."""
    if not cfg.eval.get("mutual_information"):
        return {}
    from .evaluation.parts import parts_analysis

    mi = parts_analysis(task.model, datamodule, task.device)
    return {"mutual_information": mi} if mi else {}
