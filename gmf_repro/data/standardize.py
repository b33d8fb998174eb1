"""Per-dimension standardisation with train-split statistics, applied on the device after a condition.

Shared by the stored-feature datamodules (``data=vggsound_features``, ``data=features``): the loader
yields raw vectors, a missing-modality condition replaces a raw vector (evaluation/conditions.py),
and only then ``Standardizer.apply`` maps ``x -> (x - mean) / std``, so an absent modality reads
``(0 - mean) / std``: the standardised image of the paper's zero input.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

MIN_STD = 1e-6


class Standardizer:
    """Train mean and std per modality (``fit``), applied to a batch's modalities (``apply``).

    A dimension whose train std is below ``MIN_STD`` (constant in train) is only shifted (scale 1, as
    scikit-learn's StandardScaler): dividing by ~0 would turn the zero input of a missing modality into
    values of order 1e6.
    """

    def __init__(self) -> None:
        self.stats: dict[str, tuple[Tensor, Tensor]] = {}

    def fit(self, modality: str, x: Tensor) -> None:
        x = x.float()
        std = x.std(0) if len(x) > 1 else torch.zeros_like(x[0])
        self.stats[modality] = (x.mean(0), torch.where(std < MIN_STD, torch.ones_like(std), std))

    def mean(self, modality: str) -> Tensor:
        return self.stats[modality][0]

    def apply(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Not idempotent: once per raw batch (a datamodule's ``transform`` is)."""
        out = dict(batch)
        for m, (mean, std) in self.stats.items():
            if m in out:
                x = out[m]
                out[m] = ((x.float() - mean.to(x.device)) / std.to(x.device)).to(
                    x.dtype if x.is_floating_point() else torch.float32)
        return out
