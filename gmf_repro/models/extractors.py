"""Extractors map one modality's raw tensor to a feature vector (DESIGN.md, "Seams").

Every extractor takes ``input_shape`` (the per-sample shape the datamodule declares) and exposes
``out_dim``; ``run`` builds them as Hydra partials once the data is known.
"""
from __future__ import annotations

import math

from torch import Tensor, nn


class Identity(nn.Module):
    """For precomputed feature vectors (frozen-extractor runs): the feature is the input, flattened."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.out_dim = int(math.prod(input_shape))

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)
