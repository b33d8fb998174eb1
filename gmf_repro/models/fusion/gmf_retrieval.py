"""GMF for retrieval (paper Table 3; docs/paper.md §1): match on the modality-invariant parts.

``GMF.decompose`` computes ``inv_j`` from modality j alone, so an image query and a gallery video
are embedded independently as ``inv/image`` and ``inv/video`` (both of width ``l* = min_j l_j``).
Training adds GMF's own ``L_dis`` (dissolve, exchange, reconstruct) unchanged. No parameters are
added: the parameter count is GMF's (329,472 for 128/128, 119,202,816 for 128/4096).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from .base import RetrievalOutput
from .gmf import GMF
from .retrieval import RetrievalFuser


class GMFRetrieval(GMF, RetrievalFuser):
    """GMF with the retrieval seam: ``embed`` = invariant parts; ``forward`` returns them as the embeddings."""

    def __init__(self, dims: Mapping[str, int], **hyper: Any) -> None:
        """``hyper`` are GMF's own (n, beta, lam, ...), passed through unchanged."""
        super().__init__(dims, **hyper)
        self.embed_dim = self.l_star

    def embed(self, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Invariant part of every modality present in ``feats``, each from that modality alone."""
        return {m: self.branches[m].split(feats[m])[0] for m in self.modalities if m in feats}

    def forward(self, feats: dict[str, Tensor]) -> RetrievalOutput:
        out = GMF.forward(self, feats)
        return RetrievalOutput(**vars(out), embeddings={m: out.parts[f"inv/{m}"] for m in self.modalities})
