"""Safe intake of uploaded audio: bounded streaming read, content sniffing, header-first decode.

An upload is read from the socket chunk by chunk and abandoned (413) as soon as it exceeds the
byte limit, so a huge body never sits in memory. Its first bytes are checked against the magic
numbers of the containers libsndfile decodes (the filename and the declared content type are
not trusted), the container header is read to reject over-long audio before decoding any
samples, and only then is the waveform decoded and resampled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from audiocap.audio.io import AudioError, audio_info, load_audio

MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file in a multipart body


class ApiError(Exception):
    """An error with an HTTP status and a stable machine-readable code, rendered as JSON."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Upload:
    """A received file: its client-side name and raw bytes."""

    filename: str
    data: bytes


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


async def read_upload(request: Request, *, max_bytes: int, field: str = "file") -> Upload:
    """Read one file from a multipart/form-data request, rejecting it early when too large.

    A Content-Length above the limit is refused before any body byte is read; otherwise the
    body is streamed and the read stops at the first chunk that crosses the limit. Returns the
    part named ``field``. Raises :class:`ApiError` (413 too large, 415 not multipart, 400
    malformed body or missing/empty file).
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
    try:
        async for chunk in request.stream():
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
    return Upload(filename=name, data=data)


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


def decode_upload(upload: Upload, *, sr: int, max_duration: float | None) -> tuple[np.ndarray, float]:
    """Sniff, check the header duration, then decode to float32 mono at ``sr``: (wave (N,), seconds).

    Blocking (libsndfile + soxr): call it off the event loop. Raises :class:`ApiError` 415 for
    non-audio, 413 for audio longer than ``max_duration``, 422 for corrupt or unusable audio.
    """
    sniff_audio(upload.data[:64])
    try:
        meta = audio_info(upload.data, name=upload.filename)
    except AudioError as exc:
        raise ApiError(422, "bad_audio", _clean(str(exc))) from None
    if max_duration is not None and meta.duration > max_duration + 1e-6:
        raise ApiError(413, "too_long",
                       f"{upload.filename} is {meta.duration:.2f} s long; this server accepts "
                       f"recordings up to {max_duration:.2f} s. Trim it or choose a shorter part")
    try:
        wave = load_audio(upload.data, sr=sr, max_duration=max_duration, name=upload.filename)
    except AudioError as exc:
        raise ApiError(422, "bad_audio", _clean(str(exc))) from None
    return wave, meta.duration
