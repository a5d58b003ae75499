"""Embed audio and text with a trained CLAP model: the functions search, serving and WSAC use.

``embed_audio(model, items)`` takes waveforms (at ``model.sample_rate``) or file paths;
``embed_text(model, texts)``; both return float32 numpy arrays (N, E) of unit vectors, so a
dot product is the cosine similarity of CLAP (Elizalde et al., ICASSP 2023).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence

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
    for idx, batch in equal_length_batches(waves, batch_size):
        out[idx] = model.encode_audio(torch.from_numpy(batch).to(dev)).float().cpu().numpy()
        if progress:
            progress(len(idx))
    return out


def equal_length_batches(waves: Sequence[np.ndarray], batch_size: int) -> Iterator[tuple[list[int], np.ndarray]]:
    """``(indices, float32 batch (b, N))`` of at most ``batch_size`` waves of one length, shortest
    first: audio towers take no padding mask, so only equal lengths share a batch (the torch and
    ONNX embedders batch alike)."""
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    for _, group in itertools.groupby(order, key=lambda i: len(waves[i])):
        same = list(group)
        for s in range(0, len(same), batch_size):
            idx = same[s : s + batch_size]
            yield idx, np.stack([np.asarray(waves[k], dtype=np.float32) for k in idx])


@torch.no_grad()
def embed_text(model, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """Text embeddings (N, E) for ``texts``."""
    model.eval()
    chunks = [model.encode_text(list(texts[i : i + batch_size])).float().cpu().numpy()
              for i in range(0, len(texts), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, model.cfg.embed_dim), dtype=np.float32)
