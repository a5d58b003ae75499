"""Safe intake of uploaded audio: bounded streaming read, content sniffing, header-first decode.

An upload is read from the socket chunk by chunk and abandoned (413) as soon as it exceeds the
byte limit, so a huge body never sits in memory. Its first bytes are checked against the magic
numbers of the containers libsndfile decodes (the filename and the declared content type are
not trusted), the container header is read to reject over-long audio before decoding any
samples, and only then is the waveform decoded and resampled.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from dataclasses import field as datafield

import numpy as np
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from audiocap.audio.io import AudioError, audio_info, read_blocks, resample

MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file in a multipart body


class ApiError(Exception):
    """An error with an HTTP status and a stable machine-readable code, rendered as JSON."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


@dataclass(frozen=True)
class Upload:
    """A received file: its client-side name and raw bytes, and the form's text fields (e.g. the
    candidate labels sent with a sound to classify)."""

    filename: str
    data: bytes
    fields: dict[str, str] = datafield(default_factory=dict)


# (label, predicate on the first 16 bytes) for the containers we accept.
AUDIO_SIGNATURES: tuple[tuple[str, object], ...] = (
    ("wav", lambda b: b[:4] in (b"RIFF", b"RF64") and b[8:12] == b"WAVE"),
    ("flac", lambda b: b[:4] == b"fLaC"),
    ("ogg", lambda b: b[:4] == b"OggS"),
    ("mp3", lambda b: b[:3] == b"ID3" or (len(b) > 1 and b[0] == 0xFF and (b[1] & 0xE0) == 0xE0)),
    ("aiff", lambda b: b[:4] == b"FORM" and b[8:12] in (b"AIFF", b"AIFC")),
)

# Common non-audio files, named in the error so the user knows what they sent.
OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "gzip data"),
    (b"\x7fELF", "an executable"), (b"<!DOCTYPE", "an HTML page"), (b"<html", "an HTML page"),
)


def sniff_audio(head: bytes) -> str:
    """Return the container name ('wav', 'flac', 'ogg', 'mp3', 'aiff') from the magic bytes.

    Raises :class:`ApiError` 415 naming what the bytes look like when they are not one of the
    accepted audio containers (JPEG's FF D8 is checked before the MPEG frame sync it resembles).
    """
    for magic, what in OTHER_SIGNATURES:
        if head.startswith(magic):
            return _unsupported(what)
    for name, matches in AUDIO_SIGNATURES:
        if matches(head):  # type: ignore[operator]
            return name
    sample = head[:64]
    looks_text = sample and all(32 <= c < 127 or c in (9, 10, 13) for c in sample)
    return _unsupported("plain text" if looks_text else "not a recognised audio container")


def _unsupported(what: str) -> str:
    raise ApiError(415, "unsupported_media_type",
                   f"the uploaded file is {what}; send WAV, FLAC, Ogg (Vorbis/Opus), MP3 or AIFF "
                   "audio (the content is checked, not the filename)")


