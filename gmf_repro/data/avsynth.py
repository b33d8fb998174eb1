"""avsynth: an embedded audio/video feature dataset, generated from a seed, no download.

Four kinds of structure, each a documented knob (docs/decisions.md, "Evidence"), mixed by default:

(a) **shared class information**: each shared class has a prototype in a small latent space; every
    sample draws ``s = signal * prototype + shared_noise * noise`` (the noise common to all modalities)
    and each modality sees ``s`` plus its own within-class noise through its own random projection.
(b) **modality-specific classes** (``specific_share``): for each modality, that share of the classes
    is visible in it alone. In every other modality all of one modality's specific classes share one
    prototype, so they look the same there: only that modality tells them apart.
(c) **per-sample reliability** (``one_modality_noise_share``): in that share of samples one modality
    (at random) carries no class signal at all, only noise.
(d) **correlated nuisance** (``correlated_nuisance``): a class-unrelated factor common to all
    modalities, seen by each through its own projection: it makes the inputs depend on each other
    without saying anything about the class.
Each modality also has its own class-unrelated factors and white noise.

``specific_share=0`` and ``correlated_nuisance=0`` give the structure of the earlier versions
(``data=avsynth_shared``) draw for draw: the new parts come from a second random stream.

With ``shapes`` (e.g. ``{"audio": [2, 16, 16], "video": [4, 16, 16, 3]}``) every sample is reshaped to a
media-like tensor, so the trainable-extractor pipelines (CNN extractors on raw input) run on it too.
With ``modalities=[image, video]`` (``data=synth_retrieval``) the same samples serve image-to-video
retrieval (``task=retrieval``), relevance being the shared class. ``use`` keeps a subset of the generated
modalities in the batches (unimodal baselines on the very samples the fusers see).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import Tensor

from ..errors import UserError
from .tensors import TensorDataModule, TensorDictDataset

LATENT = 16  # size of the class/shared latent space
NUISANCE = 32  # modality-specific factors per modality
CORRELATED = 8  # class-unrelated factors common to all modalities (structure d)
EXTRA_STREAM = 0x5EED  # offset of the second random stream (structures b, d) from the seed


def specific_classes(num_classes: int, modalities: Sequence[str], share: float) -> dict[str, list[int]]:
    """The classes only one modality shows: the last ``floor(share * num_classes)`` per modality, in turn."""
    per = int(math.floor(share * num_classes + 1e-9))
    if per and num_classes - per * len(modalities) < 1:
        raise UserError(
            f"avsynth data.specific_share={share} leaves no shared class with {num_classes} classes and "
            f"{len(modalities)} modalities; lower it or raise data.num_classes"
        )
    out, top = {}, num_classes
    for m in modalities:
        out[m] = list(range(top - per, top))
        top -= per
    return out


def make_structure(
    modalities: Sequence[str], dims: Sequence[int], num_classes: int, specific: Mapping[str, Sequence[int]],
    correlated_nuisance: float, generator: torch.Generator, extra: torch.Generator,
) -> dict[str, Tensor]:
    """Prototypes per modality and the projections, shared by train and test.

    ``generator`` draws what the earlier versions drew, in the same order; ``extra`` the rest.
    """
    structure = {"prototypes": torch.randn(num_classes, LATENT, generator=generator)}
    for m, d in zip(modalities, dims):
        structure[f"proj/{m}"] = torch.randn(LATENT, d, generator=generator) / math.sqrt(LATENT)
        structure[f"nuisance/{m}"] = torch.randn(NUISANCE, d, generator=generator) / math.sqrt(NUISANCE)
    group = {m: torch.randn(LATENT, generator=extra) for m in modalities}  # one look-alike per modality
    for m in modalities:
        protos = structure["prototypes"].clone()
        for other, classes in specific.items():
            if other != m and classes:
                protos[classes] = group[other]  # other's specific classes all look the same in m
        structure[f"prototypes/{m}"] = protos
    if correlated_nuisance:
        for m, d in zip(modalities, dims):
            structure[f"correlated/{m}"] = torch.randn(CORRELATED, d, generator=extra) / math.sqrt(CORRELATED)
    return structure


def generate(
    modalities: Sequence[str],
    dims: Sequence[int],
    num_classes: int,
    n: int,
    one_modality_noise_share: float,
    signal: float,
    generator: torch.Generator,
    structure: dict[str, Tensor],
    shared_noise: float = 1.0,
    correlated_nuisance: float = 0.0,
    extra: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Draw ``n`` samples; ``structure`` (prototypes, projections) is shared by train and test."""
    labels = torch.randint(num_classes, (n,), generator=generator)
    noise = shared_noise * torch.randn(n, LATENT, generator=generator)  # common to all modalities
    # which samples lose the class signal in one modality, and in which one
    dropped = torch.rand(n, generator=generator) < one_modality_noise_share
    which = torch.randint(len(modalities), (n,), generator=generator)
    out: dict[str, Tensor] = {"label": labels}
    for j, (m, d) in enumerate(zip(modalities, dims)):
        protos = structure.get(f"prototypes/{m}", structure["prototypes"])
        own = signal * protos[labels] + noise + 1.5 * torch.randn(n, LATENT, generator=generator)
        own[dropped & (which == j)] = 0.0
        nuisance = torch.randn(n, NUISANCE, generator=generator)
        x = own @ structure[f"proj/{m}"] + nuisance @ structure[f"nuisance/{m}"]
        out[m] = x + 0.5 * torch.randn(n, d, generator=generator)
    if correlated_nuisance:
        common = correlated_nuisance * torch.randn(n, CORRELATED, generator=extra)
        for m in modalities:
            out[m] = out[m] + common @ structure[f"correlated/{m}"]
    return {k: v if k == "label" else v.float() for k, v in out.items()}


