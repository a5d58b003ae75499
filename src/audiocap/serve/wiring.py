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

def load_clap_model(folder: Path, *, device: str = "cpu", backend: str = "torch"):
    """A CLAP checkpoint folder (kind "clap") in eval mode on ``device``, with its long-audio policy
    (loaded through the one registry, :func:`audiocap.checkpoint.load_model`); with ``backend``
    "onnx" (or an ONNX export folder) an :class:`audiocap.onnx_backend.OnnxClapEmbedder`."""
    from audiocap.checkpoint import load_model
    from audiocap.onnx_backend import OnnxClapEmbedder, is_export, onnx_folder

    if backend == "onnx" or is_export(folder):
        return OnnxClapEmbedder(onnx_folder(folder, "clap"))
    return load_model(folder, device=device, expect=("clap",))


def load_index(folder: Path):
    """A :class:`audiocap.index.VectorIndex` folder (faiss file + index.json, no pickle)."""
    from audiocap.index import VectorIndex

    return VectorIndex.load(folder)


def load_captioner(folder: Path, *, device: str = "cpu", backend: str = "torch"):
    """A captioning checkpoint (kind ``captioner`` or ``wsac``) ready to caption waveforms; with
    ``backend`` "onnx" (or an ONNX export folder) a captioner's ONNX pipeline
    (:class:`audiocap.onnx_backend.OnnxCaptionPipeline`, one model, fp32).

    Loaded through the one registry :func:`audiocap.checkpoint.load_model`. A captioner is
    wrapped in its pipeline (frozen tower and model on ``device``, long files windowed by the
    checkpoint's policy as ``audiocap caption`` does); a WSAC model (Kouzelis & Katsouros, 2023)
    in :class:`WsacWaves`, which embeds the wave with its space's CLAP model on ``device``.
    """
    from audiocap.checkpoint import checkpoint_kind, load_model
    from audiocap.onnx_backend import OnnxCaptionPipeline, is_export, onnx_folder

    if backend == "onnx" or is_export(folder):
        return OnnxCaptionPipeline(onnx_folder(folder, "captioner"))
    kind = checkpoint_kind(folder, expect=("captioner", "wsac"))
    model = load_model(folder, device=device)
    if kind == "wsac":
        return WsacWaves(model, device=device)
    from audiocap.captioning import CaptionPipeline

    return CaptionPipeline([model], device=device)


class WsacWaves:
    """A WSAC model behind the ``caption_wave`` call the service makes (direct decoding).

    The wave is embedded by the CLAP model of the checkpoint's ``clap:FOLDER`` space exactly as
    the index and ``audiocap caption`` embed files (:func:`audiocap.search.embed_wave`: the CLAP
    checkpoint's long-audio policy) and decoded with beam search.
    """

    def __init__(self, wsac, *, device: str = "cpu") -> None:
        from audiocap.checkpoint import CheckpointError, load_model

        if not str(wsac.space).startswith("clap:"):
            raise CheckpointError(f"WSAC space '{wsac.space}' has no audio tower; serve needs a "
                                  "WSAC model trained with --space clap:CHECKPOINT_FOLDER")
        self.wsac, self.beam = wsac, 3
        self.clap = load_model(wsac.space[5:], device=device, expect=("clap",))
        self.tower = self.clap  # the service reads ``tower.sample_rate``
        self.policy = self.clap.audio_policy

    @property
    def window(self) -> float:
        return float(self.policy.clip_seconds)

    def caption_wave(self, wave: np.ndarray, *, name: str = "upload", per_window: bool = False) -> list:
        """One caption of the pooled embedding, or (``per_window``) one per policy window."""
        import torch

        from audiocap.audio.policy import audio_windows
        from audiocap.search import as_embedder, embed_wave

        sr = int(self.clap.sample_rate)
        if per_window:
            segs, spans = audio_windows(wave, sr=sr, policy=self.policy)
        else:
            segs, spans = [wave], [(0.0, len(wave) / sr)]
        embedder = as_embedder(self.clap)
        embs = np.stack([embed_wave(embedder, s)[0] for s in segs])  # (W, D)
        texts = self.wsac.caption_embeddings(torch.from_numpy(embs).float(), beam=self.beam)
        return [_Text(t, a, b) for t, (a, b) in zip(texts, spans)]


class _Text:
    def __init__(self, text: str, start: float = 0.0, end: float = 0.0) -> None:
        self.text, self.start, self.end = text, round(start, 3), round(end, 3)


def embed_text(clap, texts: list[str]) -> np.ndarray:
    """CLAP text embeddings (N, D), unit rows (a torch model, or an embedder such as the onnx one)."""
    from audiocap.search import as_embedder

    return as_embedder(clap).embed_text(texts)


def embed_audio(clap, wave: np.ndarray) -> np.ndarray:
    """One CLAP query embedding (1, D) for a waveform (N,) at the model's rate.

    Embedded exactly the way ``audiocap index build`` embedded the files
    (:func:`audiocap.search.embed_wave`: whole clips, or averaged windows for long ones).
    """
    from audiocap.search import as_embedder, embed_wave

    return embed_wave(as_embedder(clap), wave)[0][None, :]


def classify(clap, wave: np.ndarray, labels: list[str], prompt: str) -> list[dict]:
    """Zero-shot probabilities of ``labels`` for a waveform (N,) at the model's rate
    (:func:`audiocap.zeroshot.classify_embeddings`, the model's logit scale)."""
    from audiocap.zeroshot import classify_embeddings, logit_scale_of

    return classify_embeddings(embed_audio(clap, wave), labels, lambda texts: embed_text(clap, texts),
                               logit_scale_of(clap), prompt=prompt)[0]


def search(index, query: np.ndarray, k: int) -> list[tuple[str, float, str | None]]:
    """Top-k ``(id, cosine score, first caption or None)`` for one query (1, D)."""
    hits = index.hits(query, k)[0]
    return [(str(h["id"]), float(h["score"]), (h.get("captions") or [None])[0]) for h in hits]


def index_items(index) -> Iterator[tuple[str, Any]]:
    """``(id, audio path or None)`` of every indexed item."""
    for item in index.items:
        yield str(item["id"]), item.get("path")


def caption(pipeline, wave: np.ndarray, *, sr: int, beam: int) -> list[str]:
    """Caption a waveform (N,) at ``sr`` with beam size ``beam`` (1 = greedy); best first. A long
    wave gets the one caption ``audiocap caption`` prints for it (its long-audio policy)."""
    from audiocap.audio.io import resample

    wave = resample(wave, sr, int(pipeline.tower.sample_rate))
    pipeline.beam = int(beam)  # the caller holds the model lock, so this cannot race
    return [c.text for c in pipeline.caption_wave(wave, name="upload")]


def caption_windows(pipeline, wave: np.ndarray, *, sr: int, beam: int) -> list[tuple[float, float, str]]:
    """One caption per window of the model's long-audio policy, ``[(start s, end s, caption)]``:
    what ``audiocap caption --per-window`` prints for the same audio (:mod:`audiocap.audio.policy`)."""
    from audiocap.audio.io import resample

    wave = resample(wave, sr, int(pipeline.tower.sample_rate))
    pipeline.beam = int(beam)  # the caller holds the model lock, so this cannot race
    return [(c.start, c.end, c.text) for c in pipeline.caption_wave(wave, name="upload", per_window=True)]
