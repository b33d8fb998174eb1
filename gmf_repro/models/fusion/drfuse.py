"""DrFuse: disentangled shared/specific representations with disease-aware attention fusion
(Yao et al., AAAI 2024), adapted from EHR + chest X-ray to any named feature vectors.

Structure of the official release (``models/drfuse.py``), per modality: an embedding Linear to
``hidden``, one transformer "feature" layer, then ``num_layers`` shared-branch and ``num_layers``
specific-branch transformer layers (the EHR branch's layout; 4 heads, FFN 2048). The shared
representations go through one projection MLP common to all modalities and are merged by DrFuse's
logsumexp product-of-experts average. The attention fusion projects the tokens
``[spec_1, shared_avg, spec_2, ...]`` into a query, a value and one key per class
("disease-aware"); key k gives class k's own attention-weighted sum of values, and class k's logit
is predicted from that representation alone (the k-th row of one Linear: the official
``final_pred_fc`` followed by the diagonal). That is the fuser's ``prediction``.

Objective (official ``drfuse_trainer.py``, all weights 1 by default): the final prediction's loss
+ one prediction loss per branch (each modality's specific representation and the shared average,
each with its own Linear head) + the disentanglement losses (JSD between the modalities' sigmoid
shared features, |cos| between each modality's shared and specific features) + the attention
ranking loss: for every class and every pair of tokens, the token whose branch has the lower
per-class loss should get the larger attention weight (margin ranking, margin 0, normalised by the
number of violated pairs, averaged over token pairs). DrFuse's task is multi-label (sigmoid + BCE);
ours are single-label, so the prediction losses are the task's cross-entropy and the ranking uses
each branch's per-class binary cross-entropy of its softmax probabilities against the one-hot label.
Missing modalities arrive as the zero input (raw zeros before any transform) without a flag (the
paper's protocol), so every sample is treated as paired.

Tokenisation: each modality vector is one token (sequence length 1).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from functools import partial, reduce

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
    """Shared/specific encoders per modality, PoE-averaged shared part, class-wise attention fusion
    with one prediction per class representation, branch predictions and the attention ranking."""

    def __init__(
        self,
        dims: Mapping[str, int],
        num_classes: int = 309,
        hidden: int = 256,
        num_heads: int = 4,
        dim_feedforward: int = 2048,
        num_layers: int = 2,
        dropout: float = 0.3,
        lambda_shared: float = 1.0,
        lambda_specific: float = 1.0,
        lambda_pred_shared: float = 1.0,
        lambda_pred_specific: float = 1.0,
        lambda_attn_aux: float = 1.0,
    ) -> None:
        super().__init__(dims)
        self.num_classes = num_classes
        self.lambda_shared, self.lambda_specific = lambda_shared, lambda_specific
        self.lambda_pred_shared, self.lambda_pred_specific = lambda_pred_shared, lambda_pred_specific
        self.lambda_attn_aux = lambda_attn_aux

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
        self.attn_proj = nn.Linear(hidden, (2 + num_classes) * hidden)
        # branch classifiers (official: the EHR branch's fc_distinct, cxr_model_linear, fuse_model_shared)
        self.specific_head = nn.ModuleDict({m: nn.Linear(hidden, num_classes) for m in self.dims})
        self.shared_head = nn.Linear(hidden, num_classes)
        self.final_head = nn.Linear(hidden, num_classes)  # row k predicts class k from representation k
        self.out_dim = hidden

    def tokens(self) -> list[str]:
        """Branch behind each attention token: ``[spec/m_1, shared, spec/m_2, ...]`` (official: EHR, shared, CXR)."""
        ms = self.modalities
        return [f"spec/{ms[0]}", "shared"] + [f"spec/{m}" for m in ms[1:]]

    def ranked_pairs(self) -> list[tuple[int, int]]:
        """Token pairs of the ranking loss, each as the official orders it for two modalities:
        (CXR, EHR), (shared, EHR), (shared, CXR); generally later modality before earlier, shared first."""
        names = self.tokens()
        spec = [names.index(f"spec/{m}") for m in self.modalities]
        shared = names.index("shared")
        later_first = [(spec[j], spec[i]) for i, j in itertools.combinations(range(len(spec)), 2)]
        return later_first + [(shared, t) for t in spec]

    def attention_ranking(self, branch_logits: dict[str, Tensor], weights: Tensor, labels: Tensor) -> Tensor:
        """DrFuse's attention ranking loss: a token whose branch has a lower loss on class k should get
        more of class k's attention. Branch losses are per-class binary cross-entropies of the branch's
        softmax probabilities (no gradient, as the official ``.data``)."""
        onehot = F.one_hot(labels, self.num_classes).float()
        names, weights = self.tokens(), weights.float()
        raw = {}
        for name in set(names):
            logp = branch_logits[name].detach().float().log_softmax(-1)
            log1mp = torch.log1p(-logp.exp().clamp(max=1 - 1e-7))
            raw[name] = -(onehot * logp.clamp(min=-100) + (1 - onehot) * log1mp.clamp(min=-100))
        total = weights.new_zeros(())
        pairs = self.ranked_pairs()
        for a, b in pairs:
            target = 2 * (raw[names[a]] < raw[names[b]]).float() - 1
            loss = F.margin_ranking_loss(weights[..., a], weights[..., b], target, reduction="none")
            total = total + loss.sum() / (loss > 0).sum().clamp(min=1)
        return self.lambda_attn_aux * total / len(pairs)

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
        q, v, *k = self.attn_proj(tokens).chunk(2 + self.num_classes, dim=-1)
        keys = torch.stack(k, dim=1)  # B x K x (d+1) x h
        logits = torch.einsum("bh,bkth->bkt", q.mean(dim=1), keys) / math.sqrt(q.shape[-1])
        weights = logits.softmax(dim=-1)  # B x K x (d+1)
        class_reps = weights @ v  # B x K x h
        final = torch.einsum("bkh,kh->bk", class_reps, self.final_head.weight) + self.final_head.bias

        branch = {f"spec/{m}": self.specific_head[m](spec[m]) for m in ms}
        branch["shared"] = self.shared_head(shared_avg)
        branch_weights = {f"spec/{m}": self.lambda_pred_specific for m in ms}
        branch_weights["shared"] = self.lambda_pred_shared

        pairs = list(itertools.combinations(ms, 2))
        loss_shared = sum(jsd(shared[a].float().sigmoid(), shared[b].float().sigmoid()) for a, b in pairs) / len(pairs)
        loss_spec = sum(F.cosine_similarity(shared[m].float(), spec[m].float(), dim=-1).abs().mean() for m in ms)
        parts = {f"shared/{m}": shared[m] for m in ms}
        parts.update({f"spec/{m}": spec[m] for m in ms})
        parts["attention"] = weights.mean(dim=1)
        return FusionOutput(
            fused=class_reps.mean(dim=1),  # for the analysis; the prediction is class-wise
            aux_loss=self.lambda_shared * loss_shared + self.lambda_specific * loss_spec,
            logits={"final": final, **branch},
            logit_weights={"final": 1.0, **branch_weights},
            prediction=final,
            label_losses={"attn_rank": partial(self.attention_ranking, branch, weights)},
            parts=parts,
        )
