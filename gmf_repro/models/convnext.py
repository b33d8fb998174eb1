"""ConvNeXt-B (torchvision), UAVM's extractor in Tables 4 and 7: per frame for video, on the spectrogram
for audio, classifier's linear layer removed (its LayerNorm kept) -> 1024-d, averaged over time."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gmf_repro.models.vit_mae import IMAGENET_MEAN, IMAGENET_STD
from gmf_repro.models.weights import LoadReport, load_checkpoint

SOURCE = ("https://download.pytorch.org/models/convnext_base-6075fbad.pth "
          "(torchvision ConvNeXt_Base_Weights.IMAGENET1K_V1)")


def _stem_channels(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """The stem convolution for ``in_channels`` inputs (a spectrogram has 1): the pretrained RGB kernels
    averaged over colour (the LayerNorm after ConvNeXt's stem takes out the scale; docs/decisions.md)."""
    if conv.in_channels == in_channels:
        return conv
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight.mean(dim=1, keepdim=True).expand_as(new.weight))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _convnext(dims: Sequence[int], depths: Sequence[int], stochastic_depth_prob: float) -> nn.Module:
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    if len(dims) != 4 or len(depths) != 4:
        raise ValueError(f"ConvNeXt needs 4 stage widths and 4 depths, got dims={list(dims)} depths={list(depths)}")
    nxt = [*dims[1:], None]
    return ConvNeXt([CNBlockConfig(int(d), n and int(n), int(k)) for d, n, k in zip(dims, nxt, depths, strict=True)],
                    stochastic_depth_prob=stochastic_depth_prob)


class ConvNeXtB(nn.Module):
    """torchvision ``convnext_base`` as a feature extractor (UAVM uses ImageNet ConvNeXt-B for both modalities).

    Video ``[T, H, W, C]`` (values in [0, 1], ImageNet-normalised when ``normalize``): each frame -> 1024-d,
    mean over frames. Audio ``[rows, freq, frames]``: one 1-channel image, rows side by side in time; the
    pretrained RGB stem is averaged over colour. ``weights``: a local file in torchvision's key layout
    (``convnext_base-6075fbad.pth``), null = scratch. ``dims``/``depths`` shrink it (defaults = ConvNeXt-B);
    ``stochastic_depth_prob`` is torchvision's ConvNeXt-B default.
    """

    def __init__(self, input_shape: tuple[int, ...], weights: str | None = None,
                 dims: Sequence[int] = (128, 256, 512, 1024), depths: Sequence[int] = (3, 3, 27, 3),
                 stochastic_depth_prob: float = 0.5, normalize: bool = True) -> None:
        super().__init__()
        if len(input_shape) not in (3, 4):
            raise ValueError(f"ConvNeXtB expects video [T, H, W, C] or audio [rows, freq, frames], "
                             f"got {tuple(input_shape)}")
        self.video = len(input_shape) == 4
        self.net = _convnext(dims, depths, stochastic_depth_prob)
        self.net.classifier[2] = nn.Identity()  # keep LayerNorm2d + Flatten: the 1024-d pre-logits
        self.load_report: LoadReport | None = None
        if weights:
            self.load_report = load_checkpoint(self.net, weights, what="torchvision's convnext_base state dict",
                                               source=SOURCE, ignore=("classifier.2.",))
        channels = int(input_shape[-1]) if self.video else 1
        self.net.features[0][0] = _stem_channels(self.net.features[0][0], channels)
        self.normalize = bool(normalize) and self.video and channels == 3
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.out_dim = int(dims[-1])

    def forward(self, x: Tensor) -> Tensor:
        if not self.video:
            b, r, f, t = x.shape
            return self.net(x.permute(0, 2, 1, 3).reshape(b, 1, f, r * t))
        b, t = x.shape[:2]
        frames = x.flatten(0, 1).permute(0, 3, 1, 2)
        if self.normalize:
            frames = (frames - self.mean) / self.std
        return self.net(frames).view(b, t, -1).mean(dim=1)
