"""The shared audio-text embedding space WSAC decodes from, behind one string spec.

WSAC (Kouzelis & Katsouros, DCASE 2023) trains a caption decoder on frozen *text* embeddings
of a contrastive model and feeds it *audio* embeddings of the same space at inference. The
space is named by a spec string stored in the checkpoint recipe:

- ``minilm``: all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalized). Text only; useful
  to develop and to measure caption reconstruction from text, it has no audio tower.
- ``clap:FOLDER``: the projections of a trained CLAP checkpoint folder (frozen towers), loaded
  through :data:`audiocap.checkpoint.LOADERS` with its long-audio policy.

Text embeddings are cached on disk (safetensors, keyed by the spec and the exact texts), because
embedding tens of thousands of captions is the slowest step of text-only training on a CPU.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import torch

TextEmbedder = Callable[[list[str]], torch.Tensor]
AudioEmbedder = Callable[[list], torch.Tensor]


class SpaceError(ValueError):
    """An embedding-space spec is unknown (a broken CLAP folder it names is a CheckpointError)."""


def _clap(folder: str, device: str | torch.device = "cpu"):
    from audiocap.checkpoint import CheckpointError, load_model

    try:
        return load_model(folder, device=device, expect=("clap",))
    except CheckpointError as exc:
        raise CheckpointError(f"space 'clap:{folder}': {exc}") from None  # still a broken checkpoint


def text_embedder(spec: str, *, device: str | torch.device = "cpu") -> TextEmbedder:
    """Return ``texts -> (N, D)`` L2-normalized text embeddings of the space ``spec``.

    The text side of the shared space that WSAC's decoder is trained on (Kouzelis &
    Katsouros, 2023): ``minilm`` or ``clap:FOLDER`` (frozen CLAP text tower + projection).
    """
    if spec == "minilm":
        from audiocap.text.minilm import sentence_embeddings

        return lambda texts: sentence_embeddings(list(texts))
    if spec.startswith("clap:"):
        from audiocap.embed import embed_text

        model = _clap(spec[5:], device)
        return lambda texts: torch.from_numpy(embed_text(model, list(texts))).float()
    raise SpaceError(f"unknown embedding space '{spec}'; use 'minilm' or 'clap:CHECKPOINT_FOLDER'")


def audio_embedder(spec: str, *, device: str | torch.device = "cpu") -> AudioEmbedder:
    """Return ``items -> (N, D)`` L2-normalized audio embeddings of the space ``spec``.

    ``items`` are audio file paths or mono waveforms at the model's rate, each embedded through
    the CLAP checkpoint's long-audio policy (:func:`audiocap.inference.clap.embed_clip`: windows,
    normalized mean), exactly as search and serving embed them. Only CLAP spaces have an audio
    tower; WSAC feeds this embedding (or its nearest text memory, NND, or its projection onto
    the memory) to the text-trained decoder (Kouzelis & Katsouros, 2023).
    """
    if spec.startswith("clap:"):
        from audiocap.inference.clap import embed_clips

        model = _clap(spec[5:], device)
        return lambda items: torch.from_numpy(embed_clips(model, list(items))).float()
    raise SpaceError(
        f"embedding space '{spec}' has no audio tower; train WSAC with --space clap:CHECKPOINT_FOLDER "
        "to caption audio"
    )


def cached_text_embeddings(
    texts: list[str], spec: str, cache_dir: str | os.PathLike | None, *, embed: TextEmbedder | None = None
) -> torch.Tensor:
    """Embed ``texts`` in space ``spec``, reusing ``cache_dir/<hash>.safetensors`` when present.

    The key hashes the spec and every text in order, so a changed caption list or space never
    reuses stale vectors. Writes are atomic. Returns (N, D) float32.
    """
    from safetensors.torch import load_file, save_file

    from audiocap.fileio import atomic_path

    key = hashlib.sha256("\x1f".join([spec, *texts]).encode("utf-8")).hexdigest()[:24]
    path = Path(cache_dir) / f"text-{key}.safetensors" if cache_dir else None
    if path is not None and path.exists():
        return load_file(str(path))["embeddings"]
    from tqdm import tqdm

    embed = embed or text_embedder(spec)
    chunks = [texts[i : i + 512] for i in range(0, len(texts), 512)]
    parts = [embed(c).float() for c in tqdm(chunks, desc=f"embed captions ({spec})", unit="x512",
                                             disable=len(chunks) < 2)]
    emb = torch.cat(parts).contiguous() if parts else torch.zeros(0, 0)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".safetensors") as tmp:
            save_file({"embeddings": emb}, str(tmp))
    return emb
