"""Shared machinery of the dataset importers (Clotho, AudioCaps, WavCaps).

An importer reads a dataset's official caption files, finds each clip's audio, probes its
duration from the file header, and returns ``(clips, report)``. Problems with single rows or
files never stop an import: rows that cannot be parsed go to ``report.malformed`` with their
line number, audio that is absent goes to ``report.missing`` and audio whose header cannot be
read goes to ``report.unreadable``. Only a caption file that is unusable as a whole (absent,
wrong header, invalid JSON) raises :class:`DatasetFormatError`.

Captions are whitespace-normalised (leading/trailing spaces stripped, runs of spaces collapsed
to one) and otherwise kept verbatim: case and punctuation stay, because the DCASE metrics apply
the PTB tokenizer themselves.

CSV files are read one record per physical line (LF or CRLF, UTF-8 with or without BOM). None
of the official caption files has a quoted field spanning lines, so a quote left open is
reported as a malformed row instead of swallowing the rest of the file.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from audiocap.audio.io import AudioError, audio_info
from audiocap.data.manifest import Clip, ManifestError, relative_audio


class DatasetFormatError(ManifestError):
    """A dataset's caption file cannot be used at all; the message gives the file and line."""


@dataclass(frozen=True)
class Problem:
    """One skipped row or unusable audio file: where it is and why."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}" if self.line is not None else f"{self.path}: {self.reason}"


@dataclass
class ImportReport:
    """What an import found: counts per split and every problem, for the user to read."""

    source: str
    rows: int = 0
    clips: int = 0
    captions: int = 0
    without_audio: int = 0
    per_split: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unreadable: list[Problem] = field(default_factory=list)
    malformed: list[Problem] = field(default_factory=list)

    def count(self, clips: Sequence[Clip]) -> None:
        """Fill the clip, caption and per-split counts from the final clip list."""
        self.clips = len(clips)
        self.captions = sum(len(c.captions) for c in clips)
        self.without_audio = sum(1 for c in clips if "audio_status" in c.meta)
        self.per_split = {}
        for c in clips:
            self.per_split[c.split] = self.per_split.get(c.split, 0) + 1

    def lines(self, limit: int = 10) -> list[str]:
        """Human-readable summary; at most ``limit`` examples of each kind of problem."""
        splits = ", ".join(f"{k} {v}" for k, v in self.per_split.items()) or "none"
        out = [
            f"{self.source}: {self.clips} clips ({splits}), {self.captions} captions from {self.rows} rows",
            f"  clips kept without audio (captions only): {self.without_audio}",
            f"  missing audio: {len(self.missing)}",
            f"  unreadable audio: {len(self.unreadable)}",
            f"  malformed rows: {len(self.malformed)}",
        ]
        for title, items in (("missing", self.missing), ("unreadable", self.unreadable),
                             ("malformed", self.malformed)):
            for item in items[:limit]:
                out.append(f"  {title}: {item}")
            if len(items) > limit:
                out.append(f"  ... and {len(items) - limit} more {title}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (problems as strings)."""
        d = dataclasses.asdict(self)
        d["unreadable"] = [str(p) for p in self.unreadable]
        d["malformed"] = [str(p) for p in self.malformed]
        return d


def clean_caption(text: str) -> str:
    """Strip leading/trailing whitespace and collapse internal runs of whitespace to one space."""
    return " ".join(text.split())


def read_csv(path: Path, columns: Sequence[str], report: ImportReport) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` for each data row of a CSV whose header holds ``columns``.

    The header must contain every name in ``columns`` (any order, extra columns allowed) or a
    :class:`DatasetFormatError` naming line 1 is raised. Rows with bad quoting, a wrong number of
    fields or invalid UTF-8 are added to ``report.malformed`` and skipped. Blank lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, None, "caption file not found")
    header: list[str] | None = None
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                if header is None:
                    raise DatasetFormatError(path, lineno, "header is not valid UTF-8") from None
                report.malformed.append(Problem(str(path), lineno, "not valid UTF-8"))
                continue
            if not text.strip():
                continue
            try:
                row = next(csv.reader([text], strict=True))
            except csv.Error as exc:
                if header is None:
                    raise DatasetFormatError(path, lineno, f"bad CSV header: {exc}") from None
                report.malformed.append(Problem(str(path), lineno, f"bad quoting: {exc}"))
                continue
            if header is None:
                header = [h.strip() for h in row]
                absent = [c for c in columns if c not in header]
                if absent:
                    raise DatasetFormatError(
                        path, lineno,
                        f"header lacks column(s) {', '.join(absent)}; expected {', '.join(columns)}, "
                        f"got {', '.join(header)}",
                    )
                continue
            if len(row) != len(header):
                report.malformed.append(Problem(str(path), lineno, f"expected {len(header)} fields, got {len(row)}"))
                continue
            report.rows += 1
            yield lineno, dict(zip(header, row))
    if header is None:
        raise DatasetFormatError(path, None, "empty caption file (no header)")


def attach_audio(
    candidates: Sequence[Path],
    report: ImportReport,
    *,
    keep_missing: bool,
    fallback_duration: float = 0.0,
) -> tuple[str, float, dict[str, str]] | None:
    """Find a clip's audio among ``candidates`` and probe its duration.

    Returns ``(audio_path, duration, meta)`` or ``None`` when the clip must be dropped. Absent
    audio is recorded in ``report.missing`` (as the first candidate), unreadable audio in
    ``report.unreadable``; with ``keep_missing`` such clips are kept captions-only: the audio
    field holds the expected path, the duration is ``fallback_duration`` and ``meta`` gets an
    ``audio_status`` entry saying why.
    """
    too_long = [part for part in candidates[0].parts if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX]
    if too_long:  # the OS would raise "File name too long" on any look-up
        report.malformed.append(Problem(str(candidates[0])[:120] + "...", None, f"file name too long "
                                        f"({len(too_long[0].encode('utf-8', 'surrogatepass'))} bytes; file "
                                        f"systems allow {NAME_MAX}); clip dropped"))
        return None
    found = next((p for p in candidates if _is_file(p)), None)
    if found is None:
        report.missing.append(str(candidates[0]))
        return (str(candidates[0]), fallback_duration, {"audio_status": "missing"}) if keep_missing else None
    try:
        return str(found), audio_info(found).duration, {}
    except AudioError as exc:
        report.unreadable.append(Problem(str(found), None, exc.reason))
        if not keep_missing:
            return None
        return str(found), fallback_duration, {"audio_status": f"unreadable: {exc.reason}"}


NAME_MAX = 255  # bytes per path component on Linux, macOS and Windows file systems


def _is_file(path: Path) -> bool:
    """``path.is_file()`` that answers False instead of raising (too long, permission, loop)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def unencodable(obj: Any) -> str | None:
    """Why ``obj`` (JSON data) cannot be written as UTF-8 (a lone surrogate such as ``\\ud800``
    from a JSON escape), or None when it can."""
    import json

    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start:exc.end]
        return f"holds {bad.encode('unicode_escape').decode()!s}, a lone UTF-16 surrogate that is not valid Unicode"
    except (ValueError, TypeError, RecursionError) as exc:
        return f"not plain JSON data ({type(exc).__name__})"
    return None


def relativize(clips: Sequence[Clip], manifest_path: str | Path) -> list[Clip]:
    """Copies of ``clips`` whose audio paths are relative to ``manifest_path``'s folder."""
    return [dataclasses.replace(c, audio=relative_audio(manifest_path, c.audio)) for c in clips]
