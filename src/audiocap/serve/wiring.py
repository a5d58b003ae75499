"""The only place the service touches the model modules: CLAP, the vector index, the captioner.

Kept small on purpose: each function adapts one call of :mod:`audiocap.models.clap` /
:mod:`audiocap.embed` (CLAP, Elizalde et al. 2023), :mod:`audiocap.index` (faiss inner-product
search over unit vectors) or :mod:`audiocap.captioning` (encoder-decoder captioner with beam
search) to the :class:`audiocap.serve.backend.Backend` protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

def load_clap_model(folder: Path, *, device: str = "cpu"):
    """A CLAP checkpoint folder (kind "clap") in eval mode on ``device``."""
    from audiocap.models.clap import load_clap

    return load_clap(folder, device=device)


def load_index(folder: Path):
    """A :class:`audiocap.index.VectorIndex` folder (faiss file + index.json, no pickle)."""
    from audiocap.index import VectorIndex

    return VectorIndex.load(folder)


def load_captioner(folder: Path, *, device: str = "cpu"):
    """A captioner checkpoint folder wrapped in its captioning pipeline (frozen tower + model)."""
    from audiocap.captioning import CaptionPipeline, load_captioner as load_one

    return CaptionPipeline([load_one(folder, device=device)])


def embed_text(clap, texts: list[str]) -> np.ndarray:
    """CLAP text embeddings (N, D), unit rows."""
    from audiocap.embed import embed_text as clap_embed_text

    return clap_embed_text(clap, texts)


def embed_audio(clap, wave: np.ndarray) -> np.ndarray:
    """One CLAP query embedding (1, D) for a waveform (N,) at the model's rate.

    Embedded exactly the way ``audiocap index build`` embedded the files
    (:func:`audiocap.search.embed_wave`: whole clips, or averaged windows for long ones).
    """
    from audiocap.search import ClapEmbedder, embed_wave

    return embed_wave(ClapEmbedder(clap), wave)[0][None, :]


def search(index, query: np.ndarray, k: int) -> list[tuple[str, float, str | None]]:
    """Top-k ``(id, cosine score, first caption or None)`` for one query (1, D)."""
    hits = index.hits(query, k)[0]
    return [(str(h["id"]), float(h["score"]), (h.get("captions") or [None])[0]) for h in hits]


def index_items(index) -> Iterator[tuple[str, Any]]:
    """``(id, audio path or None)`` of every indexed item."""
    for item in index.items:
        yield str(item["id"]), item.get("path")


def caption(pipeline, wave: np.ndarray, *, sr: int, beam: int) -> list[str]:
    """Caption a waveform (N,) at ``sr`` with beam size ``beam`` (1 = greedy); best first."""
    from audiocap.audio.io import resample

    wave = resample(wave, sr, int(pipeline.tower.sample_rate))
    pipeline.beam = int(beam)  # the caller holds the model lock, so this cannot race
    return [c.text for c in pipeline.caption_wave(wave, name="upload")]
