"""The seam every fuser plugs into (docs/architecture.md)."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import Tensor, nn


@dataclass
class FusionOutput:
    """What a fuser hands to the task (a retrieval fuser hands a ``RetrievalOutput``, which adds its embeddings).

    - ``fused``: B x out_dim, the input of the task's head (or the embedding for retrieval); also
      what the analysis (probes, mutual information) reads, so every fuser returns one.
    - ``aux_loss``: a label-free loss the fuser trains with (GMF's L_dis, MISA's, DrFuse's
      disentanglement), added to the task loss as is (already weighted).
    - ``logits``: class logits the fuser predicts itself (UAVM per modality, DrFuse per branch and
      its final prediction, AP-IVR's label classifier); the task gives each one its own task loss
      (cross-entropy for classification), multiplied by ``logit_weights[name]`` (default 1; a
      number, a 0-d tensor, or a B-vector of per-sample weights, averaged over the batch).
    - ``prediction``: the fuser's own final class logits (B x num_classes) when its method predicts
      with a classifier of its own (UAVM's shared head, DrFuse's class-wise heads). The task then
      evaluates it instead of its head, and trains it only through ``logits``: a fuser lists its
      prediction there when its method puts a loss on it (DrFuse), and leaves it out when the
      method trains other outputs and combines them only at test time (UAVM).
    - ``label_losses``: losses that need the labels (DrFuse's attention ranking), as functions
      ``labels -> scalar``, already weighted; the task adds each one.
    - ``parts``: named intermediate tensors for analysis only (GMF's ``inv/*``, ``spec/*``); no
      task reads a loss from here.

    Names in ``logits`` and ``label_losses`` are logged by the task (``train/loss/<name>``), so
    they must differ from each other and from ``task`` and ``aux``.
    """

    fused: Tensor
    aux_loss: Tensor | None = None
    logits: dict[str, Tensor] = field(default_factory=dict)
    logit_weights: dict[str, float | Tensor] = field(default_factory=dict)
    prediction: Tensor | None = None
    label_losses: dict[str, Callable[[Tensor], Tensor]] = field(default_factory=dict)
    parts: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class RetrievalOutput(FusionOutput):
    """What a retrieval fuser hands to the retrieval task: a ``FusionOutput`` plus

    - ``embeddings``: one vector per modality (B x embed_dim), each computed from that modality alone;
      queries and gallery are ranked by their cosine (a missing one is a KeyError, never a dropped loss);
    - ``aligned_pair_score``: the pair score (``Fuser.pair_score``) of each sample's own query/gallery pair,
      when the fuser computes it in its forward pass (METER); the task's matching loss takes it as the
      positive pairs' score.
    """

    embeddings: dict[str, Tensor] = field(default_factory=dict)
    aligned_pair_score: Tensor | None = None


class Fuser(nn.Module, abc.ABC):
    """Base class: named modalities with their own (possibly unequal) feature dims.

    Subclasses set ``self.out_dim`` in ``__init__`` and implement ``forward``; a fuser with a
    classifier of its own also sets ``self.num_classes`` (its constructor argument of that name,
    which ``run()`` fills from the data).
    The order of ``dims`` is the modality order (GMF's cyclic exchange follows it).
    """

    out_dim: int
    # What a fuser can do, declared here with the default and overridden by the fusers that can; the tasks,
    # the analysis and the complexity code read these directly.
    #: Set (in ``__init__``) by a fuser that predicts the classes itself and returns ``prediction``
    #: (UAVM, DrFuse); the classification task then builds no head and checks the count.
    num_classes: int | None = None
    #: Takes a bag of vectors ``[B, P, D]`` for a modality and pools it itself (AP-IVR's proposals); any
    #: other fuser takes one vector per sample, and the retrieval task refuses a bag for it.
    takes_bags: bool = False
    #: Submodules used only to train (AP-IVR's discriminator): their parameters are reported apart from the
    #: Params column, which counts the model used at test time (complexity/fusers.py).
    training_only: tuple[str, ...] = ()
    #: The two kinds of per-modality ``parts`` the fuser concatenates crosswise, ``(a, b)``: ``z_j =
    #: concat(a_{j+1}, b_j)`` (GMF and the G-fusers: ``("inv", "spec")``). The mutual-information analysis
    #: then pairs them as the fuser does (evaluation/mutual_info.py); None: every kind's modality pairs.
    exchanged_parts: tuple[str, str] | None = None
    #: Scores aligned query/gallery pairs with ``pair_score`` (METER): the retrieval task re-ranks its top
    #: candidates by it and trains a matching loss.
    has_pair_score: bool = False
    #: The modalities the current test condition leaves out (their inputs are the condition's fill, zeros by
    #: default); empty in training and under AV. Whoever applies a condition for a test sets it for the test's
    #: duration (evaluation/conditions.py). Every fuser is fed the fill, as the paper's protocol; a fuser whose
    #: method evaluates without the absent modality's branch reads it (UAVM's ``absent_logits: drop``).
    absent: frozenset[str] = frozenset()

    def __init__(self, dims: Mapping[str, int]) -> None:
        super().__init__()
        if len(dims) < 1:
            raise ValueError("fuser needs at least one modality in `dims`, e.g. {'audio': 512, 'video': 512}")
        self.dims: dict[str, int] = {str(k): int(v) for k, v in dims.items()}
        self.modalities: list[str] = list(self.dims)

    @abc.abstractmethod
    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        """Fuse one feature tensor per modality (B x dims[m]) into ``fused`` (B x out_dim)."""

    def check_inputs(self, feats: Mapping[str, Tensor]) -> None:
        """Fail with one line naming the modality and the dim fix, instead of a matmul error deep inside."""
        for m, d in self.dims.items():
            if m not in feats:
                raise KeyError(f"fuser expects modality '{m}' but the batch has {sorted(feats)}")
            if feats[m].shape[-1] != d:
                raise ValueError(
                    f"modality '{m}' has feature dim {feats[m].shape[-1]} but the fuser was built for {d}; "
                    f"set the data/extractor dims to match"
                )

    def pair_score(self, a: Tensor, b: Tensor) -> Tensor:
        """Score of aligned embedding pairs (row i of ``a`` with row i of ``b``); only a fuser with
        ``has_pair_score`` has one."""
        raise TypeError(f"{type(self).__name__} ranks by embedding cosine only and has no pair score")

    def example_inputs(self, batch_size: int = 1) -> dict[str, Tensor]:
        """Random inputs of the right shape, used by complexity measurement."""
        return {m: torch.randn(batch_size, d) for m, d in self.dims.items()}
