"""The small protocol the web service talks to, and its implementation on the real models.

The FastAPI app (:mod:`audiocap.serve.app`) never touches torch, faiss or files directly: it
calls a :class:`Backend`. :class:`ModelBackend` wires the CLAP retrieval model (Elizalde et al.,
"CLAP: Learning Audio Concepts from Natural Language Supervision", 2023), the vector index of a
sound library and, optionally, a captioner checkpoint; the tests use a deterministic stand-in
with the same five methods, so the HTTP layer is tested without model weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Hit:
    """One search result: an index item id, its cosine score, and what the index knows about it."""

    id: str
    score: float
    path: str | None = None
    caption: str | None = None
    confidence: float | None = None  # calibrated P(match) in [0, 1], when the model is calibrated
    match: bool | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Backend(Protocol):
    """What the service needs from the models.

    ``sample_rate`` is the rate ``search_audio`` and ``caption`` expect their mono float32
    waveforms (N,) at; ``max_duration`` (seconds, or None) is the longest input the models
    accept. ``audio_path`` answers only for ids registered in the index (a dict lookup, never a
    path built from the id); the app streams that path only if it lies in one of
    ``library_roots`` (:func:`audiocap.serve.library.library_file`; no roots: nothing is played).
    ``caption`` returns captions best first (one, or a beam's n-best)
    and raises :class:`CaptionerMissing` when no captioner was loaded. An optional
    ``classify(wave, labels, prompt)`` gives zero-shot probabilities (``POST /v1/classify``:
    ``[{"label", "probability", "cosine"}]``, most probable first). ``thread_safe`` False makes
    the app serialize model calls behind one lock.
    """

    sample_rate: int
    max_duration: float | None
    thread_safe: bool
    library_roots: list[Path]

    def search_text(self, text: str, k: int) -> list[Hit]: ...

    def search_audio(self, wave: np.ndarray, k: int) -> list[Hit]: ...

    def caption(self, wave: np.ndarray, beam: int) -> list[str]: ...

    def audio_path(self, item_id: str) -> Path | None: ...

    def info(self) -> dict: ...


class CaptionerMissing(RuntimeError):
    """Raised by :meth:`Backend.caption` when the service was started without a captioner."""


class ModelBackend:
    """The real backend: CLAP towers for both query kinds, a vector index, an optional captioner.

    Text queries are embedded with the CLAP text tower and audio queries with the CLAP audio
    tower (both L2-normalized, so the index's inner product is the cosine similarity of CLAP);
    the index maps row -> item id -> registered audio file. Torch modules are not guaranteed to
    be safe under concurrent calls, so ``thread_safe`` is False and the app serializes calls.
    """

    thread_safe = False

    def __init__(self, clap, index, captioner=None, *, clap_path: str = "", index_path: str = "",
                 captioner_path: str = "", max_duration: float | None = None,
                 library: Sequence[str | Path] = ()) -> None:
        from audiocap.serve.library import library_roots

        self.clap, self.index, self.captioner = clap, index, captioner
        self.sample_rate = int(clap.sample_rate)
        self.max_duration = max_duration
        self._paths = {"model": clap_path, "index": index_path, "captioner": captioner_path}
        self.library_roots = library_roots(index_path or None, index, library)
        self._files: dict[str, Path] = _registered_files(index)

    @classmethod
    def load(cls, model: Path, index: Path, captioner: Path | None = None, *,
             max_duration: float | None = None, device: str = "cpu",
             library: Sequence[str | Path] = (), backend: str = "torch") -> "ModelBackend":
        """Load a CLAP checkpoint folder, an index folder and optionally a captioner folder, run
        by torch or ONNX Runtime (``backend``; :mod:`audiocap.onnx_backend`).

        ``library`` folders replace the index's recorded source folder as the only places
        audio is streamed from."""
        from audiocap.serve import wiring

        clap = wiring.load_clap_model(model, device=device, backend=backend)
        idx = wiring.load_index(index)
        cap = wiring.load_captioner(captioner, device=device, backend=backend) if captioner else None
        return cls(clap, idx, cap, clap_path=str(model), index_path=str(index),
                   captioner_path=str(captioner or ""), max_duration=max_duration, library=library)

    def search_text(self, text: str, k: int) -> list[Hit]:
        from audiocap.serve import wiring

        query = wiring.embed_text(self.clap, [text])  # (1, D)
        hits = self._search(query, k)
        calibration = getattr(self.clap, "calibration", None)  # text queries only (audiocap.calibration)
        if calibration is not None:  # Hit is frozen: new hits carry the judgement
            judged = calibration.judge([h.score for h in hits], len(self.index))
            hits = [replace(h, confidence=c, match=m) for h, (c, m) in zip(hits, judged)]
        return hits

    def search_audio(self, wave: np.ndarray, k: int) -> list[Hit]:
        from audiocap.serve import wiring

        query = wiring.embed_audio(self.clap, wave)  # (N,) -> (1, D)
        return self._search(query, k)

    def caption(self, wave: np.ndarray, beam: int) -> list[str]:
        from audiocap.serve import wiring

        if self.captioner is None:
            raise CaptionerMissing("no captioner loaded; start the service with --captioner CKPT")
        return wiring.caption(self.captioner, wave, sr=self.sample_rate, beam=beam)

    def caption_windows(self, wave: np.ndarray, beam: int) -> list[tuple[float, float, str]]:
        """One caption per window of the captioner's long-audio policy, ``[(start s, end s,
        caption)]``, as ``audiocap caption --per-window`` prints them (the page's long uploads)."""
        from audiocap.serve import wiring

        if self.captioner is None:
            raise CaptionerMissing("no captioner loaded; start the service with --captioner CKPT")
        return wiring.caption_windows(self.captioner, wave, sr=self.sample_rate, beam=beam)

    def classify(self, wave: np.ndarray, labels: list[str], prompt: str) -> list[dict]:
        """Zero-shot: every label with its probability and cosine, most probable first
        (:func:`audiocap.zeroshot.classify_embeddings`; the wave embedded as audio queries are)."""
        from audiocap.serve import wiring

        return wiring.classify(self.clap, wave, labels, prompt)

    def audio_path(self, item_id: str) -> Path | None:
        return self._files.get(item_id)

    def items(self) -> list[dict]:
        """The index's item records (id, duration, captions, tags, license... as built), read-only:
        the page's durations, tags and example queries (:mod:`audiocap.serve.catalog`)."""
        return list(self.index.items)

    @property
    def caption_window(self) -> float:
        """Seconds per window when a long upload is captioned window by window (the captioner's
        training clip length)."""
        return float(getattr(self.captioner, "window", None) or 10.0)

    def _playable_count(self) -> int:
        """Items whose file is inside the library (counted once: a realpath per item)."""
        if getattr(self, "_playable", None) is None:
            from audiocap.serve.library import library_file

            self._playable = sum(library_file(p, self.library_roots, sniff=False) is not None
                                 for p in self._files.values())
        return self._playable

    def info(self) -> dict:
        return {
            "backend": "models",
            "items": len(self.index),
            "playable": self._playable_count(),
            "sample_rate": self.sample_rate,
            "captioner": self.captioner is not None,
            **{f"{k}_path": v for k, v in self._paths.items()},
        }

    def _search(self, query: np.ndarray, k: int) -> list[Hit]:
        from audiocap.serve import wiring

        return [Hit(id=i, score=float(s), path=str(self._files[i]) if i in self._files else None,
                    caption=c) for i, s, c in wiring.search(self.index, query, k)]


def _registered_files(index) -> dict[str, Path]:
    """Map item id -> the audio path the index records (checked on every request, not here:
    :func:`audiocap.serve.library.library_file`)."""
    from audiocap.serve import wiring

    return {str(item_id): Path(path) for item_id, path in wiring.index_items(index) if path}
