"""Optimiser and learning-rate schedule from the task's Hydra partials, shared by every task.

``task.scheduler`` is a partial that takes the optimiser and returns either a torch scheduler
(stepped by Lightning once per epoch on ``task.monitor``) or a Lightning scheduler dict such as
the one :func:`reduce_on_plateau` returns, which also says how often it steps and on which metric.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import nn

INTERVALS = ("step", "epoch")


def reduce_on_plateau(optimizer: torch.optim.Optimizer, *, interval: str = "step", frequency: int = 1,
                      monitor: str = "train/loss_step", **plateau: Any) -> dict[str, Any]:
    """``ReduceLROnPlateau(optimizer, **plateau)`` stepped every ``frequency`` iterations (``interval: step``) or
    epochs (``interval: epoch``) on ``monitor``.

    The paper's patience (1000 on VGGSound, 50 on FakeAVCeleb) counts iterations: stepped per epoch it
    could never fire within 20 (5) epochs. ``train/loss_step`` is the loss of the latest training batch,
    ``train/loss`` (at epoch end) the epoch mean.
    """
    if interval not in INTERVALS:
        raise ValueError(f"task.scheduler.interval={interval!r}; use one of {list(INTERVALS)}")
    if int(frequency) < 1:
        raise ValueError(f"task.scheduler.frequency={frequency}; use an integer >= 1")
    return {"scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **plateau),
            "interval": interval, "frequency": int(frequency), "monitor": monitor}


def configure_optimizers(
    params: Iterable[nn.Parameter],
    optimizer: Callable[..., Any] | None,
    scheduler: Callable[..., Any] | None,
    monitor: str,
) -> Any:
    """What Lightning's ``configure_optimizers`` returns; None when nothing is trainable (e.g. CLIP on features)."""
    params = [p for p in params if p.requires_grad]
    if not params or optimizer is None:
        return None
    opt = optimizer(params)
    if scheduler is None:
        return opt
    sched = scheduler(opt)
    config = {"monitor": monitor, **sched} if isinstance(sched, dict) else {"scheduler": sched, "monitor": monitor}
    return {"optimizer": opt, "lr_scheduler": config}
