"""AVoiD-DF: audio-visual joint learning (Yang et al., IEEE TIFS 2023), on feature vectors.

Layout of the official release (SYSU-DISG/AVoiD-DF, ``model/AVoiD.py`` and ``model/MMD.py``):
- a temporal-spatial encoder per modality: 6 post-norm ViT layers (attention + LayerNorm,
  GELU MLP (4 x width) + LayerNorm, qkv bias);
- a multimodal joint decoder: per block and modality, cross-attention of the modality's tokens
  to the OTHER modality's encoder output, then self-attention, then an MLP, each post-norm;
- fusion: ``av_fc`` maps the concatenated decoder outputs to one token, a last encoder layer
  refines it, and ``fc`` maps ``concat(cls_1, fused, cls_2)`` (encoder outputs and the fused
  token; the cross-modal classifier's input) to ``fused`` (``out_dim`` = d_model).

Choices (docs/fusers.md): width 512 (our features) with 8 heads; 2 decoder blocks instead of the
release's 5, which puts the 512/512 module at 59.1M against Table 2's 57.45M (5 blocks: 84.3M).
The release's patch embeddings, position/time embeddings, CLS tokens and attention-guided part
selection act on patch sequences and have no counterpart for one vector per modality; its
scalar weights on the classifier inputs are not trained there (they are not registered) and are
left out.

Tokenisation: each modality vector is one token (projected only when its dim is not
``d_model``). With d > 2 modalities a modality cross-attends to the encoder outputs of all others.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import Fuser, FusionOutput
from .mbt import token_projections


class PostNormAttention(nn.Module):
    """``LayerNorm(x + Attention(x, context))`` (the release's ``att``), sequence-first."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        return self.norm(x + self.attn(x, context, context, need_weights=False)[0])


class PostNormMlp(nn.Module):
    """``LayerNorm(x + MLP(x))`` with a GELU MLP (the release's ``Mlp``)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.net(x))


class JointDecoderBlock(nn.Module):
    """One block of the multimodal joint decoder for one modality: cross-attention to the other
    modalities' encoder outputs, self-attention, MLP."""

    def __init__(self, dim: int, num_heads: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.cross = PostNormAttention(dim, num_heads, dropout)
        self.self_attn = PostNormAttention(dim, num_heads, dropout)
        self.mlp = PostNormMlp(dim, hidden, dropout)

    def forward(self, x: Tensor, others_encoded: Tensor) -> Tensor:
        x = self.cross(x, others_encoded)
        return self.mlp(self.self_attn(x, x))


class AVoiDDF(Fuser):
    """Per-modality encoders, a joint decoder of cross-modal blocks, and the fused classifier input."""

    def __init__(
        self,
        dims: Mapping[str, int],
        d_model: int = 512,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 2,
        num_heads: int = 8,
        dim_feedforward: int = 2048,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(dims)
        if len(self.dims) < 2:
            raise ValueError("AVoiD-DF's joint decoder needs at least two modalities")
        d, hidden = len(self.modalities), dim_feedforward
        self.to_token = token_projections(self.dims, d_model)

        def encoder_layer() -> nn.Module:
            # post-norm, GELU: the release's Encoder_layer (sequence-first, see mbt.py)
            return nn.TransformerEncoderLayer(d_model, num_heads, hidden, dropout, "gelu")

        self.encoders = nn.ModuleDict(
            {m: nn.Sequential(*[encoder_layer() for _ in range(num_encoder_layers)]) for m in self.modalities}
        )
        self.decoders = nn.ModuleList(
            nn.ModuleDict({m: JointDecoderBlock(d_model, num_heads, hidden, dropout) for m in self.modalities})
            for _ in range(num_decoder_layers)
        )
        self.av_fc = nn.Linear(d * d_model, d_model)
        self.last_block = encoder_layer()
        self.fc = nn.Linear((d + 1) * d_model, d_model)
        self.out_dim = d_model

    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        self.check_inputs(feats)
        ms = self.modalities
        encoded = {m: self.encoders[m](self.to_token[m](feats[m]).unsqueeze(0)) for m in ms}  # 1 x B x D
        x = dict(encoded)
        for block in self.decoders:
            x = {m: block[m](x[m], torch.cat([encoded[o] for o in ms if o != m], dim=0)) for m in ms}
        fused_token = self.last_block(self.av_fc(torch.cat([x[m] for m in ms], dim=-1)))[0]
        cls = {m: encoded[m][0] for m in ms}
        fused = self.fc(torch.cat([cls[ms[0]], fused_token, *(cls[m] for m in ms[1:])], dim=-1))
        parts = {f"cls/{m}": cls[m] for m in ms}
        parts["fused_token"] = fused_token
        return FusionOutput(fused=fused, parts=parts)
