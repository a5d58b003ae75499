"""Atomic file writes shared by every module that persists something.

A reader never sees a half-written manifest, checkpoint, index or JSON report: data go to a
temporary file in the destination folder, are flushed to disk, and replace the target in one
``os.replace`` call (atomic on POSIX and Windows for paths on one file system).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it onto ``target``.

    Use it for writers that want a file name rather than a handle (soundfile, safetensors,
    faiss). If the body raises, the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically and return the target path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``target`` atomically and return the target path."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    """Serialize ``obj`` as JSON (UTF-8, keys in insertion order) to ``target`` atomically.

    The file is always valid JSON: NaN and +-inf (which ``json.dumps`` would write as the
    non-standard ``NaN``/``Infinity``) are written as ``null``.
    """
    try:
        text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
    except ValueError:  # a non-finite float somewhere: rare, so the slow pass runs only then
        text = json.dumps(_finite(obj), indent=indent, ensure_ascii=False, allow_nan=False)
    return atomic_write_text(target, text + "\n")


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (dicts, lists and tuples walked)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in blocks: the one helper for checkpoint fingerprints
    and downloaded-artifact checks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()
