"""MAE ViT-B/16 (video frames) and Audio-MAE ViT-B/16 (log-mel fbank): the GMF-MAE row's extractors.

Plain PyTorch, with module names that match the official releases' key layout (a timm-style ViT
under the checkpoint's ``"model"`` key): ``cls_token``, ``pos_embed``, ``patch_embed.proj``,
``blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``norm``. A pre-training
checkpoint's decoder (``decoder_*``, ``mask_token``) and a fine-tuned one's ``head`` are reported as
ignored; a fine-tuned checkpoint's ``fc_norm`` (global pooling, no ``norm``) is loaded as ``norm``.

Video (paper App. I, Fig. 16, cites the image MAE [32]): each frame goes through the image ViT,
the frame features are averaged over time. Audio: Audio-MAE's input convention, a 128-bin Kaldi
fbank of 1024 frames (``data.spectrogram.kind=fbank``) normalised with AudioSet's statistics.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gmf_repro.models.weights import LoadReport, load_checkpoint

MAE_SOURCE = "https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_base.pth (facebookresearch/mae)"
AUDIO_MAE_SOURCE = ("the ViT-B AudioSet-2M pretrained checkpoint linked in facebookresearch/AudioMAE's README "
                    "(pretrained.pth)")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
AUDIOSET_STATS = (-4.2677393, 4.5689974)  # Audio-MAE's norm_stats['audioset']: (fbank - mean) / (2 * std)
IGNORED = ("decoder_", "mask_token", "head.", "fc_norm.")


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"ViT width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        x = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, num_heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, in_chans: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class ViT(nn.Module):
    """The ViT encoder of MAE / Audio-MAE (no masking at feature time), pooled to one ``dim`` vector.

    ``pool``: ``cls`` = the class token after ``norm`` (MAE's linear-probe features); ``mean`` = the
    mean of the patch tokens, then ``norm`` (the fine-tuning recipes' global pooling, whose ``fc_norm``
    is this ``norm``).
    """

    def __init__(self, img_size: Sequence[int], in_chans: int = 3, patch_size: int = 16, embed_dim: int = 768,
                 depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0, pool: str = "cls") -> None:
        super().__init__()
        h, w = (int(s) for s in img_size)
        if h % patch_size or w % patch_size:
            raise ValueError(f"ViT input {h}x{w} is not a multiple of the {patch_size}-pixel patch")
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool={pool!r}; use 'cls' or 'mean'")
        self.pool, self.num_patches = pool, (h // patch_size) * (w // patch_size)
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=0.02)
        self.apply(_init_weights)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0] if self.pool == "cls" else self.norm(x[:, 1:].mean(dim=1))


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):  # MAE's init for training from scratch
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)


def _fc_norm_as_norm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A fine-tuned global-pool checkpoint has ``fc_norm`` and no ``norm``: that ``fc_norm`` is our ``norm``."""
    if "norm.weight" in state or "fc_norm.weight" not in state:
        return state
    return {("norm." + k[len("fc_norm."):] if k.startswith("fc_norm.") else k): v for k, v in state.items()}


def load_vit(vit: ViT, path: str, what: str, source: str) -> LoadReport:
    return load_checkpoint(vit, path, what=what, source=source, ignore=IGNORED, rename=_fc_norm_as_norm)


class _Freezable(nn.Module):
    """``trainable=False``: the encoder is a fixed feature extractor (no gradients, always in eval mode)."""

    trainable = True

    def freeze(self, trainable: bool) -> None:
        self.trainable = bool(trainable)
        if not self.trainable:
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True) -> nn.Module:
        return super().train(mode and self.trainable)


class MAEViTVideo(_Freezable):
    """MAE ViT-B/16 per frame on video ``[T, H, W, C]`` (values in [0, 1]), frame features averaged: 768-d.

    ``weights``: path of ``mae_pretrain_vit_base.pth`` (or any checkpoint in that layout), null = scratch.
    ``normalize``: ImageNet mean/std on the frames (MAE's input convention); false for raw inputs.
    ``trainable=false`` keeps the encoder fixed (pretrained features, MAE's linear-probe use).
    """

    def __init__(self, input_shape: tuple[int, ...], weights: str | None = None, patch_size: int = 16,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 pool: str = "cls", normalize: bool = True, trainable: bool = True) -> None:
        super().__init__()
        if len(input_shape) != 4:
            raise ValueError(f"MAEViTVideo expects video of shape [T, H, W, C], got {tuple(input_shape)}")
        _, h, w, c = (int(s) for s in input_shape)
        self.vit = ViT((h, w), c, patch_size, embed_dim, depth, num_heads, mlp_ratio, pool)
        self.normalize = bool(normalize) and c == 3
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.load_report = load_vit(self.vit, weights, "MAE's ViT-B/16 layout under 'model' (224x224 frames: "
                                    "196 patches)", MAE_SOURCE) if weights else None
        self.out_dim = embed_dim
        self.freeze(trainable)

    def forward(self, x: Tensor) -> Tensor:
        b, t = x.shape[:2]
        frames = x.flatten(0, 1).permute(0, 3, 1, 2)  # [B*T, C, H, W]
        if self.normalize:
            frames = (frames - self.mean) / self.std
        return self.vit(frames).view(b, t, -1).mean(dim=1)


class AudioMAEViT(_Freezable):
    """Audio-MAE ViT-B/16 on a spectrogram ``[rows, mel bins, frames]`` (rows laid side by side in time):
    Audio-MAE sees ``[1, frames, mel bins]`` (time as height), normalised ``(x - mean) / (2 std)``. 768-d.

    With ``data.spectrogram.kind=fbank`` the input is Audio-MAE's 128 x 1024 fbank (512 patches);
    ``norm_stats=null`` skips the normalisation.
    """

    def __init__(self, input_shape: tuple[int, ...], weights: str | None = None, patch_size: int = 16,
                 embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 pool: str = "mean", norm_stats: Sequence[float] | None = AUDIOSET_STATS,
                 trainable: bool = True) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"AudioMAEViT expects a spectrogram [rows, mel bins, frames], got {tuple(input_shape)}")
        rows, bins, frames = (int(s) for s in input_shape)
        self.vit = ViT((rows * frames, bins), 1, patch_size, embed_dim, depth, num_heads, mlp_ratio, pool)
        self.norm_stats = tuple(float(s) for s in norm_stats) if norm_stats else None
        self.load_report = load_vit(self.vit, weights, "Audio-MAE's ViT-B/16 layout under 'model' (a 128-bin fbank "
                                    "of 1024 frames: 512 patches)", AUDIO_MAE_SOURCE) if weights else None
        self.out_dim = embed_dim
        self.freeze(trainable)

    def forward(self, x: Tensor) -> Tensor:
        b, r, f, t = x.shape
        x = x.permute(0, 1, 3, 2).reshape(b, 1, r * t, f)  # [B, 1, time, freq], rows in order along time
        if self.norm_stats:
            x = (x - self.norm_stats[0]) / (2 * self.norm_stats[1])
        return self.vit(x)
