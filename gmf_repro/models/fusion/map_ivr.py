"""MAP-IVR (Liu et al., "Activity Image-to-Video Retrieval by Disentangling Appearance and Motion",
AAAI 2021) as a retrieval fuser. No code release was found; this follows the paper's description:

- a video encoder splits the video feature into an appearance code and a motion code;
- an image encoder gives an appearance code (image features are a subset of video content);
- a translator rebuilds a video feature from (appearance, motion): from the video's own codes
  (reconstruction) and from the paired image's appearance with the video's motion (image-to-video
  translation), both trained with MSE (``aux_loss``);
- retrieval uses both the appearance space and the video feature space: an image is translated
  with a motion prior (a running mean of training motion codes, our choice: a query image has no
  motion), and the embedding is ``[norm(appearance), norm(video-space feature)]``, so the cosine of two
  embeddings is the mean of the two spaces' cosines.

Widths (hidden 1024, appearance 512, motion 512) are our choice, sized so the parameter count lands
near the paper's: 4,068,992 at 128/128 (paper 3.81M, +6.8%) and 12,199,424 at 128/4096 (paper
11.94M, +2.2%); the 8.1M difference between the two settings is exactly the first video layer and
the translator's last layer growing from 128 to 4096 outputs, as the paper's "fixed-length mappings" imply.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import RetrievalOutput
from .retrieval import RetrievalFuser


class MAPIVR(RetrievalFuser):
    """``modalities`` order is (image, video)."""

    def __init__(
        self,
        dims: Mapping[str, int],
        hidden: int = 1024,
        appearance_dim: int = 512,
        motion_dim: int = 512,
        recon_weight: float = 1.0,
        translate_weight: float = 1.0,
        prior_momentum: float = 0.99,
    ) -> None:
        super().__init__(dims)
        if len(self.dims) != 2:
            raise ValueError(f"MAP-IVR pairs exactly two modalities (image, video), got {list(self.dims)}")
        self.image_key, self.video_key = self.modalities
        l_i, l_v = self.dims[self.image_key], self.dims[self.video_key]
        self.image_encoder = nn.Sequential(nn.Linear(l_i, hidden), nn.ReLU(), nn.Linear(hidden, appearance_dim))
        self.video_trunk = nn.Sequential(nn.Linear(l_v, hidden), nn.ReLU())
        self.video_appearance = nn.Linear(hidden, appearance_dim)
        self.video_motion = nn.Linear(hidden, motion_dim)
        self.translator = nn.Sequential(
            nn.Linear(appearance_dim + motion_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, l_v),
        )
        self.register_buffer("motion_prior", torch.zeros(motion_dim))
        self.recon_weight, self.translate_weight, self.prior_momentum = recon_weight, translate_weight, prior_momentum
        self.embed_dim = appearance_dim + l_v
        self.out_dim = 2 * self.embed_dim

    def _video_codes(self, v: Tensor) -> tuple[Tensor, Tensor]:
        h = self.video_trunk(v)
        return self.video_appearance(h), self.video_motion(h)

    def embed(self, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        if self.image_key in feats:
            a_i = self.image_encoder(feats[self.image_key])
            prior = self.motion_prior.expand(len(a_i), -1).to(a_i.dtype)
            v_hat = self.translator(torch.cat([a_i, prior], dim=-1))
            out[self.image_key] = torch.cat([F.normalize(a_i, dim=-1), F.normalize(v_hat, dim=-1)], dim=-1)
        if self.video_key in feats:
            v = feats[self.video_key]
            a_v, _ = self._video_codes(v)
            out[self.video_key] = torch.cat([F.normalize(a_v, dim=-1), F.normalize(v, dim=-1)], dim=-1)
        return out

    def add_training_terms(self, feats: Mapping[str, Tensor], emb: Mapping[str, Tensor], out: RetrievalOutput) -> None:
        """Reconstruction and image-to-video translation losses (``aux_loss``); updates the motion prior."""
        v = feats[self.video_key]
        a_v, m_v = self._video_codes(v)
        a_i = self.image_encoder(feats[self.image_key])
        target = v.detach().float()
        recon = F.mse_loss(self.translator(torch.cat([a_v, m_v], -1)).float(), target)
        translate = F.mse_loss(self.translator(torch.cat([a_i, m_v], -1)).float(), target)
        if self.training:
            with torch.no_grad():
                self.motion_prior.lerp_(m_v.mean(0).float(), 1.0 - self.prior_momentum)
        out.aux_loss = self.recon_weight * recon + self.translate_weight * translate
        out.parts[f"motion/{self.video_key}"] = m_v
