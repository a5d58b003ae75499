"""Zero-shot classification with CLAP: which of a few candidate labels a sound is.

CLAP's signature use (Elizalde et al., "CLAP: Learning Audio Concepts from Natural Language
Supervision", ICASSP 2023): each label becomes a text prompt ("the sound of {label}"), the
prompts and the sound are embedded in the shared space, and the probabilities are the softmax
of the cosine similarities times the model's learned logit scale -- the same logits CLAP was
trained on, so a label's probability is relative to the other candidates, not an absolute
"this is a dog" confidence. ``eval clap`` scores zero-shot accuracy with the same prompts and
scores (:mod:`audiocap.evaluation.clap`), the CLI (``audiocap classify``), the Python API
(:func:`audiocap.classify`) and the web service (``POST /v1/classify``) all call
:func:`classify_embeddings`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

DEFAULT_PROMPT = "the sound of {}"
MAX_LABELS = 200  # one text batch per request; the page and the CLI never need more
MAX_LABEL_CHARS = 100


class LabelError(ValueError):
    """Candidate labels that cannot be used (none, too many, too long, a bad prompt)."""


def parse_labels(text: str | Sequence[str]) -> list[str]:
    """Candidate labels from ``"dog, cat, rain"`` (commas or new lines) or a list of strings:
    stripped, blanks dropped, repeats (ignoring case) kept once, in the order given.

    Raises :class:`LabelError` for fewer than two labels, more than :data:`MAX_LABELS`, or a label over
    :data:`MAX_LABEL_CHARS` characters.
    """
    parts = re.split(r"[,\n\r]", text) if isinstance(text, str) else [str(t) for t in text]
    labels, seen = [], set()
    for part in parts:
        label = " ".join(part.split())
        if label and label.lower() not in seen:
            seen.add(label.lower())
            labels.append(label)
    if len(labels) < 2:  # one label always gets 100 %
        raise LabelError(f"{len(labels) or 'no'} candidate label{'' if len(labels) == 1 else 's'}; give at least "
                         "two to choose between, e.g. \"dog barking, rain, siren\"")
    if len(labels) > MAX_LABELS:
        raise LabelError(f"{len(labels)} candidate labels; the limit is {MAX_LABELS}")
    long = next((label for label in labels if len(label) > MAX_LABEL_CHARS), None)
    if long is not None:
        raise LabelError(f"label {long[:40]!r}... is {len(long)} characters; the limit is {MAX_LABEL_CHARS}")
    return labels


def label_prompts(labels: Sequence[str], prompt: str = DEFAULT_PROMPT) -> list[str]:
    """The text each label is embedded as: ``prompt`` with ``{}`` replaced by the label."""
    if prompt.count("{}") != 1:
        raise LabelError(f"the prompt must contain '{{}}' once where the label goes, got {prompt!r}")
    return [prompt.replace("{}", label) for label in labels]


def label_scores(audio_emb: Any, label_emb: Any) -> np.ndarray:
    """Cosine similarity (N, K) of unit audio embeddings (N, D) and unit label prompt embeddings
    (K, D), numpy arrays or torch tensors."""
    return _array(audio_emb) @ _array(label_emb).T


def _array(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)


def label_probabilities(scores: np.ndarray, logit_scale: float) -> np.ndarray:
    """Softmax over the labels (last axis) of ``logit_scale`` x cosine ``scores``: rows sum to 1."""
    logits = float(logit_scale) * np.asarray(scores, dtype=np.float64)
    logits -= logits.max(axis=-1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=-1, keepdims=True)


def logit_scale_of(model: Any) -> float:
    """The trained temperature of a CLAP model: ``exp(logit_scale)`` clamped as in training."""
    scale = model.scale() if callable(getattr(model, "scale", None)) else getattr(model, "logit_scale", None)
    if scale is None:
        raise LabelError(f"{type(model).__name__} has no logit scale; zero-shot needs a CLAP model")
    return float(scale.detach().cpu()) if hasattr(scale, "detach") else float(scale)


def classify_embeddings(audio_emb: np.ndarray, labels: Sequence[str],
                        embed_text: Callable[[list[str]], np.ndarray], logit_scale: float, *,
                        prompt: str = DEFAULT_PROMPT) -> list[list[dict[str, Any]]]:
    """For each audio embedding (N, D): every label with its ``probability`` and ``cosine``,
    most probable first (ties keep the given order)."""
    label_emb = embed_text(label_prompts(labels, prompt))  # (K, D)
    scores = label_scores(audio_emb, label_emb)  # (N, K)
    probs = label_probabilities(scores, logit_scale)
    out = []
    for p, s in zip(probs, scores):
        order = sorted(range(len(labels)), key=lambda j: -p[j])
        out.append([{"label": labels[j], "probability": float(p[j]), "cosine": float(s[j])} for j in order])
    return out


def classify_clips(model: Any, items: Sequence[Any], labels: Sequence[str], *,
                   prompt: str = DEFAULT_PROMPT) -> list[list[dict[str, Any]]]:
    """:func:`classify_embeddings` for waveforms (at ``model.sample_rate``) or audio files with a
    loaded CLAP model, each embedded as search embeds it (the checkpoint's long-audio policy)."""
    from audiocap.embed import embed_text
    from audiocap.inference.clap import embed_clips

    audio_emb = embed_clips(model, list(items))  # (N, D)
    return classify_embeddings(audio_emb, list(labels), lambda texts: embed_text(model, texts),
                               logit_scale_of(model), prompt=prompt)


def default_labels() -> list[str]:
    """The labels used when none are given: the tags of the foley lexicon's sound classes (the
    101 classes the shipped CLAP was trained on, "dog barking" ... "birds singing")."""
    from audiocap.data.foley.captions import lexicon

    return parse_labels([entry["tag"] for entry in lexicon()["labels"].values()])


__all__ = ["DEFAULT_PROMPT", "LabelError", "classify_clips", "classify_embeddings", "default_labels", "label_probabilities",
           "label_prompts", "label_scores", "logit_scale_of", "parse_labels"]
