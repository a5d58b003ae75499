"""A tiny CNN audio tower for the debug recipe and tests (16 kHz log-mel, 3 ConvBlocks)."""

from __future__ import annotations

import torch
from torch import nn

from audiocap.encoders.blocks import AudioTower, ConvBlock
from audiocap.encoders.frontend import LogMel


class TinyTower(AudioTower):
    """16 kHz waveform (B, N) -> frame embeddings (B, T/8, width·4); a few thousand parameters
    per width unit, trains in seconds on a CPU. Same block design as the PANNs CNNs."""

    sample_rate = 16000

    def __init__(self, width: int = 16, n_mels: int = 32) -> None:
        super().__init__()
        self.frontend = LogMel(sr=16000, n_fft=512, hop=256, n_mels=n_mels)
        self.bn0 = nn.BatchNorm1d(n_mels)
        self.blocks = nn.ModuleList([ConvBlock(1, width), ConvBlock(width, width * 2), ConvBlock(width * 2, width * 4)])
        self.frame_dim = self.dim = width * 4

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.frontend(wave)  # (B, T, M)
        x = self.bn0(x.transpose(1, 2)).transpose(1, 2)[:, None]  # (B, 1, T, M)
        for block in self.blocks:
            x = block(x, (2, 2), "avg+max")
        return x.mean(dim=3).transpose(1, 2)  # (B, T/8, C)
