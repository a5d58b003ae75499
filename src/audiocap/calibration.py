"""Calibrated confidence for text-to-audio search: "is this a match?" instead of a raw cosine.

A CLAP cosine means little by itself: its scale depends on the model, and the best hit for a
query the library cannot answer ("rain" in a library without rain, "asdkjh qwe") still gets a
score. Calibration learns, on the validation split of the training data, how scores of matching
and non-matching (query, clip) pairs are distributed:

- positives: each caption with its own clip, and each tag text ("dog barking") with every clip
  carrying that tag (what people type);
- negatives: each caption and each tag text with the clips that share none of its labels.

From these it stores (``calibration.json`` beside the checkpoint):

- ``platt(s) = sigmoid(a·s + b)``: Platt scaling (Platt, 1999) fitted with the two classes
  weighted equally, so 0.5 is where a score is as typical of a match as of a non-match; the
  confidence shown to people is ``sigmoid(a·(s - match threshold))``, 50 % at the threshold;
- ``threshold``: the score that only ``max_fpr`` (1 %) of non-matching pairs reach. A hit counts
  as a *match* at or above it; when no hit of a query does, search says "no close match".
- ``neg_tail``: scores that a share ``fpr`` of non-matching pairs reach, for fpr from 10 % down to
  1e-5. In a library of N items, the best of N non-matching items beats the 1 % threshold most of
  the time, so search uses :meth:`Calibration.threshold_for` ``(N)``: the score reached by a share
  0.5/N of non-matching pairs (on average half a false match per query in that library), never
  below ``threshold``.

Only text queries are calibrated; audio-to-audio ("more like this") scores stay raw cosines.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

FILE = "calibration.json"


class CalibrationError(ValueError):
    """A calibration file or fit that cannot be used; the message says why."""


@dataclass
class Calibration:
    a: float
    b: float
    threshold: float
    info: dict[str, Any] = field(default_factory=dict)
    neg_tail: list[list[float]] = field(default_factory=list)  # [[fpr, score], ...], fpr decreasing

    def threshold_for(self, n_items: int | None) -> float:
        """The match threshold for a library of ``n_items`` (module docstring)."""
        if not n_items or not self.neg_tail:
            return self.threshold
        fpr = 0.5 / n_items
        tail = sorted(self.neg_tail, key=lambda x: -x[0])
        if fpr >= tail[0][0]:
            return self.threshold
        xs = np.log([t[0] for t in tail])[::-1]
        ys = np.array([t[1] for t in tail])[::-1]
        return max(self.threshold, float(np.interp(np.log(fpr), xs, ys)))

    def platt(self, scores: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """Platt's sigmoid(a·s + b): how typical a score is of matching vs non-matching pairs."""
        z = self.a * np.asarray(scores, dtype=np.float64) + self.b
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))

    def confidence(self, scores: np.ndarray | Sequence[float] | float, n_items: int | None = None) -> np.ndarray:
        """Confidence in [0, 1] shown to people: Platt's slope centred on the match threshold of a
        library of ``n_items``, so a hit is a match exactly when its confidence is >= 50 % (the page
        never says "no close match" above an "80 % match")."""
        z = self.a * (np.asarray(scores, dtype=np.float64) - self.threshold_for(n_items))
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))

    def is_match(self, scores: np.ndarray | Sequence[float] | float, n_items: int | None = None) -> np.ndarray:
        return np.asarray(scores, dtype=np.float64) >= self.threshold_for(n_items)

    def apply(self, hits: list[dict[str, Any]], n_items: int | None = None) -> list[dict[str, Any]]:
        """Add ``confidence`` (rounded to 1e-4) and ``match`` (in a library of ``n_items``) to hit
        records with a ``score``."""
        for h, (c, m) in zip(hits, self.judge([h["score"] for h in hits], n_items)):
            h["confidence"], h["match"] = c, m
        return hits

    def judge(self, scores: Sequence[float], n_items: int | None = None) -> list[tuple[float, bool]]:
        """``(confidence rounded to 1e-4, match)`` of each score in a library of ``n_items``."""
        if len(scores) == 0:
            return []
        s = np.asarray(scores, dtype=np.float64)
        return [(round(float(c), 4), bool(m)) for c, m in zip(self.confidence(s, n_items), self.is_match(s, n_items))]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "calibration") -> "Calibration":
        try:
            cal = cls(a=float(d["a"]), b=float(d["b"]), threshold=float(d["threshold"]), info=dict(d.get("info") or {}),
                      neg_tail=[[float(f), float(v)] for f, v in (d.get("neg_tail") or [])])
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"{where}: not a calibration (needs numbers a, b, threshold): {exc}") from None
        if not all(np.isfinite([cal.a, cal.b, cal.threshold])) or cal.a <= 0:
            raise CalibrationError(f"{where}: calibration values must be finite with a > 0")
        return cal


