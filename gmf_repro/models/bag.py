"""Identity for a bag of per-proposal features (ActivityNet with ``data.pool=none``, AP-IVR).

``Identity`` flattens its input into one vector; a bag ``[B, P, D]`` must reach a fuser that pools
proposals itself (AP-IVR's attention pooling) as it is, and the fuser is built for the per-proposal
width ``D``. A 2-D input ``[B, D]`` (already pooled) passes through too: a bag of one.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..errors import UserError


class ProposalBag(nn.Module):
    """``input_shape`` is ``(P, D)`` (a bag of P proposals) or ``(D,)``; ``out_dim = D``, ``bag_size = P``."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        if len(input_shape) not in (1, 2):
            raise UserError(f"proposal_bag takes [P, D] proposal features or [D] vectors, got input shape "
                            f"{tuple(input_shape)}; set data.pool=none (bag) or mean (vector)")
        self.out_dim = int(input_shape[-1])
        self.bag_size = int(input_shape[0]) if len(input_shape) == 2 else 1

    def forward(self, x: Tensor) -> Tensor:
        return x
