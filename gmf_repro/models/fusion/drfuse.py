"""DrFuse: disentangled shared/specific representations with disease-aware attention fusion
(Yao et al., AAAI 2024), adapted from EHR + chest X-ray to any named feature vectors.

Structure of the official release, per modality: an embedding Linear to ``hidden``, one
transformer "feature" layer, then ``num_layers`` shared-branch and ``num_layers`` specific-branch
transformer layers (the EHR branch's layout; 4 heads, FFN 2048). The shared representations go
through one projection MLP common to all modalities and are merged by DrFuse's
logsumexp product-of-experts average. The attention fusion projects the tokens
``[spec_1, shared_avg, spec_2, ...]`` into a query, a value and ``num_queries`` keys (one per
class in DrFuse: "disease-aware"); each key yields its own attention-weighted sum of values.

Adaptations (docs/fusers.md): DrFuse predicts class k from the k-th weighted representation;
the task head here is a single linear layer, so ``fused`` is the average of the ``num_queries``
class-wise representations (default 309, VGGSound's classes, as Table 2's model would have).
Its label-dependent losses (per-branch predictions, attention ranking) cannot live in a fuser
that never sees labels; the disentanglement losses do: JSD between the modalities' sigmoid
shared features (weight ``lambda_shared``) and |cos| between each modality's shared and specific
features (weight ``lambda_specific``), both 1 as in the official defaults. Missing modalities
arrive as zeros without a flag (the paper's protocol), so every sample is treated as paired.

Tokenisation: each modality vector is one token (sequence length 1).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from functools import reduce

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Fuser, FusionOutput


def poe_average(h1: Tensor, h2: Tensor) -> Tensor:
    """DrFuse's shared-feature average: log((2e^{h1+h2} + e^{h1} + e^{h2}) / (2 + e^{h1} + e^{h2}))."""
    s = h1 + h2
    num = torch.logsumexp(torch.stack([s + math.log(2.0), h1, h2]), dim=0)
    den = torch.logsumexp(torch.stack([torch.full_like(h1, math.log(2.0)), h1, h2]), dim=0)
    return num - den


def jsd(p: Tensor, q: Tensor, eps: float = 1e-7) -> Tensor:
    """Element-wise Jensen-Shannon divergence of two sigmoid maps, summed over features, batch mean."""
    p, q = p.clamp(eps, 1.0), q.clamp(eps, 1.0)
    m = 0.5 * (p + q)
    return 0.5 * (p * (p / m).log() + q * (q / m).log()).sum(-1).mean()


class DrFuse(Fuser):
    """Shared/specific encoders per modality, PoE-averaged shared part, class-wise attention fusion."""

    def __init__(
        self,
        dims: Mapping[str, int],
        hidden: int = 256,
        num_heads: int = 4,
        dim_feedforward: int = 2048,
        num_layers: int = 2,
        num_queries: int = 309,
        dropout: float = 0.3,
        lambda_shared: float = 1.0,
        lambda_specific: float = 1.0,
    ) -> None:
        super().__init__(dims)
        self.lambda_shared, self.lambda_specific, self.num_queries = lambda_shared, lambda_specific, num_queries

        def stack(n: int) -> nn.Module:
            # sequence-first, see mbt.py
            layer = nn.TransformerEncoderLayer(hidden, num_heads, dim_feedforward, dropout)
            return nn.TransformerEncoder(layer, n, enable_nested_tensor=False)

        self.embed = nn.ModuleDict({m: nn.Linear(l, hidden) for m, l in self.dims.items()})
        self.feat = nn.ModuleDict({m: stack(1) for m in self.dims})
        self.shared_branch = nn.ModuleDict({m: stack(num_layers) for m in self.dims})
        self.specific_branch = nn.ModuleDict({m: stack(num_layers) for m in self.dims})
        self.shared_project = nn.Sequential(
            nn.Linear(hidden, 2 * hidden), nn.ReLU(),
            nn.Linear(2 * hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden),
        )
        self.attn_proj = nn.Linear(hidden, (2 + num_queries) * hidden)
        self.out_dim = hidden

    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        self.check_inputs(feats)
        shared, spec = {}, {}
        for m in self.modalities:
            t = self.feat[m](self.embed[m](feats[m]).unsqueeze(0))  # 1 x B x hidden
            shared[m] = self.shared_project(self.shared_branch[m](t)[0])
            spec[m] = self.specific_branch[m](t)[0]
        shared_avg = reduce(poe_average, [shared[m] for m in self.modalities])
        ms = self.modalities
        tokens = torch.stack([spec[ms[0]], shared_avg] + [spec[m] for m in ms[1:]], dim=1)  # B x (d+1) x h
        q, v, *k = self.attn_proj(tokens).chunk(2 + self.num_queries, dim=-1)
        keys = torch.stack(k, dim=1)  # B x K x (d+1) x h
        logits = torch.einsum("bh,bkth->bkt", q.mean(dim=1), keys) / math.sqrt(q.shape[-1])
        weights = logits.softmax(dim=-1)  # B x K x (d+1)
        class_reps = weights @ v  # B x K x h
        fused = class_reps.mean(dim=1)

        pairs = list(itertools.combinations(ms, 2))
        loss_shared = sum(jsd(shared[a].float().sigmoid(), shared[b].float().sigmoid()) for a, b in pairs) / len(pairs)
        loss_spec = sum(F.cosine_similarity(shared[m].float(), spec[m].float(), dim=-1).abs().mean() for m in ms)
        parts = {f"shared/{m}": shared[m] for m in ms}
        parts.update({f"spec/{m}": spec[m] for m in ms})
        parts["attention"] = weights.mean(dim=1)
        return FusionOutput(
            fused=fused, aux_loss=self.lambda_shared * loss_shared + self.lambda_specific * loss_spec, parts=parts
        )
