"""Retrieval metrics of DCASE Task 6B: R@1/5/10 and mAP@10, text->audio and audio->text.

Language-based audio retrieval (DCASE 2022-2024 Task 6B; Xie et al., "Language-based Audio
Retrieval Task in DCASE 2022 Challenge", DCASE 2022) ranks the whole collection for every query.
Text->audio: each caption has exactly one relevant audio clip; R@k is the fraction of captions
whose clip is in the top k, and AP@10 is 1/rank when rank <= 10, else 0. Audio->text: each clip
has several relevant captions; R@k is the fraction of clips with at least one of their captions
in the top k, and AP@10 = (1 / min(n_relevant, 10)) * sum over relevant captions ranked
r <= 10 of precision@r. mAP@10 is the mean AP@10 over queries.

Ties: by default a query's relevant items are ranked *after* every irrelevant item with the same
score (pessimistic), so a constant similarity matrix gets the worst ranks rather than lucky ones.
``ties="optimistic"`` ranks them first and ``ties="stable"`` keeps collection order.
When k is larger than the collection, the whole collection is the top k.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor on any device
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def rank_metrics(sim, relevant, *, ks: Sequence[int] = (1, 5, 10), map_k: int = 10,
                 ties: str = "pessimistic") -> dict[str, float]:
    """R@k for each k in ``ks`` and mAP@``map_k`` from a similarity matrix.

    ``sim`` (Q, C): score of every collection item for every query (higher = better).
    ``relevant`` (Q, C) bool: which items are relevant to which query (each query needs one).
    Returns ``{"R@1": .., "R@5": .., "R@10": .., "mAP@10": ..}`` with values in [0, 1]: the means
    over queries of :func:`per_query_metrics`.
    """
    return {k: float(v.mean()) for k, v in per_query_metrics(sim, relevant, ks=ks, map_k=map_k, ties=ties).items()}


def per_query_metrics(sim, relevant, *, ks: Sequence[int] = (1, 5, 10), map_k: int = 10,
                      ties: str = "pessimistic") -> dict[str, np.ndarray]:
    """The figures of :func:`rank_metrics` per query: ``{"R@1": (Q,), .., "mAP@10": (Q,)}`` with
    each query's hit (0/1) in the top k and its AP@``map_k`` (for paired comparisons of two
    systems query by query, e.g. a bootstrap over queries)."""
    sim = _as_numpy(sim)
    rel = np.asarray(relevant, dtype=bool)
    if sim.ndim != 2 or rel.shape != sim.shape:
        raise ValueError(f"similarity {sim.shape} and relevance {rel.shape} must be equal 2-D shapes")
    n_rel = rel.sum(1)
    if (n_rel == 0).any():
        raise ValueError(f"query {int(np.argmin(n_rel))} has no relevant item")
    if not np.isfinite(sim).all():
        raise ValueError("similarity matrix contains NaN or infinite values")
    q, c = sim.shape
    index = np.broadcast_to(np.arange(c), sim.shape)
    if ties == "pessimistic":
        tie_key = rel.astype(np.int8)  # irrelevant (0) before relevant (1)
    elif ties == "optimistic":
        tie_key = (~rel).astype(np.int8)
    elif ties == "stable":
        tie_key = np.zeros(sim.shape, dtype=np.int8)
    else:
        raise ValueError(f"ties must be pessimistic, optimistic or stable, not {ties!r}")
    order = np.lexsort((index, tie_key, -sim), axis=-1)  # (Q, C) best first
    rel_sorted = np.take_along_axis(rel, order, axis=1)  # (Q, C)
    out = {}
    for k in ks:
        out[f"R@{k}"] = rel_sorted[:, : min(k, c)].any(1).astype(np.float64)  # (Q,)
    top = rel_sorted[:, : min(map_k, c)]  # (Q, K)
    precision = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    out[f"mAP@{map_k}"] = (precision * top).sum(1) / np.minimum(n_rel, map_k)  # (Q,) AP@K
    return out


def _relevance(audio_of_text, n_audio: int) -> np.ndarray:
    audio_of_text = np.asarray(audio_of_text, dtype=np.int64)
    if audio_of_text.ndim != 1:
        raise ValueError("audio_of_text must be a 1-D array: the clip index of each caption")
    bad = np.nonzero((audio_of_text < 0) | (audio_of_text >= n_audio))[0]
    if bad.size:
        raise ValueError(f"caption {int(bad[0])} points at clip {int(audio_of_text[bad[0]])}, "
                         f"outside 0..{n_audio - 1}")
    rel = np.zeros((len(audio_of_text), n_audio), dtype=bool)  # (T, A)
    rel[np.arange(len(audio_of_text)), audio_of_text] = True
    return rel


def text_to_audio(sim_text_audio, audio_of_text, **kw) -> dict[str, float]:
    """DCASE Task 6B text->audio retrieval: ``sim_text_audio`` (T, A), ``audio_of_text`` (T,)
    the index of each caption's clip. See :func:`rank_metrics` for options."""
    sim = _as_numpy(sim_text_audio)
    return rank_metrics(sim, _relevance(audio_of_text, sim.shape[1]), **kw)


def audio_to_text(sim_audio_text, audio_of_text, **kw) -> dict[str, float]:
    """Audio->text retrieval: ``sim_audio_text`` (A, T); the captions of a clip (by
    ``audio_of_text``) are all relevant to it. See :func:`rank_metrics` for options."""
    sim = _as_numpy(sim_audio_text)
    return rank_metrics(sim, _relevance(audio_of_text, sim.shape[0]).T, **kw)


def retrieval_report(sim_audio_text, audio_of_text, **kw) -> dict[str, dict[str, float]]:
    """Both directions from one (A, T) audio-text similarity matrix."""
    sim = _as_numpy(sim_audio_text)
    return {"text_to_audio": text_to_audio(sim.T, audio_of_text, **kw),
            "audio_to_text": audio_to_text(sim, audio_of_text, **kw)}
