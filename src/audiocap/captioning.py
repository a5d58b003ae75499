"""Caption audio files with trained checkpoints: loading, long files, ensembles, kind dispatch.

Long files follow the checkpoint's long-audio policy (:mod:`audiocap.audio.policy`, stored in
its recipe; old checkpoints: windows of the recipe's ``clip_seconds``, 10 s by default, the last
one shifted back to end at the file's end). A file no longer than one window is one window.
Each window is embedded by the frozen tower (:func:`audiocap.features.window_frames`, the same
function the ``eval captioner`` cache calls), and then either

- ``per_window=False`` (default; policy ``combine="concat"``): one caption for the whole file.
  The frame embeddings of all windows are **concatenated** along time and the trainable audio
  encoder reads them as one long sequence, so the decoder can attend to every part of the file
  (pooling to a single vector would throw the temporal detail away before cross-attention).
  ``eval captioner`` scores exactly this caption.
- ``per_window=True``: one caption per window, with its start/end time in seconds.
- ``per_window=None`` (the default of ``audiocap caption`` and :func:`caption_files`): one
  caption for a file of at most ``PER_WINDOW_SECONDS`` (60 s), one per window for a longer one.

Files are decoded as a stream (:func:`audiocap.audio.io.stream_audio`) and cut into windows as
the samples arrive (:func:`audiocap.audio.policy.stream_windows`); windows are embedded and
captioned a batch at a time, so memory does not grow with the length of a file (issue 20 item 2:
a 1-hour WAV took 2.5 GB as one array). The captions are those of the whole wave in memory
(:meth:`CaptionPipeline.caption_wave`: the same decoding batches; the tower takes fewer windows
at once, so scores agree within float rounding). One caption for a file longer
than ``PER_WINDOW_SECONDS`` (``per_window=False``) keeps every window's frame embeddings (about
8 KB per 10 s with the shipped tower) but not the wave; its judgement (below) then combines the
windows': "silence" when every window is silent, else the mean confidence of the sounding
windows, flagged "low_confidence" when most of them are.

``precision`` chooses the arithmetic of the frozen tower at inference: ``"fp32"``; ``"bf16"``
(``torch.autocast`` with bfloat16: about 2x faster on CPUs with AVX512-BF16/AMX and on recent
GPUs, frame embeddings within ~1e-3 cosine of fp32, captions usually identical); ``"auto"`` =
bf16 only where the hardware runs it natively, else fp32. Decoding always runs in fp32. The
tower and the models run on ``device``.

Every caption carries the judgement of :func:`audiocap.audio.nonevent.judge` on its audio:
``flag`` "silence" (the text is then "silence" and nothing is decoded), "low_confidence" (too
short, or a steady tone/hum/noise rather than a sound event; the caption is kept) or None, and a
``confidence`` in 0-1 (issue 20 item 1: the captioner otherwise describes an event in anything).

``CAPTIONERS`` maps a captioning checkpoint kind to the function that captions files with it, as
``"module:function"``; loading goes through the one registry :data:`audiocap.checkpoint.LOADERS`.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from audiocap.audio.nonevent import SILENCE_CAPTION as SILENCE
from audiocap.audio.nonevent import Flag, Judgement, judge
from audiocap.audio.policy import AudioPolicy, PolicyError, stream_windows
from audiocap.checkpoint import RECOPY, CheckpointError, build_from_recipe, load_checkpoint, load_weights, \
    read_extra, read_recipe
from audiocap.decoding import CaptionerScorer, EnsembleScorer, Hypothesis, beam_search, greedy_search
from audiocap.decoding.result import Caption  # noqa: F401 (audiocap.captioning.Caption, as before)
from audiocap.features.towers import PRECISIONS, resolve_precision, tower_autocast, tower_device  # noqa: F401 (re-exported)
from audiocap.models.captioner import Captioner, CaptionerConfig
from audiocap.text.vocab import Vocab

PER_WINDOW_SECONDS = 60.0  # longer files get one caption per window unless one caption is asked for
# Windows per tower call when streaming: the aisfx tower's activations for 16 windows of 10 s at 44.1 kHz
# take ~700 MB at their peak, for 4 ~285 MB (frames equal to 16 at a time within float rounding, ~1e-7).
TOWER_WINDOWS = 4

CAPTIONERS: dict[str, str] = {
    "captioner": "audiocap.captioning:caption_files",
    "wsac": "audiocap.decoding.wsac:caption_files",
}


@dataclass
class LoadedCaptioner:
    model: Captioner
    vocab: Vocab
    recipe: dict[str, Any]
    folder: Path

    @property
    def audio_policy(self) -> AudioPolicy:
        """The checkpoint's long-audio policy (recipe ``audio_policy``; default for old ones)."""
        from audiocap.audio.policy import policy_from_recipe

        return policy_from_recipe(self.recipe, "captioner", where=f"{self.folder}/recipe.yaml")


