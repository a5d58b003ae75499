"""Caption audio files with trained checkpoints: loading, long files, ensembles, kind dispatch.

Files up to the training clip length (``clip_seconds`` of the recipe, 10 s by default) get one
caption. Longer files are cut into consecutive windows of that length (the last one shorter;
nothing is dropped), each window is embedded by the frozen tower, and then either

- ``per_window=True``: one caption per window, with its start/end time in seconds, or
- ``per_window=False`` (default): one caption for the whole file. The frame embeddings of all
  windows are **concatenated** along time and the trainable audio encoder reads them as one
  long sequence, so the decoder can attend to every part of the file (pooling to a single
  vector would throw the temporal detail away before cross-attention).

Frames are computed exactly as in training (:func:`audiocap.train.features.embed_waves`, each
window being a training-length clip), so a 10 s clip gets the frames of the feature cache.
``precision`` chooses the arithmetic of the frozen tower at inference: ``"fp32"``; ``"bf16"``
(``torch.autocast`` with bfloat16: about 2x faster on CPUs with AVX512-BF16/AMX and on recent
GPUs, frame embeddings within ~1e-3 cosine of fp32, captions usually identical); ``"auto"`` =
bf16 only where the hardware runs it natively, else fp32. Decoding always runs in fp32.

``CAPTIONERS`` maps a captioning checkpoint kind to the function that captions files with it, as
``"module:function"``; loading goes through the one registry :data:`audiocap.checkpoint.LOADERS`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from audiocap.checkpoint import CheckpointError, load_checkpoint, read_extra, read_recipe
from audiocap.decoding import CaptionerScorer, EnsembleScorer, Hypothesis, beam_search, greedy_search
from audiocap.models.captioner import Captioner, CaptionerConfig
from audiocap.text.vocab import Vocab

CAPTIONERS: dict[str, str] = {
    "captioner": "audiocap.captioning:caption_files",
    "wsac": "audiocap.decoding.wsac:caption_files",
}


@dataclass
class Caption:
    """One caption of a file (or of the window ``start``-``end`` seconds of it)."""

    file: str
    start: float
    end: float
    text: str
    score: float
    finished: bool = True  # False: cut at the maximum length without <eos>


@dataclass
class LoadedCaptioner:
    model: Captioner
    vocab: Vocab
    recipe: dict[str, Any]
    folder: Path


def load_captioner(folder: str | os.PathLike, *, device: str | torch.device = "cpu") -> LoadedCaptioner:
    """Load a ``captioner`` checkpoint folder (weights strictly, recipe, vocabulary)."""
    state, recipe = load_checkpoint(folder, kind="captioner", device=device)
    if "model_config" not in recipe:
        raise CheckpointError(f"{folder}: recipe.yaml has no model_config; re-save it with audiocap train captioner")
    model = Captioner(CaptionerConfig(**recipe["model_config"])).to(device)
    model.load_state_dict(state, strict=True)
    vocab = Vocab.from_json(read_extra(folder, "vocab"))
    if len(vocab) != model.cfg.vocab_size:
        raise CheckpointError(f"{folder}: vocab.json has {len(vocab)} words but the model {model.cfg.vocab_size}")
    return LoadedCaptioner(model.eval(), vocab, recipe, Path(folder))


PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``"fp32"`` or ``"bf16"`` for a requested ``precision`` (auto|fp32|bf16) on ``device``.

    ``auto`` picks bf16 only where it is fast natively: a CUDA device that supports bf16, or a
    CPU with AVX512-BF16 or AMX instructions; elsewhere (where bf16 would be emulated and slower)
    fp32. An explicit ``"bf16"`` is honoured everywhere.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    dev = torch.device(device)
    if dev.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if dev.type == "cpu":
        fast = [getattr(torch.cpu, n, lambda: False) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return "bf16" if any(f() for f in fast) else "fp32"
    return "fp32"


def tower_autocast(precision: str, device: str | torch.device):
    """The autocast context of the frozen tower for a resolved ``precision`` (no-op for fp32)."""
    dev = torch.device(device).type
    return torch.autocast(dev, dtype=torch.bfloat16, enabled=precision == "bf16")


_THREADS_LOCK = threading.Lock()
_THREADS_STATE = {"depth": 0, "saved": 1}


@contextlib.contextmanager
def one_thread():
    """Run torch ops on one intra-op thread inside the block. Beam-search steps are tiny matrix
    products that gain nothing from a second thread; on a busy CPU the second thread's
    spin-waiting made a 10 s clip's beam search cost 6 s of CPU instead of 0.03 s
    (benchmarks/caption_speed.py). torch's thread count is process-wide, so nested or concurrent
    blocks (the service decodes in several worker threads) share one counter: the count drops to
    1 when the first block opens and the original is restored when the last one closes."""
    with _THREADS_LOCK:
        if _THREADS_STATE["depth"] == 0:
            _THREADS_STATE["saved"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_STATE["depth"] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_STATE["depth"] -= 1
            if _THREADS_STATE["depth"] == 0:
                torch.set_num_threads(_THREADS_STATE["saved"])


class CaptionPipeline:
    """Frozen tower + one captioner or an ensemble sharing a vocabulary and a tower."""

    def __init__(self, members: Sequence[LoadedCaptioner], *, beam: int = 3, alpha: float | None = None,
                 max_len: int | None = None, tower: Any = None, batch_size: int = 16,
                 precision: str = "auto") -> None:
        first = members[0]
        for m in members[1:]:
            if m.vocab.words != first.vocab.words:
                raise CheckpointError(f"{m.folder}: vocabulary differs from {first.folder}; an ensemble "
                                      "needs checkpoints trained with the same vocabulary")
            if m.recipe["tower"] != first.recipe["tower"]:
                raise CheckpointError(f"{m.folder}: frozen tower {m.recipe['tower']} differs from "
                                      f"{first.folder} ({first.recipe['tower']})")
        self.vocab, self.beam, self.batch_size = first.vocab, beam, batch_size
        dec = first.recipe.get("decode", {})
        self.alpha = dec.get("alpha", 0.0) if alpha is None else alpha
        limit = min(m.model.cfg.max_len for m in members)
        self.max_len = min(max_len or dec.get("max_len", 25), limit)
        self.window = float(first.recipe.get("clip_seconds", 10.0))
        if tower is None:
            from audiocap.train.captioner_data import load_frame_tower

            tower = load_frame_tower(first.recipe["tower"]["name"], first.recipe["tower"].get("options"))
        self.tower = tower
        self.device = next(iter(tower.parameters()), torch.empty(0)).device
        self.precision = resolve_precision(precision, self.device)
        scorers = [CaptionerScorer(m.model, bos_id=m.vocab.bos_id, eos_id=m.vocab.eos_id, pad_id=m.vocab.pad_id)
                   for m in members]
        self.scorer = scorers[0] if len(scorers) == 1 else EnsembleScorer(scorers)

    @torch.inference_mode()
    def caption_frames(self, frames: Sequence[torch.Tensor]) -> list[Hypothesis]:
        """Best hypothesis for each frame-embedding sequence (T_i, D), decoded in batches
        (on one CPU thread: see :func:`one_thread`)."""
        device = self.scorer.device
        with one_thread() if device.type == "cpu" else contextlib.nullcontext():
            return self._decode(frames, device)

    def _decode(self, frames: Sequence[torch.Tensor], device: torch.device) -> list[Hypothesis]:
        from audiocap.train.captioner_data import pad_frames

        out: list[Hypothesis] = []
        for s in range(0, len(frames), self.batch_size):
            x, mask = pad_frames(frames[s : s + self.batch_size])
            state = self.scorer.start(x.to(device), mask.to(device))
            if self.beam <= 1:
                out += greedy_search(self.scorer, state, len(x), max_len=self.max_len)
            else:
                out += [h[0] for h in beam_search(self.scorer, state, len(x), beam=self.beam, alpha=self.alpha,
                                                  max_len=self.max_len)]
        return out

    @torch.inference_mode()
    def window_frames(self, wave: np.ndarray) -> tuple[list[torch.Tensor], list[tuple[float, float]]]:
        """Cut ``wave`` (at the tower's rate) into training-length windows and embed each.

        Returns the frame embeddings (T_i, D) of every window and its (start, end) in seconds. A
        wave no longer than one window is one window; otherwise windows follow each other and the
        last one is shorter (its zero padding from :func:`split_windows` is removed), so every
        sample is captioned and none is invented.
        """
        from audiocap.audio.io import split_windows
        from audiocap.train.features import embed_waves

        sr = self.tower.sample_rate
        n, win_n = len(wave), int(round(self.window * sr))
        if n <= win_n:
            segs, spans = [wave], [(0.0, n / sr)]
        else:
            windows, starts = split_windows(wave, sr=sr, window=self.window, last="pad")
            first = [int(round(s * sr)) for s in starts]
            segs = [w[: min(win_n, n - a)] for w, a in zip(windows, first)]
            spans = [(a / sr, min(a + win_n, n) / sr) for a in first]
        with tower_autocast(self.precision, self.device):
            frames = embed_waves(self.tower, segs, batch_size=self.batch_size, device=self.device)
        return frames, spans

    def caption_wave(self, wave: np.ndarray, *, name: str = "<wave>", per_window: bool = False) -> list[Caption]:
        """Captions of one waveform at the tower's rate (one, or one per window)."""
        frames, spans = self.window_frames(wave)
        if per_window:
            hyps = self.caption_frames(frames)
        else:
            hyps = self.caption_frames([torch.cat(frames, 0)])
            spans = [(0.0, spans[-1][1])]
        return [Caption(name, round(a, 3), round(b, 3), self.vocab.decode(h.tokens), h.score, h.finished)
                for h, (a, b) in zip(hyps, spans)]


def caption_files(files: Sequence[str | os.PathLike], checkpoints: Sequence[str | os.PathLike], *,
                  beam: int = 3, per_window: bool = False, progress: bool = False, precision: str = "auto",
                  **kw: Any) -> list[Caption]:
    """Caption audio ``files`` with one captioner checkpoint or an ensemble of several.

    Encoder-decoder captioning with beam search (k = ``beam``; 1 = greedy) and per-step
    log-probability averaging for ensembles (DCASE Task 6 systems, e.g. the Xiaomi 2023
    captioner); ``precision`` (auto|fp32|bf16) is the frozen tower's arithmetic (module
    docstring). Raises :class:`audiocap.audio.io.AudioError` naming a bad file.
    """
    from tqdm import tqdm

    from audiocap.audio.io import load_audio

    pipe = CaptionPipeline([load_captioner(c) for c in checkpoints], beam=beam, precision=precision, **kw)
    out: list[Caption] = []
    for f in tqdm(list(files), desc="captioning", unit="file", disable=not progress):
        wave = load_audio(f, sr=pipe.tower.sample_rate)
        out += pipe.caption_wave(wave, name=str(f), per_window=per_window)
    return out


def captioner_for(checkpoint: str | os.PathLike) -> Callable[..., list[Caption]]:
    """The ``caption_files`` function registered for the kind of ``checkpoint``."""
    from audiocap.checkpoint import checkpoint_kind

    kind = checkpoint_kind(checkpoint, expect=tuple(CAPTIONERS))  # the registry's kind check
    module, func = CAPTIONERS[kind].split(":")
    return getattr(importlib.import_module(module), func)
