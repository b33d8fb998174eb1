"""In-memory (or memory-mapped) tensors served as dict batches, one index gather per batch.

``TensorDataModule`` is the datamodule of every dataset held as tensors (avsynth, synth_retrieval,
ActivityNet's features, your own features, a feature store): one set of loaders, each shuffle order
drawn from ``(seed, epoch)`` alone.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import UserError
from .contract import MultimodalDataModule


class TensorDictDataset(Dataset):
    """Samples are rows of equally long tensors; ``index`` is added so predictions can be traced back.

    ``__getitem__`` takes a list of indices so a DataLoader with a BatchSampler gathers a whole
    batch at once: per-sample collation of feature vectors costs more than the model does.
    """

    def __init__(self, tensors: Mapping[str, Tensor]) -> None:
        lengths = {k: len(v) for k, v in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"all tensors must have the same number of rows, got {lengths}")
        self.tensors = dict(tensors)
        self.tensors.setdefault("index", torch.arange(next(iter(lengths.values()))))

    def __len__(self) -> int:
        return len(self.tensors["index"])

    def __getitem__(self, idx: list[int] | Tensor) -> dict[str, Tensor]:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return {k: torch.as_tensor(v[idx]) for k, v in self.tensors.items()}


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of indices whose shuffle order depends only on (seed, epoch).

    Lightning calls ``set_epoch`` before every epoch, so a run resumed from a checkpoint sees the
    same order as an uninterrupted one; the global RNG state is not needed for that.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int | None = None) -> None:
        self.n, self.batch_size, self.shuffle, self.epoch = n, batch_size, shuffle, 0
        self.seed = int(torch.initial_seed() % 2**31) if seed is None else seed

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> Tensor:
        """This epoch's sample order (CPU, int64)."""
        if self.shuffle:
            return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 1000003 + self.epoch))
        return torch.arange(self.n)

    def __iter__(self):
        order = self.order()
        yield from (order[i : i + self.batch_size].tolist() for i in range(0, self.n, self.batch_size))

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size


def batch_loader(
    dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int = 0, seed: int | None = None
) -> DataLoader:
    """A DataLoader that yields dict batches gathered in one indexing operation per batch."""
    return DataLoader(
        dataset,
        sampler=EpochBatchSampler(len(dataset), batch_size, shuffle, seed),
        batch_size=None,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )


class DeviceTensorLoader:
    """Every sample on one device, batches gathered there: no workers, no host copies, no sync per step.

    For frozen-feature runs the whole store fits on a GPU (VGGSound: 2 x 160k x 512 float32 = 0.65 GB),
    where a small fuser's step takes a fraction of a millisecond and a host-side loader would be the
    bottleneck. The batches are those of ``batch_loader`` with the same seed, in the same order
    (both use ``EpochBatchSampler``; Lightning calls ``sampler.set_epoch`` before every epoch).
    Under DDP each rank takes every ``world_size``-th batch, the same count on every rank.
    """

    batch_sampler = None  # Lightning looks for DataLoader's attributes; ``sampler`` is the one that counts

    def __init__(self, tensors: Mapping[str, Tensor], batch_size: int, shuffle: bool, seed: int | None = None,
                 device: torch.device | str = "cpu", rank: int = 0, world_size: int = 1) -> None:
        dataset = tensors if isinstance(tensors, TensorDictDataset) else TensorDictDataset(tensors)
        self.device = torch.device(device)
        self.tensors = {k: v.to(self.device) for k, v in dataset.tensors.items()}
        self.sampler = EpochBatchSampler(len(dataset), batch_size, shuffle, seed)
        self.rank, self.world_size = int(rank), int(world_size)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler) // self.world_size if self.world_size > 1 else len(self.sampler)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        order = self.sampler.order().to(self.device, non_blocking=True)
        bs = self.sampler.batch_size
        starts = range(0, self.sampler.n, bs)
        if self.world_size > 1:
            starts = starts[self.rank :: self.world_size][: len(self)]
        for i in starts:
            idx = order[i : i + bs]
            yield {k: v.index_select(0, idx) for k, v in self.tensors.items()}


def fits_on_device(tensors: Mapping[str, Tensor], device: torch.device | str, share: float = 0.5) -> bool:
    """Whether the tensors take at most ``share`` of the device's free memory (always true on the CPU)."""
    device = torch.device(device)
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return sum(v.numel() * v.element_size() for v in tensors.values()) <= share * free


class TensorDataModule(MultimodalDataModule):
    """Splits held as ``TensorDictDataset``s (``train_set``, ``test_set``, optionally ``val_set``), filled in
    ``setup`` (or ``__init__``); loaders of ``batch_size`` whose shuffle order depends only on (``seed``, epoch),
    so a resumed run and a plain loop see the batches an uninterrupted run sees."""

    train_set: TensorDictDataset | None = None
    val_set: TensorDictDataset | None = None
    test_set: TensorDictDataset | None = None

    def __init__(self, batch_size: int = 64, num_workers: int = 0, seed: int = 1) -> None:
        super().__init__()
        self.batch_size, self.num_workers, self.seed = int(batch_size), int(num_workers), int(seed)

    def setup(self, stage: str | None = None) -> None:
        """Fill the splits when they are built lazily; a datamodule that fills them in ``__init__`` needs none."""

    @property
    def has_val(self) -> bool:
        return self.val_set is not None

    def loader(self, dataset: TensorDictDataset, shuffle: bool) -> Any:
        """The loader of one split (``batch_loader``); a subclass may serve it from the device instead."""
        return batch_loader(dataset, self.batch_size, shuffle=shuffle, num_workers=self.num_workers, seed=self.seed)

    def train_dataloader(self) -> Any:
        self.setup()
        return self.loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> Any:
        self.setup()
        return [] if self.val_set is None else self.loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> Any:
        self.setup()
        return self.loader(self.test_set, shuffle=False)

    def split_dataloader(self, split: str) -> Any:
        """``train``, ``val`` or ``test`` in its fixed order (feature export, probes)."""
        self.setup()
        sets = {"train": self.train_set, "val": self.val_set, "test": self.test_set}
        if sets.get(split) is None:
            raise UserError(f"unknown split {split!r}; use one of {[s for s, d in sets.items() if d is not None]}")
        return self.loader(sets[split], shuffle=False)
