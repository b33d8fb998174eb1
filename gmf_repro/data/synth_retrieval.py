"""synth_retrieval (``data=synth_retrieval``): avsynth's generator in retrieval mode, image/video pairs from a seed.

The samples are avsynth's with ``modalities=[image, video]`` (conf/data/synth_retrieval.yaml composes
avsynth's settings); relevance is the shared class. It takes ActivityNet's ``pool`` and ``proposals``, so
every Table 3 experiment runs on it with only its data swapped in
(``python -m gmf_repro experiment=activitynet_128 data=synth_retrieval``):

- ``pool: mean`` or ``max``: one vector per video, as generated (what pooling a video's proposals gives);
- ``pool: none``: a bag of ``proposals`` vectors per video ``[P, D]`` (AP-IVR's input, ``proposals=activitynet_apivr``):
  the generated vector plus per-proposal noise (``bag_noise``) of zero mean over the bag, so the bag's mean is
  the generated vector. The noise has its own random stream: the samples are the same for every ``pool``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..errors import UserError
from .avsynth import AVSynthDataModule

BAG_STREAM = 0xBA6  # offset of the proposals' noise stream from the seed


class SynthRetrievalDataModule(AVSynthDataModule):
    """avsynth's image/video pairs; ``gallery`` (default ``video``) comes pooled or as a bag of proposals."""

    def __init__(self, modalities: Sequence[str] = ("image", "video"), *, pool: str = "mean", proposals: int = 64,
                 bag_noise: float = 0.5, gallery: str = "video", **avsynth: Any) -> None:
        if pool not in ("mean", "max", "none"):
            raise UserError(f"data.pool must be 'mean', 'max' or 'none' (a bag of {proposals} proposals), got '{pool}'")
        super().__init__(modalities=modalities, **avsynth)
        if gallery not in self.modalities:
            raise UserError(f"synth_retrieval's gallery modality '{gallery}' is not one of {self.modalities}; "
                            f"set data.modalities")
        if pool == "none" and (avsynth.get("shapes") or int(proposals) < 1):
            raise UserError("data.pool=none makes a bag of data.proposals >= 1 vectors; it takes no data.shapes")
        self.pool, self.proposals, self.bag_noise, self.gallery = pool, int(proposals), float(bag_noise), gallery
        self.flat_dim = self.input_shapes[gallery][0]
        if pool == "none":
            self.input_shapes[gallery] = (self.proposals, self.flat_dim)
        self._bags = torch.Generator().manual_seed(self.seed + BAG_STREAM)

    def _shaped(self, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.pool != "none":
            return super()._shaped(tensors)
        out = super()._shaped({k: v for k, v in tensors.items() if k != self.gallery})
        out[self.gallery] = self.bag(tensors[self.gallery])
        return out

    def bag(self, x: Tensor) -> Tensor:
        """``[N, D]`` -> ``[N, P, D]``: each vector plus per-proposal noise centred over the bag (its mean is ``x``)."""
        noise = self.bag_noise * torch.randn(len(x), self.proposals, x.shape[1], generator=self._bags)
        return x.unsqueeze(1) + (noise - noise.mean(dim=1, keepdim=True))
