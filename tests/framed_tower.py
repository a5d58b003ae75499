"""A stand-in frozen audio tower for captioner tests (a fixed random projection of framed audio),
shared by tests/captioner/ and the evaluation-progress tests."""

from __future__ import annotations

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
