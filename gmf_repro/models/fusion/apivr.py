"""AP-IVR (Xu et al., "A Proposal-based Approach for Activity Image-to-Video Retrieval", AAAI 2020)
as a retrieval fuser, sized after the authors' public TensorFlow release.

What the release does, and what we keep:
- video: every proposal feature (4096-d) goes through a 500-200-64 tanh MLP, then an attention
  pooling over the bag of proposals. Our data gives one (temporally averaged) vector per video,
  so the MLP is kept and the pooling over the bag is dropped (docs/retrieval.md).
- image: a 100-80-64 tanh MLP.
- a label classifier shared by both embeddings (cross-entropy, the video term weighted ``beta=10``),
  and a modality discriminator trained through a gradient-reversal layer (adversarial alignment).
- a triplet loss between image and video embeddings: the retrieval task supplies it.
Its "transpose" regulariser acts on the bag of proposals and is dropped with the bag.
Parameters at 128/4096 with 200 classes: 2,202,874 (paper: 2.19M).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .retrieval import RetrievalFuser


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:  # noqa: D102
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: D102
        return -ctx.scale * grad, None


def _tanh_mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.Tanh()]
    return nn.Sequential(*layers)


class APIVR(RetrievalFuser):
    """``modalities`` order is (image, video) by convention; any names work, the first is the query side."""

    def __init__(
        self,
        dims: Mapping[str, int],
        num_classes: int,
        embed_dim: int = 64,
        video_hidden: Sequence[int] = (500, 200),
        image_hidden: Sequence[int] = (100, 80),
        domain_hidden: int = 32,
        beta: float = 10.0,
        domain_weight: float = 1.0,
        reverse_scale: float = 1.0,
    ) -> None:
        super().__init__(dims)
        if len(self.dims) != 2:
            raise ValueError(f"APIVR pairs exactly two modalities (image, video), got {list(self.dims)}")
        self.image_key, self.video_key = self.modalities
        self.embed_dim = int(embed_dim)
        self.out_dim = 2 * self.embed_dim
        self.video_embed = _tanh_mlp([self.dims[self.video_key], *video_hidden, embed_dim])
        self.image_embed = _tanh_mlp([self.dims[self.image_key], *image_hidden, embed_dim])
        self.label_classifier = nn.Linear(embed_dim, num_classes)
        self.domain_classifier = nn.Sequential(nn.Linear(embed_dim, domain_hidden), nn.Linear(domain_hidden, 2))
        self.beta, self.domain_weight, self.reverse_scale = beta, domain_weight, reverse_scale

    def embed(self, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        if self.image_key in feats:
            out[self.image_key] = self.image_embed(feats[self.image_key])
        if self.video_key in feats:
            out[self.video_key] = self.video_embed(feats[self.video_key])
        return out

    def aux(self, feats: Mapping[str, Tensor], emb: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Adversarial modality loss (labels are the modalities, known here); class logits for the task."""
        e_i, e_v = emb[self.image_key], emb[self.video_key]
        both = torch.cat([e_v, e_i])
        domain = torch.cat([torch.zeros(len(e_v)), torch.ones(len(e_i))]).long().to(both.device)
        logits = self.domain_classifier(_ReverseGrad.apply(both, self.reverse_scale))
        loss = self.domain_weight * F.cross_entropy(logits.float(), domain)
        # the video classification term carries AP-IVR's weight beta; scaling its logits' loss is done by
        # the task (same weight for every logits/* part), so we pass beta through as a weight part
        parts = {
            f"logits/{self.image_key}": self.label_classifier(e_i),
            f"logits/{self.video_key}": self.label_classifier(e_v),
            f"logit_weight/{self.video_key}": torch.tensor(self.beta, device=both.device),
        }
        return loss, parts
