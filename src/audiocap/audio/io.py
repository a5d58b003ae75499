"""Decode audio files to float32 mono at a target sample rate, with one clear error type.

Every model in audiocap consumes mono float32 waveforms at a fixed rate (the towers decide the
rate). Files are decoded with libsndfile (``soundfile``: wav, flac, ogg/vorbis, opus, mp3, aiff)
and resampled with soxr (the "HQ" recipe). Long recordings are never cut silently: either the
caller sets ``max_duration`` and gets an :class:`AudioError` for longer files, or it splits the
waveform with :func:`split_windows`, whose policy for the last, partial window is explicit.

Decoding trusts the data, not the header: samples are read block by block until the decoder
reaches the end of the stream, so a streamed FLAC (STREAMINFO total_samples = 0, which the
format allows) or one whose header claims fewer samples than its frames hold decodes fully.
Where the decoded length differs from the header's claim (a truncated download, a lying
header) the file is still used and one :class:`AudioWarning` names it and both lengths.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import soundfile as sf
import soxr
from soundfile import _ffi, _snd  # sf_readf_float to the end of a stream (see _blocks); soundfile is pinned

SUPPORTED_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")

Source = str | os.PathLike | bytes | BinaryIO

BLOCK_SAMPLES = 65_536  # samples (frames x channels) decoded per libsndfile call
_UNKNOWN_FRAMES = 2**62  # libsndfile reports SF_COUNT_MAX frames when a header does not say
_HEAD_BYTES = 65_536  # bytes read to parse a container header ourselves
_FD2_LOCK = threading.Lock()  # file descriptor 2 is shared by every thread of the process
_MPG123_LINE = re.compile(r"(?:Note|Warning|Error): |\[[^\]]*mpg123[^\]]*\] ")


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


class AudioWarning(UserWarning):
    """A file decoded, but not as its header said (truncated, or more samples than claimed)."""


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
    length_known: bool = True  # False: the header does not say and counting was not asked for


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
        if path.is_symlink():  # a link whose target is gone, or a chain of links back to itself
            try:
                os.stat(path)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise AudioError(label, "is a symbolic link loop", "fix or delete the link") from None
            raise AudioError(label, f"is a broken symbolic link (to {os.readlink(path)}, which does "
                             "not exist)", "fix or delete the link")
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


class _Patched(io.RawIOBase):
    """A read-only view of a seekable binary stream with ``patch`` laid over the bytes at
    ``offset``: blanks a FLAC header's sample count without copying the file."""

    def __init__(self, raw: BinaryIO, offset: int, patch: bytes, label: str) -> None:
        super().__init__()
        self._raw, self._offset, self._patch, self._label = raw, offset, patch, label

    def __repr__(self) -> str:  # libsndfile's errors name the file object
        return repr(self._label)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(pos, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buf) -> int:  # type: ignore[no-untyped-def]
        pos, view = self._raw.tell(), memoryview(buf).cast("B")
        data = self._raw.read(len(view))
        n = len(data)
        view[:n] = data
        lo, hi = max(pos, self._offset), min(pos + n, self._offset + len(self._patch))
        if lo < hi:
            view[lo - pos : hi - pos] = self._patch[lo - self._offset : hi - self._offset]
        return n


@dataclass
class _Decoding:
    """An open libsndfile handle plus what decoding it must compare against and collect."""

    file: sf.SoundFile
    claimed: int | None  # frames the header claims; None when it does not say
    exact: bool  # the claim was parsed from the container (compare exactly), else libsndfile's estimate
    notes: list[str] | None  # libmpg123's stderr lines while decoding an MP3 (None: not collected)
    trap: bool  # MPEG audio: catch libmpg123's stderr output
    frames: int = 0  # decoded so far
    stopped: str = ""  # the decoder error that ended the stream early, if any


def _head(handle: str | BinaryIO) -> bytes:
    """The first bytes of a file or stream (a stream's position is kept)."""
    if isinstance(handle, str):
        with open(handle, "rb") as fh:
            return fh.read(_HEAD_BYTES)
    pos = handle.tell()
    try:
        return handle.read(_HEAD_BYTES)
    finally:
        handle.seek(pos)


