"""What a person sees: the config tree and one summary line per run (progress bars: conf/progress/)."""
from __future__ import annotations

from typing import Any

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
    """``print_config``: ``auto`` prints in a single run and in a sweep's first job only (not once per job)."""
    if setting != "auto":
        return bool(setting)
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return True
    return int(HydraConfig.get().job.get("num", 0) or 0) == 0


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


def run_summary_line(results: dict[str, Any]) -> str:
    """``gmf n=2 | avsynth | seed 1 | AV acc 0.912  A acc 0.623 | 3.15M params 6.29M FLOPs 0.12 ms CPU | fit 8.1 s``.

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
    return (f"{run_name(results['fuser'], results['data'], results['seed'])} | {scores} | {cost} | "
            f"fit {results['timings']['fit_s']:.1f} s")
