"""The seam every fuser plugs into (DESIGN.md, "Seams")."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import Tensor, nn


@dataclass
class FusionOutput:
    """What a fuser hands to the task.

    - ``fused``: B x out_dim, the input of the task's head (or the embedding for retrieval).
    - ``aux_loss``: a label-free loss the fuser trains with (GMF's L_dis, MISA's, DrFuse's
      disentanglement), added to the task loss as is.
    - ``logits``: extra class logits the fuser predicts itself (UAVM per modality, DrFuse per
      branch, AP-IVR's label classifier); the task gives each one its own task loss, weighted by
      ``logit_weights[name]`` (default 1).
    - ``prediction``: the fuser's own final class logits (B x num_classes) when its method predicts
      with a head of its own (DrFuse's class-wise heads); the task then uses it instead of its head.
    - ``label_losses``: losses that need the labels (DrFuse's attention ranking), as functions
      ``labels -> scalar``; the task adds each one.
    - ``pair_score``: a learned score of aligned query/gallery pairs (METER), for retrieval.
    - ``parts``: named intermediate tensors for analysis only (GMF's ``inv/*``, ``spec/*``); no
      task reads a loss from here.
    """

    fused: Tensor
    aux_loss: Tensor | None = None
    logits: dict[str, Tensor] = field(default_factory=dict)
    logit_weights: dict[str, float | Tensor] = field(default_factory=dict)
    prediction: Tensor | None = None
    label_losses: dict[str, Callable[[Tensor], Tensor]] = field(default_factory=dict)
    pair_score: Tensor | None = None
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
