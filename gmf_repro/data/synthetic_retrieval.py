"""synth_retrieval: embedded image/video features for retrieval, generated from a seed, no download.

Every sample is one activity instance: a latent ``z = prototype[class] + instance noise`` that its
image and its video share. Each modality sees ``z`` (plus its own noise) through its own random
projection, plus modality-specific nuisance factors and white noise. The two modalities live in
unrelated spaces, so the cosine of the raw features (an untrained CLIP) ranks near chance, and a
method has to learn the alignment, as with the real AP-IVR features (image 128-d, video 4096-d).
Relevance is "same class", so mAP@k rewards class structure, not just the paired instance.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor

from ..errors import UserError
from .tensors import TensorDictDataset, batch_loader

LATENT = 16
NUISANCE = 16


def generate_retrieval(
    dims: dict[str, int], num_classes: int, n: int, signal: float, generator: torch.Generator,
    structure: dict[str, Tensor],
) -> dict[str, Tensor]:
    """Draw ``n`` paired samples; ``structure`` (prototypes, projections) is shared by the splits."""
    labels = torch.randint(num_classes, (n,), generator=generator)
    z = structure["prototypes"][labels] + 1.0 * torch.randn(n, LATENT, generator=generator)
    out: dict[str, Tensor] = {"label": labels}
    for m, d in dims.items():
        own = z + 1.0 * torch.randn(n, LATENT, generator=generator)
        nuisance = torch.randn(n, NUISANCE, generator=generator)
        x = signal * own @ structure[f"proj/{m}"] + nuisance @ structure[f"nuisance/{m}"]
        out[m] = (x + 0.5 * torch.randn(n, d, generator=generator)).float()
    return out


class SyntheticRetrievalDataModule(pl.LightningDataModule):
    """Image/video features of any dims, with the same batches and attributes as ``ActivityNetDataModule``."""

    task_type = "retrieval"

    def __init__(
        self,
        modalities: Sequence[str] = ("image", "video"),
        dims: Sequence[int] = (128, 512),
        num_classes: int = 10,
        n_train: int = 2000,
        n_test: int = 500,
        signal: float = 1.0,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 1,
    ) -> None:
        super().__init__()
        modalities, dims = list(modalities), [int(d) for d in dims]
        if len(modalities) != len(dims):
            raise UserError(
                f"synth_retrieval has {len(modalities)} modalities {modalities} but {len(dims)} dims {dims}; "
                f"give one dim per modality, e.g. data.dims=[128,4096]"
            )
        if num_classes < 2:
            raise UserError(f"synth_retrieval needs data.num_classes >= 2, got {num_classes}")
        self.modalities = modalities
        self.dims = dict(zip(modalities, dims, strict=True))
        self.input_shapes = {m: (d,) for m, d in self.dims.items()}
        self.num_classes = num_classes
        self.n_train, self.n_test, self.signal = n_train, n_test, signal
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.train_set: TensorDictDataset | None = None
        self.test_set: TensorDictDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        g = torch.Generator().manual_seed(self.seed)
        structure = {"prototypes": 1.0 * torch.randn(self.num_classes, LATENT, generator=g)}
        for m, d in self.dims.items():
            structure[f"proj/{m}"] = torch.randn(LATENT, d, generator=g) / math.sqrt(LATENT)
            structure[f"nuisance/{m}"] = torch.randn(NUISANCE, d, generator=g) / math.sqrt(NUISANCE)
        self.train_set = TensorDictDataset(
            generate_retrieval(self.dims, self.num_classes, self.n_train, self.signal, g, structure))
        self.test_set = TensorDictDataset(
            generate_retrieval(self.dims, self.num_classes, self.n_test, self.signal, g, structure))

    def train_dataloader(self):
        return batch_loader(self.train_set, self.batch_size, shuffle=True, num_workers=self.num_workers)

    def val_dataloader(self):
        return []

    def test_dataloader(self):
        return batch_loader(self.test_set, self.batch_size, shuffle=False, num_workers=self.num_workers)
