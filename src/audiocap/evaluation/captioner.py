"""Evaluate captioners on a manifest split with the DCASE Task 6 metrics.

Captions every clip of the split (greedy or beam, one model or an ensemble), scores them
against the clip's reference captions with :mod:`audiocap.metrics` (coco-caption BLEU-1..4,
METEOR, ROUGE-L, CIDEr-D, SPICE/SPIDEr when Java SPICE is usable, the Sentence-BERT
similarity and the vocabulary size), and returns the table plus per-clip predictions.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import Any

from audiocap.captioning import CaptionPipeline, load_captioner
from audiocap.fileio import atomic_write_text


def score_captions(candidates: Sequence[str], references: Sequence[Sequence[str]], *,
                   metrics: Sequence[str] | None = None) -> dict[str, Any]:
    """``{metric: MetricResult}`` from :class:`audiocap.metrics.captioning.Evaluator` (all metrics).

    The single adapter between the captioner and :mod:`audiocap.metrics` (coco-caption BLEU,
    METEOR 1.5, ROUGE-L, CIDEr-D, SPICE/SPIDEr, Sentence-BERT similarity, vocabulary size);
    nothing is re-implemented here, and a metric that cannot run here comes back unavailable.
    """
    from audiocap.metrics.captioning import Evaluator

    return Evaluator(metrics)(list(candidates), [list(r) for r in references])


def caption_split(checkpoints: Sequence[str | os.PathLike], manifest: str | os.PathLike, *,
                  split: str = "test", beam: int = 3, cache_dir: str | None = None, tower: Any = None,
                  precision: str = "fp32") -> dict[str, Any]:
    """Caption every captioned clip of ``split`` (one model or an ensemble); no scoring.

    The frames come from the frozen-tower feature cache exactly as in training
    (:func:`audiocap.train.captioner_data.split_frames`). Returns the predictions, the reference
    captions and the settings; :func:`evaluate_captioner` scores them.
    """
    from audiocap.data.manifest import read_manifest
    from audiocap.train.captioner_data import split_frames

    members = [load_captioner(c) for c in checkpoints]
    pipe = CaptionPipeline(members, beam=beam, tower=tower, precision=precision)
    clips = [c for c in read_manifest(manifest) if c.split == split and c.captions]
    if not clips:
        raise ValueError(f"{manifest}: no captioned clips in split '{split}'")
    feats = split_frames(manifest, clips, split, pipe.tower, clip_seconds=pipe.window,
                         cache_dir=cache_dir or members[0].recipe["data"].get("cache_dir") or None)
    hyps = pipe.caption_frames([feats[c.id] for c in clips])
    preds = [pipe.vocab.decode(h.tokens) for h in hyps]
    rows = [{"id": c.id, "caption": p, "score": round(h.score, 4), "finished": h.finished}
            for c, p, h in zip(clips, preds, hyps)]
    return {"predictions": rows, "references": [c.captions for c in clips],
            "models": [str(c) for c in checkpoints], "manifest": str(manifest), "split": split, "beam": beam,
            "precision": pipe.precision, "clips": len(clips), "empty_predictions": sum(not p for p in preds)}


def candidates(report: dict[str, Any]) -> list[str]:
    """The predictions of a :func:`caption_split` report as metric candidates: the metrics reject
    empty strings, so an empty caption is scored as the word "empty" (and counted in the report)."""
    return [r["caption"] or "empty" for r in report["predictions"]]


def evaluate_captioner(checkpoints: Sequence[str | os.PathLike], manifest: str | os.PathLike, *,
                       split: str = "test", beam: int = 3, cache_dir: str | None = None, tower: Any = None,
                       metrics: Sequence[str] | None = None) -> dict[str, Any]:
    """Caption ``split`` of ``manifest`` and score it; returns metrics, predictions and settings.

    ``metrics`` chooses Evaluator metric names (default: all, including the slow Java SPICE).
    """
    report = caption_split(checkpoints, manifest, split=split, beam=beam, cache_dir=cache_dir, tower=tower)
    report["metrics"] = score_captions(candidates(report), report["references"], metrics=metrics)
    return report


def write_report(report: dict[str, Any], out_dir: str | os.PathLike) -> tuple[str, str]:
    """Write ``metrics.json`` (scores, per-item scores, settings) and ``predictions.csv`` atomically."""
    from audiocap.metrics.captioning import Evaluator

    os.makedirs(out_dir, exist_ok=True)
    js = os.path.join(out_dir, "metrics.json")
    cs = os.path.join(out_dir, "predictions.csv")
    meta = {k: v for k, v in report.items() if k not in ("predictions", "metrics", "references")}
    Evaluator.write_json(report["metrics"], js, ids=[r["id"] for r in report["predictions"]], meta=meta)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["id", "caption", "score", "finished"])
    w.writeheader()
    w.writerows(report["predictions"])
    atomic_write_text(cs, buf.getvalue())
    return js, cs
