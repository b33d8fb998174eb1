"""The seam every fuser plugs into (DESIGN.md, "Seams")."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import Tensor, nn


@dataclass
class FusionOutput:
    """What a fuser hands to the head: the fused vector, its own loss, and named parts for analysis."""

    fused: Tensor
    aux_loss: Tensor | None = None
    parts: dict[str, Tensor] = field(default_factory=dict)


class Fuser(nn.Module, abc.ABC):
    """Base class: named modalities with their own (possibly unequal) feature dims.

    Subclasses set ``self.out_dim`` in ``__init__`` and implement ``forward``.
    The order of ``dims`` is the modality order (GMF's cyclic exchange follows it).
    """

    out_dim: int

    def __init__(self, dims: Mapping[str, int]) -> None:
        super().__init__()
        if len(dims) < 1:
            raise ValueError("fuser needs at least one modality in `dims`, e.g. {'audio': 512, 'video': 512}")
        self.dims: dict[str, int] = {str(k): int(v) for k, v in dims.items()}
        self.modalities: list[str] = list(self.dims)

    @abc.abstractmethod
    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        """Fuse one feature tensor per modality (B x dims[m]) into ``fused`` (B x out_dim)."""

    def check_inputs(self, feats: Mapping[str, Tensor]) -> None:
        """Fail with one line naming the modality and the dim fix, instead of a matmul error deep inside."""
        for m, d in self.dims.items():
            if m not in feats:
                raise KeyError(f"fuser expects modality '{m}' but the batch has {sorted(feats)}")
            if feats[m].shape[-1] != d:
                raise ValueError(
                    f"modality '{m}' has feature dim {feats[m].shape[-1]} but the fuser was built for {d}; "
                    f"set the data/extractor dims to match"
                )

    def example_inputs(self, batch_size: int = 1) -> dict[str, Tensor]:
        """Random inputs of the right shape, used by complexity measurement."""
        return {m: torch.randn(batch_size, d) for m, d in self.dims.items()}
