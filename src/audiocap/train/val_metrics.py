"""Caption metrics during captioner training, and checkpoint selection by one of them.

Validation cross-entropy says how well the model predicts the reference words; the DCASE
systems (the 2024 Task 6 baseline runs aac-metrics in its validation loop) choose checkpoints by
what is reported, a caption metric. :class:`CaptionMetrics` captions the validation split every
``every`` epochs with the recipe's decoding (beam, length normalisation, max length) from the
frozen-tower frames training already holds (the cached first ``clip_seconds`` of each clip, so no
audio is read and the tower does not run) and logs ``val/<metric>`` for the chosen
:mod:`audiocap.metrics` (CIDEr-D, SPICE, SPIDEr, sbert_sim...), which the captioner's checkpoint
writer can then monitor (``train.monitor``). Every value comes from
:class:`audiocap.metrics.evaluator.Evaluator`; nothing is re-implemented here.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch

from audiocap.decoding.scorers import CaptionerScorer
from audiocap.decoding.beam import Hypothesis, beam_search, greedy_search
from audiocap.fileio import atomic_write_json
from audiocap.models.captioner import Captioner
from audiocap.progress import Phase, ProgressFn, ProgressView
from audiocap.text.vocab import Vocab

def monitor_mode(monitor: str) -> str:
    """"min" for validation CE and the fluency-error rate, "max" for every other caption metric."""
    return "min" if monitor in ("val/ce", "val/fluency_error_rate") else "max"


def check_monitor(monitor: str, metrics: Sequence[str], every: int) -> None:
    """Raise ValueError (one line, with the fix) when ``monitor`` cannot be computed by the recipe."""
    from audiocap.metrics.evaluator import ALL_METRICS

    unknown = [m for m in metrics if m not in ALL_METRICS or m in ("vocab", "spider_fl")]
    if unknown:
        raise ValueError(f"train.val_metrics: unknown or unusable metric(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(m for m in ALL_METRICS if m not in ('vocab', 'spider_fl'))}")
    if monitor == "val/ce":
        return
    name = monitor.removeprefix("val/")
    if not monitor.startswith("val/") or name not in metrics:
        raise ValueError(f"train.monitor={monitor}: not computed; use val/ce or val/<metric> with the metric in "
                         f"train.val_metrics ({', '.join(metrics) or 'empty'})")
    if every < 1:
        raise ValueError(f"train.monitor={monitor} needs train.val_metrics_every >= 1 (got {every})")


@torch.inference_mode()
def decode_frames(model: Captioner, vocab: Vocab, frames: Sequence[torch.Tensor], *, beam: int, alpha: float,
                  max_len: int, batch_size: int = 32, progress: ProgressFn | None = None) -> list[str]:
    """Caption frame sequences (T_i, D) as :class:`audiocap.captioning.CaptionPipeline` does (same
    scorer, search and max-length cap) with an in-memory model; an empty caption becomes "empty",
    as the captioner evaluation scores it. ``progress`` gets "captioning" events per batch."""
    from audiocap.features.towers import pad_frames

    was_training = model.training
    scorer = CaptionerScorer(model, bos_id=vocab.bos_id, eos_id=vocab.eos_id, pad_id=vocab.pad_id)  # sets eval()
    device = scorer.device
    max_len = min(max_len, model.cfg.max_len)
    hyps: list[Hypothesis] = []
    phase = Phase(progress, "captioning", len(frames), unit="clips", detail=f"beam {beam}")
    try:
        for s in range(0, len(frames), batch_size):
            x, mask = pad_frames(list(frames[s : s + batch_size]))
            state = scorer.start(x.to(device), mask.to(device))
            if beam <= 1:
                hyps += greedy_search(scorer, state, len(x), max_len=max_len)
            else:
                hyps += [h[0] for h in beam_search(scorer, state, len(x), beam=beam, alpha=alpha, max_len=max_len)]
            phase.update(len(hyps))
    finally:
        model.train(was_training)
    return [vocab.decode(h.tokens) or "empty" for h in hyps]


class CaptionMetrics(L.Callback):
    """Every ``every`` epochs (and at the last), caption the validation clips and log
    ``val/<metric>`` for each of ``metrics``; the per-epoch values and a few captions go to
    ``history_path`` (JSON, written atomically) so a run shows how its captions evolved.

    ``frames`` are the clips' cached frame embeddings (T_i, D) and ``references`` their captions,
    in the same order. Logged in ``on_validation_epoch_end``, before the checkpoint writer reads
    ``trainer.callback_metrics`` in ``on_validation_end``. With ``progress`` each phase (captioning,
    then the Evaluator's) prints count lines with the time left on stderr (:class:`ProgressView`
    in line mode, above Lightning's bar), prefixed with the epoch.
    """

    def __init__(self, frames: Sequence[torch.Tensor], references: Sequence[Sequence[str]], vocab: Vocab, *,
                 metrics: Sequence[str], every: int, beam: int, alpha: float, max_len: int,
                 history_path: str | Path | None = None, ids: Sequence[str] | None = None,
                 progress: bool = True) -> None:
        self.frames, self.references = list(frames), [list(r) for r in references]
        self.vocab, self.metrics, self.every = vocab, list(metrics), int(every)
        self.beam, self.alpha, self.max_len = beam, alpha, max_len
        self.history_path = Path(history_path) if history_path is not None else None
        self.ids = list(ids) if ids is not None else None
        self.history: list[dict[str, Any]] = []
        self.progress = progress

    def due(self, trainer: L.Trainer) -> bool:
        epoch = trainer.current_epoch + 1
        return epoch % self.every == 0 or epoch >= (trainer.max_epochs or epoch)

    def on_validation_epoch_end(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.due(trainer):
            return
        from audiocap.metrics.evaluator import Evaluator

        start = time.perf_counter()
        view = ProgressView(lines=True, prefix=f"epoch {trainer.current_epoch} validation ") if self.progress \
            else contextlib.nullcontext()
        with view as report:
            captions = decode_frames(task.model, self.vocab, self.frames, beam=self.beam, alpha=self.alpha,
                                     max_len=self.max_len, progress=report)
            results = Evaluator(self.metrics, progress=report)(captions, self.references)
        row: dict[str, Any] = {"epoch": trainer.current_epoch}
        for name, res in results.items():
            row[name] = round(float(res.score), 6) if res.available else None
            if res.available and math.isfinite(float(res.score)):
                task.log(f"val/{name}", float(res.score), prog_bar=name in ("cider_d", "spider"))
            elif not res.available:
                row[f"{name}_unavailable"] = res.reason
        row["seconds"] = round(time.perf_counter() - start, 2)
        row["examples"] = [{"id": i, "caption": c} for i, c in zip(self.ids or range(len(captions)), captions[:5])]
        self.history.append(row)
        if self.history_path is not None:
            atomic_write_json(self.history_path, {"metrics": self.metrics, "every": self.every, "beam": self.beam,
                                                  "clips": len(self.frames), "epochs": self.history})

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))


__all__ = ["CaptionMetrics", "check_monitor", "decode_frames", "monitor_mode"]
