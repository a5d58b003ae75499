"""Evaluate captioners on a manifest split with the DCASE Task 6 metrics.

Captions every clip of the split (greedy or beam, one model or an ensemble) exactly as
``audiocap caption`` captions the clip's file: every window of the checkpoint's long-audio policy
(:mod:`audiocap.audio.policy`), frames of all windows concatenated, one caption per clip, in the
same tower precision. It then scores these captions against the clip's reference captions with :mod:`audiocap.metrics` (coco-caption BLEU-1..4,
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
from audiocap.progress import Phase, ProgressFn


def score_captions(candidates: Sequence[str], references: Sequence[Sequence[str]], *,
                   metrics: Sequence[str] | None = None, progress: ProgressFn | None = None) -> dict[str, Any]:
    """``{metric: MetricResult}`` from :class:`audiocap.metrics.evaluator.Evaluator` (all metrics).

    The single adapter between the captioner and :mod:`audiocap.metrics` (coco-caption BLEU,
    METEOR 1.5, ROUGE-L, CIDEr-D, SPICE/SPIDEr, Sentence-BERT similarity, vocabulary size);
    nothing is re-implemented here, and a metric that cannot run here comes back unavailable.
    ``progress`` receives the Evaluator's phase events (:class:`audiocap.progress.Progress`).
    """
    from audiocap.metrics.evaluator import Evaluator

    return Evaluator(metrics, progress=progress)(list(candidates), [list(r) for r in references])


def caption_split(checkpoints: Sequence[str | os.PathLike], manifest: str | os.PathLike, *,
                  split: str = "test", beam: int = 3, cache_dir: str | None = None, tower: Any = None,
                  precision: str = "auto", device: str = "cpu", backend: str = "torch",
                  progress: ProgressFn | None = None) -> dict[str, Any]:
    """Caption every captioned clip of ``split`` (one model or an ensemble); no scoring.

    Each clip gets the caption ``audiocap caption`` prints for its file (module docstring): the
    window frames come from :func:`audiocap.features.cache_window_frames`, which computes them per
    file with the function ``caption`` uses, in the same ``precision`` (auto|fp32|bf16, as
    ``caption --precision``), and are concatenated per clip. Returns the predictions, the
    reference captions and the settings; :func:`evaluate_captioner` scores them. ``backend`` "onnx"
    runs one model's export on ONNX Runtime (:mod:`audiocap.onnx_backend`; fp32): its tower fills
    the window cache (under its own key) and its graphs decode. ``progress`` receives "window
    features" (clips through the tower, or "from cache") and "captioning" (clips decoded, per
    batch) events (:class:`audiocap.progress.Progress`).
    """
    import torch

    from audiocap.checkpoint import read_recipe
    from audiocap.data.manifest import read_manifest
    from audiocap.features.cache import cache_window_frames, read_window_frames
    from audiocap.onnx_backend import OnnxCaptionPipeline, is_export, onnx_folder

    if backend == "onnx" or is_export(checkpoints[0]):
        if len(checkpoints) != 1 or tower is not None:
            raise ValueError("the onnx backend evaluates one captioner with its own tower; drop --ensemble")
        pipe = OnnxCaptionPipeline(onnx_folder(checkpoints[0], "captioner"), beam=beam)
        recipe = {} if is_export(checkpoints[0]) else read_recipe(checkpoints[0])
    else:
        members = [load_captioner(c, device=device) for c in checkpoints]
        pipe = CaptionPipeline(members, beam=beam, tower=tower, precision=precision, device=device)
        recipe = members[0].recipe
    clips = [c for c in read_manifest(manifest) if c.split == split and c.captions]
    if not clips:
        raise ValueError(f"{manifest}: no captioned clips in split '{split}'")
    path = cache_window_frames(pipe.tower, manifest, clips, split, pipe.policy,
                               cache_dir or recipe.get("data", {}).get("cache_dir") or None,
                               device=pipe.device, precision=pipe.precision, batch_size=pipe.batch_size,
                               progress=progress)
    windows, meta = read_window_frames(path)
    missing = [c.id for c in clips if c.id not in windows]
    if missing:
        raise ValueError(f"{path}: window cache lacks clips {missing[:3]}; delete the file so it is recomputed")
    frames = [torch.cat(windows[c.id], 0) for c in clips]
    hyps = []
    with Phase(progress, "captioning", len(clips), unit="clips", detail=f"beam {beam}") as phase:
        for s in range(0, len(frames), pipe.batch_size):  # the pipeline's own batches, one call each
            hyps += pipe.caption_frames(frames[s : s + pipe.batch_size])
            phase.update(len(hyps))
    preds = [pipe.vocab.decode(h.tokens) for h in hyps]
    rows = [{"id": c.id, "caption": p, "score": round(h.score, 4), "finished": h.finished}
            for c, p, h in zip(clips, preds, hyps)]
    return {"predictions": rows, "references": [c.captions for c in clips],
            "models": [str(c) for c in checkpoints], "manifest": str(manifest), "split": split, "beam": beam,
            "precision": pipe.precision, "backend": "onnx" if isinstance(pipe, OnnxCaptionPipeline) else "torch",
            "audio_policy": pipe.policy.to_dict(),
            "windows": int(sum(meta["windows"])), "clips": len(clips),
            "empty_predictions": sum(not p for p in preds)}


def candidates(report: dict[str, Any]) -> list[str]:
    """The predictions of a :func:`caption_split` report as metric candidates: the metrics reject
    empty strings, so an empty caption is scored as the word "empty" (and counted in the report)."""
    return [r["caption"] or "empty" for r in report["predictions"]]


def evaluate_captioner(checkpoints: Sequence[str | os.PathLike], manifest: str | os.PathLike, *,
                       split: str = "test", beam: int = 3, cache_dir: str | None = None, tower: Any = None,
                       metrics: Sequence[str] | None = None, precision: str = "auto",
                       device: str = "cpu", progress: ProgressFn | None = None) -> dict[str, Any]:
    """Caption ``split`` of ``manifest`` as ``audiocap caption`` would and score it with the DCASE
    Task 6 metrics (coco-caption, via :func:`score_captions`); returns metrics, predictions and
    settings. ``metrics`` chooses Evaluator metric names (default: all, including the slow Java
    SPICE). ``progress`` receives the events of every phase, captioning and scoring.
    """
    report = caption_split(checkpoints, manifest, split=split, beam=beam, cache_dir=cache_dir, tower=tower,
                           precision=precision, device=device, progress=progress)
    report["metrics"] = score_captions(candidates(report), report["references"], metrics=metrics,
                                       progress=progress)
    return report


def write_report(report: dict[str, Any], out_dir: str | os.PathLike) -> tuple[str, str]:
    """Write ``metrics.json`` (scores, per-item scores, settings) and ``predictions.csv`` atomically."""
    from audiocap.metrics.evaluator import Evaluator

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