def load_captioner(folder: str | os.PathLike, *, device: str | torch.device = "cpu") -> LoadedCaptioner:
    """Load a ``captioner`` checkpoint folder (weights strictly, recipe, vocabulary)."""
    state, recipe = load_checkpoint(folder, kind="captioner", device=device)
    if "model_config" not in recipe:
        raise CheckpointError(f"{folder}: recipe.yaml has no model_config; re-save it with audiocap train captioner")
    model = build_from_recipe(lambda **cfg: Captioner(CaptionerConfig(**cfg)), recipe["model_config"], folder,
                              "model_config").to(device)
    load_weights(model, state, folder)
    vocab = read_extra(folder, "vocab", Vocab.from_json)
    if len(vocab) != model.cfg.vocab_size:
        raise CheckpointError(f"{folder}/vocab.json: {len(vocab)} words but the model has {model.cfg.vocab_size}; "
                              f"vocabulary and weights must come from the same training run: {RECOPY}")
    tower = recipe.get("tower")
    if not isinstance(tower, dict) or not isinstance(tower.get("name"), str):
        raise CheckpointError(f"{folder}/recipe.yaml: 'tower' must map 'name' to the frozen audio tower "
                              f"(e.g. aisfx); {RECOPY}")
    loaded = LoadedCaptioner(model.eval(), vocab, recipe, Path(folder))
    try:
        loaded.audio_policy  # checked now, so a bad section fails at load, not mid-captioning
    except PolicyError as exc:
        raise CheckpointError(f"{exc}; {RECOPY}") from None
    return loaded


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
                 max_len: int | None = None, no_repeat_ngram: int | None = None, tower: Any = None, batch_size: int = 16,
                 precision: str = "auto", device: str | torch.device | None = None) -> None:
        first = members[0]
        self.policy = first.audio_policy
        for m in members[1:]:
            if m.audio_policy != self.policy:
                raise CheckpointError(f"{m.folder}: audio_policy {m.audio_policy} differs from {first.folder} "
                                      f"({self.policy}); an ensemble must window audio alike")
        if self.policy.combine != "concat":
            raise CheckpointError(f"{first.folder}: a captioner needs audio_policy.combine 'concat', got "
                                  f"{self.policy.combine!r}")
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
        self.no_repeat_ngram = int(dec.get("no_repeat_ngram", 0)) if no_repeat_ngram is None else no_repeat_ngram
        limit = min(m.model.cfg.max_len for m in members)
        self.max_len = min(max_len or dec.get("max_len", 25), limit)
        if device is None:
            device = tower_device(tower) if tower is not None else tower_device(first.model)
        device = torch.device(device)
        for m in members:
            m.model.to(device)
        if tower is None:
            from audiocap.features.towers import load_frame_tower

            tower = load_frame_tower(first.recipe["tower"]["name"], first.recipe["tower"].get("options"),
                                     device=device)
        self.tower = tower.to(device)
        self.device = device
        self.precision = resolve_precision(precision, self.device)
        scorers = [CaptionerScorer(m.model, bos_id=m.vocab.bos_id, eos_id=m.vocab.eos_id, pad_id=m.vocab.pad_id)
                   for m in members]
        self.scorer = scorers[0] if len(scorers) == 1 else EnsembleScorer(scorers)

    @property
    def window(self) -> float:
        """Seconds per window: the long-audio policy's ``clip_seconds`` (the training clip length)."""
        return float(self.policy.clip_seconds)

    @torch.inference_mode()
    def caption_frames(self, frames: Sequence[torch.Tensor]) -> list[Hypothesis]:
        """Best hypothesis for each frame-embedding sequence (T_i, D), decoded in batches
        (on one CPU thread: see :func:`one_thread`)."""
        device = self.scorer.device
        with one_thread() if device.type == "cpu" else contextlib.nullcontext():
            return self._decode(frames, device)

    def _decode(self, frames: Sequence[torch.Tensor], device: torch.device) -> list[Hypothesis]:
        from audiocap.features.towers import pad_frames

        out: list[Hypothesis] = []
        for s in range(0, len(frames), self.batch_size):
            x, mask = pad_frames(frames[s : s + self.batch_size])
            state = self.scorer.start(x.to(device), mask.to(device))
            if self.beam <= 1:
                out += greedy_search(self.scorer, state, len(x), max_len=self.max_len,
                                     no_repeat_ngram=self.no_repeat_ngram)
            else:
                out += [h[0] for h in beam_search(self.scorer, state, len(x), beam=self.beam, alpha=self.alpha,
                                                  max_len=self.max_len, no_repeat_ngram=self.no_repeat_ngram)]
        return out

    @torch.inference_mode()
    def window_frames(self, wave: np.ndarray) -> tuple[list[torch.Tensor], list[tuple[float, float]]]:
        """Frame embeddings (T_i, D) of every window of ``wave`` (at the tower's rate) under the
        checkpoint's long-audio policy, and each window's (start, end) in seconds
        (:func:`audiocap.features.window_frames`; the ``eval captioner`` cache calls it too)."""
        from audiocap.features.towers import window_frames

        return window_frames(self.tower, wave, self.policy, batch_size=self.batch_size, device=self.device,
                             precision=self.precision)

    def caption_wave(self, wave: np.ndarray, *, name: str = "<wave>", per_window: bool | None = False
                     ) -> list[Caption]:
        """Captions of one waveform at the tower's rate (one, or one per window; None: per window
        beyond ``PER_WINDOW_SECONDS``), each judged for silence / non-events on its own audio;
        silent audio is not decoded."""
        sr = int(self.tower.sample_rate)
        if per_window is None:
            per_window = len(wave) > PER_WINDOW_SECONDS * sr
        whole = None if per_window else judge(wave, sr)
        if whole is not None and whole.flag == "silence":  # no tower, no decoder
            return [Caption(name, 0.0, round(len(wave) / sr, 3), SILENCE, None, True, whole.flag, whole.confidence)]
        frames, spans = self.window_frames(wave)
        if whole is None:
            judged = [judge(wave[int(round(a * sr)) : int(round(b * sr))], sr) for a, b in spans]
        else:
            frames, spans, judged = [torch.cat(frames, 0)], [(0.0, spans[-1][1])], [whole]
        sounding = [i for i, j in enumerate(judged) if j.flag != "silence"]
        hyps = dict(zip(sounding, self.caption_frames([frames[i] for i in sounding]) if sounding else []))
        out = []
        for i, ((a, b), j) in enumerate(zip(spans, judged)):
            h = hyps.get(i)
            text, score, finished = (self.vocab.decode(h.tokens), h.score, h.finished) if h else (SILENCE, None, True)
            out.append(Caption(name, round(a, 3), round(b, 3), text, score, finished, j.flag, j.confidence))
        return out

    def caption_stream(self, chunks: Iterable[np.ndarray], *, name: str = "<wave>",
                       per_window: bool | None = None) -> list[Caption]:
        """:meth:`caption_wave` of a wave that arrives in chunks at the tower's rate
        (:func:`audiocap.audio.io.stream_audio`), with the same captions, in memory that does not
        grow with its length (module docstring). ``per_window`` None: one caption up to
        ``PER_WINDOW_SECONDS``, one per window beyond."""
        sr = int(self.tower.sample_rate)
        if per_window:
            return list(self._stream_per_window(stream_windows(chunks, sr=sr, policy=self.policy), name))
        chunks, head = iter(chunks), []
        limit, n = int(PER_WINDOW_SECONDS * sr), 0
        for chunk in chunks:  # keep the first PER_WINDOW_SECONDS: a file that ends there is captioned whole
            head.append(chunk)
            n += len(chunk)
            if n > limit:
                break
        else:
            wave = np.concatenate(head) if head else np.zeros(0, dtype=np.float32)
            return self.caption_wave(wave, name=name, per_window=bool(per_window))
        def replay() -> Iterator[np.ndarray]:  # the head, let go of chunk by chunk, then the rest
            while head:
                yield head.pop(0)
            yield from chunks

        windows = stream_windows(replay(), sr=sr, policy=self.policy)
        if per_window is None:
            return list(self._stream_per_window(windows, name))
        return self._stream_whole(windows, name)

    def _embedded(self, windows: Iterator[tuple[np.ndarray, tuple[float, float]]]
                  ) -> Iterator[tuple[tuple[float, float], Judgement, torch.Tensor]]:
        """``(span, judgement, frames)`` of each window, the tower run on ``TOWER_WINDOWS`` windows
        at a time (fewer than :meth:`window_frames` takes at once, to bound the activations)."""
        from audiocap.features.towers import embed_waves

        sr, size = int(self.tower.sample_rate), min(self.batch_size, TOWER_WINDOWS)
        while batch := list(itertools.islice(windows, size)):
            waves = [w for w, _ in batch]
            frames = embed_waves(self.tower, waves, batch_size=size, device=self.device, precision=self.precision)
            for (wave, span), f in zip(batch, frames):
                yield span, judge(wave, sr), f

    def _stream_per_window(self, windows: Iterator[tuple[np.ndarray, tuple[float, float]]], name: str
                           ) -> Iterator[Caption]:
        """One caption per window, decoded ``batch_size`` sounding windows at a time (the batches
        :meth:`caption_frames` makes in :meth:`caption_wave`), silent windows not decoded."""
        pending: list[tuple[tuple[float, float], Judgement, torch.Tensor]] = []

        def flush() -> Iterator[Caption]:
            sounding = [f for _, j, f in pending if j.flag != "silence"]
            hyps = iter(self.caption_frames(sounding) if sounding else [])
            for (a, b), j, _ in pending:
                h = next(hyps) if j.flag != "silence" else None
                text, score, finished = (self.vocab.decode(h.tokens), h.score, h.finished) if h else (SILENCE, None, True)
                yield Caption(name, round(a, 3), round(b, 3), text, score, finished, j.flag, j.confidence)
            pending.clear()

        for item in self._embedded(windows):
            pending.append(item)
            if sum(j.flag != "silence" for _, j, _ in pending) == self.batch_size:
                yield from flush()
        yield from flush()

    def _stream_whole(self, windows: Iterator[tuple[np.ndarray, tuple[float, float]]], name: str) -> list[Caption]:
        """One caption of a long file: all windows' frames concatenated (as :meth:`caption_wave`),
        judged by combining the windows' judgements (module docstring)."""
        frames, judged, end = [], [], 0.0
        for (_, end), j, f in self._embedded(windows):
            frames.append(f)
            judged.append(j)
        sounding = [j for j in judged if j.flag != "silence"]
        if not sounding:
            return [Caption(name, 0.0, round(end, 3), SILENCE, None, True, "silence", 0.0)]
        steady = sum(j.flag == "low_confidence" for j in sounding)
        flag: Flag | None = "low_confidence" if 2 * steady > len(sounding) else None
        confidence = round(float(np.mean([j.confidence for j in sounding])), 4)
        h = self.caption_frames([torch.cat(frames, 0)])[0]
        return [Caption(name, 0.0, round(end, 3), self.vocab.decode(h.tokens), h.score, h.finished, flag, confidence)]


