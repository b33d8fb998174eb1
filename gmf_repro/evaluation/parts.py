"""Collect a fuser's named parts (e.g. GMF's inv/spec) on test data, for the analysis in results.json."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


@torch.no_grad()
def collect_parts(task: Any, datamodule: Any, max_samples: int = 2000) -> dict[str, Tensor]:
    """Run the task's ``fuse`` over test batches (all modalities present) and stack each part, on the CPU."""
    fuse = getattr(task, "fuse", None)
    if fuse is None:
        return {}
    was_training = task.training
    task.eval()
    collected: dict[str, list[Tensor]] = {}
    seen = 0
    try:
        for batch in datamodule.test_dataloader():
            batch = {k: v.to(task.device) if isinstance(v, Tensor) else v for k, v in batch.items()}
            out = fuse(batch)
            parts = dict(out.parts)
            parts.setdefault("fused", out.fused)
            for name, value in parts.items():
                collected.setdefault(name, []).append(value.detach().float().flatten(1).cpu())
            seen += len(batch["label"])
            if seen >= max_samples:
                break
    finally:
        task.train(was_training)
    return {k: torch.cat(v)[:max_samples] for k, v in collected.items()}
