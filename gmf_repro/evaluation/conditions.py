"""Missing-modality conditions (SPEC §2): a condition names the modalities kept; the others are absent.

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

import warnings
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from ..errors import UserError

LETTERS = {"A": "audio", "V": "video", "I": "image", "T": "text"}
MISSING_MODES = ("zero", "mean")

# The task's on_before_batch_transfer is meant to run next to the datamodule's on_after_batch_transfer;
# Lightning warns about that combination on every run.
warnings.filterwarnings("ignore", message="You have overridden `on_before_batch_transfer` in `LightningModule` but "
                        "have passed in a `LightningDataModule`", category=UserWarning)


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


def absent_modalities(condition: str | None, modalities: Sequence[str]) -> list[str]:
    """The modalities a condition leaves out (none for ``None``)."""
    if condition is None:
        return []
    kept = kept_modalities(condition, modalities)
    return [m for m in modalities if m not in kept]


def apply_condition(batch: Mapping[str, Any], condition: str | None, modalities: Sequence[str],
                    fill: Mapping[str, Tensor] | None = None) -> Mapping[str, Any]:
    """Replace every absent modality of a raw batch by zeros of its dtype, or by ``fill[m]`` (one sample,
    broadcast over the batch). With nothing absent (``AV``, ``None``) the batch itself comes back, untouched."""
    absent = [m for m in absent_modalities(condition, modalities) if m in batch]
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
        if self.missing == "mean":
            datamodule = getattr(trainer, "datamodule", None)
            check_missing(self.missing, datamodule)
            absent = absent_modalities(self.condition, self.modalities)
            fill = {m: datamodule.train_mean(m) for m in absent}
        return apply_condition(batch, self.condition, self.modalities, fill)

    def on_test_start(self) -> None:
        from pytorch_lightning.utilities.model_helpers import is_overridden

        datamodule = getattr(self.trainer, "datamodule", None)
        if absent_modalities(self.condition, self.modalities) and is_overridden("on_before_batch_transfer", datamodule):
            raise UserError(f"{type(datamodule).__name__} overrides on_before_batch_transfer, so Lightning would skip "
                            f"the task's missing-modality condition; move that code to on_after_batch_transfer")
