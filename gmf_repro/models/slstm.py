"""MISA's sLSTM (declare-lab/MISA, ``MISA.extract_features``): the MISA row's extractor in Tables 4 and 7.

Two stacked bidirectional LSTMs with a LayerNorm on the first one's outputs in between; the final
hidden states of both (forward and backward) are concatenated per sample in MISA's order
``[h1_fwd, h2_fwd, h1_bwd, h2_bwd]`` -> ``4 * hidden``. MISA sets the hidden size to the per-step
input size (``hidden_sizes = [visual_size, acoustic_size]``): ``hidden_size=null`` does the same.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gmf_repro.models.weights import LoadReport, load_checkpoint


class SLSTM(nn.Module):
    """sLSTM over time. Per-step inputs (MISA feeds precomputed per-frame descriptors, e.g. 47-d Facet):

    - video ``[T, H, W, C]``: each frame average-pooled to a ``frame_grid`` (parameter free) and
      flattened, ``C * gh * gw`` values per step (8 x 8 x 3 = 192 by default), T steps;
    - audio ``[rows, freq, frames]``: each spectrogram frame is one step of ``freq`` values, the rows
      laid side by side in time (FakeAVCeleb's ``[1, 513, 60]``: 60 steps of 513).

    ``weights``: a state dict in this module's layout (``rnn1.*``, ``layer_norm.*``, ``rnn2.*``), e.g.
    saved from a trained unimodal run; MISA releases no trained weights. null = scratch (MISA's way).
    """

    def __init__(self, input_shape: tuple[int, ...], hidden_size: int | None = None,
                 frame_grid: Sequence[int] = (8, 8), weights: str | None = None) -> None:
        super().__init__()
        if len(input_shape) == 4:
            self.video, self.grid = True, tuple(int(g) for g in frame_grid)
            step = int(input_shape[-1]) * self.grid[0] * self.grid[1]
        elif len(input_shape) == 3:
            self.video, step = False, int(input_shape[1])
        else:
            raise ValueError(f"SLSTM expects video [T, H, W, C] or audio [rows, freq, frames], "
                             f"got {tuple(input_shape)}")
        hidden = int(hidden_size or step)
        self.rnn1 = nn.LSTM(step, hidden, bidirectional=True)
        self.layer_norm = nn.LayerNorm(2 * hidden)
        self.rnn2 = nn.LSTM(2 * hidden, hidden, bidirectional=True)
        self.out_dim = 4 * hidden
        self.load_report: LoadReport | None = None
        if weights:
            self.load_report = load_checkpoint(
                self, weights, what="an SLSTM state dict (rnn1.*, layer_norm.*, rnn2.*) of this input and hidden size",
                source="a trained run (MISA releases no weights)")

    def sequence(self, x: Tensor) -> Tensor:
        """[B, ...] -> [steps, B, features] (time first, as MISA's LSTMs)."""
        if self.video:
            b, t, h, w, c = x.shape
            pooled = nn.functional.adaptive_avg_pool2d(x.flatten(0, 1).permute(0, 3, 1, 2), self.grid)
            return pooled.reshape(b, t, -1).transpose(0, 1)
        b, r, f, t = x.shape
        return x.permute(1, 3, 0, 2).reshape(r * t, b, f)

    def forward(self, x: Tensor) -> Tensor:
        h1_seq, (h1, _) = self.rnn1(self.sequence(x))
        _, (h2, _) = self.rnn2(self.layer_norm(h1_seq))
        return torch.cat((h1, h2), dim=2).permute(1, 0, 2).reshape(x.shape[0], -1)  # MISA's utterance vector
