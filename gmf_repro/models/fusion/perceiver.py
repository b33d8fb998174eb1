"""Perceiver: a latent array cross-attends to the stacked inputs, then latent self-attention
(Jaegle et al., ICML 2021), in the common open-source layout (docs/paper.md §7): per depth step one
single-head cross-attention + GEGLU feed-forward, then ``self_per_cross_attn`` latent
self-attention + feed-forward blocks, all pre-norm, no weight tying, no Fourier features.

Tokenisation: the input array is the modality vectors stacked as tokens (one token per
modality, ``input_dim`` wide, default the largest dim); a shorter vector is zero-padded, so the
Perceiver sees no modality identity, as in the paper ("stacked features without explicit modal
differentiation") and no parameters are added for unequal dims.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Fuser, FusionOutput


class GEGLUFeedForward(nn.Module):
    """Pre-norm ``dim -> 2*mult*dim`` GEGLU ``-> dim`` block."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.proj_in = nn.Linear(dim, dim * mult * 2)
        self.proj_out = nn.Linear(dim * mult, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        a, gate = self.proj_in(self.norm(x)).chunk(2, dim=-1)
        return self.proj_out(self.dropout(a * F.gelu(gate)))


class Attention(nn.Module):
    """Pre-norm multi-head attention of queries ``x`` over ``context`` (itself when omitted)."""

    def __init__(self, dim: int, context_dim: int | None = None, heads: int = 8, dim_head: int = 64) -> None:
        super().__init__()
        inner, self.heads = heads * dim_head, heads
        self.cross = context_dim is not None
        context_dim = context_dim or dim
        self.norm = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(context_dim) if self.cross else None
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        x = self.norm(x)
        context = self.norm_context(context) if self.cross else x
        q = self.to_q(x)
        k, v = self.to_kv(context).chunk(2, dim=-1)
        b = x.shape[0]
        q, k, v = (t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, x.shape[1], -1))


class Perceiver(Fuser):
    """``fused`` is the latent array averaged over latents, then layer-normalised (the
    open-source classifier's pooling, without its final linear layer, which is the task head)."""

    def __init__(
        self,
        dims: Mapping[str, int],
        depth: int = 6,
        num_latents: int = 256,
        latent_dim: int = 512,
        input_dim: int | None = None,
        cross_heads: int = 1,
        cross_dim_head: int = 64,
        latent_heads: int = 8,
        latent_dim_head: int = 64,
        ff_mult: int = 4,
        self_per_cross_attn: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(dims)
        self.input_dim = input_dim or max(self.dims.values())
        if max(self.dims.values()) > self.input_dim:
            raise ValueError(f"Perceiver input_dim={self.input_dim} is smaller than the largest modality dim")
        self.latents = nn.Parameter(torch.randn(num_latents, latent_dim))
        self.layers = nn.ModuleList()
        for _ in range(depth):
            block = nn.ModuleList([
                Attention(latent_dim, self.input_dim, cross_heads, cross_dim_head),
                GEGLUFeedForward(latent_dim, ff_mult, dropout),
            ])
            for _ in range(self_per_cross_attn):
                block.append(Attention(latent_dim, None, latent_heads, latent_dim_head))
                block.append(GEGLUFeedForward(latent_dim, ff_mult, dropout))
            self.layers.append(block)
        self.norm_out = nn.LayerNorm(latent_dim)
        self.out_dim = latent_dim

    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        self.check_inputs(feats)
        data = torch.stack([F.pad(feats[m], (0, self.input_dim - self.dims[m])) for m in self.modalities], dim=1)
        # repeat, not expand: a view of a leaf made under no_grad still reports requires_grad
        x = self.latents.unsqueeze(0).repeat(data.shape[0], 1, 1)
        for cross_attn, cross_ff, *latent_blocks in self.layers:
            x = x + cross_attn(x, data)
            x = x + cross_ff(x)
            for i in range(0, len(latent_blocks), 2):
                x = x + latent_blocks[i](x)
                x = x + latent_blocks[i + 1](x)
        return FusionOutput(fused=self.norm_out(x.mean(dim=1)))
