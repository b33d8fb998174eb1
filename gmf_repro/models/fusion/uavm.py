"""UAVM: one transformer shared by all modalities (Gong et al., SPL 2022).

Layout of the official ``UnifiedTrans`` with no modality-specific transformer layers
(``depth_i=0``): per modality a LayerNorm + Linear input projection to ``embed_dim``, then the
modality-sharing transformer (input LayerNorm, position embedding, pre-norm ViT blocks with
``qkv_bias=False``, GELU MLP), mean pooling and the shared classifier (LayerNorm + Linear, the
official ``mlp_head``). Every modality runs through the same weights separately.

Objective, as the official ``traintest.py``: each training batch is one modality's (audio with
probability ``a_tr_prob`` = 0.5), and the cross-entropy goes on that modality's own prediction;
only at test time are the per-modality logits averaged. Our batches carry every modality, so each
batch gives every modality's prediction its own cross-entropy, weighted by the probability that
the official loop would have picked that modality (``modality_weights``, default uniform): the
expected value of the official per-batch loss, at twice its compute. The averaged logits are the
``prediction`` and get no loss of their own. ``fused`` (the mean of the normalised pooled outputs)
is for the analysis only.

One modality absent (the A and V conditions): the release evaluates that modality's logits alone, its
one-modality runs never pass the other branch. ``absent_logits: drop`` (default) does the same: the
modalities in ``Fuser.absent`` are left out of the average. ``average`` averages the present logits with
those of the absent modality's zero input, the protocol every other fuser gets (docs/decisions.md, "UAVM
with one modality": the paper's UAVM A/V sit at its unimodal baselines, as single-branch evaluation gives).

Tokenisation: each modality vector is one token (sequence length 1); UAVM's official recipe
feeds 30 frame-level ConvNeXt features, which our clip-level vectors do not have.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ...errors import UserError
from .base import Fuser, FusionOutput

ABSENT_LOGITS = ("drop", "average")


class Block(nn.Module):
    """Pre-norm ViT block (attention without qkv bias, as UAVM's code)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        # sequence-first: batch_first would take PyTorch's fused inference path, uncounted by FlopCounterMode
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, bias=False)
        self.attn.out_proj = nn.Linear(dim, dim)  # UAVM: no bias on qkv, bias on the output projection
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class UAVM(Fuser):
    """Unified audio-visual model: modality-specific input projection, modality-shared blocks and classifier."""

    def __init__(
        self,
        dims: Mapping[str, int],
        num_classes: int = 309,
        embed_dim: int = 512,
        num_layers: int = 8,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        modality_weights: Mapping[str, float] | None = None,
        absent_logits: str = "drop",
    ) -> None:
        super().__init__(dims)
        if absent_logits not in ABSENT_LOGITS:
            raise UserError(f"uavm absent_logits={absent_logits} is not one of {list(ABSENT_LOGITS)}; drop evaluates "
                            f"the present modality's logits alone (UAVM's release), average adds the zero input's")
        self.num_classes = num_classes
        self.absent_logits = absent_logits
        self.modality_weights = self._weights(modality_weights)
        self.in_proj = nn.ModuleDict(
            {m: nn.Sequential(nn.LayerNorm(l, eps=1e-6), nn.Linear(l, embed_dim)) for m, l in self.dims.items()}
        )
        self.shared_norm_in = nn.LayerNorm(embed_dim, eps=1e-6)
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, dropout) for _ in range(num_layers))
        self.head_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.classifier = nn.Linear(embed_dim, num_classes)  # with head_norm: the shared mlp_head
        self.out_dim = embed_dim

    def _weights(self, weights: Mapping[str, float] | None) -> dict[str, float]:
        """Probability of each modality's batch in the official loop (its ``a_tr_prob`` for audio)."""
        if weights is None:
            return {m: 1.0 / len(self.modalities) for m in self.modalities}
        weights = {str(k): float(v) for k, v in weights.items()}
        if set(weights) != set(self.modalities) or min(weights.values()) < 0 or abs(sum(weights.values()) - 1) > 1e-6:
            raise UserError(
                f"uavm modality_weights {weights} must give each of {self.modalities} a probability, summing to 1 "
                f"(official: audio 0.5, video 0.5), or be null for uniform"
            )
        return weights

    def encode(self, m: str, x: Tensor) -> Tensor:
        """One modality through the shared model: B x l_m -> B x embed_dim."""
        t = self.shared_norm_in(self.in_proj[m](x)).unsqueeze(0) + self.pos_embed  # 1 x B x embed_dim
        for blk in self.blocks:
            t = blk(t)
        return self.head_norm(t.mean(dim=0))

    def branches(self) -> list[str]:
        """The modalities whose logits the prediction averages: all, or (``drop``) those present in the test."""
        if self.absent_logits == "average" or not self.absent:
            return list(self.modalities)
        present = [m for m in self.modalities if m not in self.absent]
        if not present:
            raise ValueError(f"uavm: every modality {self.modalities} is marked absent; a condition keeps at least one")
        return present

    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        self.check_inputs(feats)
        reps = {m: self.encode(m, feats[m]) for m in self.branches()}
        logits = {m: self.classifier(r) for m, r in reps.items()}
        return FusionOutput(
            fused=torch.stack(list(reps.values())).mean(0),
            logits=logits,
            logit_weights=dict(self.modality_weights),
            prediction=torch.stack(list(logits.values())).mean(0),  # the test-time average of the logits
            parts={f"rep/{m}": r for m, r in reps.items()},
        )
