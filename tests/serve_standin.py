"""A deterministic stand-in for the model backend, used by the service tests and the load test.

It is not a model: text search ranks a fixed library by bag-of-words cosine between the query
and each item's caption; audio search and captioning measure the upload's dominant frequency
(FFT peak) and compare it with the library tones. Every answer is computable by hand, so tests
can check that each concurrent request got *its own* answer. It also counts overlapping calls,
which must stay 0 because it declares itself not thread-safe.
"""

from __future__ import annotations

import io
import math
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf

from audiocap.serve.backend import Hit

SR = 16000
# (id, caption, tone frequency in Hz, playable file suffix or None)
LIBRARY = [
    ("rain/roof-01", "rain falling on a metal roof", 220.0, ".wav"),
    ("dog-bark", "a dog barks twice in the distance", 330.0, ".flac"),
    ("birds_morning", "birds chirping in the morning", 2000.0, ".ogg"),
    ("engine idle", "a car engine idling", 110.0, ".wav"),
    ("door-knock", "someone knocks on a wooden door", 440.0, None),
    ("waves", "ocean waves crashing on the shore", 880.0, ".wav"),
]

STANDIN_SCALE = 10.0  # the stand-in's "logit scale" for classify

TAGS = {"rain/roof-01": ["rain", "roof"], "dog-bark": ["dog", "animal"],
        "birds_morning": ["birds", "animal"]}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def bow_cosine(a: str, b: str) -> float:
    """Cosine similarity of two bag-of-words count vectors."""
    wa, wb = words(a), words(b)
    vocab = sorted(set(wa) | set(wb))
    va = np.array([wa.count(w) for w in vocab], dtype=np.float64)
    vb = np.array([wb.count(w) for w in vocab], dtype=np.float64)
    den = np.linalg.norm(va) * np.linalg.norm(vb)
    return float(va @ vb / den) if den else 0.0


def dominant_hz(wave: np.ndarray, sr: int = SR) -> float:
    """Frequency (Hz) of the largest FFT magnitude, excluding DC."""
    spec = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    spec[0] = 0.0
    return float(np.argmax(spec) * sr / len(wave))


def tone_bytes(hz: float = 440.0, *, seconds: float = 1.0, sr: int = SR, fmt: str = "WAV",
               channels: int = 1, subtype: str | None = None) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    wave = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    buf = io.BytesIO()
    sf.write(buf, data, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


class StandInBackend:
    """Deterministic backend over LIBRARY; ``delay`` seconds of sleep per model call."""

    sample_rate = SR
    thread_safe = False

    def __init__(self, folder: Path, *, delay: float = 0.0, max_duration: float | None = None,
                 captioner: bool = True) -> None:
        self.delay, self.max_duration, self.has_captioner = delay, max_duration, captioner
        self.library_roots = [Path(folder).resolve()]  # the only folder audio is streamed from
        self.files: dict[str, Path] = {}
        for item_id, _, hz, suffix in LIBRARY:
            if suffix is None:
                continue
            path = Path(folder) / f"item{len(self.files)}{suffix}"
            t = np.arange(SR) / SR
            sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), SR)
            self.files[item_id] = path
        self.calls = 0
        self.overlaps = 0
        self._active = 0
        self._guard = threading.Lock()

    def _enter(self) -> None:
        with self._guard:
            self._active += 1
            self.calls += 1
            if self._active > 1:
                self.overlaps += 1
        if self.delay:
            time.sleep(self.delay)

    def _leave(self) -> None:
        with self._guard:
            self._active -= 1

    def _hit(self, item_id: str, caption: str, score: float) -> Hit:
        path = self.files.get(item_id)
        return Hit(id=item_id, score=score, path=str(path) if path else None, caption=caption)

    def _rank(self, score_of, k: int) -> list[Hit]:
        """Top-k LIBRARY items by ``score_of(caption, hz)``, ties broken by library order."""
        self._enter()
        try:
            scored = [(score_of(cap, hz), i, item_id, cap)
                      for i, (item_id, cap, hz, _) in enumerate(LIBRARY)]
            scored.sort(key=lambda r: (-r[0], r[1]))
            return [self._hit(item_id, cap, s) for s, _, item_id, cap in scored[:k]]
        finally:
            self._leave()

    def search_text(self, text: str, k: int) -> list[Hit]:
        return self._rank(lambda cap, _hz: bow_cosine(text, cap), k)

    def search_audio(self, wave: np.ndarray, k: int) -> list[Hit]:
        query_hz = max(dominant_hz(wave), 1.0)
        return self._rank(lambda _cap, hz: math.exp(-abs(math.log2(query_hz / hz))), k)

    def caption(self, wave: np.ndarray, beam: int) -> list[str]:
        from audiocap.serve.backend import CaptionerMissing

        if not self.has_captioner:
            raise CaptionerMissing("no captioner loaded; start the service with --captioner CKPT")
        self._enter()
        try:
            hz = round(dominant_hz(wave))
            seconds = len(wave) / SR
            options = [f"a steady tone at {hz} hertz",
                       f"a {seconds:.1f} second tone at {hz} hertz",
                       f"a {'high' if hz > 500 else 'low'} pitched hum"]
            return options[:max(1, min(beam, len(options)))]
        finally:
            self._leave()

    def classify(self, wave: np.ndarray, labels: list[str], prompt: str) -> list[dict]:
        """Zero-shot stand-in: a label's "cosine" is the bag-of-words cosine of ``prompt`` filled with
        it and the caption of the library tone nearest to the upload's dominant frequency; the
        probabilities are audiocap's softmax of :data:`STANDIN_SCALE` x cosine."""
        from audiocap.zeroshot import label_probabilities, label_prompts

        caption = self.search_audio(wave, 1)[0].caption
        scores = np.array([bow_cosine(p, caption) for p in label_prompts(labels, prompt)])
        probs = label_probabilities(scores, STANDIN_SCALE)
        order = sorted(range(len(labels)), key=lambda j: -probs[j])
        return [{"label": labels[j], "probability": float(probs[j]), "cosine": float(scores[j])} for j in order]

    def audio_path(self, item_id: str) -> Path | None:
        return self.files.get(item_id)

    def items(self) -> list[dict]:
        """Index-like item records: 1-s durations, tags and a license on some items."""
        return [{"id": item_id, "duration": 1.0, "captions": [cap], "tags": TAGS.get(item_id, []),
                 **({"license": "CC0-1.0", "source": "stand-in recordings"} if item_id in TAGS else {})}
                for item_id, cap, _, _ in LIBRARY]

    def info(self) -> dict:
        return {"backend": "stand-in (deterministic, not a model)", "items": len(LIBRARY),
                "playable": len(self.files), "sample_rate": SR, "captioner": self.has_captioner}


def make_app(delay: float = 0.0, **limits):
    """App factory for uvicorn (``--factory serve_standin:make_app``): library in a temp folder."""
    from audiocap.serve.app import create_app

    folder = Path(tempfile.mkdtemp(prefix="audiocap-standin-"))
    return create_app(StandInBackend(folder, delay=delay), **limits)


@contextmanager
def live_server(app, *, timeout: float = 10.0) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
