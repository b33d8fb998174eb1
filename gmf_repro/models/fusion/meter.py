"""METER-style co-attention for retrieval (Dou et al., "An Empirical Study of Training End-to-End
Vision-and-Language Transformers", CVPR 2022), on feature vectors (docs/paper.md §7).

Each modality is projected to width 768 (plus a modality-type embedding and LayerNorm): that vector
is its embedding for the cosine pre-ranking. A pair is then scored by 3 co-attention layers per side
(self-attention, cross-attention to the other side, feed-forward, post-norm: a BERT cross layer),
a tanh pooler per side and a linear matching head on the two pooled vectors (METER's image-text
matching head, one logit). The attention is written out with plain linear layers rather than
``nn.MultiheadAttention``, whose eval-mode fused kernel ``FlopCounterMode`` does not count.

Each modality is one token, as the paper's 0.13 GFLOPs per pair implies; with one key the
cross-attention softmax is trivially 1, so the exchange is the value/output projections of the
other side: one reason the paper finds the gain over CLIP "limited due to the sparse features".
Parameters: 64,189,441 at 4096/4096 (paper 62.96M, +2.0%), 61,142,017 at 128/4096 (~61.1M by the layout
in docs/paper.md §7.1).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import RetrievalOutput
from .retrieval import RetrievalFuser


class Attention(nn.Module):
    """Multi-head attention of ``x`` over ``context`` with separate q, k, v, out projections (with bias)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(width, width) for _ in range(4))

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        b, n, w = x.shape
        split = lambda t: t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2)  # noqa: E731
        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(context)), split(self.v(context)))
        return self.out(y.transpose(1, 2).reshape(b, n, w))


class CoAttentionLayer(nn.Module):
    """One side of a METER co-attention layer: self-attention, cross-attention, feed-forward (post-norm)."""

    def __init__(self, width: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.self_attn, self.cross_attn = Attention(width, heads), Attention(width, heads)
        self.ffn = nn.Sequential(nn.Linear(width, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, width))
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, other: Tensor) -> Tensor:
        x = self.norm1(x + self.drop(self.self_attn(x, x)))
        x = self.norm2(x + self.drop(self.cross_attn(x, other)))
        return self.norm3(x + self.drop(self.ffn(x)))


class METER(RetrievalFuser):
    """``modalities`` order is (image, video); ``pair_score(image_emb, video_emb)`` scores aligned rows."""

    has_pair_score = True

    def __init__(
        self,
        dims: Mapping[str, int],
        width: int = 768,
        layers: int = 3,
        heads: int = 12,
        ffn: int = 3072,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(dims)
        if len(self.dims) != 2:
            raise ValueError(f"METER pairs exactly two modalities, got {list(self.dims)}")
        self.embed_dim = width
        self.out_dim = 2 * width
        self.project = nn.ModuleDict({m: nn.Linear(d, width) for m, d in self.dims.items()})
        self.type_embedding = nn.Embedding(len(self.dims), width)
        self.norm = nn.LayerNorm(width)

        def stack() -> nn.ModuleList:
            return nn.ModuleList(CoAttentionLayer(width, heads, ffn, dropout) for _ in range(layers))

        self.co_layers = nn.ModuleDict({m: stack() for m in self.modalities})
        self.pooler = nn.ModuleDict({m: nn.Sequential(nn.Linear(width, width), nn.Tanh()) for m in self.modalities})
        self.match_head = nn.Linear(2 * width, 1)

    def embed(self, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        for j, m in enumerate(self.modalities):
            if m in feats:
                out[m] = self.norm(self.project[m](feats[m]) + self.type_embedding.weight[j])
        return out

    def co_attend(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """Pooled outputs of the two sides after the co-attention layers (inputs: P x width each)."""
        ma, mb = self.modalities
        x, y = a.unsqueeze(1), b.unsqueeze(1)
        for la, lb in zip(self.co_layers[ma], self.co_layers[mb], strict=True):
            x, y = la(x, y), lb(y, x)
        return self.pooler[ma](x[:, 0]), self.pooler[mb](y[:, 0])

    def pair_score(self, a: Tensor, b: Tensor) -> Tensor:
        """Matching logit of each aligned pair (row i of ``a`` with row i of ``b``)."""
        pa, pb = self.co_attend(a, b)
        return self.match_head(torch.cat([pa, pb], dim=-1)).squeeze(-1)

    def forward(self, feats: dict[str, Tensor]) -> RetrievalOutput:
        """Embeddings plus the co-attended pair of each sample (what one pair costs: the FLOPs column)."""
        out = super().forward(feats)
        pa, pb = self.co_attend(*(out.embeddings[m] for m in self.modalities))
        out.fused = torch.cat([pa, pb], dim=-1)
        out.aligned_pair_score = self.match_head(out.fused).squeeze(-1)
        return out
