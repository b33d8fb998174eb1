"""Extractors map one modality's raw tensor to a feature vector (docs/architecture.md).

Every extractor takes ``input_shape`` (the per-sample shape the datamodule declares) and exposes
``out_dim``; ``run`` builds them as Hydra partials once the data is known.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Identity(nn.Module):
    """For precomputed feature vectors (frozen-extractor runs): the feature is the input, flattened."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.out_dim = int(math.prod(input_shape))

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)


# --- media extractors (docs/paper.md §3): every one ends in a 512-d vector, the classifier removed -------------
# Speed switches (docs/performance.md), numerically the same model:
#   channels_last: weights and inputs in channels-last memory order (NHWC / NDHWC), the layout tensor
#     cores convolve fastest in mixed precision; the state dict is unchanged. "auto": on when CUDA is
#     available (on the CPU it measured faster for R(2+1)D-18, slower for ResNet-18: left off there).
#   compile: torch.compile the network in place (nn.Module.compile: state-dict keys unchanged, so
#     checkpoints load either way). Off on the CPU, where compiling costs more than it gains here.


def _speed_up(net: nn.Module, channels_last: bool | str, compile: bool, dims: int) -> torch.memory_format | None:

    if channels_last == "auto":
        channels_last = torch.cuda.is_available()
    fmt = (torch.channels_last_3d if dims == 5 else torch.channels_last) if channels_last else None
    if fmt is not None:
        net.to(memory_format=fmt)
    if compile and torch.cuda.is_available():
        net.compile()
    return fmt


def _as(x: Tensor, fmt) -> Tensor:
    return x if fmt is None else x.contiguous(memory_format=fmt)


def _torch_cache_weights(weights_enum, name: str) -> dict[str, Tensor]:
    """Resolve torchvision weights without touching the network: they must already be in the torch cache."""
    import os

    w = weights_enum[name] if isinstance(name, str) else name
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(w.url))
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{weights_enum.__name__}.{w.name} not found at {path}; download {w.url} on a machine with network and "
            f"copy it there (or set TORCH_HOME), or set extractors.<modality>.weights=null to train from scratch")
    return torch.load(path, map_location="cpu", weights_only=True)


def rgb_stem(weight: Tensor, in_channels: int) -> Tensor:
    """A pretrained RGB stem kernel ``[out, 3, ...]`` for ``in_channels`` inputs.

    One channel (a spectrogram): the sum over R, G and B, so a grey input gives what the network saw for
    the same grey image in colour. Other counts: the RGB kernels repeated in turn, scaled by
    ``3 / in_channels`` (the response to a constant input is kept).
    """
    if weight.shape[1] == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    idx = torch.arange(in_channels) % weight.shape[1]
    return weight[:, idx] * (weight.shape[1] / in_channels)


def _r2plus1d_18(in_channels: int, weights: str | None) -> nn.Module:
    """torchvision ``r2plus1d_18`` with an ``in_channels`` stem and no ``fc``; ``weights``: a
    ``R2Plus1D_18_Weights`` name read from the local torch cache, its stem adapted by ``rgb_stem``."""
    from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

    net = r2plus1d_18(weights=None)
    stem = net.stem[0]
    if in_channels != stem.in_channels:  # a fresh stem: its own initialisation for this fan-in
        net.stem[0] = nn.Conv3d(in_channels, stem.out_channels, stem.kernel_size, stem.stride, stem.padding,
                                bias=False)
    if weights:
        state = _torch_cache_weights(R2Plus1D_18_Weights, weights)
        state["stem.0.weight"] = rgb_stem(state["stem.0.weight"], in_channels)
        net.load_state_dict(state)
    net.fc = nn.Identity()
    return net


