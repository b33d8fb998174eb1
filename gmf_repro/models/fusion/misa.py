"""MISA: modality-invariant and -specific representations (Hazarika et al., ACM MM 2020).

Layer structure of the official release (non-text modalities): per modality an sLSTM utterance
encoder (two stacked bidirectional LSTMs of the input's width, LayerNorm between them; the final
hidden states of both, 4 x l_j wide, form the utterance), a projection (Linear + ReLU + LayerNorm)
to ``hidden``; one shared encoder (Linear + Sigmoid) and one private encoder per modality
(Linear + Sigmoid); a per-modality reconstruction Linear of ``private + shared``; a 1-layer,
2-head transformer encoder over the 2d stacked representations; the fusion MLP's first layer
(Linear(2d*hidden -> d*hidden), dropout, ReLU) gives ``fused`` (its second layer is the task head).

Losses (returned, weighted, as ``aux_loss``): similarity = CMD (5 moments) between the shared
representations of every modality pair (averaged), difference = squared Frobenius norm of the
correlation of centred, L2-normalised (row norms detached, as the official ``DiffLoss``)
private/shared and private/private pairs (summed),
reconstruction = MSE of the reconstruction against the projected utterance (averaged).
Weights default to the official ones (diff 0.3, sim 1.0, recon 1.0).

Tokenisation: the sLSTM reads each modality vector as a sequence of one step (the official
encoder reads frame sequences; our inputs are one vector per modality). The LSTMs are unrolled
with ``nn.LSTMCell`` (same parameters as ``nn.LSTM``) so that FlopCounterMode counts them.
``hidden`` is our choice (the official MOSI default is 128): 1024 brings the 512/512 module to
within 8% of Table 2's 50.88M (docs/fusers.md).
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .base import Fuser, FusionOutput


def cmd(x1: Tensor, x2: Tensor, n_moments: int = 5, eps: float = 1e-12) -> Tensor:
    """Central moment discrepancy; ``eps`` keeps the square root differentiable at zero (e.g. a zeroed modality)."""

    def norm(a: Tensor, b: Tensor) -> Tensor:
        return torch.sqrt(((a - b) ** 2).sum() + eps)

    m1, m2 = x1.mean(0), x2.mean(0)
    c1, c2 = x1 - m1, x2 - m2
    loss = norm(m1, m2)
    for k in range(2, n_moments + 1):
        loss = loss + norm((c1**k).mean(0), (c2**k).mean(0))
    return loss


def difference(x1: Tensor, x2: Tensor) -> Tensor:
    """Soft orthogonality: mean squared entry of the correlation of the centred, row-normalised batches.

    The row norms are detached, as in the official ``DiffLoss``: each row is divided by its norm
    taken as a constant, so the gradient keeps its radial part (through the norm it would be
    projected onto the directions orthogonal to the row).
    """
    x1 = x1 - x1.mean(0, keepdim=True)
    x2 = x2 - x2.mean(0, keepdim=True)
    x1 = x1 / (x1.norm(dim=1, keepdim=True).detach() + 1e-6)
    x2 = x2 / (x2.norm(dim=1, keepdim=True).detach() + 1e-6)
    return (x1.t() @ x2).pow(2).mean()


class SLSTM(nn.Module):
    """Two stacked bidirectional LSTMs (hidden ``dim``, official: the input width) with LayerNorm in
    between; returns the final hidden states of both layers and both directions, ``4 * dim`` wide
    (MISA's utterance)."""

    def __init__(self, in_dim: int, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim = dim or in_dim
        self.layer1 = nn.ModuleList([nn.LSTMCell(in_dim, dim), nn.LSTMCell(in_dim, dim)])  # forward, backward
        self.norm = nn.LayerNorm(2 * dim)
        self.layer2 = nn.ModuleList([nn.LSTMCell(2 * dim, dim), nn.LSTMCell(2 * dim, dim)])

    @staticmethod
    def _bidirectional(cells: nn.ModuleList, seq: Tensor) -> tuple[Tensor, Tensor]:
        """All steps (T x B x 2*dim) and the final hidden states (B x 2*dim) of one bidirectional layer."""
        outs, finals = [], []
        for cell, order in zip(cells, (range(seq.shape[0]), reversed(range(seq.shape[0]))), strict=True):
            h = c = seq.new_zeros(seq.shape[1], cell.hidden_size)
            steps = {}
            for t in order:
                h, c = cell(seq[t], (h, c))
                steps[t] = h
            outs.append(torch.stack([steps[t] for t in range(seq.shape[0])]))
            finals.append(h)
        return torch.cat(outs, dim=-1), torch.cat(finals, dim=-1)

    def forward(self, seq: Tensor) -> Tensor:
        """``seq``: T x B x dim -> B x 4*dim."""
        out1, final1 = self._bidirectional(self.layer1, seq)
        _, final2 = self._bidirectional(self.layer2, self.norm(out1))
        return torch.cat([final1, final2], dim=-1)


class MISA(Fuser):
    """Shared/private subspaces per modality, regularised by CMD, orthogonality and reconstruction."""

    def __init__(
        self,
        dims: Mapping[str, int],
        hidden: int = 1024,
        num_heads: int = 2,
        dim_feedforward: int = 2048,
        num_layers: int = 1,
        dropout: float = 0.5,
        diff_weight: float = 0.3,
        sim_weight: float = 1.0,
        recon_weight: float = 1.0,
        cmd_moments: int = 5,
        utterance_dim: int | None = None,
    ) -> None:
        super().__init__(dims)
        d = len(self.dims)
        if d < 2:
            raise ValueError("MISA's similarity loss needs at least two modalities")
        self.diff_weight, self.sim_weight, self.recon_weight = diff_weight, sim_weight, recon_weight
        self.cmd_moments = cmd_moments
        # sLSTM width: the input's width as in the official code, unless ``utterance_dim`` narrows it
        self.utterance = nn.ModuleDict({m: SLSTM(l, utterance_dim) for m, l in self.dims.items()})
        self.project = nn.ModuleDict(
            {m: nn.Sequential(nn.Linear(4 * self.utterance[m].dim, hidden), nn.ReLU(), nn.LayerNorm(hidden))
             for m in self.dims}
        )
        self.private = nn.ModuleDict({m: nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid()) for m in self.dims})
        self.shared = nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid())
        self.recon = nn.ModuleDict({m: nn.Linear(hidden, hidden) for m in self.dims})
        layer = nn.TransformerEncoderLayer(hidden, num_heads, dim_feedforward)  # sequence-first, see mbt.py
        self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.fusion = nn.Sequential(nn.Linear(2 * d * hidden, d * hidden), nn.Dropout(dropout), nn.ReLU())
        self.out_dim = d * hidden

    def losses(self, utt: dict[str, Tensor], priv: dict[str, Tensor], shar: dict[str, Tensor]) -> dict[str, Tensor]:
        """MISA's three regularisers, in fp32 (moments of order 5 overflow bf16 precision)."""
        utt, priv, shar = ({m: t.float() for m, t in x.items()} for x in (utt, priv, shar))
        pairs = list(itertools.combinations(self.modalities, 2))
        sim = sum(cmd(shar[a], shar[b], self.cmd_moments) for a, b in pairs) / len(pairs)
        diff = sum(difference(priv[m], shar[m]) for m in self.modalities)
        diff = diff + sum(difference(priv[a], priv[b]) for a, b in pairs)
        recon = sum(
            torch.mean((self.recon[m](priv[m] + shar[m]).float() - utt[m]) ** 2) for m in self.modalities
        ) / len(self.modalities)
        return {"sim": sim, "diff": diff, "recon": recon}

    def forward(self, feats: dict[str, Tensor]) -> FusionOutput:
        self.check_inputs(feats)
        utt = {m: self.project[m](self.utterance[m](feats[m].unsqueeze(0))) for m in self.modalities}
        priv = {m: self.private[m](utt[m]) for m in self.modalities}
        shar = {m: self.shared(utt[m]) for m in self.modalities}
        tokens = torch.stack([priv[m] for m in self.modalities] + [shar[m] for m in self.modalities], dim=0)
        h = self.transformer(tokens).transpose(0, 1).flatten(1)
        loss = self.losses(utt, priv, shar)
        aux = self.diff_weight * loss["diff"] + self.sim_weight * loss["sim"] + self.recon_weight * loss["recon"]
        parts = {f"private/{m}": priv[m] for m in self.modalities}
        parts.update({f"shared/{m}": shar[m] for m in self.modalities})
        return FusionOutput(fused=self.fusion(h), aux_loss=aux, parts=parts)