def caption_files(files: Sequence[str | os.PathLike], checkpoints: Sequence[str | os.PathLike], *,
                  beam: int = 3, per_window: bool | None = None, progress: bool = False, precision: str = "auto",
                  device: str | torch.device = "cpu", **kw: Any) -> list[Caption]:
    """Caption audio ``files`` with one captioner checkpoint or an ensemble of several.

    Encoder-decoder captioning with beam search (k = ``beam``; 1 = greedy) and per-step
    log-probability averaging for ensembles (DCASE Task 6 systems, e.g. the Xiaomi 2023
    captioner); ``precision`` (auto|fp32|bf16) is the frozen tower's arithmetic (module
    docstring); the tower and the models run on ``device``. Long files follow the checkpoint's
    long-audio policy and are decoded as a stream; ``per_window`` None gives one caption per file
    up to ``PER_WINDOW_SECONDS`` and one per window beyond (module docstring). Raises
    :class:`audiocap.audio.io.AudioError` naming a bad file.
    """
    from tqdm import tqdm

    from audiocap.audio.io import stream_audio

    pipe = CaptionPipeline([load_captioner(c, device=device) for c in checkpoints], beam=beam, precision=precision,
                           device=device, **kw)
    out: list[Caption] = []
    for f in tqdm(list(files), desc="captioning", unit="file", disable=not progress):
        out += pipe.caption_stream(stream_audio(f, sr=pipe.tower.sample_rate), name=str(f), per_window=per_window)
    return out


def captioner_for(checkpoint: str | os.PathLike) -> Callable[..., list[Caption]]:
    """The ``caption_files`` function registered for the kind of ``checkpoint``."""
    from audiocap.checkpoint import checkpoint_kind

    kind = checkpoint_kind(checkpoint, expect=tuple(CAPTIONERS))  # the registry's kind check
    module, func = CAPTIONERS[kind].split(":")
    return getattr(importlib.import_module(module), func)
