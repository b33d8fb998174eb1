"""What a datamodule must provide, in code: the ``MultimodalData`` protocol (docs/architecture.md, "Data").

Set in ``__init__`` (before ``setup``), because the extractors and the fuser are built from them
before any data is loaded. ``run()`` checks a built datamodule against it and names what is missing.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from ..errors import UserError


@runtime_checkable
class MultimodalData(Protocol):
    """``modalities`` (batch keys, in order), ``input_shapes`` (per-sample shape of each), ``num_classes``;
    dict batches from ``train_dataloader`` / ``test_dataloader``, transformed on the device in
    ``on_after_batch_transfer`` (a ``LightningDataModule`` has it)."""

    modalities: list[str]
    input_shapes: dict[str, tuple[int, ...]]
    num_classes: int

    def train_dataloader(self) -> Any: ...

    def test_dataloader(self) -> Any: ...

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any: ...


def model_inputs(datamodule: MultimodalData, batch: dict[str, Any], device: Any,
                 keys: Sequence[str] | None = None) -> dict[str, Any]:
    """A raw loader batch as the model sees it outside Lightning's loop: its tensors (those named in
    ``keys``, default all) moved to ``device``, then the datamodule's device-side transform
    (standardisation, spectrogram, frame scaling), as Lightning does before each step."""
    batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items() if keys is None or k in keys}
    return datamodule.on_after_batch_transfer(batch, 0)


def check_datamodule(datamodule: Any) -> MultimodalData:
    """``datamodule`` itself, or a one-line error naming the members of the contract it lacks."""
    if not isinstance(datamodule, MultimodalData):
        members = ("modalities", "input_shapes", "num_classes", "train_dataloader", "test_dataloader",
                   "on_after_batch_transfer")
        lacking = [m for m in members if not hasattr(datamodule, m)]
        raise UserError(f"datamodule {type(datamodule).__name__} lacks {', '.join(lacking)}; set them in its "
                        f"__init__ (docs/architecture.md, 'Data')")
    return datamodule
