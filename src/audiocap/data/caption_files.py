"""Captions grouped by clip, read from Clotho CSVs, AudioCaps CSVs or audiocap manifests.

Text-only training (WSAC; Kouzelis & Katsouros, DCASE 2023) needs nothing but the caption text,
so it reads the public caption files directly: Clotho v2.1 (``file_name, caption_1..caption_5``;
Drossos et al., ICASSP 2020), AudioCaps (``audiocap_id, youtube_id, start_time, caption``, one
row per caption, a clip is a (youtube_id, start_time) pair; Kim et al., NAACL 2019), or a JSONL
manifest (:mod:`audiocap.data.manifest`). The format is recognised from the file itself.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path


class CaptionFileError(ValueError):
    """A caption file is missing or has an unknown layout; the message names the file."""


@dataclass
class CaptionGroup:
    """The captions of one clip (``clip_id`` is unique within one file)."""

    clip_id: str
    captions: list[str]


def _read_csv(path: Path) -> list[CaptionGroup]:
    from audiocap.data import audiocaps, clotho
    from audiocap.data.importing import ImportReport, clean_caption, read_csv

    with open(path, "rb") as fh:
        first = fh.readline()
    try:
        header = [h.strip() for h in next(csv.reader([first.decode("utf-8-sig")]), [])]
    except UnicodeDecodeError:
        raise CaptionFileError(f"{path}:1: header is not valid UTF-8; save the file as UTF-8") from None
    report = ImportReport(source=str(path))
    groups = _groups(path, header, report)
    if report.malformed:  # rows read_csv skipped: name them instead of training on less
        bad = report.malformed[0]
        more = f" (and {len(report.malformed) - 1} more)" if len(report.malformed) > 1 else ""
        raise CaptionFileError(f"{bad}{more}; fix the file (save it as UTF-8 with one quoted record per line)")
    return groups


def _groups(path: Path, header: list[str], report) -> list[CaptionGroup]:
    from audiocap.data import audiocaps, clotho
    from audiocap.data.importing import clean_caption, read_csv

    if {"file_name", "caption_1"} <= set(header):
        cols = sorted((c for c in header if c.startswith("caption_")), key=lambda c: int(c[8:]))
        groups = []
        for _, row in read_csv(path, ("file_name", *cols), report):
            caps = [clean_caption(row[c]) for c in cols if (row.get(c) or "").strip()]
            if caps:
                groups.append(CaptionGroup(row["file_name"], caps))
        return groups
    if set(audiocaps.COLUMNS) <= set(header):
        by_clip: dict[str, list[str]] = {}
        for _, row in read_csv(path, audiocaps.COLUMNS, report):
            cap = clean_caption(row["caption"])
            if cap:
                by_clip.setdefault(f"{row['youtube_id']}_{row['start_time']}", []).append(cap)
        return [CaptionGroup(k, v) for k, v in by_clip.items()]
    raise CaptionFileError(
        f"{path}: unknown CSV layout (header {header}); expected Clotho "
        f"({', '.join(clotho.COLUMNS)}) or AudioCaps ({', '.join(audiocaps.COLUMNS)})"
    )


def read_caption_groups(path: str | os.PathLike, *, split: str | None = None) -> list[CaptionGroup]:
    """Read captions grouped by clip from a Clotho/AudioCaps CSV or a JSONL manifest.

    Whitespace inside captions is collapsed (Clotho has double and trailing spaces). For a
    manifest, ``split`` keeps only clips of that split; clips without captions are skipped.
    Used by text-only WSAC training (Kouzelis & Katsouros, 2023), which needs captions only.
    """
    path = Path(path)
    if not path.is_file():
        raise CaptionFileError(f"{path}: caption file not found")
    if path.suffix.lower() == ".csv":
        groups = _read_csv(path)
    elif path.suffix.lower() in (".jsonl", ".json"):
        from audiocap.data.manifest import read_manifest

        groups = [
            CaptionGroup(c.id, [" ".join(x.split()) for x in c.captions])
            for c in read_manifest(path)
            if c.captions and (split is None or c.split == split)
        ]
    else:
        raise CaptionFileError(f"{path}: expected a .csv caption file or a .jsonl manifest")
    if not groups:
        raise CaptionFileError(f"{path}: no captions found" + (f" in split '{split}'" if split else ""))
    return groups
