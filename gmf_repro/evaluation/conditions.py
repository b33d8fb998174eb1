"""Missing-modality conditions (SPEC §2): a condition names the modalities kept; the others are absent.

Letters name modalities: the datamodule's ``letters`` (modality -> letter; ``data=features`` takes
them from its config) or, for the datamodules without one, the table A audio, V video, I image, T text.

An absent modality is replaced in the *raw* batch, before any transform the datamodule applies on
the device (standardisation of stored features, the spectrogram, frame scaling), so the model sees
the transform of a zero input, as in the paper: ``(0 - mu) / sigma`` for standardised features,
``log(1e-8)`` everywhere for FakeAVCeleb's log-STFT of a zero waveform, black frames.

Where, in Lightning's order for every test batch (checked in pytorch_lightning 2.6's evaluation loop):

    loader (raw batch: features, uint8 frames, int16 waveform)
    -> task.on_before_batch_transfer   the condition (``ConditionHook``, this module)
    -> transfer_batch_to_device
    -> datamodule.on_after_batch_transfer   the transform (standardise, spectrogram, frames / 255)
    -> task.test_step

Lightning takes each of these hooks from the datamodule when it overrides it, else from the task;
our datamodules override only ``on_after_batch_transfer``. A datamodule that overrides
``on_before_batch_transfer`` would silently bypass the condition, so testing it raises instead.

``eval.missing``: ``zero`` (default, the paper) or ``mean``: the absent input is the train-split mean
of the raw input (``datamodule.train_mean``), i.e. 0 after standardisation (mean imputation).
"""
from __future__ import annotations

import itertools
import warnings
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from ..errors import UserError

LETTERS = {"A": "audio", "V": "video", "I": "image", "T": "text"}
MISSING_MODES = ("zero", "mean")
AUTO = "auto"

# The task's on_before_batch_transfer is meant to run next to the datamodule's on_after_batch_transfer;
# Lightning warns about that combination on every run.
warnings.filterwarnings("ignore", message="You have overridden `on_before_batch_transfer` in `LightningModule` but "
                        "have passed in a `LightningDataModule`", category=UserWarning)


def letters_of(datamodule: Any, modalities: Sequence[str] | None = None) -> dict[str, str]:
    """Modality -> condition letter: the datamodule's own ``letters`` (data with modalities named in its
    config), else the fixed table ``LETTERS`` (A audio, V video, I image, T text)."""
    own = getattr(datamodule, "letters", None)
    if own:
        return dict(own)
    table = {m: c for c, m in LETTERS.items()}
    names = modalities if modalities is not None else getattr(datamodule, "modalities", [])
    return {m: table[m] for m in names if m in table}


def kept_modalities(condition: str, modalities: Sequence[str], letters: Mapping[str, str] | None = None) -> list[str]:
    """``"AV"`` -> ``["audio", "video"]``; checks every letter names a modality of the data.

    ``letters``: modality -> letter (``letters_of``); default the fixed table ``LETTERS``."""
    letters = dict(letters) if letters is not None else letters_of(None, modalities)
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
    absent = [m for m in absent_modalities(condition, modalities, letters) if m in batch]
    if not absent:
        return batch
    out = dict(batch)
    for m in absent:
        x = batch[m]
        if fill is None:
            out[m] = torch.zeros_like(x)
        else:
            out[m] = fill[m].to(device=x.device, dtype=x.dtype).expand_as(x).clone()
    return out


def check_missing(missing: str, datamodule: Any) -> None:
    """Fail before training when ``eval.missing`` is unknown or the data cannot give a mean."""
    if missing not in MISSING_MODES:
        raise UserError(f"eval.missing={missing} is not one of {list(MISSING_MODES)}; use zero (the paper: "
                        f"the absent input is 0 before any transform) or mean (train-mean imputation)")
    if missing == "mean" and not hasattr(datamodule, "train_mean"):
        raise UserError(f"eval.missing=mean needs the train-split mean of the raw inputs, which "
                        f"{type(datamodule).__name__} does not provide (stored features do: data=vggsound_features); "
                        f"use eval.missing=zero")


class ConditionHook:
    """LightningModule mixin: applies ``self.condition`` to raw test batches in ``on_before_batch_transfer``.

    ``condition`` (letters, e.g. ``"A"``) and ``missing`` (``zero`` | ``mean``) are set by
    ``run.evaluate`` before each ``trainer.test``; the task needs a ``modalities`` list.
    """

    condition: str | None = None
    missing: str = "zero"

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int = 0) -> Any:
        trainer = self._trainer
        if self.condition is None or (trainer is not None and not trainer.testing):
            return batch
        fill = None
        datamodule = getattr(trainer, "datamodule", None)
        letters = letters_of(datamodule, self.modalities)
        if self.missing == "mean":
            check_missing(self.missing, datamodule)
            absent = absent_modalities(self.condition, self.modalities, letters)
            fill = {m: datamodule.train_mean(m) for m in absent}
        return apply_condition(batch, self.condition, self.modalities, fill, letters)

    def on_test_start(self) -> None:
        from pytorch_lightning.utilities.model_helpers import is_overridden

        datamodule = getattr(self.trainer, "datamodule", None)
        absent = absent_modalities(self.condition, self.modalities, letters_of(datamodule, self.modalities))
        if absent and is_overridden("on_before_batch_transfer", datamodule):
            raise UserError(f"{type(datamodule).__name__} overrides on_before_batch_transfer, so Lightning would skip "
                            f"the task's missing-modality condition; move that code to on_after_batch_transfer")
        self.fuser.absent = frozenset(absent)  # for a fuser that evaluates without the absent branch (Fuser.absent)

    def on_test_end(self) -> None:
        self.fuser.absent = frozenset()