class R2Plus1D18(nn.Module):
    """torchvision ``r2plus1d_18`` without ``fc`` (512-d), on video ``[T, H, W, C]`` (channels last, as the batch).

    ``weights``: ``KINETICS400_V1`` (the paper's VGGSound baseline initialisation; read from the local
    torch cache only) or ``None`` for scratch.
    """

    def __init__(self, input_shape: tuple[int, ...], weights: str | None = None, channels_last: bool | str = "auto",
                 compile: bool = False) -> None:
        super().__init__()
        if len(input_shape) != 4:
            raise ValueError(f"R2Plus1D18 expects video of shape [T, H, W, C], got {tuple(input_shape)}")
        self.net = _r2plus1d_18(int(input_shape[-1]), weights)
        self.out_dim = 512
        self.fmt = _speed_up(self.net, channels_last, compile, 5)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(_as(x.permute(0, 4, 1, 2, 3), self.fmt))  # [B, T, H, W, C] -> [B, C, T, H, W]


class R2Plus1D18Audio(nn.Module):
    """Table 6's audio extractor: R(2+1)D-18 on the stacked mel ``[rows, mels, frames]`` as a one-channel clip
    of ``rows`` time steps (VGGSound's ``[9, 192, 100]``: nine one-second mel frames, App. G.2; FakeAVCeleb's
    ``[1, 513, 60]`` is a clip of one step). 512-d, ``fc`` removed.

    ``weights``: ``KINETICS400_V1`` (read from the local torch cache only) with the stem's RGB kernels summed
    into one channel (``rgb_stem``), or ``None`` for scratch.
    """

    def __init__(self, input_shape: tuple[int, ...], weights: str | None = None, channels_last: bool | str = "auto",
                 compile: bool = False) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"R2Plus1D18Audio expects audio of shape [rows, mels, frames], got {tuple(input_shape)}")
        self.net = _r2plus1d_18(1, weights)
        self.out_dim = 512
        self.fmt = _speed_up(self.net, channels_last, compile, 5)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(_as(x.unsqueeze(1), self.fmt))  # [B, R, F, T] -> [B, 1, R, F, T]


class ResNet18Audio(nn.Module):
    """torchvision ``resnet18`` without ``fc`` (512-d) on a spectrogram ``[rows, freq, frames]``.

    With ``in_channels=1`` (default, the main text's audio extractor) the rows are laid side by side in time,
    so VGGSound's ``[9, 192, 100]`` becomes one ``192 x 900`` image (the 9 s in order); ``in_channels=rows``
    uses the rows as channels instead. ``weights``: ``None`` (default: from scratch) or a ``ResNet18_Weights``
    name (``IMAGENET1K_V1``) read from the local torch cache, its stem adapted by ``rgb_stem``.
    """

    def __init__(self, input_shape: tuple[int, ...], in_channels: int = 1, weights: str | None = None,
                 channels_last: bool | str = "auto", compile: bool = False) -> None:
        super().__init__()
        from torchvision.models import ResNet18_Weights, resnet18

        if len(input_shape) != 3:
            raise ValueError(f"ResNet18Audio expects audio of shape [rows, freq, frames], got {tuple(input_shape)}")
        rows = int(input_shape[0])
        if in_channels not in (1, rows):
            raise ValueError(f"extractor in_channels={in_channels} must be 1 (rows along time) "
                             f"or {rows} (rows as channels)")
        self.in_channels = in_channels
        self.net = resnet18(weights=None)
        self.net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        if weights:
            state = _torch_cache_weights(ResNet18_Weights, weights)
            state["conv1.weight"] = rgb_stem(state["conv1.weight"], in_channels)
            self.net.load_state_dict(state)
        self.net.fc = nn.Identity()
        self.out_dim = 512
        self.fmt = _speed_up(self.net, channels_last, compile, 4)

    def forward(self, x: Tensor) -> Tensor:
        if self.in_channels == 1:
            b, r, f, t = x.shape
            x = x.permute(0, 2, 1, 3).reshape(b, 1, f, r * t)  # rows side by side along time
        return self.net(_as(x, self.fmt))
