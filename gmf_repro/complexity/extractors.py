"""Extractor cost at the input shapes of Tables 4 and 7: parameters and FLOPs (2 x MACs) at batch 1.

Shared conventions with fusers.py (FlopCounterMode, elementwise ops not counted).
FlopCounterMode does not see ``nn.LSTM`` (one fused op), so the LSTMs' matmuls are added from their
sizes: 2 x steps x directions x 4h(in + h) per layer.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# FakeAVCeleb's shapes (docs/paper.md §2): video [8, 224, 224, 3], audio log-STFT [1, 513, 60];
# Audio-MAE's fbank [1, 128, 1024]
VIDEO, AUDIO, FBANK = (8, 224, 224, 3), (1, 513, 60), (1, 128, 1024)
TABLE_INPUTS: dict[str, list[tuple[str, tuple[int, ...]]]] = {
    "r2plus1d_18": [("video", VIDEO)],
    "resnet18_audio": [("audio", AUDIO)],
    "r2plus1d_18_audio": [("audio", AUDIO)],  # Table 6: R(2+1)D-18 on FakeAVCeleb's [1, 1, 513, 60]
    "slstm": [("video", VIDEO), ("audio", AUDIO)],
    "convnext_b": [("video", VIDEO), ("audio", AUDIO)],
    "mae_vit_b": [("video", VIDEO)],
    "audio_mae_vit_b": [("audio", FBANK)],
}


def _lstm_flops(module: nn.LSTM, steps: int, batch: int) -> int:
    dirs = 2 if module.bidirectional else 1
    h, total, inp = module.hidden_size, 0, module.input_size
    for _ in range(module.num_layers):
        total += 2 * steps * batch * dirs * 4 * h * (inp + h)
        inp = dirs * h
    return total


@torch.no_grad()
def measure_extractor(extractor: nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Params, FLOPs (batch 1, fp32, eval) and output size of one extractor."""
    extractor = extractor.to("cpu", torch.float32).eval()
    lstm = []

    def hook(mod: nn.LSTM, args: tuple, _out: Any) -> None:
        steps, batch = args[0].shape[:2]
        lstm.append(_lstm_flops(mod, batch, steps) if mod.batch_first else _lstm_flops(mod, steps, batch))

    handles = [m.register_forward_hook(hook) for m in extractor.modules() if isinstance(m, nn.LSTM)]
    try:
        with FlopCounterMode(display=False) as counter:
            out = extractor(torch.rand(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return {"params": sum(p.numel() for p in extractor.parameters()),
            "flops": int(counter.get_total_flops()) + sum(lstm), "out_dim": int(out.shape[-1])}
