"""Read prediction and reference caption CSVs (Clotho, AudioCaps, or a plain id/caption layout).

References: the Clotho layout (``file_name, caption_1..caption_5``), the AudioCaps layout
(``audiocap_id, youtube_id, start_time, caption``; one row per caption, grouped per clip, clip
id ``<youtube_id>_<start_time>`` or just ``youtube_id``), or ``id``/``file_name`` + ``caption``
with one row per reference. Predictions: ``file_name`` or ``id`` (or ``youtube_id``) +
``caption``, one row per clip.
"""

from __future__ import annotations

import csv
from pathlib import Path


class CaptionCSVError(ValueError):
    """A caption CSV is malformed; the message names the file, line and fix."""


def _rows(path: Path) -> tuple[list[str], list[dict]]:
    if not path.is_file():
        raise CaptionCSVError(f"{path}: file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames:
                raise CaptionCSVError(f"{path}: empty file (expected a header row)")
            fields = [h.strip() for h in reader.fieldnames]
            reader.fieldnames = fields
            return fields, list(reader)
    except UnicodeDecodeError as exc:
        line = _line_of_byte(path, exc.start) if isinstance(exc.object, bytes) else None
        where = f"{path}:{line}" if line else str(path)
        raise CaptionCSVError(f"{where}: not valid UTF-8 ({exc.reason}); save the file as UTF-8") from None


def _line_of_byte(path: Path, offset_in_chunk: int) -> int | None:
    """The 1-based line of the first byte that is not UTF-8 (the decoder reports chunk offsets)."""
    data = path.read_bytes()
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return lineno
    return None


def _id_column(path: Path, fields: list[str]) -> str:
    for name in ("file_name", "id", "youtube_id"):
        if name in fields:
            return name
    raise CaptionCSVError(f"{path}: no id column; expected one of file_name, id, youtube_id "
                          f"(header: {', '.join(fields)})")


def read_references(path: str | Path) -> tuple[list[str], list[list[str]], dict[str, str]]:
    """``(ids, references, aliases)`` from a reference CSV in any supported layout.

    ``aliases`` maps alternative ids (AudioCaps ``youtube_id``) to the canonical id.
    """
    path = Path(path)
    fields, rows = _rows(path)
    refs: dict[str, list[str]] = {}
    aliases: dict[str, str] = {}
    cap_cols = sorted((f for f in fields if f.startswith("caption_")), key=lambda f: f[8:].zfill(3))
    if cap_cols:  # Clotho: one row per clip, captions in caption_1..caption_N
        key = _id_column(path, fields)
        for line, row in enumerate(rows, start=2):
            clip = row[key]
            if clip in refs:
                raise CaptionCSVError(f"{path}:{line}: {key} {clip!r} appears twice")
            refs[clip] = [row[c] for c in cap_cols if (row[c] or "").strip()]
            if not refs[clip]:
                raise CaptionCSVError(f"{path}:{line}: clip {clip!r} has no caption")
    elif "caption" in fields:
        audiocaps = {"youtube_id", "start_time"} <= set(fields)
        key = None if audiocaps else _id_column(path, fields)
        for line, row in enumerate(rows, start=2):
            cap = row["caption"]
            if not (cap or "").strip():
                raise CaptionCSVError(f"{path}:{line}: empty caption")
            if audiocaps:
                clip = f"{row['youtube_id']}_{row['start_time']}"
                aliases.setdefault(row["youtube_id"], clip)
            else:
                clip = row[key]
            refs.setdefault(clip, []).append(cap)
    else:
        raise CaptionCSVError(f"{path}: no caption column; expected caption_1..caption_5 "
                              f"(Clotho) or caption (AudioCaps / id,caption)")
    if not refs:
        raise CaptionCSVError(f"{path}: no rows")
    ids = list(refs)
    return ids, [refs[i] for i in ids], aliases


def read_predictions(path: str | Path) -> dict[str, str]:
    """``{id: caption}`` from a prediction CSV (one row per clip)."""
    path = Path(path)
    fields, rows = _rows(path)
    if "caption" not in fields:
        raise CaptionCSVError(f"{path}: no caption column (header: {', '.join(fields)})")
    key = _id_column(path, fields)
    preds: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        clip = row[key]
        if clip in preds:
            raise CaptionCSVError(f"{path}:{line}: {key} {clip!r} appears twice")
        if not (row["caption"] or "").strip():
            raise CaptionCSVError(f"{path}:{line}: empty caption for {clip!r}")
        preds[clip] = row["caption"]
    return preds


def align(pred_path: str | Path, ref_path: str | Path):
    """``(ids, candidates, references)`` with every reference clip matched to one prediction.

    Raises CaptionCSVError naming missing or unknown ids (first five) and both files.
    """
    ids, refs, aliases = read_references(ref_path)
    preds = read_predictions(pred_path)
    preds = {aliases.get(k, k) if k not in ids else k: v for k, v in preds.items()}
    known = set(ids)
    unknown = [k for k in preds if k not in known]
    if unknown:
        raise CaptionCSVError(f"{pred_path}: {len(unknown)} id(s) not in {ref_path}, e.g. "
                              f"{', '.join(map(repr, unknown[:5]))}")
    missing = [k for k in ids if k not in preds]
    if missing:
        raise CaptionCSVError(f"{pred_path}: no prediction for {len(missing)} clip(s) of "
                              f"{ref_path}, e.g. {', '.join(map(repr, missing[:5]))}")
    return ids, [preds[k] for k in ids], refs
