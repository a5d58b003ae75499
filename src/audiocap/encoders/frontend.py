"""Log-mel front ends in pure torch (no librosa), device-agnostic.

Mel filterbanks follow the usual definitions: HTK mel scale ``2595·log10(1 + f/700)``
(Young et al., *The HTK Book*) or the Slaney/auditory-toolbox scale (linear below 1 kHz,
logarithmic above), triangular filters over the FFT bin frequencies, optionally normalized
to unit area ("slaney") or to unit sum ("sum", the aisfx front end of Hagos et al., ISMIR 2022).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def hz_to_mel(f: torch.Tensor, htk: bool) -> torch.Tensor:
    """Hertz to mel, HTK formula or Slaney's linear/log scale."""
    if htk:
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    lin = f / f_sp
    return torch.where(f >= min_log_hz, min_log_hz / f_sp + torch.log(f.clamp_min(1e-9) / min_log_hz) / logstep, lin)


def mel_to_hz(m: torch.Tensor, htk: bool) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return torch.where(m >= min_log_mel, min_log_hz * torch.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(
    *, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool, norm: str | None
) -> torch.Tensor:
    """Triangular mel filters, shape (n_fft//2+1, n_mels); ``norm`` in {None, "slaney", "sum"}."""
    freqs = torch.linspace(0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)  # (F,)
    mels = torch.linspace(float(hz_to_mel(torch.tensor(float(fmin), dtype=torch.float64), htk)),
                          float(hz_to_mel(torch.tensor(float(fmax), dtype=torch.float64), htk)),
                          n_mels + 2, dtype=torch.float64)
    pts = mel_to_hz(mels, htk)  # (M+2,)
    lower = (freqs[:, None] - pts[None, :-2]) / (pts[1:-1] - pts[:-2])[None, :]
    upper = (pts[None, 2:] - freqs[:, None]) / (pts[2:] - pts[1:-1])[None, :]
    fb = torch.clamp(torch.minimum(lower, upper), min=0.0)  # (F, M)
    if norm == "slaney":
        fb = fb * (2.0 / (pts[2:] - pts[:-2]))[None, :]
    elif norm == "sum":
        fb = fb / fb.sum(0, keepdim=True).clamp_min(1e-12)
    elif norm is not None:
        raise ValueError(f"unknown mel norm {norm!r}; use None, 'slaney' or 'sum'")
    return fb.float()


class AisfxFrontEnd(nn.Module):
    """The aisfx input: 44.1 kHz, Hann 2048 / hop 1024 power spectrum, 96 HTK mels (0–22.05 kHz,
    filters summing to 1), ``log10(1e4·x + 1) / 9.457798957824707`` (Hagos et al., ISMIR 2022).

    ``peak_normalize`` divides each waveform by its peak first, as the package does per file.
    Input (B, N) float waveform -> (B, T, 96) with T = 1 + N // 1024.
    """

    sr, n_fft, hop, n_mels, scale = 44100, 2048, 1024, 96, 9.457798957824707

    def __init__(self, peak_normalize: bool = True) -> None:
        super().__init__()
        self.peak_normalize = peak_normalize
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True), persistent=False)
        fb = mel_filterbank(sr=self.sr, n_fft=self.n_fft, n_mels=self.n_mels, fmin=0.0,
                            fmax=self.sr / 2, htk=True, norm="sum")
        self.register_buffer("melW", fb, persistent=False)  # (1025, 96)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if self.peak_normalize:
            peak = wave.abs().amax(dim=-1, keepdim=True)
            wave = wave / torch.where(peak > 0, peak, torch.ones_like(peak))
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, center=True,
                          pad_mode="constant", return_complex=True)  # (B, F, T)
        power = spec.real ** 2 + spec.imag ** 2
        mel = torch.einsum("bft,fm->btm", power, self.melW)  # (B, T, 96)
        return torch.log10(1e4 * mel + 1.0) / self.scale


class LogMel(nn.Module):
    """Generic log-mel front end: (B, N) -> (B, T, n_mels) in dB (``10·log10(max(x, 1e-10))``)."""

    def __init__(self, sr: int = 16000, n_fft: int = 512, hop: int = 160, n_mels: int = 64,
                 fmin: float = 50.0, fmax: float | None = None) -> None:
        super().__init__()
        self.sr, self.n_fft, self.hop = sr, n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        fb = mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax or sr / 2,
                            htk=False, norm="slaney")
        self.register_buffer("melW", fb, persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, center=True,
                          pad_mode="reflect" if wave.shape[-1] > self.n_fft // 2 else "constant",
                          return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2  # (B, F, T)
        mel = torch.einsum("bft,fm->btm", power, self.melW)
        return 10.0 * torch.log10(mel.clamp_min(1e-10))
