"""Captioner test fixtures: a stand-in frozen tower (fixed random projection of framed audio)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn


class FramedProjection(nn.Module):
    """Waveform (B, N) at 8 kHz -> frames of 0.25 s -> log energy spectrum -> fixed linear (B, T, 16)."""

    sample_rate = 8000
    frame_dim = 16

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = nn.Parameter(torch.randn(1001, 16, generator=g) / 30, requires_grad=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        n = wave.shape[1] // 2000 * 2000 or 2000
        wave = nn.functional.pad(wave, (0, max(0, n - wave.shape[1])))[:, :n]
        frames = wave.view(wave.shape[0], -1, 2000)  # (B, T, 2000)
        spec = torch.log1p(torch.fft.rfft(frames).abs())  # (B, T, 1001)
        return spec @ self.proj  # (B, T, 16)


@pytest.fixture(scope="session")
def standin_tower():
    """The stand-in frozen tower class (instantiate it: ``standin_tower()``)."""
    return FramedProjection


def write_sine(path, *, seconds: float, sr: int = 8000, freq: float = 440.0):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)
    return path


@pytest.fixture(scope="session")
def sine_writer():
    return write_sine