async def read_upload(request: Request, *, max_bytes: int, field: str = "file",
                      timeout: float | None = None) -> Upload:
    """Read one file from a multipart/form-data request, rejecting it early when too large.

    A Content-Length above the limit is refused before any body byte is read; otherwise the
    body is streamed and the read stops at the first chunk that crosses the limit, or when the
    whole body has not arrived ``timeout`` seconds after the read began (a client trickling one
    byte per second would otherwise hold a connection and a buffer forever). Returns the part
    named ``field``. Raises :class:`ApiError` (413 too large, 415 not multipart, 408 too slow,
    400 malformed body or missing/empty file).
    """
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise ApiError(415, "expected_multipart",
                       f"send the audio as multipart/form-data with a '{field}' part "
                       f"(got content-type '{ctype or 'none'}')")
    limit = max_bytes + MULTIPART_SLACK
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(max_bytes, int(declared))
    body = bytearray()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout is not None else None
    chunks = request.stream().__aiter__()
    try:
        while True:
            try:
                if deadline is None:
                    chunk = await chunks.__anext__()
                else:
                    chunk = await asyncio.wait_for(chunks.__anext__(), max(0.0, deadline - loop.time()))
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                raise ApiError(408, "upload_timeout",
                               f"the upload did not arrive within {timeout:g} s ({len(body)} bytes received); "
                               "send the file in one go or over a faster connection",
                               headers={"Connection": "close"}) from None  # drop the trickling client
            body += chunk
            if len(body) > limit:
                raise _too_large(max_bytes, None)
    except ClientDisconnect:
        raise ApiError(400, "client_disconnect", "the client closed the connection mid-upload")
    form = await _parse_multipart(request.headers, bytes(body))
    part = form.get(field)
    if part is None or not isinstance(part, UploadFile):
        names = ", ".join(repr(k) for k in form.keys()) or "none"
        raise ApiError(400, "missing_file", f"no file part named '{field}' (parts sent: {names})")
    data = await part.read()
    name = (part.filename or "upload")[:200]
    if not data:
        raise ApiError(400, "empty_file", f"{name}: the uploaded file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise _too_large(max_bytes, len(data))
    texts = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    return Upload(filename=name, data=data, fields=texts)


async def _parse_multipart(headers: Headers, body: bytes):
    async def chunks():
        yield body

    try:
        return await MultiPartParser(headers, chunks(), max_files=1, max_fields=8).parse()
    except MultiPartException as exc:
        raise ApiError(400, "bad_multipart", f"malformed multipart body: {exc.message}") from None


def _too_large(max_bytes: int, got: int | None) -> ApiError:
    limit = f"{max_bytes / 1e6:.1f} MB"
    if got is None:
        return ApiError(413, "too_large", f"upload too large: over the limit of {limit} "
                        "(reading stopped there)")
    return ApiError(413, "too_large", f"upload too large: {got / 1e6:.1f} MB; the limit is {limit}")


def _clean(message: str) -> str:
    """Drop libsndfile's '<_io.BytesIO object at 0x...>' from a decoder message."""
    return re.sub(r"\s*<_io\.\w+ object at 0x[0-9a-f]+>", "", message)


def decode_upload(upload: Upload, *, sr: int, max_duration: float | None,
                  limits: "DecodeLimits | None" = None) -> tuple[np.ndarray, float]:
    """Sniff, check the header, then decode to float32 mono at ``sr``: (wave (N,), seconds).

    The header's channel count and sample rate are checked against ``limits`` before a single
    sample is decoded (8 channels at 655 kHz in a 168 KB FLAC of silence would otherwise cost
    gigabytes); decoding then runs block by block and stops as soon as the audio exceeds
    ``max_duration`` or ``limits.max_samples`` (frames x channels), whatever the header claimed.
    Blocking (libsndfile + soxr): call it off the event loop. Raises :class:`ApiError` 415 for
    non-audio, 413 for audio over a limit, 422 for corrupt or unusable audio.
    """
    limits = limits or DecodeLimits()
    name = upload.filename
    sniff_audio(upload.data[:64])
    try:
        meta = audio_info(upload.data, name=name, count_unknown=False)  # a streamed FLAC: not counted
    except AudioError as exc:
        raise ApiError(422, "bad_audio", _clean(str(exc))) from None
    if meta.channels > limits.max_channels:
        raise ApiError(413, "too_many_channels", f"{name}: {meta.channels} channels; the limit is "
                       f"{limits.max_channels} (mix it down to mono or stereo)")
    if meta.sample_rate > limits.max_sample_rate:
        raise ApiError(413, "sample_rate_too_high", f"{name}: sample rate {meta.sample_rate} Hz; the "
                       f"limit is {limits.max_sample_rate} Hz (resample it, e.g. to 48000 Hz)")
    if meta.sample_rate < limits.min_sample_rate:
        raise ApiError(422, "sample_rate_too_low", f"{name}: sample rate {meta.sample_rate} Hz is below "
                       f"{limits.min_sample_rate} Hz; this is not usable audio")
    if max_duration is not None and meta.length_known and meta.duration > max_duration + 1e-6:
        raise ApiError(413, "too_long",
                       f"{name} is {meta.duration:.2f} s long; this server accepts "
                       f"recordings up to {max_duration:.2f} s. Trim it or choose a shorter part")
    wave = _bounded_decode(upload, meta.channels, meta.sample_rate, max_duration,
                           limits.sample_budget(max_duration))  # (N,) mono
    if not np.isfinite(wave).all():
        raise ApiError(422, "bad_audio", f"{name}: contains NaN or inf samples")
    seconds = wave.shape[0] / float(meta.sample_rate)
    return resample(wave, meta.sample_rate, sr), seconds


@dataclass(frozen=True)
class DecodeLimits:
    """What an upload may decode to: channels and sample rate (read from the header first) and
    the decoded sample count (frames x channels, counted while decoding)."""

    max_channels: int = 8
    max_sample_rate: int = 192_000
    min_sample_rate: int = 1_000
    max_samples: int | None = None  # None: max_duration (or 30 s) of 48 kHz stereo

    def sample_budget(self, max_duration: float | None) -> int:
        """Decoded samples (frames x channels) an upload may produce."""
        if self.max_samples is not None:
            return int(self.max_samples)
        return int((max_duration or 30.0) * 48_000 * 2)


def _bounded_decode(upload: Upload, channels: int, rate: int, max_duration: float | None,
                    max_samples: int) -> np.ndarray:
    """Decode at most the allowed frames block by block, mixing each block to mono as it comes
    (memory holds the mono wave and one block): float32 (frames,). The frames are counted, not
    the header's claim: a streamed FLAC or one whose header claims 1 sample is bounded too."""
    import contextlib

    name = upload.filename
    max_frames = max_samples // max(1, channels)
    if max_duration is not None:
        max_frames = min(max_frames, int(max_duration * rate) + 1)
    blocks, total = [], 0
    try:
        with contextlib.closing(read_blocks(upload.data, name=name)) as decoded:
            for block in decoded:
                block = block[: max_frames + 1 - total]
                blocks.append(block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0].copy())
                total += block.shape[0]
                if total > max_frames:
                    what = (f"longer than {max_duration:.2f} s" if max_duration is not None
                            and max_frames == int(max_duration * rate) + 1 else
                            f"more than {max_samples} decoded samples (frames x channels)")
                    raise ApiError(413, "too_long", f"{name}: decodes to {what} although its header "
                                   "says otherwise; trim it")
    except AudioError as exc:
        raise ApiError(422, "bad_audio", _clean(str(exc))) from None
    if total == 0:
        raise ApiError(422, "bad_audio", f"{name}: zero-length audio (no samples)")
    return np.ascontiguousarray(np.concatenate(blocks) if len(blocks) > 1 else blocks[0], dtype=np.float32)
