"""The learned dimension mapping of the paper's Table 3 settings (128-128, 128-4096, 4096-4096).

The paper "map[s] image features to 4096 dimensions or video features to 128 dimensions" and
counts only the fusion module's parameters (GMF (128) = 0.32M is GMF alone at 128/128), and
its CLIP row, "cosine similarity of the mapped features", has no parameters of its own yet
scores far above chance, so the mapping is learned and sits outside the fuser. Here it is an
extractor (the seam for "raw tensor of one modality -> vector"): one ``nn.Linear`` with bias,
trained with the task loss, e.g. 4096 -> 128 for the video in ``experiment=activitynet_128``.
"""
from __future__ import annotations

import math

from torch import Tensor, nn


class LinearMap(nn.Module):
    """``input_shape`` (flattened) -> ``out_dim`` with one linear layer; exposes ``out_dim`` like every extractor."""

    def __init__(self, input_shape: tuple[int, ...], out_dim: int) -> None:
        super().__init__()
        self.in_dim = int(math.prod(input_shape))
        self.out_dim = int(out_dim)
        self.linear = nn.Linear(self.in_dim, self.out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(1))
