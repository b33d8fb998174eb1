"""What a person sees: the config tree, one test progress over all conditions, one summary line per run
(progress bars during training: conf/progress/)."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf


def print_config_tree(cfg: DictConfig) -> None:
    """The composed config as a tree, one branch per group, before anything runs."""
    from rich import print as rprint
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", guide_style="dim")
    for key, value in cfg.items():
        branch = tree.add(f"[bold]{key}")
        text = OmegaConf.to_yaml(value, resolve=False) if OmegaConf.is_config(value) else f"{value}\n"
        branch.add(Syntax(text.rstrip(), "yaml", theme="ansi_dark", background_color="default"))
    rprint(tree)


def wants_config_tree(setting: bool | str) -> bool:
    """``print_config``: ``auto`` prints in a sweep's first job only (what the jobs share, once), not in a single run,
    whose config is in its ``.hydra/config.yaml`` (``--cfg job`` prints it without running)."""
    if setting != "auto":
        return bool(setting)
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return False
    return int(HydraConfig.get().job.get("num", 0) or 0) == 0


class RichProgressBar(pl.callbacks.RichProgressBar):
    """Lightning's rich bar (conf/progress/rich.yaml), stopped once: each ``trainer.test`` stops it again, and rich
    writes an empty line for every stop when the output is a file."""

    def _stop_progress(self) -> None:
        if not getattr(self, "_progress_stopped", False):
            super()._stop_progress()


class ConditionsProgress(pl.Callback):
    """One progress display over the tests of every condition (AV, A, V), in place of Lightning's bar per test.

    Built by ``conditions_progress``; the style follows the run's progress bar (rich or tqdm). On a terminal a
    rich bar goes when done, as Lightning's (``leave: false``); into a file it writes one line at the end."""

    def __init__(self, conditions: Sequence[str], rich: bool) -> None:
        self.conditions, self.rich = list(conditions), rich
        self.label = f"Testing {', '.join(self.conditions)}"
        self.bar: Any = None
        self.task: Any = None
        self.done, self.total, self.start = 0, 0, 0.0

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.total:
            return
        self.total = int(sum(trainer.num_test_batches)) * len(self.conditions)
        self.start = time.perf_counter()
        if self.rich:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            if Console().is_terminal:
                self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn(), transient=True)
                self.task = self.bar.add_task(self.label, total=self.total)
                self.bar.start()
        else:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=self.label, leave=False, dynamic_ncols=True)

    def on_test_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.advance(self.task) if self.rich else self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop() if self.rich else self.bar.close()
        elif self.rich and self.total:
            print(f"{self.label}: {self.done}/{self.total} batches in {time.perf_counter() - self.start:.1f} s")
        self.bar, self.total = None, 0


@contextlib.contextmanager
def conditions_progress(trainer: pl.Trainer, conditions: Sequence[str]) -> Iterator[None]:
    """Around the tests of all conditions: Lightning's progress bar paused, one ``ConditionsProgress`` instead."""
    from pytorch_lightning.callbacks import RichProgressBar

    bar = trainer.progress_bar_callback
    if bar is None or not bar.is_enabled:
        yield
        return
    progress = ConditionsProgress(conditions, rich=isinstance(bar, RichProgressBar))
    bar.disable()
    trainer.callbacks.append(progress)
    try:
        yield
    finally:
        trainer.callbacks.remove(progress)
        progress.close()
        bar.enable()


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


def run_summary_line(results: dict[str, Any]) -> str:
    """``gmf n=2 | avsynth | seed 1 | AV acc 0.912  A acc 0.623 | 3.15M params 6.29M FLOPs 0.12 ms CPU | fit 8.1 s on
    1 CPU thread`` (the threads torch trained with: ``threads``, gmf_repro/threads.py).

    Its head is the logger's run name (``loggers.run_name``): the fuser and the overrides of its own settings,
    so the jobs of a sweep over ``fuser.n=2,4`` are told apart."""
    from .loggers import run_name

    scores = "  ".join(
        f"{cond} " + " ".join(f"{k} {v:.3f}" for k, v in vals.items()) for cond, vals in results["metrics"].items()
    )
    cx = results.get("complexity", {})
    cost = f"{human(cx.get('params', 0))} params {human(cx.get('flops', 0))} FLOPs"
    if "cpu_latency_s" in cx:
        cost += f" {cx['cpu_latency_s'] * 1e3:.3f} ms CPU"
    timings = results["timings"]
    threads = timings.get("cpu_threads")
    on = f" on {threads} CPU thread{'s' if threads != 1 else ''}" if threads else ""
    return (f"{run_name(results['fuser'], results['data'], results['seed'])} | {scores} | {cost} | "
            f"fit {timings['fit_s']:.1f} s{on}")
