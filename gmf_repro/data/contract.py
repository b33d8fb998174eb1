"""What a datamodule provides, in code: the ``MultimodalData`` protocol and its defaults, ``MultimodalDataModule``.

``modalities``, ``input_shapes`` and ``num_classes`` are set in ``__init__`` (before ``setup``), because the
extractors and the fuser are built from them before any data is loaded; everything else has a default
in the base class, which every datamodule subclasses. ``run()`` checks a built datamodule against it and
names what is missing.

The datamodule owns the way from a raw batch to model inputs (``on_after_batch_transfer``, after Lightning
has moved the batch to the device): first the modalities withheld by a missing-modality test condition are
replaced in the raw batch (zeros of their dtype, or the train mean under ``eval.missing=mean``), then the
datamodule's own ``transform`` (standardisation, spectrogram, frame scaling) runs. So the model sees the
transform of a zero input, as in the paper (``(0 - mu) / sigma`` for standardised features, the log-STFT of
a zero waveform, black frames). A datamodule puts its device-side work in ``transform`` and leaves the hook
alone (``check_datamodule`` refuses one that overrides it: its condition would be skipped).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import pytorch_lightning as pl
import torch
from torch import Tensor

from ..errors import UserError

#: The condition letter of a modality when the data names none (``eval.conditions=[AV,A,V]``).
DEFAULT_LETTERS = {"audio": "A", "video": "V", "image": "I", "text": "T"}
REQUIRED = ("modalities", "input_shapes", "num_classes")
#: Batch keys ``label_<kind>``: more labels per sample beside ``label`` (FakeAVCeleb: the clip's and each stream's
#: real/fake, docs/paper.md §2.7); the classification task scores every condition against each of them too.
LABEL_PREFIX = "label_"


def extra_labels(batch: Mapping[str, Any]) -> dict[str, Tensor]:
    """``{kind: labels}`` of a batch's ``label_<kind>`` keys (none for most data)."""
    return {k[len(LABEL_PREFIX):]: v for k, v in batch.items() if k.startswith(LABEL_PREFIX)}


def default_letters(modalities: Sequence[str]) -> dict[str, str]:
    """Modality -> letter from ``DEFAULT_LETTERS`` for the modalities it names."""
    return {m: DEFAULT_LETTERS[m] for m in modalities if m in DEFAULT_LETTERS}


@runtime_checkable
class MultimodalData(Protocol):
    """Every member of a datamodule the code uses (``MultimodalDataModule`` gives the defaults).

    - ``modalities`` (batch keys, in order), ``input_shapes`` (per-sample shape of each), ``num_classes``;
    - ``letters``: modality -> condition letter; ``has_val``: a validation split exists (``eval.select=best``);
    - ``train_set``: the training samples (``len()``; None before ``setup``);
    - loaders of raw dict batches: ``train_dataloader``, ``val_dataloader`` (may be ``[]``), ``test_dataloader``
      and ``split_dataloader(split)`` (fixed order, for feature export and probes);
    - ``train_mean(modality)``: the raw train mean (``eval.missing=mean``); ``describe_split()``: the split's
      make-up for results.json, or None;
    - ``withhold(absent, fill)``: the modalities a test condition leaves out; ``transform(batch)``: the
      device-side transform; ``on_after_batch_transfer``: both, in that order;
    - ``label_kinds``: the ``label_<kind>`` keys its batches carry beside ``label`` (default none) and
      ``label_by``: the kind ``label`` is (None: the data's one label).
    """

    modalities: list[str]
    input_shapes: dict[str, tuple[int, ...]]
    num_classes: int
    letters: dict[str, str]
    has_val: bool
    train_set: Any
    label_kinds: tuple[str, ...]
    label_by: str | None

    def train_dataloader(self) -> Any: ...

    def val_dataloader(self) -> Any: ...

    def test_dataloader(self) -> Any: ...

    def split_dataloader(self, split: str) -> Any: ...

    def train_mean(self, modality: str) -> Tensor: ...

    def describe_split(self, keys: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any] | None: ...

    def withhold(self, absent: Sequence[str], fill: Mapping[str, Tensor] | None = None) -> None: ...

    def transform(self, batch: dict[str, Any]) -> dict[str, Any]: ...

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any: ...