def _flac_count_offset(head: bytes) -> int | None:
    """Offset of the 8 STREAMINFO bytes that end in FLAC's 36-bit total_samples, or None.

    STREAMINFO is the first metadata block after "fLaC" (an ID3v2 tag may precede it): a 4-byte
    block header, 2 + 2 bytes block sizes, 3 + 3 bytes frame sizes, then 20 bits sample rate,
    3 bits channels - 1, 5 bits bits-per-sample - 1 and 36 bits total_samples (0 = unknown).
    """
    start = 0
    if head[:3] == b"ID3" and len(head) >= 10:  # 4 "syncsafe" size bytes; a footer adds 10
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9] & 0x7F
        start = 10 + size + (10 if head[5] & 0x10 else 0)
    if head[start : start + 4] != b"fLaC" or len(head) < start + 26 or head[start + 4] & 0x7F:
        return None
    return start + 18


def _chunks(head: bytes, order: Literal["little", "big"]) -> Iterator[tuple[bytes, int, int]]:
    """(id, body offset, size) of the RIFF/IFF chunks that start within ``head``."""
    pos = 12
    while pos + 8 <= len(head):
        size = int.from_bytes(head[pos + 4 : pos + 8], order)
        yield head[pos : pos + 4], pos + 8, size
        pos += 8 + size + (size & 1)


def _claimed_frames(head: bytes) -> int | None:
    """Frames the container header claims, parsed here because libsndfile corrects a truncated
    WAV's or AIFF's count to what the file holds: FLAC STREAMINFO total_samples, WAV data size /
    block align, AIFF COMM frames. None when the header does not say (or is not one of these)."""
    offset = _flac_count_offset(head)
    if offset is not None:
        return int.from_bytes(head[offset : offset + 8], "big") & (2**36 - 1) or None
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        align = 0
        for cid, at, size in _chunks(head, "little"):
            if cid == b"fmt " and at + 14 <= len(head):
                align = int.from_bytes(head[at + 12 : at + 14], "little")
            if cid == b"data":  # 0 or 0xFFFFFFFF: written as a stream (or RF64), length unknown
                return size // align if align and 0 < size < 0xFFFFFFFF else None
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        for cid, at, _ in _chunks(head, "big"):
            if cid == b"COMM" and at + 6 <= len(head):
                return int.from_bytes(head[at + 2 : at + 6], "big")
    return None


def _is_mpeg(head: bytes, label: str) -> bool:
    """An MP3 (by name, ID3v2 tag or MPEG frame sync) that libmpg123 will decode."""
    sync = len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
    return label.lower().endswith(".mp3") or head[:3] == b"ID3" or sync


def _unreadable(label: str, exc: Exception) -> AudioError:
    """The AudioError for a file libsndfile cannot open or decode."""
    if "possibly a pipe" in str(exc):  # libsndfile's words when libmpg123 rejects a regular file
        return AudioError(label, "not audio (unrecognised format)",
                          "its contents are not a sound file libsndfile can read; check the file")
    return AudioError(label, f"corrupt or unreadable audio: {exc}")


@contextlib.contextmanager
def _stderr_notes(notes: list[str] | None, *, enabled: bool) -> Iterator[None]:
    """Keep libmpg123's messages ("Note: Trying to resync...", "Warning: Xing stream size off",
    ID3v2 complaints) off the terminal while the block runs; collect them into ``notes``.

    The C library prints to the process's stderr itself, so file descriptor 2 points at a
    temporary file during the block, one block at a time (a lock: the descriptor is shared by
    every thread). Afterwards libmpg123's lines go to ``notes`` (dropped if None) and anything
    else written meanwhile (another thread's message) is written back to stderr unchanged.
    """
    if not enabled:
        yield
        return
    with _FD2_LOCK, contextlib.ExitStack() as stack:
        try:
            tmp = stack.enter_context(tempfile.TemporaryFile())
            saved = os.dup(2)
        except OSError:  # no stderr at all, or no room for the file: decode without the trap
            saved = -1
        if saved < 0:
            yield
            return
        with contextlib.suppress(Exception):
            sys.stderr.flush()  # Python's pending text belongs before the redirect
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().splitlines(keepends=True):
                text = line.decode("utf-8", "replace").strip()
                if _MPG123_LINE.match(text):
                    if notes is not None:
                        notes.append(text)
                elif line.strip():
                    os.write(2, line)


