"""Missing-modality conditions (SPEC §2): a condition names the modalities kept; the rest become zeros."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor

from ..errors import UserError

LETTERS = {"A": "audio", "V": "video", "I": "image", "T": "text"}


def kept_modalities(condition: str, modalities: Sequence[str]) -> list[str]:
    """``"AV"`` -> ``["audio", "video"]``; checks every letter names a modality of the data."""
    letters = {LETTERS.get(c) for c in condition}
    if not condition or None in letters or not letters <= set(modalities):
        have = "".join(k for k, v in LETTERS.items() if v in modalities)
        raise UserError(
            f"invalid eval condition '{condition}' for modalities {list(modalities)}; "
            f"use letters of '{have}' (A=audio, V=video, I=image, T=text), e.g. eval.conditions=[{have},{have[0]}]"
        )
    return [m for m in modalities if m in letters]


def apply_condition(batch: Mapping[str, Tensor], condition: str | None, modalities: Sequence[str]) -> dict[str, Tensor]:
    """Zero the input of every modality the condition does not keep (feature or raw input alike)."""
    if condition is None:
        return dict(batch)
    kept = kept_modalities(condition, modalities)
    return {k: (torch.zeros_like(v) if k in modalities and k not in kept else v) for k, v in batch.items()}
