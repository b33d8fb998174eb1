"""In-memory (or memory-mapped) tensors served as dict batches, one index gather per batch."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler


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

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 1000003 + self.epoch))
        else:
            order = torch.arange(self.n)
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
