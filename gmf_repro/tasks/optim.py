"""Optimiser and plateau scheduler from the task's Hydra partials, shared by every task."""
from __future__ import annotations

from typing import Any, Callable, Iterable

from torch import nn


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
    return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler(opt), "monitor": monitor}}
