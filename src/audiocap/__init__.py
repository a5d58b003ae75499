"""audiocap: contrastive audio-language learning (CLAP retrieval, captioning, WSAC, DCASE metrics).

The public API, mirroring the command line (imports are lazy, so ``import audiocap`` is cheap):

- :func:`load` — a trained checkpoint folder of any kind (``clap``, ``captioner``, ``wsac``).
- :func:`embed_audio` / :func:`embed_text` — L2-normalized CLAP embeddings (N, D) as numpy.
- :func:`caption` — captions for audio files from a captioner or WSAC checkpoint.
- :func:`search` — rank the files of a search index against a text or an audio query.
- :func:`classify` — zero-shot: the probability of each candidate label for a sound (CLAP).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__version__ = "0.1.0"


def load(folder: str | os.PathLike, *, device: str | None = None) -> Any:
    """Load a checkpoint folder, dispatching on the ``kind`` in its ``recipe.yaml``.

    CLAP checkpoints give a ``ClapModel`` (Elizalde et al., 2023), captioners a
    ``LoadedCaptioner`` and WSAC checkpoints a ``WSAC`` text-only captioner (Kouzelis &
    Katsouros, 2023), through the one registry :data:`audiocap.checkpoint.LOADERS`. Raises
    :class:`audiocap.checkpoint.CheckpointError` for other folders.
    """
    from audiocap.checkpoint import load_model

    return load_model(folder, device=device or "cpu")


def _resolve(model: Any, kind: str) -> Any:
    """``model``, or the shipped default of ``kind`` for None / ``"default"`` (:mod:`audiocap.pretrained`)."""
    from audiocap.pretrained import resolve_model

    return resolve_model(model, kind)


def embed_audio(model: Any, items: Sequence[Any], *, batch_size: int = 16) -> Any:
    """CLAP audio embeddings (N, D), unit rows, for waveforms (at ``model.sample_rate``) or paths.

    Each item is embedded through the checkpoint's long-audio policy (windows, normalized mean;
    :mod:`audiocap.audio.policy`), exactly as search, serving and ``eval clap`` embed it.
    """
    from audiocap.inference.clap import embed_clips

    model = load(_resolve(model, "clap")) if model is None or isinstance(model, (str, os.PathLike)) else model
    return embed_clips(model, list(items), batch_size=batch_size)


def embed_text(model: Any, texts: Sequence[str], *, batch_size: int = 64) -> Any:
    """CLAP text embeddings (N, D), unit rows, in the same space as :func:`embed_audio`."""
    from audiocap.embed import embed_text as _embed_text

    model = load(_resolve(model, "clap")) if model is None or isinstance(model, (str, os.PathLike)) else model
    return _embed_text(model, list(texts), batch_size=batch_size)


def caption(files: Sequence[str | os.PathLike], model: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
            *, beam: int = 3, per_window: bool | None = None, **kw: Any) -> list[Any]:
    """Caption audio files with a checkpoint folder, or an ensemble given as a list of folders.

    Dispatches on the checkpoint kind (captioner: encoder-decoder with beam search; wsac: text-only
    prefix decoder with ``strategy=direct|nnd|projection``); captioner checkpoints also take
    ``precision="auto"|"fp32"|"bf16"`` for the frozen tower (see :mod:`audiocap.captioning`).
    ``per_window`` (captioners): None gives one caption for a file of at most 60 s and one per
    window beyond, True one per window, False one per file.
    Returns ``Caption`` records (file, start, end, text, score).
    """
    from audiocap.captioning import captioner_for

    models = [_resolve(model, "captioner")] if model is None or isinstance(model, (str, os.PathLike)) else list(model)
    return captioner_for(models[0])(list(files), models, beam=beam, per_window=per_window, **kw)


def search(index: Any, text: str | None = None, audio: Any = None, k: int = 10, **kw: Any) -> list[dict]:
    """Rank indexed files against one text or one audio query (see :func:`audiocap.search.search`)."""
    from audiocap.search import search as _search

    return _search(index, text=text, audio=audio, k=k, **kw)


def classify(audio: Any, labels: str | Sequence[str] | None = None, model: Any = None, *,
             prompt: str | None = None) -> list[dict] | list[list[dict]]:
    """Zero-shot classification: which of ``labels`` each sound is (see :mod:`audiocap.zeroshot`).

    ``audio`` is one file path or waveform (at ``model.sample_rate``), or a list of them;
    ``labels`` a list or ``"dog barking, rain, siren"`` (default: the foley lexicon's 101 sound
    classes); ``model`` a CLAP folder or loaded model (default: the shipped CLAP). Each label is
    embedded as ``prompt`` (default "the sound of {}"); probabilities are the softmax of the
    cosines times the model's logit scale, so they sum to 1 over the labels given. Returns, per
    sound, ``[{"label", "probability", "cosine"}, ...]`` most probable first (one list for one
    sound, a list of lists for a list).
    """
    from audiocap.zeroshot import DEFAULT_PROMPT, classify_clips, default_labels, parse_labels

    model = load(_resolve(model, "clap")) if model is None or isinstance(model, (str, os.PathLike)) else model
    one = not isinstance(audio, (list, tuple))
    labels = default_labels() if labels is None else parse_labels(labels)
    out = classify_clips(model, [audio] if one else list(audio), labels, prompt=prompt or DEFAULT_PROMPT)
    return out[0] if one else out


__all__ = ["__version__", "caption", "classify", "embed_audio", "embed_text", "load", "search"]
