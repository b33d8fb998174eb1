"""The audio input tensors of docs/paper.md §2, as parameter-free modules that run on the training device.

Why on the device: the cache stores the int16 waveform (288 KB per 9 s clip, about the size of
the float16 mel it would give), and the mel of one VGGSound clip costs ~7 ms of one CPU core
(torchaudio, measured on this project's 2-core machine) but is negligible on a GPU. At ~500 clips/s
the CPU route would need ~4 extra loader cores; the device route needs none. See docs/data.md.
"""
from __future__ import annotations

import warnings

import torch
import torchaudio
from torch import Tensor, nn


def _fit_frames(x: Tensor, frames: int | None) -> Tensor:
    """Crop or zero-pad the last (time) axis to exactly ``frames``."""
    if frames is None or x.shape[-1] == frames:
        return x
    if x.shape[-1] > frames:
        return x[..., :frames]
    return nn.functional.pad(x, (0, frames - x.shape[-1]))


class MelRows(nn.Module):
    """VGGSound: waveform [B, S] -> ``rows`` one-second rows -> MelSpectrogram -> [B, rows, n_mels, frames].

    docs/paper.md §2: 144000 samples are stacked into 9 x 16000 and each row goes through
    ``MelSpectrogram(sr=16000, n_fft=400, win_length=400, hop_length=160, n_mels=192)`` (torchaudio,
    power 2, no log: the paper names no log). torchaudio's centred STFT gives 101 frames per row;
    the paper's shape has 100, so the last frame is dropped (``frames``).
    """

    def __init__(self, rows: int = 9, sample_rate: int = 16000, n_fft: int = 400, win_length: int = 400,
                 hop_length: int = 160, n_mels: int = 192, frames: int | None = 100, log: bool = False) -> None:
        super().__init__()
        self.rows, self.frames, self.log = rows, frames, log
        with warnings.catch_warnings():
            # 192 mels over 201 STFT bins leaves some filters empty: that is the paper's setting.
            warnings.simplefilter("ignore", UserWarning)
            self.mel = torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate, n_fft=n_fft, win_length=win_length, hop_length=hop_length, n_mels=n_mels)

    def forward(self, wave: Tensor) -> Tensor:
        b, s = wave.shape
        if s % self.rows:
            raise ValueError(f"{s} audio samples do not split into {self.rows} equal rows; "
                             f"set data.audio_samples to a multiple of data.spectrogram.rows")
        x = wave.float().reshape(b, self.rows, s // self.rows)
        # the STFT runs in float32 even under autocast: fp16 power spectra overflow
        with torch.autocast(device_type=x.device.type, enabled=False):
            m = _fit_frames(self.mel(x), self.frames)
        return torch.log(m + 1e-6) if self.log else m


class LogSTFT(nn.Module):
    """FakeAVCeleb: waveform [B, S] -> ``log(|STFT(1024, hop 256, win 1024, blackman)| + 1e-8)``
    -> [B, 1, 513, frames]."""

    def __init__(self, n_fft: int = 1024, hop_length: int = 256, win_length: int = 1024,
                 frames: int | None = 60, eps: float = 1e-8) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.win_length, self.frames, self.eps = n_fft, hop_length, win_length, frames, eps
        self.register_buffer("window", torch.blackman_window(win_length), persistent=False)

    def forward(self, wave: Tensor) -> Tensor:
        with torch.autocast(device_type=wave.device.type, enabled=False):
            spec = torch.stft(wave.float(), n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                              window=self.window, return_complex=True)
            out = torch.log(spec.abs() + self.eps)
        return _fit_frames(out, self.frames).unsqueeze(1)


class KaldiFbank(nn.Module):
    """Audio-MAE's input (GMF-MAE row): waveform [B, S] minus its mean -> Kaldi fbank (htk_compat, Hanning
    window, 25 ms / 10 ms, no dither, no energy) of ``num_mel_bins`` -> zero-padded or cut to ``frames`` ->
    [B, 1, num_mel_bins, frames]. Audio-MAE's (x - mean) / (2 std) is the extractor's (models/vit_mae.py)."""

    def __init__(self, sample_rate: int = 16000, num_mel_bins: int = 128, frames: int | None = 1024) -> None:
        super().__init__()
        self.sample_rate, self.num_mel_bins, self.frames = int(sample_rate), int(num_mel_bins), frames

    def forward(self, wave: Tensor) -> Tensor:
        from torchaudio.compliance.kaldi import fbank

        with torch.autocast(device_type=wave.device.type, enabled=False):
            out = [fbank((w - w.mean()).unsqueeze(0), htk_compat=True, sample_frequency=self.sample_rate,
                         use_energy=False, window_type="hanning", num_mel_bins=self.num_mel_bins, dither=0.0,
                         frame_shift=10).T for w in wave.float()]
        return _fit_frames(torch.stack(out), self.frames).unsqueeze(1)


def build_spectrogram(kind: str, **params) -> nn.Module:
    """``kind``: ``mel_rows`` (VGGSound), ``log_stft`` (FakeAVCeleb) or ``fbank`` (Audio-MAE's input).

    Settings of the other kind are ignored (one preset can shrink both datasets); a key that no
    kind knows is an error, so typos still fail.
    """
    import inspect

    kinds = {"mel_rows": MelRows, "log_stft": LogSTFT, "fbank": KaldiFbank}
    if kind not in kinds:
        raise ValueError(f"unknown data.spectrogram.kind '{kind}'; use one of {sorted(kinds)}")
    known = {k: set(inspect.signature(c).parameters) for k, c in kinds.items()}
    unknown = set(params) - set().union(*known.values())
    if unknown:
        raise ValueError(f"unknown data.spectrogram keys {sorted(unknown)} for kind '{kind}'; "
                         f"it takes {sorted(known[kind])}")
    return kinds[kind](**{k: v for k, v in params.items() if k in known[kind]})


@torch.no_grad()
def output_shape(module: nn.Module, samples: int) -> tuple[int, ...]:
    """Per-sample output shape for a waveform of ``samples`` (datamodules declare it in ``__init__``)."""
    return tuple(module(torch.zeros(1, samples)).shape[1:])