class AVSynthDataModule(TensorDataModule):
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
        specific_share: float = 0.0,
        shared_noise: float = 1.0,
        correlated_nuisance: float = 0.0,
        use: Sequence[str] | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, seed)
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
        if not 0.0 <= specific_share < 1.0:
            raise UserError(f"avsynth data.specific_share must be in [0, 1), got {specific_share}")
        unknown = [m for m in (use or []) if m not in modalities]
        if unknown or (use is not None and not use):
            raise UserError(f"avsynth data.use={list(use or [])} must name some of data.modalities={modalities}")
        self.generated, self.generated_dims = modalities, dims
        self.specific = specific_classes(num_classes, modalities, specific_share)
        self.modalities = [m for m in modalities if use is None or m in use]
        self.dims = [d for m, d in zip(modalities, dims) if m in self.modalities]
        self.input_shapes = {m: tuple(shapes[m]) if shapes else (d,) for m, d in zip(modalities, dims)
                             if m in self.modalities}
        self.num_classes = num_classes
        self.n_train, self.n_test = n_train, n_test
        self.one_modality_noise_share, self.signal = one_modality_noise_share, signal
        self.shared_noise, self.correlated_nuisance = shared_noise, correlated_nuisance

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        g = torch.Generator().manual_seed(self.seed)
        extra = torch.Generator().manual_seed(self.seed + EXTRA_STREAM)
        args = (self.generated, self.generated_dims, self.num_classes)
        structure = make_structure(*args, self.specific, self.correlated_nuisance, g, extra)
        kw = dict(one_modality_noise_share=self.one_modality_noise_share, signal=self.signal, generator=g,
                  structure=structure, shared_noise=self.shared_noise,
                  correlated_nuisance=self.correlated_nuisance, extra=extra)
        self.train_set = TensorDictDataset(self._shaped(generate(*args, n=self.n_train, **kw)))
        self.test_set = TensorDictDataset(self._shaped(generate(*args, n=self.n_test, **kw)))

    def _shaped(self, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: v.reshape(len(v), *self.input_shapes[k]) if k in self.input_shapes else v
                for k, v in tensors.items() if k in self.input_shapes or k not in self.generated}

