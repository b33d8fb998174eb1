"""AVoiD-DF: audio-visual joint learning (Yang et al., IEEE TIFS 2023), on feature vectors.

AVoiD-DF has a per-modality temporal-spatial encoder, a multimodal joint decoder whose layers
let each modality cross-attend to the other (bi-directional cross-attention), and a cross-modal
classifier on the concatenated outputs. No official code is public; layers are ViT-style
(pre-norm, GELU, final LayerNorm) at our feature width (``d_model`` 512, 8 heads, FFN 2048) and
the depths (4 encoder + 4 decoder layers per modality) are our choice, which puts the 512/512
module at 58.85M parameters against Table 2's 57.45M (docs/fusers.md).

Tokenisation: each modality vector is one token (projected only when its dim is not
``d_model``). With d > 2 modalities a modality cross-attends to the tokens of all the others.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import Fuser, FusionOutput
from .mbt import token_projections


class AVoiDDF(Fuser):
    """Per-modality encoders, then joint decoder layers where every modality's token queries the
    others' tokens of the previous layer; ``fused`` is the concatenation of the final tokens."""

    def __init__(
        self,
        dims: Mapping[str, int],
        d_model: int = 512,
        num_encoder_layers: int = 4,
        num_decoder_layers: int = 4,
        num_heads: int = 8,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(dims)
        if len(self.dims) < 2:
            raise ValueError("AVoiD-DF's joint decoder needs at least two modalities")
        self.to_token = token_projections(self.dims, d_model)

        def enc() -> nn.Module:
            return nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward, dropout, "gelu", norm_first=True)

        def dec() -> nn.Module:
            return nn.TransformerDecoderLayer(d_model, num_heads, dim_feedforward, dropout, "gelu", norm_first=True)

        self.encoders = nn.ModuleDict(
            {m: nn.Sequential(*[enc() for _ in range(num_encoder_layers)]) for m in self.modalities}
        )
        self.decoders = nn.ModuleDict(
            {m: nn.ModuleList(dec() for _ in range(num_decoder_layers)) for m in self.modalities}
        )
        self.norm = nn.ModuleDict({m: nn.LayerNorm(d_model) for m in self.modalities})
        self.num_decoder_layers = num_decoder_layers
        self.out_dim = d_model * len(self.modalities)

    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        self.check_inputs(feats)
        # sequence-first tokens (1 x B x d_model); see mbt.py on why not batch_first
        x = {m: self.encoders[m](self.to_token[m](feats[m]).unsqueeze(0)) for m in self.modalities}
        for i in range(self.num_decoder_layers):
            x = {
                m: self.decoders[m][i](x[m], torch.cat([x[o] for o in self.modalities if o != m], dim=0))
                for m in self.modalities
            }
        tokens = {m: self.norm[m](x[m][0]) for m in self.modalities}
        fused = torch.cat(list(tokens.values()), dim=-1)
        return FusionOutput(fused=fused, parts={f"token/{m}": t for m, t in tokens.items()})
