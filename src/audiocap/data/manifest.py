"""JSONL manifests: one line per clip, the exchange format of every audiocap dataset.

A line holds ``id``, ``audio`` (path relative to the manifest file, or absolute), ``duration``
(seconds), ``captions`` (list of str), ``tags`` (list of str), ``split``, ``source`` and
``license``; an optional ``meta`` object carries anything else (recipe, original file name), and an
optional ``image`` (path like ``audio``) names a picture of the clip for CLAIP's image tower.
The layout follows audiocraft's JSONL manifests. Reading validates every line and reports
errors with the manifest path and line number; writing is atomic.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from audiocap.fileio import atomic_write_text

REQUIRED = ("id", "audio", "duration", "captions", "tags", "split", "source", "license")


class ManifestError(ValueError):
    """A manifest line is malformed; the message gives the file, the line number and the field."""

    def __init__(self, path: str | os.PathLike, line: int | None, reason: str) -> None:
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


@dataclass
class Clip:
    """One audio clip with its captions and tags, as stored in a manifest line."""

    id: str
    audio: str
    duration: float
    captions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    split: str = "train"
    source: str = ""
    license: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    image: str = ""  # optional picture of the clip (CLAIP); "" = none

    def to_json(self) -> str:
        """Serialize to one JSON line (no trailing newline); ``meta`` and ``image`` are omitted when
        empty, so manifests without pictures are written as before."""
        d = asdict(self)
        for key in ("meta", "image"):
            if not d[key]:
                del d[key]
        return json.dumps(d, ensure_ascii=False)


def _check_line(obj: Any, path: Path, lineno: int) -> Clip:
    if not isinstance(obj, dict):
        raise ManifestError(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise ManifestError(path, lineno, f"missing field(s): {', '.join(missing)}")
    unknown = sorted(set(obj) - set(REQUIRED) - {"meta", "image"})
    if unknown:
        raise ManifestError(path, lineno, f"unknown field(s): {', '.join(unknown)} (put extras in 'meta')")
    for key in ("id", "audio", "split", "source", "license"):
        if not isinstance(obj[key], str):
            raise ManifestError(path, lineno, f"field '{key}' must be a string")
    if not obj["id"]:
        raise ManifestError(path, lineno, "field 'id' is empty")
    if not obj["audio"]:
        raise ManifestError(path, lineno, "field 'audio' is empty")
    dur = obj["duration"]
    if isinstance(dur, bool) or not isinstance(dur, (int, float)) or not dur >= 0 or dur == float("inf"):
        raise ManifestError(path, lineno, f"field 'duration' must be a finite number >= 0, got {dur!r}")
    for key in ("captions", "tags"):
        val = obj[key]
        if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
            raise ManifestError(path, lineno, f"field '{key}' must be a list of strings")
    if any(not c.strip() for c in obj["captions"]):
        raise ManifestError(path, lineno, "field 'captions' contains an empty caption")
    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        raise ManifestError(path, lineno, "field 'meta' must be an object")
    image = obj.get("image", "")
    if not isinstance(image, str):
        raise ManifestError(path, lineno, "field 'image' must be a string (a picture's path, relative to the manifest)")
    return Clip(
        id=obj["id"], audio=obj["audio"], duration=float(dur), captions=list(obj["captions"]),
        tags=list(obj["tags"]), split=obj["split"], source=obj["source"], license=obj["license"],
        meta=dict(meta), image=image,
    )


def read_manifest(path: str | os.PathLike) -> list[Clip]:
    """Read and validate a JSONL manifest; raise :class:`ManifestError` naming the bad line.

    Blank lines are skipped. Ids must be unique within the file.
    """
    path = Path(path)
    if not path.exists():
        raise ManifestError(path, None, "manifest not found")
    clips: list[Clip] = []
    seen: dict[str, int] = {}
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ManifestError(path, lineno, "not valid UTF-8 (save the manifest as UTF-8)") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(path, lineno, f"invalid JSON: {exc.msg}") from None
            except RecursionError:
                raise ManifestError(path, lineno, "JSON nested too deeply for a manifest line") from None
            except ValueError as exc:  # an integer of more than 4300 digits
                raise ManifestError(path, lineno, f"unusable JSON value: {str(exc)[:100]}") from None
            clip = _check_line(obj, path, lineno)
            if clip.id in seen:
                raise ManifestError(path, lineno, f"duplicate id '{clip.id}' (first on line {seen[clip.id]})")
            seen[clip.id] = lineno
            clips.append(clip)
    return clips


def write_manifest(path: str | os.PathLike, clips: Iterable[Clip]) -> Path:
    """Write clips as JSONL atomically (temporary file + rename); validate ids are unique."""
    lines, seen = [], set()
    for i, clip in enumerate(clips, start=1):
        if clip.id in seen:
            raise ManifestError(path, i, f"duplicate id '{clip.id}'")
        seen.add(clip.id)
        lines.append(clip.to_json())
    return atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def audio_path(manifest_path: str | os.PathLike, clip: Clip) -> Path:
    """Resolve a clip's audio path: absolute paths stay, relative ones are relative to the manifest."""
    p = Path(clip.audio)
    return p if p.is_absolute() else Path(os.path.normpath(Path(manifest_path).resolve().parent / p))


def image_path(manifest_path: str | os.PathLike, clip: Clip) -> Path | None:
    """Resolve a clip's picture like :func:`audio_path`; None when the clip has none."""
    return audio_path(manifest_path, Clip(id=clip.id, audio=clip.image, duration=0.0)) if clip.image else None


def relative_audio(manifest_path: str | os.PathLike, audio: str | os.PathLike) -> str:
    """Express ``audio`` relative to the manifest's folder (POSIX separators) when possible."""
    base = Path(manifest_path).resolve().parent
    try:
        return Path(os.path.relpath(Path(audio).resolve(), base)).as_posix()
    except ValueError:  # different drive on Windows
        return Path(audio).resolve().as_posix()
