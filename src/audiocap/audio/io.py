"""Decode audio files to float32 mono at a target sample rate, with one clear error type.

Every model in audiocap consumes mono float32 waveforms at a fixed rate (the towers decide the
rate). Files are decoded with libsndfile (``soundfile``: wav, flac, ogg/vorbis, opus, mp3, aiff)
and resampled with soxr (the "HQ" recipe). Long recordings are never cut silently: either the
caller sets ``max_duration`` and gets an :class:`AudioError` for longer files, or it splits the
waveform with :func:`split_windows`, whose policy for the last, partial window is explicit.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import soundfile as sf
import soxr

SUPPORTED_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")

Source = str | os.PathLike | bytes | BinaryIO


class AudioError(ValueError):
    """Raised for any audio input that cannot be used; the message names the file and why.

    Attributes:
        path: the file (or upload name) that failed.
        reason: a short reason such as ``"file not found"`` or ``"contains NaN or inf samples"``.
    """

    def __init__(self, path: str | os.PathLike, reason: str, hint: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        msg = f"{self.path}: {reason}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


@dataclass(frozen=True)
class AudioInfo:
    """What the container header says about a file, without decoding its samples."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    duration: float
    format: str
    subtype: str


def _open(source: Source, name: str | None) -> tuple[str, str | BinaryIO]:
    """Check the cheap failure modes (missing, empty, wrong suffix) and return (name, handle)."""
    if isinstance(source, (bytes, bytearray)):
        label = name or "<bytes>"
        if len(source) == 0:
            raise AudioError(label, "empty file (0 bytes)")
        return label, io.BytesIO(bytes(source))
    if hasattr(source, "read"):
        return name or getattr(source, "name", "<stream>"), source  # type: ignore[return-value]
    path = Path(source)
    label = name or str(path)
    try:
        exists, is_dir, is_file = path.exists(), path.is_dir(), path.is_file()
    except OSError as exc:  # e.g. "File name too long", permission denied on a parent folder
        raise AudioError(label[:200], f"cannot be looked up: {exc.strerror or exc}",
                         "check the path (each name at most 255 bytes)") from None
    if not exists:
        raise AudioError(label, "file not found", "check the path")
    if is_dir:
        raise AudioError(label, "is a folder, not an audio file")
    if not is_file:
        raise AudioError(label, "is not a regular file (a pipe, socket or device)",
                         "give a file on disk; streams are not read")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise AudioError(
            label,
            f"unsupported format '{path.suffix or '(no suffix)'}'",
            f"convert it to one of {', '.join(SUPPORTED_SUFFIXES)}",
        )
    if path.stat().st_size == 0:
        raise AudioError(label, "empty file (0 bytes)")
    return label, str(path)


def audio_info(source: Source, *, name: str | None = None) -> AudioInfo:
    """Read the header of an audio file (rate, channels, frames, duration, container, codec)."""
    label, handle = _open(source, name)
    try:
        info = sf.info(handle)
    except Exception as exc:  # libsndfile raises RuntimeError/LibsndfileError/TypeError
        raise AudioError(label, f"corrupt or unreadable audio: {exc}") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(label, "zero-length audio (no samples)")
    return AudioInfo(
        path=label,
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        duration=float(info.frames) / float(info.samplerate),
        format=str(info.format),
        subtype=str(info.subtype),
    )


def resample(wave: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
    """Resample a mono float32 waveform with soxr (HQ); returns the input when rates agree."""
    if orig_sr == sr:
        return wave.astype(np.float32, copy=False)
    return soxr.resample(wave, orig_sr, sr, quality="HQ").astype(np.float32, copy=False)


def load_audio(
    source: Source,
    *,
    sr: int,
    max_duration: float | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Decode ``source`` to a float32 mono waveform at ``sr`` Hz, shape (N,).

    Channels are averaged. ``max_duration`` (seconds) rejects longer inputs with an
    :class:`AudioError` instead of truncating them; split long files with :func:`split_windows`.
    ``source`` may be a path, raw bytes (an upload) or a binary file object; ``name`` labels
    bytes and streams in error messages. Raises :class:`AudioError` for a missing, empty,
    corrupt, zero-length, non-finite or unsupported input.
    """
    label, handle = _open(source, name)
    try:
        data, file_sr = sf.read(handle, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(label, f"corrupt or unreadable audio: {exc}") from None
    if data.shape[0] == 0:
        raise AudioError(label, "zero-length audio (no samples)")
    duration = data.shape[0] / float(file_sr)
    if max_duration is not None and duration > max_duration + 1e-6:
        raise AudioError(
            label,
            f"too long: {duration:.2f} s > max_duration {max_duration:.2f} s",
            "raise the limit or split the file into windows",
        )
    if not np.isfinite(data).all():
        raise AudioError(label, "contains NaN or inf samples")
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return resample(np.ascontiguousarray(wave, dtype=np.float32), int(file_sr), sr)


def split_windows(
    wave: np.ndarray,
    *,
    sr: int,
    window: float,
    hop: float | None = None,
    last: Literal["pad", "keep", "overlap"] = "pad",
) -> tuple[np.ndarray, np.ndarray]:
    """Split a mono waveform into windows of ``window`` seconds every ``hop`` seconds.

    Nothing is dropped; the ``last`` policy says what happens to a final, partial window:
    ``"pad"`` zero-pads it to full length, ``"keep"`` returns it shorter (only valid when it is
    the only window, so the result stays rectangular: otherwise it pads), ``"overlap"`` shifts it
    back so it ends at the last sample (overlapping its neighbour; no padding).
    Returns ``(windows, starts)``: windows (W, window·sr) float32 and start times in seconds (W,).
    A waveform shorter than one window gives one window. ``hop`` may not exceed ``window``
    (that would skip samples).
    """
    if last not in ("pad", "keep", "overlap"):
        raise ValueError(f"last must be 'pad', 'keep' or 'overlap', got {last!r}")
    hop = window if hop is None else hop
    win_n, hop_n, n = int(round(window * sr)), int(round(hop * sr)), int(wave.shape[0])
    if win_n < 1:
        raise ValueError(f"window must be at least one sample long, got {window} s at {sr} Hz")
    if not 1 <= hop_n <= win_n:  # a hop longer than the window would skip samples
        raise ValueError(f"hop must be between 1/sr and the window ({window} s), got {hop} s")
    if n <= win_n:
        if last == "keep":
            return wave[None, :].astype(np.float32), np.zeros(1)
        out = np.zeros((1, win_n), dtype=np.float32)
        out[0, :n] = wave
        return out, np.zeros(1)
    starts = list(range(0, n - win_n + 1, hop_n))
    if starts[-1] + win_n < n:  # samples left after the last full window
        starts.append(n - win_n if last == "overlap" else starts[-1] + hop_n)
    out = np.zeros((len(starts), win_n), dtype=np.float32)
    for i, s in enumerate(starts):
        seg = wave[s : s + win_n]
        out[i, : seg.shape[0]] = seg
    return out, np.asarray(starts, dtype=np.float64) / sr
