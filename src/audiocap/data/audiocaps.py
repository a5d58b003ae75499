"""Import AudioCaps 1.0 (Kim, Kim, Lee & Kim, "AudioCaps: Generating Captions for Audios in The Wild", NAACL 2019).

Official layout: ``train.csv``, ``val.csv``, ``test.csv`` with columns ``audiocap_id,
youtube_id, start_time, caption`` and one row per caption. A clip is one (youtube_id,
start_time) pair: train has one caption per clip, val and test five. Audio is not distributed
with the captions; each user's download names files differently, so the file name comes from a
``pattern`` with the fields ``{split}``, ``{youtube_id}``, ``{start_time}``, ``{end_time}``
(start + 10 s) and ``{audiocap_id}`` (the clip's first caption id), e.g.
``"{youtube_id}_{start_time}.wav"`` (default), ``"{split}/Y{youtube_id}.wav"`` or
``"{youtube_id}_{start_time}_{end_time}.flac"``. The files use CRLF line endings and a few
captions hold non-ASCII quotes; both are handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from audiocap.data.importing import ImportReport, Problem, attach_audio, clean_caption, read_csv
from audiocap.data.manifest import Clip

SPLITS = ("train", "val", "test")
COLUMNS = ("audiocap_id", "youtube_id", "start_time", "caption")
MAX_START = 1e6  # seconds (11.6 days): no YouTube video is longer
DEFAULT_PATTERN = "{youtube_id}_{start_time}.wav"
FIELDS = ("split", "youtube_id", "start_time", "end_time", "audiocap_id")
LICENSE = "research-only: AudioCaps captions for academic use; audio from YouTube (AudioSet)"
CLIP_SECONDS = 10


def check_pattern(pattern: str) -> None:
    """Raise ValueError if ``pattern`` uses a field other than :data:`FIELDS`."""
    try:
        pattern.format(**{f: "x" for f in FIELDS})
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"bad audio pattern {pattern!r} ({exc}); usable fields: "
                         + ", ".join("{" + f + "}" for f in FIELDS)) from None


def _start(text: str) -> int | float | None:
    """Parse start_time (seconds, >= 0); integral values become int so that '30' and '30.0' agree."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not 0 <= value <= MAX_START:  # also NaN and inf; 1e300 would become a 301-digit file name
        return None
    return int(value) if value.is_integer() else value


def import_audiocaps(
    captions_dir: str | Path,
    audio_dir: str | Path | None = None,
    *,
    pattern: str = DEFAULT_PATTERN,
    splits: Sequence[str] = SPLITS,
    keep_missing: bool = False,
    progress: bool = False,
) -> tuple[list[Clip], ImportReport]:
    """Read AudioCaps ``{split}.csv`` files, group captions per clip and find each clip's audio.

    Returns clips (id ``audiocaps/<youtube_id>_<start_time>``, captions in file order, absolute
    audio paths ``audio_dir/pattern``) and an :class:`ImportReport`. Missing or unreadable audio
    drops the clip (reported) unless ``keep_missing`` keeps it captions-only.
    """
    check_pattern(pattern)
    report = ImportReport(source="audiocaps")
    clips: list[Clip] = []
    owner: dict[str, str] = {}  # clip id -> split, to catch clips listed in two splits
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"unknown AudioCaps split {split!r}; choose from {', '.join(SPLITS)}")
        csv_path = Path(captions_dir) / f"{split}.csv"
        groups: dict[str, dict] = {}
        for lineno, row in read_csv(csv_path, COLUMNS, report):
            yid, cap, start = row["youtube_id"].strip(), clean_caption(row["caption"]), _start(row["start_time"])
            if not yid or not cap or start is None or not row["audiocap_id"].strip():
                report.malformed.append(Problem(
                    str(csv_path), lineno, "empty youtube_id/audiocap_id/caption or bad start_time "
                    f"{row['start_time']!r}"))
                continue
            cid = f"audiocaps/{yid}_{start}"
            if owner.get(cid, split) != split:
                report.malformed.append(Problem(str(csv_path), lineno, f"clip {cid} is already in split {owner[cid]}"))
                continue
            owner[cid] = split
            g = groups.setdefault(cid, {"youtube_id": yid, "start_time": start, "captions": [], "ids": []})
            g["captions"].append(cap)
            g["ids"].append(row["audiocap_id"].strip())
        base = Path(audio_dir) if audio_dir is not None else Path(captions_dir)
        for cid, g in tqdm(groups.items(), desc=f"audiocaps {split}", unit=" clips", disable=not progress):
            name = pattern.format(split=split, youtube_id=g["youtube_id"], start_time=g["start_time"],
                                  end_time=g["start_time"] + CLIP_SECONDS, audiocap_id=g["ids"][0])
            found = attach_audio([base / name], report, keep_missing=keep_missing)
            if found is None:
                continue
            audio, duration, meta = found
            clips.append(Clip(
                id=cid, audio=audio, duration=duration, captions=g["captions"], split=split,
                source="audiocaps", license=LICENSE,
                meta={"youtube_id": g["youtube_id"], "start_time": g["start_time"], "audiocap_ids": g["ids"], **meta},
            ))
    report.count(clips)
    return clips, report