@contextlib.contextmanager
def _opened(label: str, handle: str | BinaryIO, *, notes: list[str] | None) -> Iterator[_Decoding]:
    """Open ``handle`` with libsndfile so that decoding reads to the end of the stream.

    libsndfile stops reading at the sample count of a FLAC header, so a FLAC is opened through a
    view whose STREAMINFO total_samples reads 0 ("unknown", as in a streamed FLAC); the header's
    claim is kept to compare with what was decoded.
    """
    try:
        head = _head(handle)
    except OSError as exc:  # permission denied, an unseekable stream
        raise AudioError(label, f"cannot be read: {exc.strerror or exc}",
                         "check the file's permissions") from None
    claimed, offset = _claimed_frames(head), _flac_count_offset(head)
    trap = _is_mpeg(head, label)
    with contextlib.ExitStack() as stack:
        src: str | BinaryIO = handle
        if offset is not None and claimed is not None:
            raw = stack.enter_context(open(handle, "rb")) if isinstance(handle, str) else handle
            count = int.from_bytes(head[offset : offset + 8], "big") & ~(2**36 - 1)
            src = _Patched(raw, offset, count.to_bytes(8, "big"), label)
        try:
            with _stderr_notes(notes, enabled=trap):
                fh = stack.enter_context(sf.SoundFile(src))
        except Exception as exc:  # libsndfile raises LibsndfileError/RuntimeError/TypeError
            raise _unreadable(label, exc) from None
        exact = claimed is not None
        if claimed is None and fh.frames < _UNKNOWN_FRAMES:
            claimed = int(fh.frames)
        yield _Decoding(fh, claimed, exact, notes, trap)


