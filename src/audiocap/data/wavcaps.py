"""Import WavCaps (Mei et al., "WavCaps: A ChatGPT-Assisted Weakly-Labelled Audio Captioning Dataset", 2023).

Each WavCaps subset (AudioSet_SL, BBC_Sound_Effects, FreeSound, SoundBible) ships one JSON file
``{"data": [{"id": ..., "caption": ..., "audio" or "wav_path": ..., "duration": ...}, ...]}``
with one caption per clip. In the release the ``audio`` field is often the placeholder text
``"wav_path"`` and the audio lives in a folder per subset, named after the id (with or without
its suffix: ``Y0abc.wav`` may be stored as ``Y0abc.flac``). So the audio of an entry is
searched, in order, in ``AUDIO/`` and ``AUDIO/<name of the JSON's folder>/`` as: the path in
``audio``/``wav_path`` (if it is a real path), ``<id>``, ``<id stem>.flac``, ``<id stem>.wav``.
Entries without a usable id or caption are reported with their index (JSON has no row lines).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from audiocap.audio.io import SUPPORTED_SUFFIXES
from audiocap.data.importing import (DatasetFormatError, ImportReport, Problem, attach_audio, clean_caption,
                                     unencodable)
from audiocap.data.manifest import Clip

LICENSE = "academic use only (WavCaps); audio under each source's license"
PLACEHOLDERS = {"", "wav_path"}


def _load(path: Path) -> list:
    if not path.is_file():
        raise DatasetFormatError(path, None, "WavCaps JSON file not found")
    try:
        obj = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(path, None, f"not valid UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(path, exc.lineno, f"invalid JSON at column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise DatasetFormatError(path, None, "JSON nested too deeply to be a WavCaps file") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise DatasetFormatError(path, None, f"unusable JSON value: {str(exc)[:100]}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise DatasetFormatError(path, 1, 'expected an object {"data": [...]} (the WavCaps JSON layout)')
    return obj["data"]


def _candidates(entry: dict, json_path: Path, audio_dir: Path) -> list[Path]:
    ident = str(entry["id"])
    explicit = [entry.get(k) for k in ("audio", "wav_path")]
    names = [e for e in explicit if isinstance(e, str) and e not in PLACEHOLDERS]
    names += [ident] if Path(ident).suffix.lower() in SUPPORTED_SUFFIXES else []
    names += [Path(ident).stem + ".flac", Path(ident).stem + ".wav"] if Path(ident).suffix else [ident + ".flac", ident + ".wav"]
    bases = [audio_dir, audio_dir / json_path.parent.name]
    return [b / n for b in bases for n in names]


def import_wavcaps(
    json_paths: Sequence[str | Path],
    audio_dir: str | Path | None = None,
    *,
    split: str = "train",
    keep_missing: bool = False,
    progress: bool = False,
) -> tuple[list[Clip], ImportReport]:
    """Read WavCaps JSON files and find each entry's audio under ``audio_dir``.

    Clip ids are ``wavcaps/<JSON file stem>/<id>``; every clip gets ``split``. The JSON
    ``duration`` is used only for clips kept captions-only (``keep_missing``); otherwise the
    duration is read from the audio header. Entry ``tags`` (a list of strings), when present,
    become manifest tags.
    """
    report = ImportReport(source="wavcaps")
    clips: list[Clip] = []
    seen: set[str] = set()
    for json_path in map(Path, json_paths):
        base = Path(audio_dir) if audio_dir is not None else json_path.parent
        entries = _load(json_path)
        for i, entry in enumerate(tqdm(entries, desc=f"wavcaps {json_path.stem}", unit=" clips",
                                       disable=not progress)):
            where = f"{json_path} data[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), (str, int)) or \
                    not isinstance(entry.get("caption"), str) or not clean_caption(entry["caption"]):
                report.malformed.append(Problem(where, None, "entry needs a string/int 'id' and a non-empty 'caption'"))
                continue
            why = unencodable(entry)
            if why:
                report.malformed.append(Problem(where, None, f"entry {why}; fix the JSON"))
                continue
            report.rows += 1
            cid = f"wavcaps/{json_path.stem}/{entry['id']}"
            if cid in seen:
                report.malformed.append(Problem(where, None, f"duplicate id {entry['id']!r}"))
                continue
            seen.add(cid)
            dur = entry.get("duration")
            fallback = float(dur) if isinstance(dur, (int, float)) and not isinstance(dur, bool) and dur >= 0 else 0.0
            found = attach_audio(_candidates(entry, json_path, base), report, keep_missing=keep_missing,
                                 fallback_duration=fallback)
            if found is None:
                continue
            audio, duration, meta = found
            tags = entry.get("tags")
            clips.append(Clip(
                id=cid, audio=audio, duration=duration, captions=[clean_caption(entry["caption"])],
                tags=[t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
                split=split, source="wavcaps", license=LICENSE,
                meta={"wavcaps_id": str(entry["id"]), "subset": json_path.stem, **meta},
            ))
    report.count(clips)
    return clips, report
