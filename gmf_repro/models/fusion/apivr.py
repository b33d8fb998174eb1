"""AP-IVR (Xu et al., "A Proposal-based Approach for Activity Image-to-Video Retrieval", AAAI 2020)
as a retrieval fuser, following the authors' public TensorFlow release (docs/retrieval.md, "APIVR").

What the release does, and what we keep:
- video: every proposal feature (4096-d) of the bag goes through a 500-200-64 tanh MLP; the bag of
  64-d proposal embeddings is pooled with attention: a 200-d tanh layer, a value projection to 64
  and a one-logit score per proposal, softmax over the proposals, weighted sum of the values.
  Input ``[B, P, D]`` (``data.pool=none``); a ``[B, D]`` input is a bag of one (weight 1).
- image: a 100-80-64 tanh MLP.
- a linear label classifier shared by both embeddings, cross-entropy on each, the video term
  weighted ``beta=10``. The release leaves the classifier out of every optimiser's variable list,
  so it stays at its random initialisation: ``train_label_classifier=false`` (default) freezes it.
- a modality discriminator (64-32-2, linear) behind a gradient-reversal layer. The release
  trains it with its own optimiser on its own variables only and leaves the domain loss out of the
  embedding optimiser's loss, so the reversed gradient never reaches the embeddings: the
  discriminator learns, the embeddings are not pushed by it. ``adversarial=false`` (default) does
  exactly that (the discriminator sees detached embeddings); ``adversarial=true`` is the paper's
  min-max reading, the reversed gradient (times ``reverse_scale``) reaching the embeddings.
- the "transpose" regulariser on the bag: a 64-64-64 tanh map of the proposal embeddings ``X``
  ``[P, 64]`` is fitted (MSE, weight ``transpose_weight`` = the release's 1e-3) to the projector
  ``X (X^T X)^+ X^T`` ``[P, P]`` of the bag (held fixed); the release defines it for ``P = 64 =``
  the embedding width. A bag of one (pooled input) has no such term.
- the release's geometry-aware triplet on that map is not reproduced; the retrieval task's
  hardest-negative triplet on the pooled embeddings stands in (docs/retrieval.md).

Parameters at 128/4096 (``training_only`` excluded, as at test time): 2,213,793 = the two embedding
MLPs 2,187,728 (exactly the paper's 2.19M) + the attention pooling 26,065. Training-only heads at 200
classes: label classifier 13,000 + discriminator 2,146 + transpose map 8,320 = 23,466.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import UserError
from .base import RetrievalOutput
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


class AttentionPool(nn.Module):
    """The release's attention over a bag: ``h = tanh(W x)``, value ``V h``, score ``w h``, softmax over proposals."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(width, hidden), nn.Tanh())
        self.value = nn.Linear(hidden, width)
        self.score = nn.Linear(hidden, 1)

    def forward(self, bag: Tensor) -> tuple[Tensor, Tensor]:
        """``bag`` [B, P, width] -> (pooled [B, width], weights [B, P] summing to 1 over P)."""
        h = self.hidden(bag)
        weights = torch.softmax(self.score(h).squeeze(-1), dim=-1)
        return torch.einsum("bp,bpw->bw", weights, self.value(h)), weights