def withhold_modalities(batch: Mapping[str, Any], absent: Sequence[str],
                        fill: Mapping[str, Tensor] | None = None) -> Mapping[str, Any]:
    """Replace each ``absent`` modality of a raw batch by zeros of its dtype, or by ``fill[m]`` (one sample,
    broadcast over the batch). With nothing absent the batch itself comes back, untouched."""
    absent = [m for m in absent if m in batch]
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


class MultimodalDataModule(pl.LightningDataModule):
    """The defaults of ``MultimodalData``; a subclass sets ``modalities``, ``input_shapes`` and ``num_classes`` in
    ``__init__``, gives its loaders, and puts any device-side work in ``transform``."""

    modalities: list[str]
    input_shapes: dict[str, tuple[int, ...]]
    num_classes: int
    has_val: bool = False
    train_set: Any = None
    label_kinds: tuple[str, ...] = ()
    label_by: str | None = None
    _letters: dict[str, str] | None = None
    _absent: tuple[str, ...] = ()
    _fill: Mapping[str, Tensor] | None = None

    @property
    def letters(self) -> dict[str, str]:
        """Modality -> condition letter: the data's own (``data=features`` names them in its config), else
        ``DEFAULT_LETTERS`` (A audio, V video, I image, T text)."""
        return dict(self._letters) if self._letters else default_letters(self.modalities)

    @letters.setter
    def letters(self, value: Mapping[str, str]) -> None:
        self._letters = dict(value)

    def val_dataloader(self) -> Any:
        return []

    def split_dataloader(self, split: str) -> Any:
        """A loader over ``train`` or ``test`` (``val``) for feature export and probes; here the training loader
        itself (labels travel with the batch, so a shuffled order is fine)."""
        loaders = {"train": self.train_dataloader, "val": self.val_dataloader, "test": self.test_dataloader}
        if split not in loaders:
            raise UserError(f"unknown split {split!r}; use one of {list(loaders)}")
        return loaders[split]()

    def train_mean(self, modality: str) -> Tensor:
        raise UserError(f"eval.missing=mean needs the train-split mean of the raw inputs, which "
                        f"{type(self).__name__} does not provide (stored features do: data=vggsound_features); "
                        f"use eval.missing=zero")

    def describe_split(self, keys: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any] | None:
        """The split's make-up for results.json (``data_summary``; FakeAVCeleb per category and race); None here."""
        return None

    def withhold(self, absent: Sequence[str], fill: Mapping[str, Tensor] | None = None) -> None:
        """From now on every batch lacks ``absent`` (zeros, or ``fill``) until called with none
        (``evaluation.conditions.under_condition`` does both around one test)."""
        self._absent, self._fill = tuple(absent), fill

    def transform(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The device-side transform of a raw batch (none here); not idempotent in general: once per batch."""
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int = 0) -> Any:
        """A raw batch on the device -> model inputs: the withheld modalities replaced, then ``transform``."""
        return self.transform(withhold_modalities(batch, self._absent, self._fill))


def model_inputs(datamodule: MultimodalData, batch: dict[str, Any], device: Any,
                 keys: Sequence[str] | None = None) -> dict[str, Any]:
    """A raw loader batch as the model sees it outside Lightning's loop: its tensors (those named in
    ``keys``, default all) moved to ``device``, then the datamodule's ``on_after_batch_transfer``, as
    Lightning does before each step."""
    batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items() if keys is None or k in keys}
    return datamodule.on_after_batch_transfer(batch, 0)


def check_datamodule(datamodule: Any) -> MultimodalData:
    """``datamodule`` itself, or a one-line error naming what it lacks or does in the wrong place."""
    name = type(datamodule).__name__
    if not isinstance(datamodule, MultimodalDataModule):
        raise UserError(f"datamodule {name} is not a gmf_repro.data.contract.MultimodalDataModule; subclass it "
                        f"(it holds the defaults of the contract: docs/architecture.md, 'Data')")
    lacking = [m for m in REQUIRED if not hasattr(datamodule, m)]  # the base declares them without a value
    if lacking:
        raise UserError(f"datamodule {name} lacks {', '.join(lacking)}; set them in its __init__ "
                        f"(docs/architecture.md, 'Data')")
    if type(datamodule).on_after_batch_transfer is not MultimodalDataModule.on_after_batch_transfer:
        raise UserError(f"{name} overrides on_after_batch_transfer, so a missing-modality condition would be "
                        f"skipped; move that code to its transform(batch)")
    return datamodule
