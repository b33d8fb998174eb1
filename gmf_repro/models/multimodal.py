"""The one path from a batch to fused features: each modality through its extractor, then the fuser.

Tasks, the parts analysis, the feature export and the probes all go through ``MultimodalModel``
(TorchMultimodal's ``LateFusion`` without the head), so "extract, then fuse" is written once.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from .fusion.base import Fuser, FusionOutput


class MultimodalModel(nn.Module):
    """``extractors`` (one per modality) feeding one ``fuser``.

    ``modalities``: the modalities fed to the fuser, in order (default: the extractors' keys). A
    modality without an extractor passes through as it is, flattened to one vector per sample unless
    it is a bag of proposals ``[B, P, D]`` (retrieval on stored features).
    """

    def __init__(self, extractors: Mapping[str, nn.Module], fuser: Fuser,
                 modalities: Sequence[str] | None = None) -> None:
        super().__init__()
        self.extractors = nn.ModuleDict(dict(extractors))
        self.fuser = fuser
        self.modalities = list(modalities) if modalities is not None else list(self.extractors)

    def encode(self, batch: Mapping[str, Any], modalities: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Extractor outputs by modality (all of ``self.modalities``, or the ones named)."""
        feats = {}
        for m in self.modalities if modalities is None else modalities:
            x = batch[m]
            if m in self.extractors:
                feats[m] = self.extractors[m](x)
            else:
                feats[m] = x if x.dim() == 3 else x.flatten(1)
        return feats

    def forward(self, batch: Mapping[str, Any]) -> FusionOutput:
        return self.fuser(self.encode(batch))