class APIVR(RetrievalFuser):
    """``modalities`` order is (image, video) by convention; any names work, the first is the query side."""

    training_only = ("label_classifier", "domain_classifier", "transpose")
    takes_bags = True  # video [B, P, D]: the retrieval task keeps the bag (docs/retrieval.md)

    def __init__(
        self,
        dims: Mapping[str, int],
        num_classes: int,
        embed_dim: int = 64,
        video_hidden: Sequence[int] = (500, 200),
        image_hidden: Sequence[int] = (100, 80),
        attention_hidden: int = 200,
        domain_hidden: int = 32,
        beta: float = 10.0,
        domain_weight: float = 1.0,
        adversarial: bool = False,
        reverse_scale: float = 1.0,
        train_label_classifier: bool = False,
        transpose_weight: float = 1e-3,
        bag_size: int = 1,
    ) -> None:
        """``bag_size``: proposals per video until a forward pass shows the real number (for FLOPs)."""
        super().__init__(dims)
        if len(self.dims) != 2:
            raise ValueError(f"APIVR pairs exactly two modalities (image, video), got {list(self.dims)}")
        self.image_key, self.video_key = self.modalities
        self.embed_dim = int(embed_dim)
        self.out_dim = 2 * self.embed_dim
        self.bag_size = int(bag_size)  # proposals per video of the last forward (complexity's example input)
        self.proposal_embed = _tanh_mlp([self.dims[self.video_key], *video_hidden, embed_dim])
        self.pool = AttentionPool(embed_dim, attention_hidden)
        self.image_embed = _tanh_mlp([self.dims[self.image_key], *image_hidden, embed_dim])
        self.label_classifier = nn.Linear(embed_dim, num_classes)
        self.label_classifier.requires_grad_(bool(train_label_classifier))
        self.domain_classifier = nn.Sequential(nn.Linear(embed_dim, domain_hidden), nn.Linear(domain_hidden, 2))
        self.transpose = _tanh_mlp([embed_dim, embed_dim, embed_dim])
        self.beta, self.domain_weight, self.transpose_weight = beta, domain_weight, transpose_weight
        self.adversarial, self.reverse_scale = bool(adversarial), reverse_scale

    def video(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Video features [B, P, D] (or [B, D], a bag of one) -> (embedding, proposal embeddings, weights)."""
        bag = self.proposal_embed(x if x.dim() == 3 else x.unsqueeze(1))
        self.bag_size = bag.shape[1]
        pooled, weights = self.pool(bag)
        return pooled, bag, weights

    def embed(self, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        if self.image_key in feats:
            out[self.image_key] = self.image_embed(feats[self.image_key])
        if self.video_key in feats:
            out[self.video_key] = self.video(feats[self.video_key])[0]
        return out

    def forward(self, feats: dict[str, Tensor]) -> RetrievalOutput:
        self.check_inputs(feats)
        e_i = self.image_embed(feats[self.image_key])
        e_v, bag, weights = self.video(feats[self.video_key])
        out = RetrievalOutput(fused=torch.cat([e_i, e_v], dim=-1),
                              embeddings={self.image_key: e_i, self.video_key: e_v},
                              parts={f"attention/{self.video_key}": weights})
        if self.training:
            self.add_training_terms(feats, {self.image_key: e_i, self.video_key: e_v}, out, bag=bag)
        return out

    def domain_loss(self, e_i: Tensor, e_v: Tensor) -> Tensor:
        """The discriminator's cross-entropy (video = 1, image = 0; a mean per modality, summed, as the release)."""
        both = torch.cat([e_v, e_i])
        both = _ReverseGrad.apply(both, self.reverse_scale) if self.adversarial else both.detach()
        logits = self.domain_classifier(both).float()
        target = torch.cat([torch.ones(len(e_v)), torch.zeros(len(e_i))]).long().to(logits.device)
        n = len(e_v)
        return F.cross_entropy(logits[:n], target[:n]) + F.cross_entropy(logits[n:], target[n:])

    def transpose_loss(self, bag: Tensor) -> Tensor:
        """MSE between the transpose map of the proposal embeddings and the bag's (fixed) projector."""
        p, width = bag.shape[1], bag.shape[2]
        if p != width:
            raise UserError(f"APIVR's transpose regulariser compares a [P, {width}] map with the [P, P] projector of "
                            f"the bag, so it needs P = embed_dim, got P = {p} proposals; set fuser.embed_dim={p} "
                            f"or fuser.transpose_weight=0")
        with torch.no_grad():
            x = bag.detach().float()
            projector = x @ torch.linalg.pinv(x)  # = X (X^T X)^-1 X^T when X has full column rank
        return F.mse_loss(self.transpose(bag).float(), projector)

    def add_training_terms(self, feats: Mapping[str, Tensor], emb: Mapping[str, Tensor], out: RetrievalOutput,
                           bag: Tensor | None = None) -> None:
        """Discriminator and transpose losses (``aux_loss``); the shared classifier's logits for the task."""
        e_i, e_v = emb[self.image_key], emb[self.video_key]
        domain = self.domain_loss(e_i, e_v)
        loss = self.domain_weight * domain
        out.parts["loss/domain"] = domain.detach()
        if bag is not None and bag.shape[1] > 1 and self.transpose_weight:
            trans = self.transpose_loss(bag)
            loss = loss + self.transpose_weight * trans
            out.parts["loss/transpose"] = trans.detach()
        out.aux_loss = loss
        out.logits = {self.image_key: self.label_classifier(e_i), self.video_key: self.label_classifier(e_v)}
        out.logit_weights = {self.video_key: self.beta}

    def example_inputs(self, batch_size: int = 1) -> dict[str, Tensor]:
        """A bag of ``bag_size`` proposals for the video (what the run feeds), a vector for the image."""
        video = (batch_size, self.bag_size, self.dims[self.video_key]) if self.bag_size > 1 else \
            (batch_size, self.dims[self.video_key])
        return {self.image_key: torch.randn(batch_size, self.dims[self.image_key]), self.video_key: torch.randn(*video)}
