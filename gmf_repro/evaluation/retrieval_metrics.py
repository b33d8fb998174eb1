"""mAP@k for image-to-video retrieval (paper Table 3; docs/paper.md §7), computed on a whole score matrix at once.

Definition used for the reported numbers (the standard truncated AP, and what AP-IVR computes per k):

    AP@k(q) = (1 / R_k) * sum_{i <= k, item i relevant} precision@i,   R_k = relevant items in the top k
    AP@k(q) = 0 when none of the top k is relevant;   mAP@k = mean over queries.

``torchmetrics.functional.retrieval_average_precision(preds, target, top_k=k)`` uses the same
formula, with one difference: it treats every item whose score is <= 0 as non-relevant
(``target = where(preds > 0, target, 0)``), so it undercounts hits under cosine scores, which can be
negative. This module ranks by score whatever its sign; the tests check that both agree on positive
scores. It is also vectorised over queries, where torchmetrics' ``RetrievalMAP`` keeps one row per
(query, item) pair and loops over queries in Python.

AP-IVR's evaluation script differs in one more way, which :func:`reference_cumulative_map` reproduces:
it appends the per-query AP values of every k to one running list without clearing it, so the
number it prints as "mAP@20" is the mean over AP@10 and AP@20 of all queries, "mAP@50" the mean over
AP@10, AP@20 and AP@50, and so on. Only mAP@10 equals the standard value.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_KS: tuple[int, ...] = (10, 20, 50, 100)


def cosine_scores(queries: Tensor, gallery: Tensor, chunk: int = 4096) -> Tensor:
    """Queries x gallery cosine similarity; the ranking equals Euclidean distance after L2 normalisation."""
    q = F.normalize(queries.float(), dim=-1)
    g = F.normalize(gallery.float(), dim=-1)
    return torch.cat([q[i : i + chunk] @ g.T for i in range(0, len(q), chunk)]) if len(q) else q @ g.T


def relevance(query_labels: Tensor, gallery_labels: Tensor) -> Tensor:
    """Relevant = same activity class (AP-IVR's protocol)."""
    return query_labels.view(-1, 1) == gallery_labels.view(1, -1)


def ranked_relevance(scores: Tensor, relevant: Tensor, k: int) -> Tensor:
    """Relevance (float, Q x min(k, G)) of each query's top-k items, best score first."""
    k = min(int(k), scores.shape[-1])
    top = scores.topk(k, dim=-1, sorted=True).indices
    return relevant.gather(-1, top).float()


def average_precision_at_k(ranked: Tensor, k: int) -> Tensor:
    """Per-query AP@k from ``ranked`` relevance (Q x >=k columns, best first); see the module docstring."""
    r = ranked[:, : int(k)]
    hits = r.cumsum(-1)
    ranks = torch.arange(1, r.shape[-1] + 1, dtype=r.dtype, device=r.device)
    precision_sum = (hits / ranks * r).sum(-1)
    return precision_sum / hits[:, -1].clamp(min=1.0)


def map_at_k(scores: Tensor, relevant: Tensor, ks: Sequence[int] = DEFAULT_KS) -> dict[int, float]:
    """Standard mAP@k for every k in ``ks``: mean over queries of :func:`average_precision_at_k`."""
    ranked = ranked_relevance(scores, relevant, max(ks))
    return {int(k): float(average_precision_at_k(ranked, k).mean()) for k in ks}


def reference_cumulative_map(scores: Tensor, relevant: Tensor, ks: Sequence[int] = DEFAULT_KS) -> dict[int, float]:
    """AP-IVR's printed values: mAP@k_j = mean of the per-query AP@k' over all k' <= k_j (see module docstring)."""
    ranked = ranked_relevance(scores, relevant, max(ks))
    out, seen = {}, []
    for k in sorted(int(k) for k in ks):
        seen.append(average_precision_at_k(ranked, k))
        out[k] = float(torch.cat(seen).mean())
    return out
