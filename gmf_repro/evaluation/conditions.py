"""Missing-modality conditions (docs/paper.md §2): a condition names the modalities kept; the others are absent.

Letters name modalities: the datamodule's ``letters`` (modality -> letter; ``data=features`` takes them
from its config, the others use A audio, V video, I image, T text).

An absent modality is replaced in the *raw* batch, before any transform the datamodule applies on the
device (standardisation of stored features, the spectrogram, frame scaling), so the model sees the
transform of a zero input, as in the paper: ``(0 - mu) / sigma`` for standardised features,
``log(1e-8)`` everywhere for FakeAVCeleb's log-STFT of a zero waveform, black frames. The datamodule does
it: ``under_condition`` tells it which modalities to withhold for one test, and its
``on_after_batch_transfer`` replaces them and then transforms (data/contract.py). In Lightning's order
for every test batch:

    loader (raw batch: features, uint8 frames, int16 waveform)
    -> transfer_batch_to_device
    -> datamodule.on_after_batch_transfer   the condition, then the transform (standardise, spectrogram, frames / 255)
    -> task.test_step

``eval.missing``: ``zero`` (default, the paper) or ``mean``: the absent input is the train-split mean
of the raw input (``datamodule.train_mean``), i.e. 0 after standardisation (mean imputation).
"""
from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from torch import Tensor

from ..data.contract import MultimodalData, default_letters, withhold_modalities
from ..errors import UserError
from ..models.fusion.base import Fuser

MISSING_MODES = ("zero", "mean")
AUTO = "auto"


def kept_modalities(condition: str, modalities: Sequence[str], letters: Mapping[str, str] | None = None) -> list[str]:
    """``"AV"`` -> ``["audio", "video"]``; checks every letter names a modality of the data.

    ``letters``: modality -> letter (``datamodule.letters``); default A audio, V video, I image, T text."""
    letters = dict(letters) if letters is not None else default_letters(modalities)
    by_letter = {c: m for m, c in letters.items() if m in modalities}
    kept = {by_letter.get(c) for c in condition}
    if not condition or None in kept:
        have = "".join(letters[m] for m in modalities if m in letters)
        legend = ", ".join(f"{letters[m]}={m}" for m in modalities if m in letters)
        raise UserError(
            f"invalid eval condition '{condition}' for modalities {list(modalities)}; "
            f"use letters of '{have}' ({legend}), e.g. eval.conditions=[{have},{have[:1]}] or eval.conditions=auto"
        )
    return [m for m in modalities if m in kept]


def resolve_conditions(conditions: str | Sequence[str], modalities: Sequence[str],
                       letters: Mapping[str, str]) -> list[str]:
    """``eval.conditions``: a list of letter strings, checked, or ``auto``: every non-empty subset of the
    data's modalities, largest first (``[AV, A, V]`` for audio-video; ``[TIA, TI, TA, IA, T, I, A]``
    for text-image-audio). With more than four modalities ``auto`` gives all, each leave-one-out and each one alone."""
    if isinstance(conditions, str):
        if conditions != AUTO:
            raise UserError(f"eval.conditions={conditions}: use a list of letter strings, e.g. [AV,A,V], or auto")
        word = [letters[m] for m in modalities]
        n = len(word)
        if n <= 4:
            subsets = [c for k in range(n, 0, -1) for c in itertools.combinations(word, k)]
        else:
            subsets = [tuple(word), *itertools.combinations(word, n - 1), *itertools.combinations(word, 1)]
        return ["".join(c) for c in subsets]
    out = [str(c) for c in conditions]
    for c in out:
        kept_modalities(c, modalities, letters)
    return out


def absent_modalities(condition: str | None, modalities: Sequence[str],
                      letters: Mapping[str, str] | None = None) -> list[str]:
    """The modalities a condition leaves out (none for ``None``)."""
    if condition is None:
        return []
    kept = kept_modalities(condition, modalities, letters)
    return [m for m in modalities if m not in kept]


def apply_condition(batch: Mapping[str, Any], condition: str | None, modalities: Sequence[str],
                    fill: Mapping[str, Tensor] | None = None,
                    letters: Mapping[str, str] | None = None) -> Mapping[str, Any]:
    """Replace every absent modality of a raw batch by zeros of its dtype, or by ``fill[m]`` (one sample,
    broadcast over the batch). With nothing absent (``AV``, ``None``) the batch itself comes back, untouched."""
    return withhold_modalities(batch, absent_modalities(condition, modalities, letters), fill)


def check_missing(missing: str, datamodule: MultimodalData) -> None:
    """Fail before training when ``eval.missing`` is unknown or the data cannot give a mean."""
    if missing not in MISSING_MODES:
        raise UserError(f"eval.missing={missing} is not one of {list(MISSING_MODES)}; use zero (the paper: "
                        f"the absent input is 0 before any transform) or mean (train-mean imputation)")
    if missing == "mean":
        for m in datamodule.modalities:
            datamodule.train_mean(m)  # the data's own one-line error when it has none


@contextlib.contextmanager
def under_condition(datamodule: MultimodalData, condition: str | None, missing: str = "zero",
                    fuser: Fuser | None = None) -> Iterator[None]:
    """Inside the block every batch of ``datamodule`` lacks the modalities ``condition`` leaves out: zeros in
    the raw input, or its train mean with ``missing="mean"``; the datamodule withholds none after it.

    ``fuser``: told which modalities are absent (``Fuser.absent``) for the block's duration, for a method that
    evaluates without an absent modality's branch (UAVM); its inputs are the fill all the same."""
    absent = absent_modalities(condition, datamodule.modalities, datamodule.letters)
    fill = {m: datamodule.train_mean(m) for m in absent} if missing == "mean" else None
    datamodule.withhold(absent, fill)
    if fuser is not None:
        fuser.absent = frozenset(absent)
    try:
        yield
    finally:
        datamodule.withhold(())
        if fuser is not None:
            fuser.absent = frozenset()
