"""GMF: dissolve, concentrate, exchange, reconstruct (docs/paper.md §1; paper §4, Algorithms 1-3)."""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Fuser, FusionOutput


class GMFBranch(nn.Module):
    """One modality's matrices. ``l`` is its dim, ``l_star`` the smallest dim over modalities."""

    def __init__(self, l: int, l_star: int, n: int, beta: float) -> None:
        super().__init__()
        wide = n * l
        self.boundary = int(beta * wide)  # b_j = floor(beta * n * l_j)
        if not 0 < self.boundary < wide:
            raise ValueError(f"GMF boundary beta={beta} must split n*l={wide} into two non-empty parts (0 < beta < 1)")
        self.dissolve = nn.Linear(l, wide)
        self.concentrate_inv = nn.Linear(self.boundary, l_star)
        self.concentrate_spec = nn.Linear(wide - self.boundary, l)
        self.reconstruct = nn.Linear(l + l_star, l)

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.dissolve(x)
        inv, spec = z[..., : self.boundary], z[..., self.boundary :]
        return self.concentrate_inv(inv), self.concentrate_spec(spec)


class GMF(Fuser):
    """Generalized Multimodal Fusion for any number of modalities with unequal dims.

    ``fused`` is ``concat(z_1..z_d)`` with ``z_j = concat(inv_{j+1 mod d}, spec_j)``;
    ``aux_loss`` is ``lam * sum_j MSE(recon_j(z_j), x_j)``. With ``detach_target`` (default, docs/paper.md §1
    decision) ``L_dis`` trains GMF's matrices only and sends no gradient into the extractor: its
    target is the detached ``x_j`` and its ``z_j`` is recomputed from the detached ``x_j`` (the task
    path through the live ``z_j`` is untouched), so ``dL_dis/dx_j = 0``. The recomputation runs only
    when the input carries a gradient (a trainable extractor, in training); with frozen features or
    under ``no_grad`` (evaluation, FLOPs) it would equal the live path, which is reused.
    """

    exchanged_parts = ("inv", "spec")  # z_j = concat(inv_{j+1}, spec_j)

    def __init__(
        self,
        dims: Mapping[str, int],
        n: int = 4,
        beta: float = 0.5,
        lam: float = 1.0,
        detach_target: bool = True,
    ) -> None:
        super().__init__(dims)
        if n < 1:
            raise ValueError(f"GMF magnification n={n} must be a positive integer (paper: 4)")
        self.n, self.beta, self.lam, self.detach_target = n, beta, lam, detach_target
        self.l_star = min(self.dims.values())
        self.branches = nn.ModuleDict({m: GMFBranch(l, self.l_star, n, beta) for m, l in self.dims.items()})
        self.part_dims = {m: self.l_star + l for m, l in self.dims.items()}
        self.out_dim = sum(self.part_dims.values())

    def decompose(self, feats: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Invariant and specific parts of each modality, computed from that modality alone."""
        inv, spec = {}, {}
        for m in self.modalities:
            inv[m], spec[m] = self.branches[m].split(feats[m])
        return inv, spec

    def exchange(self, inv: Mapping[str, Tensor], spec: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Cyclic exchange: modality j carries the invariant part of modality j+1 (mod d)."""
        ms = self.modalities
        return {m: torch.cat([inv[ms[(i + 1) % len(ms)]], spec[m]], dim=-1) for i, m in enumerate(ms)}

    def reconstruction_loss(self, z: Mapping[str, Tensor], feats: Mapping[str, Tensor]) -> Tensor:
        """``lam * sum_j MSE(P_recon_j z_j, x_j)``, the target detached with ``detach_target``."""
        loss = 0.0
        for m in self.modalities:
            target = feats[m].detach() if self.detach_target else feats[m]
            x_hat = self.branches[m].reconstruct(z[m])
            loss = loss + F.mse_loss(x_hat.float(), target.float())
        return self.lam * loss

    def dis_loss(self, feats: Mapping[str, Tensor], inv: Mapping[str, Tensor], spec: Mapping[str, Tensor]) -> Tensor:
        """``L_dis`` from the live parts ``inv``/``spec`` of ``feats``; with ``detach_target`` its whole
        path (dissolve, concentrate, exchange, reconstruct) starts from the detached inputs instead."""
        if self.detach_target and torch.is_grad_enabled() and any(feats[m].requires_grad for m in self.modalities):
            feats = {m: feats[m].detach() for m in self.modalities}
            inv, spec = self.decompose(feats)
        return self.reconstruction_loss(self.exchange(inv, spec), feats)

    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        self.check_inputs(feats)
        inv, spec = self.decompose(feats)
        z = self.exchange(inv, spec)
        parts = {f"inv/{m}": inv[m] for m in self.modalities}
        parts.update({f"spec/{m}": spec[m] for m in self.modalities})
        return FusionOutput(
            fused=torch.cat([z[m] for m in self.modalities], dim=-1),
            aux_loss=self.dis_loss(feats, inv, spec),
            parts=parts,
        )
