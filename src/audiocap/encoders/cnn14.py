"""PANNs CNN14 (Kong et al., "PANNs: Large-Scale Pretrained Audio Neural Networks for Audio
Pattern Recognition", IEEE/ACM TASLP 2020), declared so that its state dict has exactly the
keys and shapes of the public ``Cnn14_mAP=0.431.pth`` checkpoint (32 kHz, 1024-point window,
hop 320, 64 mels 50–14000 Hz). The checkpoint wraps the state dict as ``{"model": ...}``;
:func:`load_panns_state` reads it with ``weights_only=True``.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from audiocap.encoders.blocks import AudioTower, ConvBlock
from audiocap.encoders.frontend import mel_filterbank


class _Stft(nn.Module):
    """STFT as two 1-D convolutions with Hann-windowed DFT kernels (keys conv_real/conv_imag)."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
        win = 0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft)  # periodic Hann
        ang = 2 * math.pi * k[:, None] * n[None, :] / n_fft
        self.conv_real = nn.Conv1d(1, n_fft // 2 + 1, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, n_fft // 2 + 1, n_fft, stride=hop, bias=False)
        self.conv_real.weight.data = (torch.cos(ang) * win).float()[:, None, :]
        self.conv_imag.weight.data = (-torch.sin(ang) * win).float()[:, None, :]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = F.pad(wave[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        return self.conv_real(x) ** 2 + self.conv_imag(x) ** 2  # (B, F, T) power


class _Spectrogram(nn.Module):
    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.stft = _Stft(n_fft, hop)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.stft(wave).transpose(1, 2)  # (B, T, F)


class _LogMel(nn.Module):
    def __init__(self, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> None:
        super().__init__()
        fb = mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney")
        self.melW = nn.Parameter(fb, requires_grad=False)  # (F, M)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10((power @ self.melW).clamp_min(1e-10))  # (B, T, M) dB


class Cnn14(AudioTower):
    """CNN14: log-mel -> bn0 -> 6 ConvBlocks (64..2048, avg-pool) -> frame features (B, T', 2048);
    :meth:`pool` = ReLU(fc1(max_t + mean_t)) -> (B, 2048). ``fc_audioset`` (527 AudioSet
    classes) is kept for checkpoint compatibility and exposed by :meth:`tag_logits`."""

    sample_rate = 32000

    def __init__(self, n_classes: int = 527, dropout: float = 0.2) -> None:
        super().__init__()
        self.spectrogram_extractor = _Spectrogram(1024, 320)
        self.logmel_extractor = _LogMel(32000, 1024, 64, 50.0, 14000.0)
        self.bn0 = nn.BatchNorm2d(64)
        chans = [1, 64, 128, 256, 512, 1024, 2048]
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", ConvBlock(chans[i], chans[i + 1]))
        self.fc1 = nn.Linear(2048, 2048)
        self.fc_audioset = nn.Linear(2048, n_classes)
        self.dropout = dropout
        self.frame_dim = self.dim = 2048

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.logmel_extractor(self.spectrogram_extractor(wave))  # (B, T, 64)
        x = self.bn0(x[:, None].transpose(1, 3))  # (B, 64, T, 1): BN over mel bins
        x = x.transpose(1, 3)  # (B, 1, T, 64)
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, (2, 2) if i < 5 else (1, 1), "avg")
            x = F.dropout(x, self.dropout, self.training)
        x = x.mean(dim=3)  # (B, 2048, T')
        x = F.max_pool1d(x, 3, 1, 1) + F.avg_pool1d(x, 3, 1, 1)
        return x.transpose(1, 2)  # (B, T', 2048)

    def pool(self, frame_embs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            neg = torch.finfo(frame_embs.dtype).min
            mx = frame_embs.masked_fill(~mask[..., None], neg).amax(1)
        else:
            mx = frame_embs.amax(1)
        x = mx + super().pool(frame_embs, mask)  # (B, 2048)
        return F.relu(self.fc1(F.dropout(x, 0.5, self.training)))

    def tag_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """AudioSet logits (B, 527) from the pooled embedding (sigmoid gives clip-wise scores)."""
        return self.fc_audioset(pooled)


def load_panns_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a PANNs checkpoint (``{"model": state_dict}`` or a bare state dict) with
    ``weights_only=True``; raises ``ValueError`` naming the file if it holds no state dict."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or "conv_block1.conv1.weight" not in state:
        raise ValueError(f"{path}: not a PANNs CNN14 checkpoint (no model.conv_block1.conv1.weight)")
    return state


def build_cnn14(weights: str | os.PathLike | None = None, **kw) -> Cnn14:
    """CNN14, loading a PANNs checkpoint strictly when ``weights`` is given."""
    model = Cnn14(**kw)
    if weights:
        model.load_state_dict(load_panns_state(weights), strict=True)
    return model
