"""Embed audio and text with a trained CLAP model: the functions search, serving and WSAC use.

``embed_audio(model, items)`` takes waveforms (at ``model.sample_rate``) or file paths;
``embed_text(model, texts)``; both return float32 numpy arrays (N, E) of unit vectors, so a
dot product is the cosine similarity of CLAP (Elizalde et al., ICASSP 2023).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch

from audiocap.audio.io import load_audio


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def embed_audio(model, items: Sequence[np.ndarray | str | os.PathLike], *, batch_size: int = 16,
                progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Audio embeddings (N, E) for waveforms or paths (decoded with ``load_audio`` at the model's
    rate; an unreadable file raises ``AudioError`` naming it). Clips of equal length are batched;
    ``progress(n)`` is called after each batch with the number of items done."""
    model.eval()
    dev = _device(model)
    waves = [it if isinstance(it, np.ndarray) else load_audio(it, sr=model.sample_rate) for it in items]
    out = np.zeros((len(waves), model.cfg.embed_dim), dtype=np.float32)
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and j - i < batch_size and len(waves[order[j]]) == len(waves[order[i]]):
            j += 1
        idx = order[i:j]
        batch = torch.from_numpy(np.stack([np.asarray(waves[k], dtype=np.float32) for k in idx])).to(dev)
        out[idx] = model.encode_audio(batch).float().cpu().numpy()
        if progress:
            progress(j - i)
        i = j
    return out


@torch.no_grad()
def embed_text(model, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """Text embeddings (N, E) for ``texts``."""
    model.eval()
    chunks = [model.encode_text(list(texts[i : i + batch_size])).float().cpu().numpy()
              for i in range(0, len(texts), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, model.cfg.embed_dim), dtype=np.float32)
