"""Image-to-video retrieval (paper Table 3): image queries ranked against the video gallery.

Same constructor keywords as ``ClassificationTask`` so ``run(cfg)`` builds either from ``cfg.task``.

Training loss (stated in docs/retrieval.md): the bidirectional triplet loss with the hardest
in-batch negative (VSE++, Faghri et al. 2018), on the cosine of the fuser's per-modality
embeddings; AP-IVR and MAP-IVR train with a triplet loss, and the hardest-negative choice follows
AP-IVR, which picks the most similar sample of another class as the negative. A sample's positive
is its own paired video; other samples of its class are neither positives nor negatives. Added to it:
the fuser's ``aux_loss`` (GMF's ``L_dis``, MAP-IVR's translation, AP-IVR's discriminator and
transpose terms), a cross-entropy on each of the fuser's typed ``logits`` weighted by
``logit_weights`` (AP-IVR's label classifier), each ``label_losses`` term, and, for fusers with a
pair score (METER, ``Fuser.has_pair_score``), METER's matching loss: binary cross-entropy on the
positive pair and the hardest negative pair in each direction. No loss is read from ``parts``.
Logged as every task logs its terms (tasks/base.py): ``train/loss`` and ``train/loss/<term>`` (``rank``,
``aux``, the ``logits`` and ``label_losses`` names, ``pair``).

Test: every test image is a query, every test video is the gallery, relevance = same class.
Ranking = cosine of the embeddings; a fuser with ``pair_score`` re-ranks each query's top
``rerank_k`` by its pair score (ALBEF/METER-style re-ranking, so mAP@k for k <= rerank_k is exact
for the cross-attention model on the candidates). Logged: ``test/{condition}/map@{k}`` (standard
mAP@k) and ``test/{condition}/map_apivr@{k}`` (AP-IVR's printed, cumulative variant).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor, nn

from ..errors import UserError
from ..evaluation.retrieval_metrics import DEFAULT_KS, cosine_scores, map_at_k, reference_cumulative_map, relevance
from ..models.bag import ProposalBag
from ..models.fusion.base import Fuser, RetrievalOutput
from ..models.fusion.retrieval import as_retrieval_fuser
from ..models.multimodal import MultimodalModel
from .base import MultimodalTask, fuser_loss_terms, join_terms


def hardest_negative_triplet(scores: Tensor, labels: Tensor, margin: float) -> Tensor:
    """Bidirectional hinge on the diagonal (paired) scores vs the hardest other-class score in each row/column."""
    different = labels.view(-1, 1) != labels.view(1, -1)
    pos = scores.diagonal()
    masked = scores.masked_fill(~different, float("-inf"))
    losses = []
    for hardest in (masked.max(dim=1).values, masked.max(dim=0).values):
        valid = torch.isfinite(hardest)
        if valid.any():
            losses.append(F.relu(margin - pos[valid] + hardest[valid]).mean())
    return torch.stack(losses).sum() if losses else scores.sum() * 0.0


class RetrievalTask(MultimodalTask):
    """Extractors -> retrieval fuser -> per-modality embeddings; see the module docstring for losses and metrics."""

    def __init__(
        self,
        extractors: Mapping[str, nn.Module],
        fuser: Fuser,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        monitor: str = "train/loss",
        query: str = "image",
        gallery: str = "video",
        margin: float = 0.2,
        class_weight: float = 1.0,
        pair_weight: float = 1.0,
        rerank_k: int = 100,
        ks: Sequence[int] = DEFAULT_KS,
        adapter_dim: int = 256,
    ) -> None:
        extractors = nn.ModuleDict(dict(extractors))  # built before the adapters: parameter order as before
        fuser = as_retrieval_fuser(fuser, adapter_dim)
        super().__init__(MultimodalModel(extractors, fuser, modalities=fuser.modalities), num_classes, optimizer,
                         scheduler, monitor)
        for m in (query, gallery):
            if m not in self.modalities:
                raise ValueError(f"retrieval {('query', 'gallery')[m == gallery]} modality '{m}' is not one of "
                                 f"the fuser's modalities {self.modalities}; set task.query / task.gallery")
        self.query, self.gallery = query, gallery
        self.margin, self.class_weight, self.pair_weight = margin, class_weight, pair_weight
        self.rerank_k, self.ks = int(rerank_k), tuple(int(k) for k in ks)
        self._test_store: dict[str, list[Tensor]] = {}

    # -- embeddings ------------------------------------------------------------------------------
    def features(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Extractor outputs (``self.model.encode``). A bag of proposals ``[B, P, D]`` (``data.pool=none``)
        reaches only a fuser that pools proposals itself, through ``proposal_bag``; anything else would
        flatten it silently."""
        for m in self.modalities:
            x, extractor = batch[m], self.extractors[m] if m in self.extractors else None
            if x.dim() == 3 and not isinstance(extractor, (ProposalBag, type(None))):
                raise UserError(
                    f"'{m}' comes as a bag of {x.shape[1]} proposals {list(x.shape)} (data.pool=none) but "
                    f"extractors.{m} flattens it; set extractors.{m}=proposal_bag with a fuser that pools "
                    f"proposals (apivr), or data.pool=mean")
            if x.dim() == 3 and not self.fuser.takes_bags:
                raise UserError(f"'{m}' comes as a bag of proposals {list(x.shape)} (data.pool=none) but "
                                f"{type(self.fuser).__name__} takes one vector per sample; set data.pool=mean")
        return self.model.encode(batch)

    def fuse(self, batch: Mapping[str, Tensor]) -> RetrievalOutput:
        return self.fuser(self.features(batch))

    def embed(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Per-modality embeddings, each from its own modality (queries and gallery are different samples)."""
        return self.fuser.embed(self.features(batch))

    # -- training --------------------------------------------------------------------------------
    def loss_terms(self, out: RetrievalOutput, labels: Tensor) -> dict[str, Tensor]:
        """``rank`` (the triplet loss on the embeddings' cosine), the fuser's own terms (``fuser_loss_terms``,
        its ``logits`` weighted by ``class_weight``), and ``pair`` for a fuser with a pair score."""
        q, g = out.embeddings[self.query], out.embeddings[self.gallery]
        scores = cosine_scores(q, g)
        terms = {"rank": hardest_negative_triplet(scores, labels, self.margin).float()}
        terms = join_terms(terms, fuser_loss_terms(out, labels, self.class_weight), self.fuser)
        if self.fuser.has_pair_score and self.pair_weight:
            pair = self.pair_weight * self.pair_loss(q, g, scores.detach(), labels, out.aligned_pair_score)
            terms = join_terms(terms, {"pair": pair.float()}, self.fuser)
        return terms

    def pair_loss(self, q: Tensor, g: Tensor, scores: Tensor, labels: Tensor, pos: Tensor | None) -> Tensor:
        """Matching loss of a cross-attention fuser: positive pairs vs the hardest other-class pair both ways."""
        different = labels.view(-1, 1) != labels.view(1, -1)
        if not different.any():
            return scores.new_zeros(())
        masked = scores.masked_fill(~different, float("-inf"))
        rows = different.any(1).nonzero().squeeze(1)
        cols = different.any(0).nonzero().squeeze(1)
        pos = self.fuser.pair_score(q, g) if pos is None else pos
        neg_g = self.fuser.pair_score(q[rows], g[masked[rows].argmax(1)])
        neg_q = self.fuser.pair_score(q[masked[:, cols].argmax(0)], g[cols])
        neg = torch.cat([neg_g, neg_q]).float()
        return F.binary_cross_entropy_with_logits(pos.float(), torch.ones_like(pos.float())) + \
            F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))

    # -- test --------------------------------------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        self._test_store = {"q": [], "g": [], "label": []}

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # a test condition was applied to the raw batch by the datamodule (evaluation/conditions.py)
        emb = self.embed(batch)
        self._test_store["q"].append(emb[self.query].float())
        self._test_store["g"].append(emb[self.gallery].float())
        self._test_store["label"].append(batch["label"])

    @torch.no_grad()
    def rank_scores(self, q: Tensor, g: Tensor) -> Tensor:
        """Cosine scores, with each query's top ``rerank_k`` replaced by the pair score when the fuser has one."""
        scores = cosine_scores(q, g)
        if not self.fuser.has_pair_score or self.rerank_k <= 0:
            return scores
        k = min(self.rerank_k, g.shape[0])
        top = scores.topk(k, dim=1).indices
        qi = torch.arange(len(q), device=q.device).repeat_interleave(k)
        gi = top.reshape(-1)
        pair = torch.cat([self.fuser.pair_score(q[qi[s : s + 8192]], g[gi[s : s + 8192]]).float()
                          for s in range(0, len(qi), 8192)])
        # candidates rank above everything else, ordered by their pair score
        below = scores - scores.max() + pair.min() - 1.0
        return below.scatter(1, top, pair.view(len(q), k))

    def on_test_epoch_end(self) -> None:
        q, g = torch.cat(self._test_store["q"]), torch.cat(self._test_store["g"])
        labels = torch.cat(self._test_store["label"])
        for side, emb in (("query", q), ("gallery", g)):
            if not torch.isfinite(emb).all() or (len(emb) > 1 and emb.std(0).max() == 0):
                rank_zero_warn(f"every {side} embedding is the same or not finite (training collapsed or diverged): "
                               f"the mAP then reflects the order of the test set, not the model; lower "
                               f"task.optimizer.lr or train longer")
        scores = self.rank_scores(q, g)
        rel = relevance(labels, labels)
        prefix = f"test/{self.condition or 'IV'}"
        metrics = {f"{prefix}/map@{k}": v for k, v in map_at_k(scores, rel, self.ks).items()}
        reference = reference_cumulative_map(scores, rel, self.ks)
        metrics.update({f"{prefix}/map_apivr@{k}": v for k, v in reference.items()})
        self.log_dict(metrics)
        self._test_store = {}