def fit_platt(pos: np.ndarray, neg: np.ndarray, *, iters: int = 100) -> tuple[float, float]:
    """Logistic regression p = sigmoid(a·s + b) on scores, classes weighted equally (Newton's
    method on the weighted log-loss, with a tiny ridge term for separable data)."""
    s = np.concatenate([pos, neg]).astype(np.float64)
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    w = np.concatenate([np.full(len(pos), 0.5 / len(pos)), np.full(len(neg), 0.5 / len(neg))])
    X = np.stack([s, np.ones_like(s)], axis=1)
    theta = np.zeros(2)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ theta, -60, 60)))
        grad = X.T @ (w * (p - y)) + 1e-6 * theta
        hess = (X * (w * p * (1 - p))[:, None]).T @ X + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(theta[0]), float(theta[1])


def fit(pos: np.ndarray, neg: np.ndarray, *, max_fpr: float = 0.01, info: dict[str, Any] | None = None) -> Calibration:
    """A :class:`Calibration` from scores of matching (``pos``) and non-matching (``neg``) pairs."""
    pos, neg = np.asarray(pos, np.float64).ravel(), np.asarray(neg, np.float64).ravel()
    if len(pos) < 10 or len(neg) < 10:
        raise CalibrationError(f"calibration needs >= 10 matching and non-matching pairs, got {len(pos)} and {len(neg)}")
    a, b = fit_platt(pos, neg)
    if not a > 0:
        raise CalibrationError("matching pairs do not score higher than non-matching ones; the model is not usable")
    threshold = float(np.quantile(neg, 1.0 - max_fpr))
    recall = float(np.mean(pos >= threshold))
    stats = {"n_pos": int(len(pos)), "n_neg": int(len(neg)), "max_fpr": max_fpr, "recall_at_threshold": recall,
             "pos_mean": float(pos.mean()), "neg_mean": float(neg.mean()),
             "neg_quantiles": {str(q): float(np.quantile(neg, q)) for q in (0.5, 0.9, 0.99, 0.999)}}
    grid = [f for f in (0.1, 0.05, 0.02, 0.01, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4, 1e-4, 5e-5, 2e-5, 1e-5) if f * len(neg) >= 2]
    tail = [[f, float(np.quantile(neg, 1.0 - f))] for f in grid]
    return Calibration(a=a, b=b, threshold=threshold, info={**stats, **(info or {})}, neg_tail=tail)


def pair_scores(audio_emb: np.ndarray, caption_emb: np.ndarray, caption_clip: Sequence[int],
                tag_emb: np.ndarray, clip_labels: Sequence[Sequence[str]], tags: Sequence[str],
                *, max_neg: int = 200_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores of matching and non-matching pairs (module docstring) from L2-normalized embeddings.

    ``clip_labels`` are each clip's tags; a caption's labels are its clip's. Negatives are
    subsampled to ``max_neg`` (seeded) to bound memory.
    """
    labels = [set(x) for x in clip_labels]
    pos, neg = [], []
    cap_sim = caption_emb @ audio_emb.T  # (M, N)
    for m, i in enumerate(caption_clip):
        pos.append(cap_sim[m, i])
        other = np.array([not (labels[i] & labels[j]) for j in range(len(labels))])
        neg.append(cap_sim[m, other])
    tag_sim = tag_emb @ audio_emb.T  # (C, N)
    for c, tag in enumerate(tags):
        has = np.array([tag in lab for lab in labels])
        pos.append(tag_sim[c, has])
        neg.append(tag_sim[c, ~has])
    pos_a = np.concatenate([np.atleast_1d(p) for p in pos])
    neg_a = np.concatenate(neg)
    if len(neg_a) > max_neg:
        neg_a = np.random.default_rng(seed).choice(neg_a, max_neg, replace=False)
    return pos_a, neg_a


def save(cal: Calibration, folder: str | os.PathLike) -> Path:
    from audiocap.fileio import atomic_write_json

    return atomic_write_json(Path(folder) / FILE, cal.to_dict())


def load(folder: str | os.PathLike) -> Calibration | None:
    """The calibration stored beside a checkpoint, or None when it has none."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{path}: unreadable ({exc})") from None
    return Calibration.from_dict(data, where=str(path))


__all__ = ["Calibration", "CalibrationError", "fit", "fit_platt", "load", "pair_scores", "save"]
