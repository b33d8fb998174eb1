"""avsynth: an embedded audio/video feature dataset, generated from a seed, no download.

Each class has a prototype in a small shared latent space. Every sample draws the shared factor
``s = prototype + shared noise``; each modality sees ``s`` (plus its own within-class noise) through
its own random projection, added to modality-specific nuisance factors and white noise. For a
configurable share of samples one modality (audio or video, at random) gets no class signal at
all, only noise. So a single modality is clearly worse than both together, and a fuser that leans
on one modality loses the most when that modality is missing (zeroed) at test time.

With ``shapes`` (e.g. ``{"audio": [2, 16, 16], "video": [4, 16, 16, 3]}``) every sample is reshaped to a
media-like tensor, so the trainable-extractor pipelines (CNN extractors on raw input) run on it too.
With ``modalities=[image, video]`` (``data=synth_retrieval``) the same samples serve image-to-video
retrieval (``task=retrieval``), relevance being the shared class.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor

from ..errors import UserError
from .tensors import TensorDictDataset, batch_loader

LATENT = 16  # size of the class/shared latent space
NUISANCE = 32  # modality-specific factors per modality


def generate(
    modalities: Sequence[str],
    dims: Sequence[int],
    num_classes: int,
    n: int,
    one_modality_noise_share: float,
    signal: float,
    generator: torch.Generator,
    structure: dict[str, Tensor],
) -> dict[str, Tensor]:
    """Draw ``n`` samples; ``structure`` (prototypes, projections) is shared by train and test."""
    labels = torch.randint(num_classes, (n,), generator=generator)
    shared = signal * structure["prototypes"][labels] + 1.0 * torch.randn(n, LATENT, generator=generator)
    # which samples lose the class signal in one modality, and in which one
    dropped = torch.rand(n, generator=generator) < one_modality_noise_share
    which = torch.randint(len(modalities), (n,), generator=generator)
    out: dict[str, Tensor] = {"label": labels}
    for j, (m, d) in enumerate(zip(modalities, dims)):
        own = shared + 1.5 * torch.randn(n, LATENT, generator=generator)
        own[dropped & (which == j)] = 0.0
        nuisance = torch.randn(n, NUISANCE, generator=generator)
        x = own @ structure[f"proj/{m}"] + nuisance @ structure[f"nuisance/{m}"]
        x = x + 0.5 * torch.randn(n, d, generator=generator)
        out[m] = x.float()
    return out


class AVSynthDataModule(pl.LightningDataModule):
    """The default ``data``: a LightningDataModule like the real ones, with batches of feature vectors."""

    def __init__(
        self,
        modalities: Sequence[str] = ("audio", "video"),
        dims: Sequence[int] = (512, 512),
        num_classes: int = 10,
        n_train: int = 4000,
        n_test: int = 2000,
        one_modality_noise_share: float = 0.3,
        signal: float = 1.0,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 1,
        shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        modalities = list(modalities)
        if shapes:
            missing = [m for m in modalities if m not in shapes]
            if missing:
                raise UserError(f"avsynth data.shapes has no shape for {missing}; give one per modality or none")
            dims = [math.prod(shapes[m]) for m in modalities]
        dims = [int(d) for d in dims]
        if len(modalities) != len(dims):
            raise UserError(
                f"avsynth has {len(modalities)} modalities {modalities} but {len(dims)} dims {dims}; "
                f"give one dim per modality, e.g. data.dims=[512,512]"
            )
        if num_classes < 2:
            raise UserError(f"avsynth needs data.num_classes >= 2, got {num_classes}")
        self.modalities = modalities
        self.dims = dims
        self.input_shapes = {m: tuple(shapes[m]) if shapes else (d,) for m, d in zip(modalities, dims)}
        self.num_classes = num_classes
        self.n_train, self.n_test = n_train, n_test
        self.one_modality_noise_share, self.signal = one_modality_noise_share, signal
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.train_set: TensorDictDataset | None = None
        self.test_set: TensorDictDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        g = torch.Generator().manual_seed(self.seed)
        structure = {"prototypes": torch.randn(self.num_classes, LATENT, generator=g)}
        for m, d in zip(self.modalities, self.dims):
            structure[f"proj/{m}"] = torch.randn(LATENT, d, generator=g) / math.sqrt(LATENT)
            structure[f"nuisance/{m}"] = torch.randn(NUISANCE, d, generator=g) / math.sqrt(NUISANCE)
        args = (self.modalities, self.dims, self.num_classes)
        kw = dict(one_modality_noise_share=self.one_modality_noise_share, signal=self.signal, generator=g,
                  structure=structure)
        self.train_set = TensorDictDataset(self._shaped(generate(*args, n=self.n_train, **kw)))
        self.test_set = TensorDictDataset(self._shaped(generate(*args, n=self.n_test, **kw)))

    def _shaped(self, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: v.reshape(len(v), *self.input_shapes[k]) if k in self.input_shapes else v
                for k, v in tensors.items()}

    def train_dataloader(self):
        return batch_loader(self.train_set, self.batch_size, shuffle=True, num_workers=self.num_workers,
                            seed=self.seed)

    def test_dataloader(self):
        return batch_loader(self.test_set, self.batch_size, shuffle=False, num_workers=self.num_workers)
