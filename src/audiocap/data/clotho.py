"""Import Clotho v2.1 (Drossos, Lipping & Virtanen, "Clotho: an Audio Captioning Dataset", ICASSP 2020).

Official layout::

    CAPTIONS/clotho_captions_development.csv   file_name, caption_1 .. caption_5
    CAPTIONS/clotho_captions_validation.csv
    CAPTIONS/clotho_captions_evaluation.csv
    AUDIO/development/<file_name>   AUDIO/validation/<file_name>   AUDIO/evaluation/<file_name>

Four file names occur in two splits but are different recordings, so clips are keyed by
(split, file name): the clip id is ``clotho/<official split>/<file_name>``. The manifest uses the
common split names ``train`` / ``val`` / ``test`` for development / validation / evaluation (the
DCASE Task 6 usage); the official name is kept in ``meta["clotho_split"]``. ``resplit`` pools
development and validation and splits them again (the Xiaomi DCASE 2023 Task 6b report's 9:1).
36 file names contain the literal text ``&amp;``; the audio is looked up under the literal name
first and then under the HTML-unescaped one (``&``).
"""

from __future__ import annotations

import dataclasses
import html
import random
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from audiocap.data.importing import ImportReport, Problem, attach_audio, clean_caption, read_csv
from audiocap.data.manifest import Clip

SPLITS = {"development": "train", "validation": "val", "evaluation": "test"}
COLUMNS = ("file_name", "caption_1", "caption_2", "caption_3", "caption_4", "caption_5")
LICENSE = ("research-only, non-commercial: captions (c) Tampere University, audio under each clip's "
           "Freesound license (Clotho v2.1, Zenodo 4783391)")


def import_clotho(
    captions_dir: str | Path,
    audio_dir: str | Path | None = None,
    *,
    splits: Sequence[str] = tuple(SPLITS),
    keep_missing: bool = False,
    progress: bool = False,
    resplit: float | None = None,
    resplit_seed: int = 0,
) -> tuple[list[Clip], ImportReport]:
    """Read the Clotho v2.1 caption CSVs of ``splits`` and pair them with audio under ``audio_dir``.

    Returns clips with absolute audio paths (see :func:`audiocap.data.importing.relativize`) and
    an :class:`ImportReport`. Clips whose audio is missing or unreadable are dropped and
    reported; with ``keep_missing`` they are kept captions-only (for text-only training).
    ``audio_dir`` defaults to ``captions_dir`` (audio folders beside the CSVs). ``resplit`` (e.g.
    0.9) re-splits the imported development + validation clips with :func:`resplit_clips`.
    """
    report = ImportReport(source="clotho")
    clips: list[Clip] = []
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"unknown Clotho split {split!r}; choose from {', '.join(SPLITS)}")
        csv_path = Path(captions_dir) / f"clotho_captions_{split}.csv"
        seen: dict[str, int] = {}
        rows = read_csv(csv_path, COLUMNS, report)
        for lineno, row in tqdm(rows, desc=f"clotho {split}", unit=" rows", disable=not progress):
            name = row["file_name"].strip()
            captions = [clean_caption(row[c]) for c in COLUMNS[1:]]
            if not name or not all(captions):
                report.malformed.append(Problem(str(csv_path), lineno, "empty file_name or caption"))
                continue
            if name in seen:
                report.malformed.append(
                    Problem(str(csv_path), lineno, f"duplicate file_name '{name}' (first on line {seen[name]})"))
                continue
            seen[name] = lineno
            folder = Path(audio_dir) / split if audio_dir is not None else Path(captions_dir) / split
            candidates = [folder / name]
            if html.unescape(name) != name:
                candidates.append(folder / html.unescape(name))
            found = attach_audio(candidates, report, keep_missing=keep_missing)
            if found is None:
                continue
            audio, duration, meta = found
            clips.append(Clip(
                id=f"clotho/{split}/{name}", audio=audio, duration=duration, captions=captions,
                split=SPLITS[split], source="clotho", license=LICENSE,
                meta={"file_name": name, "clotho_split": split, **meta},
            ))
    if resplit is not None:
        clips = resplit_clips(clips, resplit, seed=resplit_seed)
    report.count(clips)
    return clips, report


def resplit_clips(clips: list[Clip], train_share: float, *, seed: int = 0) -> list[Clip]:
    """Pool the development and validation clips and split them again: ``round(train_share * n)`` to
    ``train``, the rest to ``val`` (the Xiaomi DCASE 2023 Task 6b report trains on a 9:1 re-split of
    Clotho development + validation, ``train_share=0.9``). The choice is a shuffle of the clip ids in
    sorted order seeded by ``seed``, so the same files and seed always give the same split; evaluation
    clips stay ``test``. Clip order is kept; ``meta["clotho_split"]`` still names the official split.
    """
    if not 0.0 < train_share < 1.0:
        raise ValueError(f"resplit: train share must be between 0 and 1 (e.g. 0.9), got {train_share}")
    pooled = sorted(c.id for c in clips if c.meta.get("clotho_split") in ("development", "validation"))
    random.Random(seed).shuffle(pooled)
    to_train = set(pooled[: round(train_share * len(pooled))])
    return [dataclasses.replace(c, split="train" if c.id in to_train else "val")
            if c.meta.get("clotho_split") in ("development", "validation") else c for c in clips]
