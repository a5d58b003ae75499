"""Event library: decode every source recording once, clean it, and cache it.

Each recording is decoded with :func:`audiocap.audio.io.load_audio` to mono float32 at the
storage rate (32 kHz, the rate PANNs CNN14 was trained at; towers that want another rate,
such as aisfx at 44.1 kHz, resample on load), trimmed by frame energy, loudness-normalized to
a common active-frame RMS, and dropped when near-silent or byte-identical to one already kept
(MD5). Cleaned waveforms are cached as ``.npy`` keyed by file MD5 and rate, so rebuilding a
dataset does not decode again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

import numpy as np

from audiocap.audio.io import AudioError, load_audio
from audiocap.data.foley.sources import Recording
from audiocap.fileio import atomic_path

SR = 32000
TARGET_DBFS = -20.0     # active-frame RMS after normalization
SILENT_DBFS = -60.0     # recordings quieter than this (whole-file RMS) are dropped
FRAME = 0.02            # seconds per energy frame


@dataclass
class Event:
    """A cleaned recording ready to mix: waveform at :data:`SR` plus measurements."""

    rec: Recording
    md5: str
    wave: np.ndarray = field(repr=False)   # (N,) float32
    rms_db: float                          # of the raw decoded file
    centroid_hz: float                     # spectral centroid of the cleaned event

    @property
    def duration(self) -> float:
        return len(self.wave) / SR


def db(x: float) -> float:
    """Amplitude ratio to decibels (floor at -200 dB)."""
    return float(20 * np.log10(max(x, 1e-10)))


def frame_rms(wave: np.ndarray, sr: int = SR, frame: float = FRAME) -> np.ndarray:
    """RMS of consecutive non-overlapping frames (last partial frame dropped)."""
    n = max(1, int(sr * frame))
    k = len(wave) // n
    if k == 0:
        return np.array([np.sqrt(np.mean(wave ** 2))]) if len(wave) else np.zeros(1)
    return np.sqrt(np.mean(wave[: k * n].reshape(k, n).astype(np.float64) ** 2, axis=1))


def clean(wave: np.ndarray, sr: int = SR) -> np.ndarray:
    """Trim leading/trailing frames 40 dB below the loudest frame, fade the edges, normalize.

    Normalization sets the RMS over active frames (within 40 dB of the peak frame) to
    :data:`TARGET_DBFS`, then lowers the gain if the peak would exceed 0.99.
    """
    rms = frame_rms(wave, sr)
    thr = max(rms.max() * 10 ** (-40 / 20), 10 ** (SILENT_DBFS / 20))
    active = np.flatnonzero(rms >= thr)
    n = int(sr * FRAME)
    if len(active):
        a = max(0, (active[0] - 1) * n)
        b = min(len(wave), (active[-1] + 2) * n)
        wave = wave[a:b]
    fade = min(int(0.005 * sr), len(wave) // 4)
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        wave = wave.copy()
        wave[:fade] *= ramp
        wave[-fade:] *= ramp[::-1]
    act = rms[active] if len(active) else rms
    level = np.sqrt(np.mean(act ** 2))
    gain = 10 ** (TARGET_DBFS / 20) / max(level, 1e-9)
    peak = float(np.abs(wave).max()) if len(wave) else 0.0
    gain = min(gain, 0.99 / max(peak, 1e-9))
    return (wave * gain).astype(np.float32)


def spectral_centroid(wave: np.ndarray, sr: int = SR) -> float:
    """Magnitude-weighted mean frequency (Hz) of the whole waveform's spectrum."""
    if len(wave) == 0:
        return 0.0
    mag = np.abs(np.fft.rfft(wave[: sr * 10]))
    freqs = np.fft.rfftfreq(min(len(wave), sr * 10), 1 / sr)
    return float((mag * freqs).sum() / max(mag.sum(), 1e-12))


def _process(args: tuple[Recording, str]) -> tuple[str, str, float, float, str]:
    """Worker: (rec id, md5, raw rms dB, centroid, status); writes the cached .npy."""
    rec, cache_dir = args
    raw = Path(rec.file).read_bytes()
    md5 = hashlib.md5(raw).hexdigest()
    target = Path(cache_dir) / f"{md5}.npy"
    meta = Path(cache_dir) / f"{md5}.txt"
    if target.exists() and meta.exists():
        rms_db, cen = (float(v) for v in meta.read_text().split())
        return rec.id, md5, rms_db, cen, "ok"
    try:
        wave = load_audio(rec.file, sr=SR)
    except AudioError as exc:
        return rec.id, md5, -200.0, 0.0, f"undecodable: {exc.reason}"
    rms_db = db(float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))) if len(wave) else -200.0
    if rms_db < SILENT_DBFS or len(wave) < int(0.05 * SR):
        return rec.id, md5, rms_db, 0.0, "near-silent or too short"
    ev = clean(wave)
    cen = spectral_centroid(ev)
    with atomic_path(target, suffix=".npy") as tmp:
        np.save(tmp, ev)
    with atomic_path(meta) as tmp:
        tmp.write_text(f"{rms_db:.3f} {cen:.1f}\n")
    return rec.id, md5, rms_db, cen, "ok"


def build_library(recs: list[Recording], cache: Path, *, jobs: int = 1,
                  progress: Callable[[int], None] | None = None) -> tuple[list[Event], list[dict]]:
    """Clean and cache every recording; return (kept events sorted by id, dropped reports).

    A recording is dropped when it cannot be decoded, is near-silent (< -60 dBFS), or has the
    same bytes as a recording with a smaller id (MD5 dedupe).
    """
    cache_dir = cache / "library" / f"sr{SR}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = [(r, str(cache_dir)) for r in recs]
    results = []
    if jobs > 1 and len(work) > 8:
        with get_context("fork").Pool(jobs) as pool:
            for res in pool.imap(_process, work, chunksize=4):
                results.append(res)
                if progress:
                    progress(1)
    else:
        for w in work:
            results.append(_process(w))
            if progress:
                progress(1)
    by_id = {r.id: r for r in recs}
    events, dropped, seen = [], [], {}
    for rid, md5, rms_db, cen, status in sorted(results):
        rec = by_id[rid]
        if status != "ok":
            dropped.append({"id": rid, "reason": status, "rms_db": round(rms_db, 1)})
        elif md5 in seen:
            dropped.append({"id": rid, "reason": f"duplicate of {seen[md5]}"})
        else:
            seen[md5] = rid
            wave = np.load(cache_dir / f"{md5}.npy")
            events.append(Event(rec=rec, md5=md5, wave=wave, rms_db=rms_db, centroid_hz=cen))
    return events, dropped


def count_bursts(wave: np.ndarray, sr: int = SR) -> int:
    """Number of sound bursts: runs of frames within 20 dB of the loudest frame, merging gaps
    shorter than 0.1 s. Used to decide whether "twice" may be said of a repeated recording."""
    rms = frame_rms(wave, sr)
    on = rms >= rms.max() * 10 ** (-20 / 20)
    bursts, gap, inside = 0, 0, False
    for flag in on:
        if flag:
            if not inside:
                bursts += 1
            inside, gap = True, 0
        elif inside:
            gap += 1
            if gap * FRAME >= 0.1:
                inside = False
    return bursts
