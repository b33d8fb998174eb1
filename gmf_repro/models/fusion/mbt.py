"""MBT: attention bottlenecks between modality streams (Nagrani et al., NeurIPS 2021).

Layers follow the official (Scenic) encoder: pre-norm blocks with GELU MLPs, a final LayerNorm,
fusion from layer 8 with 4 bottlenecks, no dropout, average pooling. The official configs use one
encoder per modality; the paper's Table 2 count (37.83M = 12 layers + 4 bottleneck tokens,
docs/paper.md §7) leaves no room for that, so the encoder is shared by all modalities (Scenic's
``share_encoder`` option).

Tokenisation: each modality's feature vector is ONE token of width ``d_model``; it is used as is
when its dim equals ``d_model`` (the paper's 512/512 setting, no extra parameters) and linearly
projected otherwise. With one token per modality, position embeddings are left out.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import Fuser, FusionOutput


def token_projections(dims: Mapping[str, int], width: int) -> nn.ModuleDict:
    """One map per modality from its vector to a ``width``-wide token; identity when the dims already match."""
    return nn.ModuleDict({m: nn.Identity() if l == width else nn.Linear(l, width) for m, l in dims.items()})


class MBT(Fuser):
    """Per-modality streams through a shared transformer; from ``fusion_layer`` on, the streams
    exchange information only through ``num_bottlenecks`` shared tokens (MBT's mid fusion).

    In each fusion layer every modality attends over ``[its tokens; bottlenecks]``; the updated
    bottlenecks are averaged over modalities (MBT Eq. 8-9). ``fused`` is the mean of the modality
    tokens, so a linear head on it equals MBT's averaging of per-modality logits.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        d_model: int = 512,
        num_layers: int = 12,
        num_heads: int = 8,
        dim_feedforward: int = 2048,
        num_bottlenecks: int = 4,
        fusion_layer: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(dims)
        if not 0 <= fusion_layer <= num_layers:
            raise ValueError(f"MBT fusion_layer={fusion_layer} must lie in [0, num_layers={num_layers}]")
        self.fusion_layer = fusion_layer
        self.to_token = token_projections(self.dims, d_model)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward, dropout, "gelu", norm_first=True)
            for _ in range(num_layers)
        )
        self.encoder_norm = nn.LayerNorm(d_model)
        self.bottleneck = nn.Parameter(torch.randn(1, num_bottlenecks, d_model) * 0.02)
        self.out_dim = d_model

    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        self.check_inputs(feats)
        # sequence-first (S x B x d_model): batch_first would take PyTorch's fused inference path,
        # whose FLOPs FlopCounterMode does not count
        x = {m: self.to_token[m](feats[m]).unsqueeze(0) for m in self.modalities}
        b = self.bottleneck.transpose(0, 1).expand(-1, next(iter(x.values())).shape[1], -1)
        for i, layer in enumerate(self.layers):
            if i < self.fusion_layer:
                x = {m: layer(t) for m, t in x.items()}
                continue
            out = {m: layer(torch.cat([t, b], dim=0)) for m, t in x.items()}
            b = torch.stack([y[1:] for y in out.values()]).mean(0)
            x = {m: y[:1] for m, y in out.items()}
        tokens = {m: self.encoder_norm(t[0]) for m, t in x.items()}
        fused = torch.stack(list(tokens.values())).mean(0)
        return FusionOutput(fused=fused, parts={f"token/{m}": t for m, t in tokens.items()})
