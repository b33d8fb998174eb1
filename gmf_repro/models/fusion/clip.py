"""CLIP-style baseline for retrieval (paper Table 3): cosine similarity of the mapped features.

The fuser itself has no parameters (the paper's "-" in the Params column). Whatever mapping brings
the two modalities to one width lives in the extractors (``LinearMap`` in the 128 and 4096 settings,
docs/retrieval.md), so a trained CLIP row trains only that mapping, and an untrained one is the
plain cosine of the input features.
"""
from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from .retrieval import RetrievalFuser


class CLIP(RetrievalFuser):
    """Embeddings are the inputs themselves; all modalities must share one width."""

    def __init__(self, dims: Mapping[str, int]) -> None:
        super().__init__(dims)
        widths = set(self.dims.values())
        if len(widths) != 1:
            raise ValueError(
                f"CLIP compares features directly, so all modalities need one width, got {self.dims}; "
                f"map one modality with a LinearMap extractor (experiment=activitynet_128 or activitynet_4096)"
            )
        self.embed_dim = widths.pop()
        self.out_dim = self.embed_dim * len(self.dims)

    def embed(self, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {m: feats[m] for m in self.modalities}
