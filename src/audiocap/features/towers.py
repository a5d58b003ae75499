"""Frozen audio towers: build one from the registry, embed waveforms and the windows of long files.

The one place a frozen tower meets audio: the feature caches (CLAP and captioner training,
``eval clap``, ``eval captioner``) and captioning at inference all call :func:`embed_waves`,
and every long file is cut by :func:`audiocap.audio.policy.audio_windows` inside
:func:`window_frames`, so training, evaluation and inference frames are computed alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import contextlib

import numpy as np
import torch
from torch import Tensor, nn

from audiocap.audio.policy import AudioPolicy, audio_windows


PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``"fp32"`` or ``"bf16"`` for a requested ``precision`` (auto|fp32|bf16) on ``device``.

    ``auto`` picks bf16 only where it is fast natively: a CUDA device that supports bf16, or a
    CPU with AVX512-BF16 or AMX instructions; elsewhere (where bf16 would be emulated and slower)
    fp32. An explicit ``"bf16"`` is honoured everywhere.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    dev = torch.device(device)
    if dev.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if dev.type == "cpu":
        fast = [getattr(torch.cpu, n, lambda: False) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return "bf16" if any(f() for f in fast) else "fp32"
    return "fp32"


def tower_autocast(precision: str | None, device: str | torch.device):
    """The autocast context of a frozen tower for a resolved ``precision`` (no-op for fp32/None)."""
    if not precision or precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def tower_device(tower: nn.Module) -> torch.device:
    """The device of a tower's first parameter (CPU for a parameter-free tower)."""
    return next(iter(tower.parameters()), torch.empty(0)).device


def load_frame_tower(name: str, options: dict[str, Any] | None = None, *,
                     device: str | torch.device = "cpu") -> nn.Module:
    """The frozen tower ``name`` from :func:`audiocap.encoders.build_audio_encoder`, in eval mode,
    without gradients, on ``device`` (a pretrained CNN such as aisfx or PANNs CNN14)."""
    from audiocap.encoders import build_audio_encoder

    tower = build_audio_encoder(name, **(options or {}))
    return tower.eval().requires_grad_(False).to(device)


@torch.no_grad()
def embed_waves(tower: nn.Module, waves: Sequence[np.ndarray], *, batch_size: int = 8,
                device: str | torch.device | None = None, precision: str | None = None) -> list[Tensor]:
    """Frame embeddings (T_i, D) of each waveform through the frozen ``tower``, as float32 on CPU.

    Waves of equal length go through the tower together, ``batch_size`` at a time, on ``device``
    (default: the tower's). Frozen-tower frame embeddings as in PANNs (Kong et al., 2020).
    """
    if device is None:
        device = tower_device(tower)
    out: list[Tensor | None] = [None] * len(waves)
    groups: dict[int, list[int]] = {}
    for j, w in enumerate(waves):
        groups.setdefault(len(w), []).append(j)
    for idx in groups.values():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            batch = torch.from_numpy(np.stack([waves[j] for j in chunk])).float().to(device)  # (b, N)
            with tower_autocast(precision, device):
                frames = tower(batch)  # (b, T, D)
            for j, f in zip(chunk, frames.float().cpu()):
                out[j] = f.contiguous()  # (T, D)
    return out  # type: ignore[return-value]


def window_frames(tower: nn.Module, wave: np.ndarray, policy: AudioPolicy, *, batch_size: int = 8,
                  device: str | torch.device | None = None, precision: str | None = None) -> tuple[list[Tensor], list[tuple[float, float]]]:
    """Frame embeddings (T_i, D) of every window of ``wave`` (at the tower's rate) under ``policy``,
    and each window's (start, end) in seconds. ``caption`` and the ``eval captioner`` cache both
    call this per file, so they compute the same frames."""
    segs, spans = audio_windows(wave, sr=int(tower.sample_rate), policy=policy)
    frames = embed_waves(tower, segs, batch_size=batch_size, device=device, precision=precision)
    return frames, spans


def pad_frames(frames: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack variable-length frame embeddings (T_i, D) into (B, T, D) plus a mask (B, T), True on
    real frames."""
    lengths = torch.tensor([f.shape[0] for f in frames], dtype=torch.long)  # (B,)
    out = frames[0].new_zeros((len(frames), int(lengths.max()), *frames[0].shape[1:]))  # (B, T, D)
    for i, f in enumerate(frames):
        out[i, : f.shape[0]] = f
    return out, torch.arange(out.shape[1])[None, :] < lengths[:, None]
