"""Extractors map one modality's raw tensor to a feature vector (DESIGN.md, "Seams").

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


# --- media extractors (SPEC §3): every one ends in a 512-d vector, the classifier removed -------------
# Speed switches (README, Performance), numerically the same model:
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

def _torch_cache_weights(weights_enum, name: str):
    """Resolve torchvision weights without touching the network: they must already be in the torch cache."""
    import os

    import torch

    w = weights_enum[name] if isinstance(name, str) else name
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(w.url))
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{weights_enum.__name__}.{w.name} not found at {path}; download {w.url} on a machine with network and "
            f"copy it there (or set TORCH_HOME), or set extractors.<modality>.weights=null to train from scratch")
    return torch.load(path, map_location="cpu", weights_only=True)


def _stem_channels(conv: nn.Module, in_channels: int, kind: str) -> nn.Module:
    """The first convolution with ``in_channels`` inputs (spectrograms have 1 channel); pretrained RGB
    kernels are averaged over colour, so a 1-channel stem starts from the same filters."""
    import torch

    if conv.in_channels == in_channels:
        return conv
    cls = nn.Conv3d if kind == "3d" else nn.Conv2d
    new = cls(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight.mean(dim=1, keepdim=True).expand_as(new.weight))
    return new


class R2Plus1D18(nn.Module):
    """torchvision ``r2plus1d_18`` without ``fc`` (512-d), on video ``[T, H, W, C]`` (channels last, as the batch).

    ``weights``: ``KINETICS400_V1`` (the paper's VGGSound baseline initialisation; read from the local
    torch cache only) or ``None`` for scratch.
    """

    def __init__(self, input_shape: tuple[int, ...], weights: str | None = None, channels_last: bool | str = "auto",
                 compile: bool = False) -> None:
        super().__init__()
        from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

        if len(input_shape) != 4:
            raise ValueError(f"R2Plus1D18 expects video of shape [T, H, W, C], got {tuple(input_shape)}")
        self.net = r2plus1d_18(weights=None)
        if weights:
            self.net.load_state_dict(_torch_cache_weights(R2Plus1D_18_Weights, weights))
        self.net.stem[0] = _stem_channels(self.net.stem[0], int(input_shape[-1]), "3d")
        self.net.fc = nn.Identity()
        self.out_dim = 512
        self.fmt = _speed_up(self.net, channels_last, compile, 5)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(_as(x.permute(0, 4, 1, 2, 3), self.fmt))  # [B, T, H, W, C] -> [B, C, T, H, W]


class R2Plus1D18Audio(nn.Module):
    """Table 6's audio variant: R(2+1)D-18 on the stacked mel ``[rows, mels, frames]`` as a 1-channel
    clip of ``rows`` time steps (the paper's ``[9, 192, 100, 1]``)."""

    def __init__(self, input_shape: tuple[int, ...], weights: str | None = None, channels_last: bool | str = "auto",
                 compile: bool = False) -> None:
        super().__init__()
        from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

        if len(input_shape) != 3:
            raise ValueError(f"R2Plus1D18Audio expects audio of shape [rows, mels, frames], got {tuple(input_shape)}")
        self.net = r2plus1d_18(weights=None)
        if weights:
            self.net.load_state_dict(_torch_cache_weights(R2Plus1D_18_Weights, weights))
        self.net.stem[0] = _stem_channels(self.net.stem[0], 1, "3d")
        self.net.fc = nn.Identity()
        self.out_dim = 512
        self.fmt = _speed_up(self.net, channels_last, compile, 5)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(_as(x.unsqueeze(1), self.fmt))  # [B, R, F, T] -> [B, 1, R, F, T]


class ResNet18Audio(nn.Module):
    """torchvision ``resnet18`` without ``fc`` (512-d) on a spectrogram ``[rows, freq, frames]``.

    With ``in_channels=1`` (default, SPEC §3) the rows are laid side by side in time, so VGGSound's
    ``[9, 192, 100]`` becomes one ``192 x 900`` image (the 9 s in order); ``in_channels=rows`` uses
    the rows as channels instead.
    """

    def __init__(self, input_shape: tuple[int, ...], in_channels: int = 1, channels_last: bool | str = "auto",
                 compile: bool = False) -> None:
        super().__init__()
        from torchvision.models import resnet18

        if len(input_shape) != 3:
            raise ValueError(f"ResNet18Audio expects audio of shape [rows, freq, frames], got {tuple(input_shape)}")
        rows = int(input_shape[0])
        if in_channels not in (1, rows):
            raise ValueError(f"extractor in_channels={in_channels} must be 1 (rows along time) "
                             f"or {rows} (rows as channels)")
        self.in_channels = in_channels
        self.net = resnet18(weights=None)
        self.net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.net.fc = nn.Identity()
        self.out_dim = 512
        self.fmt = _speed_up(self.net, channels_last, compile, 4)

    def forward(self, x: Tensor) -> Tensor:
        if self.in_channels == 1:
            b, r, f, t = x.shape
            x = x.permute(0, 2, 1, 3).reshape(b, 1, f, r * t)  # rows side by side along time
        return self.net(_as(x, self.fmt))