def _blocks(dec: _Decoding, label: str) -> Iterator[np.ndarray]:
    """float32 blocks (n, channels) until the decoder reports the end of the stream.

    Calls libsndfile's ``sf_readf_float`` directly: soundfile's ``read`` seeks to its position
    after every block, which fails on a FLAC whose length is unknown ("psf_fseek() failed").
    A decoder error after some audio (a truncated FLAC "lost sync") ends the stream there and
    is kept in ``dec.stopped``; an error before any audio raises :class:`AudioError`.
    """
    fh = dec.file
    size = max(1, BLOCK_SAMPLES // fh.channels)  # frames per block
    while True:
        block = np.empty((size, fh.channels), dtype=np.float32)
        with _stderr_notes(dec.notes, enabled=dec.trap):
            n = _snd.sf_readf_float(fh._file, _ffi.cast("float *", block.ctypes.data), size)
            err = _snd.sf_error(fh._file)
        if err and dec.frames + max(n, 0) == 0:
            raise _unreadable(label, sf.LibsndfileError(err))
        if n > 0:
            dec.frames += n
            yield block[:n]
        if err:
            dec.stopped = str(sf.LibsndfileError(err)).strip()
        if err or n <= 0:
            return


def _span(frames: int, sr: int) -> str:
    return f"{frames / sr:.3f} s ({frames:,} frame{'' if frames == 1 else 's'})"


def _decode_note(dec: _Decoding, sr: int) -> str:
    """One line on what went differently from the header: length and decoder notes ('' if none).

    A claim libsndfile estimated (an MP3 without a Xing header) may be off by one MPEG frame.
    """
    parts, claimed, frames = [], dec.claimed, dec.frames
    if claimed is not None and claimed != frames and (dec.exact or abs(claimed - frames) > 1152):
        got, says = _span(frames, sr), _span(claimed, sr)
        parts.append(f"truncated: decoded {got} of the {says} its header claims" if frames < claimed
                     else f"holds {got} although its header claims {says}; decoded it all")
    if dec.stopped:
        parts.append(f"decoding stopped at an error ({dec.stopped})")
    if dec.notes:
        telling = [n for n in dec.notes if "Xing stream size" not in n]  # that one only echoes a cut
        first = (telling or dec.notes)[0].split(": ", 1)[-1]
        more = f" and {len(dec.notes) - 1} more" if len(dec.notes) > 1 else ""
        tag_only = all("ID3" in n for n in dec.notes)  # a bad title tag, not bad audio
        parts.append(f"the MP3 decoder reported '{first}'{more}; "
                     + ("its ID3 tag is damaged" if tag_only else "the audio may be damaged"))
    return "; ".join(parts)


def audio_info(source: Source, *, name: str | None = None, count_unknown: bool = True) -> AudioInfo:
    """Read the header of an audio file (rate, channels, frames, duration, container, codec).

    A streamed FLAC's header does not know its length (total_samples = 0): its frames are
    counted by decoding block by block (memory stays one block), unless ``count_unknown`` is
    False (an upload, which might decode to billions of samples: bound its decode instead);
    then ``length_known`` is False and frames and duration are 0.
    """
    label, handle = _open(source, name)
    with _opened(label, handle, notes=None) as dec:
        fh = dec.file
        frames = fh.frames if fh.frames < _UNKNOWN_FRAMES else dec.claimed
        if frames is None and count_unknown:
            frames = sum(block.shape[0] for block in _blocks(dec, label))
        sample_rate, channels, fmt, subtype = fh.samplerate, fh.channels, fh.format, fh.subtype
    if sample_rate <= 0 or (frames is not None and frames <= 0):
        raise AudioError(label, "zero-length audio (no samples)")
    return AudioInfo(
        path=label,
        sample_rate=int(sample_rate),
        channels=int(channels),
        frames=int(frames or 0),
        duration=float(frames or 0) / float(sample_rate),
        format=str(fmt),
        subtype=str(subtype),
        length_known=frames is not None,
    )


def read_blocks(source: Source, *, name: str | None = None) -> Iterator[np.ndarray]:
    """Decode ``source`` block by block: float32 arrays (n, channels) until the end of the stream.

    For callers that bound what they decode (uploads) or keep memory flat; like
    :func:`load_audio` it trusts the frames over the header and, after the last block, warns
    (:class:`AudioWarning`) when the two differ. Close it (``contextlib.closing``) when
    stopping early. Raises :class:`AudioError` for an input that cannot be decoded at all.
    """
    label, handle = _open(source, name)
    with _opened(label, handle, notes=[]) as dec:
        yield from _blocks(dec, label)
        sr = int(dec.file.samplerate)
    _warn(dec, label, sr)


def _warn(dec: _Decoding, label: str, sr: int) -> None:
    note = _decode_note(dec, sr)
    if note:
        warnings.warn(AudioWarning(f"{label}: {note}"), stacklevel=3)


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
    parts, frames, finite = [], 0, True
    with _opened(label, handle, notes=[]) as dec:
        file_sr = int(dec.file.samplerate)
        for block in _blocks(dec, label):  # (n, channels) each; mixed to mono as they come
            finite = finite and bool(np.isfinite(block).all())
            parts.append(block.mean(axis=1) if block.shape[1] > 1 else block[:, 0].copy())
            frames += block.shape[0]
    if frames == 0:
        raise AudioError(label, "zero-length audio (no samples)")
    duration = frames / float(file_sr)
    if max_duration is not None and duration > max_duration + 1e-6:
        raise AudioError(
            label,
            f"too long: {duration:.2f} s > max_duration {max_duration:.2f} s",
            "raise the limit or split the file into windows",
        )
    if not finite:
        raise AudioError(label, "contains NaN or inf samples")
    _warn(dec, label, file_sr)
    wave = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return resample(np.ascontiguousarray(wave, dtype=np.float32), file_sr, sr)


def stream_audio(source: Source, *, sr: int, name: str | None = None) -> Iterator[np.ndarray]:
    """Decode ``source`` as :func:`load_audio` does, as a stream of float32 mono chunks at ``sr``.

    Memory stays one decoded block whatever the file's length (a 10-hour recording would not fit
    as one array): channels are averaged block by block and a soxr stream resamples the blocks,
    which gives the same samples as resampling the whole wave at once, so the chunks concatenated
    equal ``load_audio(source, sr=sr)`` bit for bit. Raises :class:`AudioError` as
    :func:`load_audio` does; a NaN or inf sample ends the stream with that error where it is met.
    """
    label, handle = _open(source, name)
    frames = 0
    with _opened(label, handle, notes=[]) as dec:
        file_sr = int(dec.file.samplerate)
        stream = None if file_sr == sr else soxr.ResampleStream(file_sr, sr, 1, dtype="float32", quality="HQ")
        for block in _blocks(dec, label):  # (n, channels)
            if not np.isfinite(block).all():
                raise AudioError(label, "contains NaN or inf samples")
            frames += block.shape[0]
            mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0].copy()
            out = mono if stream is None else stream.resample_chunk(mono)
            if out.size:
                yield out
        if frames == 0:
            raise AudioError(label, "zero-length audio (no samples)")
        if stream is not None:
            tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if tail.size:
                yield tail
    _warn(dec, label, file_sr)


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
