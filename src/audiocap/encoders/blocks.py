"""Convolutional building blocks shared by the audio towers (state-dict names follow PANNs)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBlock(nn.Module):
    """[3×3 conv (no bias) -> BatchNorm -> ReLU] ×2 then pooling, as in the PANNs / DCASE
    cross-task baselines (Kong et al., 2018; 2020). Keys: conv1, bn1, conv2, bn2."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, pool: tuple[int, int] = (2, 2), kind: str = "max") -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))  # (B, C, T, F)
        x = F.relu(self.bn2(self.conv2(x)))
        if kind == "max":
            return F.max_pool2d(x, pool)
        if kind == "avg":
            return F.avg_pool2d(x, pool)
        if kind == "avg+max":
            return F.avg_pool2d(x, pool) + F.max_pool2d(x, pool)
        raise ValueError(f"unknown pooling {kind!r}")


class AudioTower(nn.Module):
    """Interface of every audio tower: ``forward(wave (B, N)) -> frame_embs (B, T, D)`` and
    ``pool(frame_embs, mask) -> (B, P)``; attributes ``sample_rate``, ``frame_dim``, ``dim``."""

    sample_rate: int
    frame_dim: int
    dim: int

    def pool(self, frame_embs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Masked mean over frames: (B, T, D), mask (B, T) bool -> (B, D)."""
        if mask is None:
            return frame_embs.mean(1)
        m = mask.unsqueeze(-1).to(frame_embs.dtype)
        return (frame_embs * m).sum(1) / m.sum(1).clamp_min(1.0)
