"""The paper's multimodal baseline: concatenation of the unimodal features (docs/paper.md §3)."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from .base import Fuser, FusionOutput


class Concat(Fuser):
    """No parameters: the head sees ``concat(x_1..x_d)``."""

    def __init__(self, dims: Mapping[str, int]) -> None:
        super().__init__(dims)
        self.out_dim = sum(self.dims.values())

    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        self.check_inputs(feats)
        return FusionOutput(fused=torch.cat([feats[m] for m in self.modalities], dim=-1))
