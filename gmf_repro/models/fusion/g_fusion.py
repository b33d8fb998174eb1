"""G-<method>: GMF as the front-end of any other fuser (paper App. G.3, Fig. 15; docs/paper.md §1).

The invariant parts go straight to the head; the specific parts ``spec_j`` (dims ``l_j``) are the
back-end fuser's inputs. GMF is reused unchanged, so G-<method>'s parameters are exactly the
back-end's plus GMF's (5,250,048 for 512/512: G-MBT = 43.08M as in Table 2). With
``detach_target`` GMF's ``L_dis`` sends no gradient into the extractor (``GMF.dis_loss``).
A back-end with a classifier of its own (UAVM, DrFuse) cannot feed the shared head and is refused;
a back-end's extra logits and label losses pass through.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from ...errors import UserError
from .base import Fuser, FusionOutput
from .gmf import GMF


class GFusion(Fuser):
    """``fused = concat(inv_1..inv_d, backend(spec_1..spec_d).fused)``;
    ``aux_loss`` = GMF's reconstruction loss (of ``z_j = concat(inv_{j+1}, spec_j)``, as GMF
    computes it) + the back-end's own aux loss."""

    exchanged_parts = ("inv", "spec")  # GMF's parts, exchanged as GMF exchanges them

    def __init__(
        self,
        dims: Mapping[str, int],
        backend: Callable[..., Fuser],
        n: int = 4,
        beta: float = 0.5,
        lam: float = 1.0,
        detach_target: bool = True,
    ) -> None:
        super().__init__(dims)
        self.gmf = GMF(self.dims, n=n, beta=beta, lam=lam, detach_target=detach_target)
        self.backend = backend(dims=dict(self.dims))  # spec_j has the input's dim l_j
        if self.backend.num_classes is not None:
            raise UserError(
                f"G-wrapper back-end {type(self.backend).__name__} predicts the classes itself, so GMF's invariant "
                f"parts could not reach its classifier; choose a back-end that returns features (mbt, perceiver, ...)"
            )
        self.inv_dim = self.gmf.l_star * len(self.modalities)
        self.out_dim = self.inv_dim + self.backend.out_dim

    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        self.check_inputs(feats)
        inv, spec = self.gmf.decompose(feats)
        recon = self.gmf.dis_loss(feats, inv, spec)  # no gradient into the extractor with detach_target
        back = self.backend(spec)
        aux = recon if back.aux_loss is None else recon + back.aux_loss
        parts = {f"inv/{m}": inv[m] for m in self.modalities}
        parts.update({f"spec/{m}": spec[m] for m in self.modalities})
        parts.update({f"backend/{k}": v for k, v in back.parts.items()})
        fused = torch.cat([inv[m] for m in self.modalities] + [back.fused], dim=-1)
        return FusionOutput(fused=fused, aux_loss=aux, logits=back.logits, logit_weights=back.logit_weights,
                            label_losses=back.label_losses, parts=parts)
