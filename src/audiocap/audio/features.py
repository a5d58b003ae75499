"""Log-mel spectrograms in plain torch (no torchaudio, no librosa).

Shape convention: the module takes a batch of mono waveforms ``(B, N)`` and returns
``(B, n_mels, T)`` with ``T = 1 + N // hop`` (frames are centred: the signal is reflect-padded
by ``n_fft // 2`` on both sides, as librosa and ``torch.stft(center=True)`` do).

The pipeline is the one the audio-tagging networks that audiocap's towers descend from use
(PANNs, Kong et al. 2020): periodic Hann window, power spectrum ``|STFT|^2``, a triangular mel
filterbank (Slaney's Auditory Toolbox scale and area normalisation, or the HTK scale
``2595·log10(1 + f/700)``), then ``log(mel + log_offset)``. The defaults are PANNs' 32 kHz
front end (n_fft 1024, hop 320, 64 bands, 50–14000 Hz).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

MelScale = Literal["htk", "slaney"]

# Slaney (Auditory Toolbox) mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above
# with 27 mels per factor 6.4.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: torch.Tensor, scale: MelScale = "slaney") -> torch.Tensor:
    """Convert frequencies in Hz to mels on the HTK (O'Shaughnessy 1987) or Slaney scale."""
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + hz / 700.0)
    if scale != "slaney":
        raise ValueError(f"mel scale must be 'htk' or 'slaney', got {scale!r}")
    lin = hz / _F_SP
    log = _MIN_LOG_MEL + torch.log(torch.clamp(hz, min=_MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return torch.where(hz >= _MIN_LOG_HZ, log, lin)


def mel_to_hz(mel: torch.Tensor, scale: MelScale = "slaney") -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    if scale != "slaney":
        raise ValueError(f"mel scale must be 'htk' or 'slaney', got {scale!r}")
    lin = mel * _F_SP
    log = _MIN_LOG_HZ * torch.exp(_LOGSTEP * (mel - _MIN_LOG_MEL))
    return torch.where(mel >= _MIN_LOG_MEL, log, lin)


def mel_filterbank(
    *,
    sr: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    scale: MelScale = "slaney",
    norm: Literal["slaney"] | None = "slaney",
) -> torch.Tensor:
    """Triangular mel filters as a float64 matrix of shape (n_fft // 2 + 1, n_mels).

    Band edges are ``n_mels + 2`` points equally spaced in mel between ``fmin`` and ``fmax``;
    filter ``m`` rises linearly from edge m to edge m+1 and falls to edge m+2 (Slaney's
    Auditory Toolbox construction). ``norm="slaney"`` scales each filter by
    ``2 / (f[m+2] - f[m])`` so every band has equal area; ``None`` keeps peak height 1.
    """
    fmax = sr / 2.0 if fmax is None else float(fmax)
    if not 0.0 <= fmin < fmax <= sr / 2.0:
        raise ValueError(f"need 0 <= fmin < fmax <= sr/2, got fmin={fmin}, fmax={fmax}, sr={sr}")
    if norm not in ("slaney", None):
        raise ValueError(f"norm must be 'slaney' or None, got {norm!r}")
    fft_hz = torch.linspace(0.0, sr / 2.0, n_fft // 2 + 1, dtype=torch.float64)  # (F,)
    lo, hi = hz_to_mel(torch.tensor([fmin, fmax], dtype=torch.float64), scale)
    edges = mel_to_hz(torch.linspace(float(lo), float(hi), n_mels + 2, dtype=torch.float64), scale)
    width = edges.diff()  # (n_mels + 1,)
    dist = edges[:, None] - fft_hz[None, :]  # (n_mels + 2, F)
    rise = -dist[:-2] / width[:-1, None]  # (n_mels, F)
    fall = dist[2:] / width[1:, None]  # (n_mels, F)
    fb = torch.clamp(torch.minimum(rise, fall), min=0.0)  # (n_mels, F)
    if norm == "slaney":
        fb = fb * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return fb.T.contiguous()  # (F, n_mels)


class LogMel(nn.Module):
    """Waveforms (B, N) -> log-mel spectrograms (B, n_mels, T), T = 1 + N // hop.

    Keyword-only configuration: ``sr``, ``n_fft``, ``hop``, ``win`` (window length <= n_fft,
    zero-padded to n_fft), ``n_mels``, ``fmin``, ``fmax``, ``mel_scale`` ("slaney" | "htk"),
    ``norm`` ("slaney" | None), ``power`` (2 = power spectrum), ``log_offset`` (added before the
    natural log). The window and filterbank are non-persistent buffers: they follow the module
    to any device and are not stored in checkpoints (the recipe rebuilds them).
    """

    def __init__(
        self,
        *,
        sr: int = 32000,
        n_fft: int = 1024,
        hop: int = 320,
        win: int | None = None,
        n_mels: int = 64,
        fmin: float = 50.0,
        fmax: float | None = 14000.0,
        mel_scale: MelScale = "slaney",
        norm: Literal["slaney"] | None = "slaney",
        power: float = 2.0,
        log_offset: float = 1e-6,
    ) -> None:
        super().__init__()
        win = n_fft if win is None else win
        if not 0 < win <= n_fft:
            raise ValueError(f"win must be in (0, n_fft={n_fft}], got {win}")
        if hop <= 0:
            raise ValueError(f"hop must be > 0, got {hop}")
        if log_offset <= 0:
            raise ValueError(f"log_offset must be > 0, got {log_offset}")
        self.sr, self.n_fft, self.hop, self.win, self.n_mels = sr, n_fft, hop, win, n_mels
        self.power, self.log_offset = power, log_offset
        window = torch.hann_window(win, periodic=True, dtype=torch.float64)
        left = (n_fft - win) // 2  # centre a short window inside the FFT frame
        window = nn.functional.pad(window, (left, n_fft - win - left))  # (n_fft,)
        fb = mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax,
                            scale=mel_scale, norm=norm)  # (F, n_mels)
        self.register_buffer("window", window.float(), persistent=False)
        self.register_buffer("fb", fb.float(), persistent=False)

    def num_frames(self, n_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Frames produced for ``n_samples`` input samples (use it to turn sample masks into frame masks)."""
        return 1 + n_samples // self.hop

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() != 2:
            raise ValueError(f"LogMel expects (B, N) waveforms, got shape {tuple(wave.shape)}")
        pad = self.n_fft // 2
        if wave.shape[1] <= pad:
            raise ValueError(f"waveform of {wave.shape[1]} samples is too short for n_fft={self.n_fft}")
        x = nn.functional.pad(wave[:, None, :], (pad, pad), mode="reflect")[:, 0]  # (B, N + n_fft)
        frames = x.unfold(-1, self.n_fft, self.hop)  # (B, T, n_fft)
        spec = torch.fft.rfft(frames * self.window, dim=-1).abs()  # (B, T, F)
        if self.power != 1.0:
            spec = spec.pow(self.power)
        mel = spec @ self.fb  # (B, T, n_mels)
        return torch.log(mel + self.log_offset).transpose(1, 2)  # (B, n_mels, T)

    def extra_repr(self) -> str:
        return f"sr={self.sr}, n_fft={self.n_fft}, hop={self.hop}, win={self.win}, n_mels={self.n_mels}"
