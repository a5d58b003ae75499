"""CLAP at inference: load a checkpoint with its long-audio policy, embed files through the policy.

CLAP (Elizalde et al., "CLAP: Learning Audio Concepts from Natural Language Supervision",
ICASSP 2023) is trained on clips of ``clip_seconds``; a longer file is cut by
:func:`audiocap.audio.policy.audio_windows` and its window embeddings are averaged and
re-normalized (:func:`audiocap.audio.policy.pool_embeddings`). Indexing, audio queries, the web
service, ``eval clap`` on trainable towers and WSAC's audio side all embed through
:func:`embed_clip`, so a file gets one vector whichever path asks.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from audiocap.audio.policy import AudioPolicy, PolicyError, audio_policy_of, audio_windows, policy_from_recipe, \
    pool_embeddings, stream_windows


def load_clap(folder: str | os.PathLike, device: str | torch.device | None = None) -> Any:
    """Load a ``clap`` checkpoint folder (:func:`audiocap.models.clap.load_clap`) in eval mode on
    ``device`` with ``model.audio_policy`` set from its recipe (the default for old checkpoints)."""
    from audiocap.checkpoint import read_recipe
    from audiocap.models.clap import load_clap as load_weights

    model = load_weights(folder, device)
    if not isinstance(getattr(model, "audio_policy", None), AudioPolicy):
        model.audio_policy = policy_from_recipe(read_recipe(folder), "clap", where=f"{folder}/recipe.yaml")
    return model


def embed_clip(embed_audio: Callable[[list[np.ndarray]], np.ndarray], wave: np.ndarray, *, sr: int,
               policy: AudioPolicy) -> tuple[np.ndarray, int]:
    """One L2-normalized embedding (D,) of a mono wave (N,) at ``sr``: the wave is cut by
    ``policy``, ``embed_audio`` (window waves -> (W, D) unit rows) embeds the windows, and their
    normalized mean is returned with the number of windows."""
    if policy.combine != "mean":
        raise PolicyError(f"an embedding model needs audio_policy.combine 'mean', got {policy.combine!r}")
    windows, _ = audio_windows(wave, sr=sr, policy=policy)
    embs = np.asarray(embed_audio(windows), dtype=np.float32)  # (W, D)
    if embs.ndim != 2 or embs.shape[0] != len(windows):
        raise ValueError(f"embed_audio returned shape {embs.shape} for {len(windows)} window(s)")
    return pool_embeddings(embs), len(windows)


# Windows per embed_audio call when streaming: the shipped aisfx tower's activations for 16 windows
# of 10 s at 44.1 kHz peak at ~700 MB, for 4 at ~285 MB, with embeddings bit-identical to batches of 16
# (2 or 1 differ by ~1e-7).
WINDOW_BATCH = 4


def embed_stream(embed_audio: Callable[[list[np.ndarray]], np.ndarray], chunks: Iterable[np.ndarray], *, sr: int,
                 policy: AudioPolicy, batch: int = WINDOW_BATCH) -> tuple[np.ndarray, int, int]:
    """:func:`embed_clip` of a wave that arrives in chunks (:func:`audiocap.audio.io.stream_audio`):
    windows are cut as the samples arrive (:func:`audiocap.audio.policy.stream_windows`) and
    embedded ``batch`` at a time, so memory holds one batch of windows plus the window
    embeddings (2 KB per window at 512 dimensions), not the wave. Same vector as
    :func:`embed_clip` on the whole wave. Returns ``(embedding (D,), n_windows, n_samples)``."""
    if policy.combine != "mean":
        raise PolicyError(f"an embedding model needs audio_policy.combine 'mean', got {policy.combine!r}")
    counted = [0]

    def count(it: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for chunk in it:
            counted[0] += len(chunk)
            yield chunk

    embs = []
    windows = stream_windows(count(chunks), sr=sr, policy=policy)
    while group := [w for w, _ in itertools.islice(windows, batch)]:
        e = np.asarray(embed_audio(group), dtype=np.float32)  # (b, D)
        if e.ndim != 2 or e.shape[0] != len(group):
            raise ValueError(f"embed_audio returned shape {e.shape} for {len(group)} window(s)")
        embs.append(e)
    return pool_embeddings(np.concatenate(embs)), sum(len(e) for e in embs), counted[0]


def embed_clips(model: Any, items: Sequence[np.ndarray | str | os.PathLike], *,
                policy: AudioPolicy | None = None, batch_size: int = 16) -> np.ndarray:
    """Embeddings (N, E) of waveforms (at ``model.sample_rate``) or audio files with a CLAP model,
    each through :func:`embed_clip` under ``policy`` (default: the model's); files are decoded as a
    stream (:func:`embed_stream`), so a long one never sits in memory whole."""
    from audiocap.audio.io import stream_audio
    from audiocap.embed import embed_audio

    policy = policy or audio_policy_of(model)
    sr = int(model.sample_rate)

    def embed(ws: list[np.ndarray]) -> np.ndarray:
        return embed_audio(model, ws, batch_size=batch_size)

    out = [embed_clip(embed, it, sr=sr, policy=policy)[0] if isinstance(it, np.ndarray) else
           embed_stream(embed, stream_audio(it, sr=sr), sr=sr, policy=policy)[0] for it in items]
    return np.stack(out) if out else np.zeros((0, model.cfg.embed_dim), dtype=np.float32)
