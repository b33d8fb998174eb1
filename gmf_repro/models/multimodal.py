"""The one path from a batch to fused features: each modality through its extractor, then the fuser.

Tasks, the parts analysis, the feature export and the probes all go through ``MultimodalModel``
(TorchMultimodal's ``LateFusion`` without the head), so "extract, then fuse" is written once.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from .fusion.base import Fuser, FusionOutput


class MultimodalModel(nn.Module):
    """``extractors`` (one per modality) feeding one ``fuser``.

    ``modalities``: the modalities fed to the fuser, in order (default: the extractors' keys). A
    modality without an extractor passes through as it is, flattened to one vector per sample unless
    it is a bag of proposals ``[B, P, D]`` (retrieval on stored features).
    """

    def __init__(self, extractors: Mapping[str, nn.Module], fuser: Fuser,
                 modalities: Sequence[str] | None = None) -> None:
        super().__init__()
        self.extractors = nn.ModuleDict(dict(extractors))
        self.fuser = fuser
        self.modalities = list(modalities) if modalities is not None else list(self.extractors)

    def encode(self, batch: Mapping[str, Any], modalities: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Extractor outputs by modality (all of ``self.modalities``, or the ones named)."""
        feats = {}
        for m in self.modalities if modalities is None else modalities:
            x = batch[m]
            if m in self.extractors:
                feats[m] = self.extractors[m](x)
            else:
                feats[m] = x if x.dim() == 3 else x.flatten(1)
        return feats

    def forward(self, batch: Mapping[str, Any]) -> FusionOutput:
        return self.fuser(self.encode(batch))


class HoldsModel:
    """Mixin for a task that owns ``self.model``: ``task.extractors`` / ``task.fuser`` name its parts,
    and a checkpoint written before the task held a ``model`` (keys ``extractors.*`` / ``fuser.*``,
    now ``model.extractors.*`` / ``model.fuser.*``) still loads."""

    model: MultimodalModel

    @property
    def extractors(self) -> nn.ModuleDict:
        return self.model.extractors

    @property
    def fuser(self) -> Fuser:
        return self.model.fuser

    def hold(self, model: MultimodalModel) -> None:
        """Register ``model`` (call first in ``__init__`` so parameter order stays extractors, fuser, head)."""
        self.model = model
        self._register_load_state_dict_pre_hook(_rename_flat_keys)  # type: ignore[attr-defined]


def _rename_flat_keys(state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    for key in list(state_dict):
        rest = key[len(prefix):]
        if key.startswith(prefix) and rest.startswith(("extractors.", "fuser.")):
            state_dict[f"{prefix}model.{rest}"] = state_dict.pop(key)
