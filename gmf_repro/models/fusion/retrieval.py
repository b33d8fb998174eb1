"""The retrieval side of the fuser seam (docs/retrieval.md, "The retrieval side of the fuser seam").

A retrieval fuser is a :class:`~gmf_repro.models.fusion.base.Fuser` that can also embed each
modality on its own, because a query image and a gallery video are different samples:

- ``embed(feats) -> {modality: B x embed_dim}``: one vector per modality, computed from that
  modality alone. Queries and gallery are ranked by the cosine similarity of these vectors.
- ``forward(feats)`` returns a ``RetrievalOutput`` whose ``embeddings`` hold the same
  embeddings (the retrieval fuser's output, what ``fused`` is to a classifier; a missing one is a
  KeyError, never a dropped loss), the fuser's own loss in
  ``aux_loss`` and, for methods that train a label classifier, class logits in the typed field
  ``logits`` with their weights in ``logit_weights`` (the task adds a cross-entropy on each, because
  only the task sees the labels; the task reads no loss from ``parts``). The training terms
  (:meth:`RetrievalFuser.add_training_terms`) are computed in training mode only, so an eval-mode
  forward costs what inference costs.
- optional ``pair_score(a, b) -> P``: a cross-attention score for P aligned pairs of embeddings
  (row i of ``a`` with row i of ``b``, in ``modalities`` order). Methods that have one declare
  ``has_pair_score`` (METER): they re-rank the top candidates of the cosine ranking at test time and
  get a pairwise loss in training.

:func:`as_retrieval_fuser` wraps a classification-only fuser (e.g. the Perceiver) so that it
can take part too.
"""
from __future__ import annotations

import abc
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import Fuser, RetrievalOutput


class RetrievalFuser(Fuser):
    """Base class: subclasses set ``embed_dim`` and implement :meth:`embed`; ``forward`` has a default."""

    embed_dim: int

    @abc.abstractmethod
    def embed(self, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """One embedding per modality, each computed from that modality alone."""

    def add_training_terms(self, feats: Mapping[str, Tensor], emb: Mapping[str, Tensor],
                           out: RetrievalOutput) -> None:
        """Fill the method's training terms into ``out`` (``aux_loss``, ``logits``, ``logit_weights``,
        ``label_losses``); none by default. Called in training mode only."""

    def forward(self, feats: dict[str, Tensor]) -> RetrievalOutput:
        self.check_inputs(feats)
        emb = self.embed(feats)
        out = RetrievalOutput(fused=torch.cat([emb[m] for m in self.modalities], dim=-1),
                              embeddings={m: emb[m] for m in self.modalities})
        # the method's training losses only in training: eval-mode FLOPs are the inference cost (Table 3)
        if self.training:
            self.add_training_terms(feats, emb, out)
        return out


class EmbeddingAdapter(RetrievalFuser):
    """Retrieval for a fuser that only fuses: each modality is embedded by running the wrapped fuser
    with that modality alone (the others zero, as in the paper's missing-modality protocol) and
    mapping its fused vector to a common width with a per-modality linear layer."""

    def __init__(self, inner: Fuser, embed_dim: int = 256) -> None:
        super().__init__(inner.dims)
        self.inner = inner
        self.embed_dim = self.out_dim = int(embed_dim)
        self.heads = nn.ModuleDict({m: nn.Linear(inner.out_dim, self.embed_dim) for m in self.modalities})

    def embed(self, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        for m in self.modalities:
            alone = {k: (v if k == m else torch.zeros_like(v)) for k, v in feats.items() if k in self.dims}
            out[m] = self.heads[m](self.inner(alone).fused)
        return out

    def example_inputs(self, batch_size: int = 1) -> dict[str, Tensor]:
        return self.inner.example_inputs(batch_size)


def as_retrieval_fuser(fuser: Fuser, embed_dim: int = 256) -> RetrievalFuser:
    """Return ``fuser`` itself when it can embed each modality alone, else wrap it in :class:`EmbeddingAdapter`."""
    return fuser if isinstance(fuser, RetrievalFuser) else EmbeddingAdapter(fuser, embed_dim)


def wrap_for_retrieval(fuser_factory, dims: Mapping[str, int], embed_dim: int = 256) -> RetrievalFuser:
    """Hydra entry for a wrapped fuser: ``fuser_factory`` is a partial fuser config, ``dims`` as for any fuser."""
    return as_retrieval_fuser(fuser_factory(dims=dims), embed_dim)
